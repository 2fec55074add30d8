//! Bindings for the blocking network layer: the SCU association, the storage
//! server and the Part 10 header reader.
//!
//! Every method that touches a socket or a file runs inside `py.detach`, so other
//! Python threads run meanwhile; Python is entered again only to call the
//! storage handler, from the association's own thread.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict};
use securepdu_core::part10::{read_file_meta as parse_meta, FileMeta as CoreFileMeta};
use securepdu_core::pdu::UserIdentityRq;
use securepdu_core::scp::{
    HandlerStatus, Network, ScpConfig, Server, ShutdownHandle, StoreHandler, StoredObject,
    UserIdentity, UserVerdict, DEFAULT_MIN_FREE_SPACE, MAX_OPS_PERFORMED,
};
use securepdu_core::scu::{
    read_file_meta_at, PendingStore, ScuAssociation, ScuConfig, DEFAULT_MAX_OPS_INVOKED,
};
use securepdu_core::tls::{
    TlsClient, TlsClientOptions, TlsError, TlsProfile, TlsServer, TlsServerOptions,
};
use securepdu_core::transport::{NetError, Timeouts};

use crate::error::Error;
use crate::serve::ServeThread;
use securepdu_core::conn::TraceHook;
use securepdu_core::integrity::to_hex;

/// A PDU trace that calls `callable(peer, line)` (e.g. a logger at DEBUG),
/// holding the GIL only for that call.
pub(crate) fn trace_hook(callable: Option<Py<PyAny>>) -> Option<TraceHook> {
    let callable = Arc::new(callable?);
    Some(TraceHook::new(move |t| {
        let peer = t.peer.map(|p| p.to_string()).unwrap_or_default();
        Python::attach(|py| {
            if let Err(err) = callable.call1(py, (peer, t.line.as_str())) {
                // Logging must not end an association; report it as Python does.
                err.write_unraisable(py, None);
            }
        });
    }))
}

pub(crate) fn duration(seconds: f64, name: &str) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(seconds).map_err(|_| {
        Error::from(NetError::InvalidArgument(format!(
            "{name} must be a non-negative number of seconds"
        )))
    })
}

/// Reads `key` from the options dict that `securepdu.TLSConfig` builds.
fn opt<'py, T: FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<Option<T>> {
    match d.get_item(key)? {
        Some(v) if !v.is_none() => Ok(Some(v.extract().map_err(Into::into)?)),
        _ => Ok(None),
    }
}

fn profile(d: &Bound<'_, PyDict>) -> PyResult<TlsProfile> {
    Ok(if opt::<bool>(d, "tls13_only")?.unwrap_or(false) {
        TlsProfile::Tls13Only
    } else {
        TlsProfile::Bcp195
    })
}

/// A client configuration from `TLSConfig._client_options()`.
pub(crate) fn tls_client(py: Python<'_>, d: &Bound<'_, PyDict>) -> PyResult<TlsClient> {
    let options = TlsClientOptions {
        ca_file: opt(d, "ca")?,
        use_system_roots: opt(d, "use_system_roots")?.unwrap_or(false),
        cert_chain_file: opt(d, "cert")?,
        key_file: opt(d, "key")?,
        profile: profile(d)?,
        ciphers: opt(d, "ciphers")?.unwrap_or_default(),
        server_name: opt(d, "server_name")?,
        verify_hostname: opt(d, "verify_hostname")?.unwrap_or(true),
    };
    Ok(py
        .detach(|| TlsClient::new(&options))
        .map_err(|e| Error::from(NetError::Tls(e)))?)
}

/// A server configuration from `TLSConfig._server_options()`.
pub(crate) fn tls_server(py: Python<'_>, d: &Bound<'_, PyDict>) -> PyResult<TlsServer> {
    let (Some(cert), Some(key)) = (opt::<PathBuf>(d, "cert")?, opt::<PathBuf>(d, "key")?) else {
        return Err(Error::from(NetError::Tls(TlsError::Other(
            "a TLS server needs a certificate and a key".into(),
        )))
        .into());
    };
    let mut options = TlsServerOptions::new(cert, key);
    options.ca_file = opt(d, "ca")?;
    options.require_client_cert =
        opt(d, "require_client_cert")?.unwrap_or(options.ca_file.is_some());
    options.profile = profile(d)?;
    options.ciphers = opt(d, "ciphers")?.unwrap_or_default();
    Ok(py
        .detach(|| TlsServer::new(&options))
        .map_err(|e| Error::from(NetError::Tls(e)))?)
}

pub(crate) fn addr_tuple(addr: SocketAddr) -> (String, u16) {
    (addr.ip().to_string(), addr.port())
}

/// The Part 10 header of a file: what a sender needs to pick a presentation context.
#[pyclass(frozen, module = "securepdu._core")]
pub(crate) struct FileMeta {
    inner: CoreFileMeta,
}

#[pymethods]
impl FileMeta {
    /// Media Storage SOP Class UID.
    #[getter]
    fn sop_class_uid(&self) -> &str {
        &self.inner.media_storage_sop_class_uid
    }

    /// Media Storage SOP Instance UID.
    #[getter]
    fn sop_instance_uid(&self) -> &str {
        &self.inner.media_storage_sop_instance_uid
    }

    /// Transfer Syntax UID of the data set.
    #[getter]
    fn transfer_syntax(&self) -> &str {
        &self.inner.transfer_syntax_uid
    }

    /// Offset of the data set from the start of the file.
    #[getter]
    fn dataset_offset(&self) -> u64 {
        self.inner.dataset_offset
    }

    fn __repr__(&self) -> String {
        format!(
            "FileMeta(sop_class_uid={:?}, sop_instance_uid={:?}, transfer_syntax={:?}, dataset_offset={})",
            self.inner.media_storage_sop_class_uid,
            self.inner.media_storage_sop_instance_uid,
            self.inner.transfer_syntax_uid,
            self.inner.dataset_offset
        )
    }
}

/// Reads the Part 10 header of the file at `path` (never the data set).
#[pyfunction]
pub(crate) fn read_file_meta(py: Python<'_>, path: PathBuf) -> PyResult<FileMeta> {
    let inner = py
        .detach(|| read_file_meta_at(&path))
        .map_err(Error::from)?;
    Ok(FileMeta { inner })
}

/// Reads the Part 10 header at the start of `data`.
#[pyfunction]
pub(crate) fn parse_file_meta(data: &[u8]) -> PyResult<FileMeta> {
    let inner = parse_meta(data).map_err(|e| Error::from(NetError::from(e)))?;
    Ok(FileMeta { inner })
}

/// An association opened by us (the SCU side).
#[pyclass(frozen, module = "securepdu._core")]
#[pyo3(name = "ScuAssociation")]
pub(crate) struct ScuAssociationPy {
    inner: Mutex<ScuAssociation>,
    accepted: Vec<(u8, String, String)>,
    rejected: Vec<(u8, String, u8)>,
    tls_session: Option<(String, String)>,
    integrity_active: bool,
    peer: SocketAddr,
    peer_max: u32,
    user_identity_response: Option<Vec<u8>>,
}

impl ScuAssociationPy {
    fn lock(&self) -> MutexGuard<'_, ScuAssociation> {
        // A poisoned lock only means a panic elsewhere; the association's own state
        // machine still says what may happen next.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl ScuAssociationPy {
    /// Connects and negotiates; raises AssociationRejected, TimeoutError, NetworkError.
    #[staticmethod]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (host, port, calling_ae, called_ae, contexts, max_pdu, connect_timeout, acse_timeout, dimse_timeout, tls=None, integrity=None, trace=None, max_ops=DEFAULT_MAX_OPS_INVOKED, user_identity=None))]
    fn connect(
        py: Python<'_>,
        host: String,
        port: u16,
        calling_ae: String,
        called_ae: String,
        contexts: Vec<(String, Vec<String>)>,
        max_pdu: u32,
        connect_timeout: f64,
        acse_timeout: f64,
        dimse_timeout: f64,
        tls: Option<Bound<'_, PyDict>>,
        integrity: Option<(String, String)>,
        trace: Option<Py<PyAny>>,
        max_ops: u16,
        user_identity: Option<(u8, Vec<u8>, Vec<u8>, bool)>,
    ) -> PyResult<Self> {
        let tls = tls.map(|d| tls_client(py, &d)).transpose()?;
        let user_identity =
            user_identity.map(|(kind, primary, secondary, requested)| UserIdentityRq {
                identity_type: kind,
                positive_response_requested: requested,
                primary_field: primary,
                secondary_field: secondary,
            });
        let integrity = crate::integrity::config(integrity)?;
        let timeouts = Timeouts {
            connect: duration(connect_timeout, "timeout")?,
            acse: duration(acse_timeout, "acse_timeout")?,
            dimse: duration(dimse_timeout, "dimse_timeout")?,
            ..Timeouts::default()
        };
        let config = ScuConfig {
            calling_ae,
            called_ae,
            contexts,
            max_pdu,
            timeouts,
            integrity,
            trace: trace_hook(trace),
            max_ops_invoked: max_ops.max(1),
            user_identity,
        };
        let assoc = py
            .detach(|| ScuAssociation::connect_tls(&host, port, config, tls.as_ref()))
            .map_err(Error::from)?;
        let accepted = assoc
            .accepted_contexts()
            .iter()
            .map(|c| (c.id, c.abstract_syntax.clone(), c.transfer_syntax.clone()))
            .collect();
        let user_identity_response = assoc
            .associate_ac()
            .user_info
            .user_identity_ac
            .as_ref()
            .map(|ac| ac.server_response.clone());
        Ok(Self {
            accepted,
            user_identity_response,
            integrity_active: assoc.integrity_active(),
            tls_session: assoc.tls_session(),
            rejected: assoc.rejected_contexts(),
            peer: assoc.peer_addr(),
            peer_max: assoc.peer_max_pdu(),
            inner: Mutex::new(assoc),
        })
    }

    /// (id, abstract syntax, transfer syntax) of each accepted context.
    #[getter]
    fn accepted_contexts(&self) -> Vec<(u8, String, String)> {
        self.accepted.clone()
    }

    /// (id, abstract syntax, result) of each rejected context.
    #[getter]
    fn rejected_contexts(&self) -> Vec<(u8, String, u8)> {
        self.rejected.clone()
    }

    /// The peer's (address, port).
    #[getter]
    fn peer_address(&self) -> (String, u16) {
        addr_tuple(self.peer)
    }

    /// Whether securepdu integrity tags protect this association's stores.
    #[getter]
    fn integrity_active(&self) -> bool {
        self.integrity_active
    }

    /// The negotiated TLS version (e.g. "TLSv1.3"), or None on plain TCP.
    #[getter]
    fn tls_version(&self) -> Option<String> {
        self.tls_session.as_ref().map(|(v, _)| v.clone())
    }

    /// The negotiated cipher suite (IANA name), or None on plain TCP.
    #[getter]
    fn cipher_suite(&self) -> Option<String> {
        self.tls_session.as_ref().map(|(_, c)| c.clone())
    }

    /// The peer's maximum PDU length.
    #[getter]
    fn peer_max_pdu(&self) -> u32 {
        self.peer_max
    }

    /// Whether the association is still open.
    #[getter]
    fn is_established(&self) -> bool {
        self.lock().is_established()
    }

    /// C-ECHO; returns the status.
    fn echo(&self, py: Python<'_>) -> PyResult<u16> {
        Ok(py.detach(|| self.lock().echo()).map_err(Error::from)?)
    }

    /// C-STORE of an encoded data set; returns (status, error comment, integrity tag
    /// as hex or None).
    fn store_bytes(
        &self,
        py: Python<'_>,
        context_id: u8,
        sop_class: &str,
        sop_instance: &str,
        data: PyBackedBytes,
    ) -> PyResult<(u16, Option<String>, Option<String>)> {
        // Zero-copy: the fragments sent are slices of the Python bytes object.
        let buf = bytes::Bytes::from_owner(data);
        let keep = buf.clone(); // released here, attached, not in the detached closure
        let outcome = py.detach(|| {
            self.lock()
                .store_bytes(context_id, sop_class, sop_instance, buf)
        });
        drop(keep);
        let outcome = outcome.map_err(Error::from)?;
        let tag = outcome.integrity_tag.map(|t| to_hex(&t));
        Ok((outcome.status, outcome.error_comment, tag))
    }

    /// C-STORE of a Part 10 file streamed from disk; returns (status, error comment,
    /// bytes sent, integrity tag as hex or None).
    fn store_file(
        &self,
        py: Python<'_>,
        path: PathBuf,
        context_id: u8,
        meta: &FileMeta,
    ) -> PyResult<(u16, Option<String>, u64, Option<String>)> {
        let outcome = py
            .detach(|| self.lock().store_file(&path, context_id, &meta.inner))
            .map_err(Error::from)?;
        let size = std::fs::metadata(&path)
            .map(|m| m.len().saturating_sub(meta.inner.dataset_offset))
            .unwrap_or(0);
        Ok((
            outcome.status,
            outcome.error_comment,
            size,
            outcome.integrity_tag.map(|t| to_hex(&t)),
        ))
    }

    /// The peer's answer to our user identity (server response bytes, empty
    /// for a username), or None when it gave none.
    #[getter]
    fn user_identity_response<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.user_identity_response
            .as_ref()
            .map(|r| PyBytes::new(py, r))
    }

    /// How many C-STOREs may be outstanding (the asynchronous operations window
    /// both sides agreed to; 1 when the peer negotiated none).
    #[getter]
    fn async_window(&self) -> usize {
        self.lock().async_window()
    }

    /// Sends a C-STORE of a Part 10 file without waiting for the answer
    /// (waiting first if the window is full); returns (message id, bytes sent,
    /// integrity tag as hex or None). Collect the answer with `store_wait`.
    fn store_file_begin(
        &self,
        py: Python<'_>,
        path: PathBuf,
        context_id: u8,
        meta: &FileMeta,
    ) -> PyResult<(u16, u64, Option<String>)> {
        let pending = py
            .detach(|| self.lock().begin_store_file(&path, context_id, &meta.inner))
            .map_err(Error::from)?;
        Ok((
            pending.message_id,
            pending.size,
            pending.integrity_tag.map(|t| to_hex(&t)),
        ))
    }

    /// Waits for the answer to the C-STORE `message_id` sent with
    /// `store_file_begin`; returns (status, error comment).
    fn store_wait(&self, py: Python<'_>, message_id: u16) -> PyResult<(u16, Option<String>)> {
        let pending = PendingStore {
            message_id,
            size: 0,
            integrity_tag: None,
        };
        let outcome = py
            .detach(|| self.lock().finish_store(pending))
            .map_err(Error::from)?;
        Ok((outcome.status, outcome.error_comment))
    }

    /// A-RELEASE, then close.
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        Ok(py.detach(|| self.lock().release()).map_err(Error::from)?)
    }

    /// A-ABORT, then close.
    fn abort(&self, py: Python<'_>) {
        py.detach(|| self.lock().abort());
    }
}

/// Calls the Python side of a StorageSCP from association threads.
struct PyHandler {
    on_store: Py<PyAny>,
    on_association: Py<PyAny>,
    on_tls_error: Py<PyAny>,
    on_event: Py<PyAny>,
    /// Verifies user identities; `None`: they are not checked.
    on_user_identity: Option<Py<PyAny>>,
}

impl PyHandler {
    /// Reports a refusal or an integrity failure to Python (for its log).
    fn event(&self, info: (&str, (String, u16), &str, &str, &str)) {
        Python::attach(|py| {
            if let Err(err) = self.on_event.call1(py, (info,)) {
                // A logging hook must not end an association; report it as Python does.
                err.write_unraisable(py, None);
            }
        });
    }
}

impl StoreHandler for PyHandler {
    fn on_stored(&self, obj: &StoredObject) -> Result<Option<HandlerStatus>, String> {
        Python::attach(|py| {
            let info = (
                obj.path.to_string_lossy().into_owned(),
                obj.sop_class_uid.as_str(),
                obj.sop_instance_uid.as_str(),
                obj.transfer_syntax.as_str(),
                obj.calling_ae.as_str(),
                obj.called_ae.as_str(),
                addr_tuple(obj.peer),
                obj.size,
                obj.peer_certificate
                    .as_ref()
                    .and_then(|c| c.subject.clone()),
                to_hex(&obj.sha256),
                obj.integrity
                    .as_ref()
                    .map(|(key_id, tag)| (key_id.clone(), to_hex(tag))),
            );
            let answer = self
                .on_store
                .call1(py, (info,))
                .map_err(|e| e.to_string())?;
            if answer.is_none(py) {
                return Ok(None);
            }
            let (status, error_comment): (u16, Option<String>) =
                answer.extract(py).map_err(|e: PyErr| e.to_string())?;
            Ok(Some(HandlerStatus {
                status,
                error_comment,
            }))
        })
    }

    fn on_refused(&self, peer: SocketAddr, calling: &str, called: &str, reason: &str) {
        self.event(("refused", addr_tuple(peer), calling, called, reason));
    }

    fn on_integrity_failure(&self, peer: SocketAddr, sop_instance_uid: &str, detail: &str) {
        self.event(("integrity", addr_tuple(peer), sop_instance_uid, "", detail));
    }

    fn on_error(&self, peer: Option<SocketAddr>, message: &str) {
        let peer = peer.map_or((String::new(), 0), addr_tuple);
        self.event(("error", peer, "", "", message));
    }

    /// The Python callback gets (peer, kind, primary, secondary, response
    /// requested) and answers True (accept), bytes (accept, with that server
    /// response) or False/None (reject); raising rejects with the error.
    fn verify_user(&self, peer: SocketAddr, identity: &UserIdentity) -> Option<UserVerdict> {
        let callback = self.on_user_identity.as_ref()?;
        Some(Python::attach(|py| {
            let info = (
                addr_tuple(peer),
                identity.kind,
                PyBytes::new(py, &identity.primary),
                PyBytes::new(py, &identity.secondary),
                identity.response_requested,
            );
            let answer = match callback.call1(py, (info,)) {
                Ok(answer) => answer,
                Err(e) => return UserVerdict::Reject(e.to_string()),
            };
            let answer = answer.bind(py);
            if let Ok(bytes) = answer.cast::<PyBytes>() {
                return UserVerdict::Accept {
                    response: bytes.as_bytes().to_vec(),
                };
            }
            match answer.is_truthy() {
                Ok(true) => UserVerdict::Accept {
                    response: Vec::new(),
                },
                Ok(false) => UserVerdict::Reject("not accepted by the verifier".into()),
                Err(e) => UserVerdict::Reject(e.to_string()),
            }
        }))
    }

    fn on_tls_error(&self, peer: SocketAddr, error: &TlsError) {
        Python::attach(|py| {
            if let Err(err) = self
                .on_tls_error
                .call1(py, ((addr_tuple(peer), error.to_string()),))
            {
                err.write_unraisable(py, None);
            }
        });
    }

    fn on_association(&self, peer: SocketAddr, calling: &str, called: &str, accepted: bool) {
        Python::attach(|py| {
            let info = (addr_tuple(peer), calling, called, accepted, None::<String>);
            if let Err(err) = self.on_association.call1(py, (info,)) {
                // A logging hook must not end an association; report it as Python does.
                err.write_unraisable(py, None);
            }
        });
    }
}

/// The storage SCP: a bound listening socket and, once started, its accept thread.
#[pyclass(frozen, module = "securepdu._core")]
pub(crate) struct StorageServer {
    server: Arc<Server>,
    handle: ShutdownHandle,
    thread: ServeThread,
}

#[pymethods]
impl StorageServer {
    /// Binds the listening socket; raises NetworkError if the address is taken.
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (host, port, ae_title, storage_dir, require_called_ae, max_associations, max_pdu, acse_timeout, dimse_timeout, idle_timeout, on_store, on_association, on_tls_error, on_event, tls=None, allowed_calling_aes=None, integrity=None, trace=None, max_ops=MAX_OPS_PERFORMED, calling_aes=None, networks=None, require_user_identity=false, on_user_identity=None, max_associations_per_peer=0, max_object_size=0, min_free_space=DEFAULT_MIN_FREE_SPACE))]
    fn new(
        py: Python<'_>,
        host: String,
        port: u16,
        ae_title: String,
        storage_dir: PathBuf,
        require_called_ae: bool,
        max_associations: usize,
        max_pdu: u32,
        acse_timeout: f64,
        dimse_timeout: f64,
        idle_timeout: f64,
        on_store: Py<PyAny>,
        on_association: Py<PyAny>,
        on_tls_error: Py<PyAny>,
        on_event: Py<PyAny>,
        tls: Option<Bound<'_, PyDict>>,
        allowed_calling_aes: Option<std::collections::HashMap<String, Vec<String>>>,
        integrity: Option<(String, String)>,
        trace: Option<Py<PyAny>>,
        max_ops: u16,
        calling_aes: Option<Vec<String>>,
        networks: Option<Vec<String>>,
        require_user_identity: bool,
        on_user_identity: Option<Py<PyAny>>,
        max_associations_per_peer: usize,
        max_object_size: u64,
        min_free_space: u64,
    ) -> PyResult<Self> {
        let integrity = crate::integrity::config(integrity)?;
        let tls = tls.map(|d| tls_server(py, &d)).transpose()?;
        let allowed_networks = networks
            .unwrap_or_default()
            .iter()
            .map(|n| n.parse::<Network>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let config = ScpConfig {
            ae_title,
            require_called_ae,
            storage_dir,
            max_associations,
            max_pdu,
            timeouts: Timeouts {
                acse: duration(acse_timeout, "acse_timeout")?,
                dimse: duration(dimse_timeout, "dimse_timeout")?,
                idle: duration(idle_timeout, "idle_timeout")?,
                ..Timeouts::default()
            },
            allowed_calling_aes: allowed_calling_aes
                .unwrap_or_default()
                .into_iter()
                .collect(),
            integrity,
            trace: trace_hook(trace),
            max_ops_performed: max_ops.clamp(1, MAX_OPS_PERFORMED),
            calling_ae_allow_list: calling_aes.unwrap_or_default(),
            allowed_networks,
            require_user_identity,
            max_associations_per_peer,
            max_object_size,
            min_free_space,
        };
        let handler = Arc::new(PyHandler {
            on_store,
            on_association,
            on_tls_error,
            on_event,
            on_user_identity,
        });
        let server = py
            .detach(|| Server::bind_tls(&host, port, config, handler, tls))
            .map_err(Error::from)?;
        Ok(Self {
            handle: server.shutdown_handle(),
            server: Arc::new(server),
            thread: ServeThread::new("securepdu-accept", "the accept thread panicked"),
        })
    }

    /// The (address, port) listened on.
    #[getter]
    fn address(&self) -> (String, u16) {
        addr_tuple(self.server.local_addr())
    }

    /// Associations being served now.
    #[getter]
    fn active_associations(&self) -> usize {
        self.server.active_associations()
    }

    /// Serves in a background thread and returns at once.
    fn start(&self) -> PyResult<()> {
        let server = Arc::clone(&self.server);
        self.thread.start(move || server.serve())
    }

    /// Serves until shutdown() (from another thread) or a signal such as Ctrl-C,
    /// which shuts the server down and is raised here.
    fn serve(&self, py: Python<'_>) -> PyResult<()> {
        let server = Arc::clone(&self.server);
        self.thread
            .serve(py, move || server.serve(), || self.handle.shutdown())
    }

    /// Stops accepting, lets associations in the middle of a message finish it
    /// within `grace` seconds (default: the ACSE timeout), aborts them after
    /// it, and waits for that.
    #[pyo3(signature = (grace=None))]
    fn shutdown(&self, py: Python<'_>, grace: Option<f64>) -> PyResult<()> {
        match grace {
            Some(g) => self.handle.shutdown_within(duration(g, "grace")?),
            None => self.handle.shutdown(),
        }
        self.thread.join(py)
    }
}
