//! The storage SCP: a listener, one thread per association, C-ECHO and C-STORE
//! for every storage SOP class, received objects streamed durably to disk.
//!
//! Status codes sent back for C-STORE (PS3.4 Table B.2-1, PS3.7 Annex C):
//! - 0000 success, after the file is fsynced, renamed and the handler returned;
//! - 0122 refused, SOP class not supported: the command's SOP class is not a
//!   storage SOP class or differs from the presentation context's abstract syntax;
//! - [`INVALID_SOP_INSTANCE_UID`] (C210, in the "cannot understand" Cxxx range):
//!   the SOP Instance UID is not a valid UID, so it never becomes a path;
//! - A700 out of resources: the file could not be written (disk full, I/O error);
//!   no partial file is left;
//! - C001 (Cxxx range): the handler returned an error (the file stays stored);
//! - [`INTEGRITY_CHECK_FAILED`] (C2A0, Cxxx range): integrity protection is in
//!   force and the sender's tag is wrong or did not come; nothing is stored;
//! - 0211 unrecognized operation, for any other request.
//!
//! Every stored object gets a line in the storage directory's manifest
//! ([`crate::integrity::Manifest`]) after the rename and directory fsync and
//! before the handler and the response; if the line cannot be written the
//! file is removed again and the answer is A700.
//!
//! Integrity protection ([`ScpConfig::integrity`]): the integrity context is
//! accepted only when the proposer's key id matches ours (otherwise result 3,
//! as a standard peer answers); with [`Policy::Required`], an association
//! without it is rejected (1 permanent, 1 service-user, 1 no reason given) and
//! [`StoreHandler::on_refused`] says why. While it is in force, each C-STORE's
//! data set is tagged as it is written and the response waits for the tag PDV
//! (at most the DIMSE timeout), which is intercepted before DIMSE reassembly.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use socket2::SockRef;

use crate::association::{Association, Config, Indication, Role};
use crate::conn::{validate_ae_title, Connection, TraceHook};
use crate::dimse::{
    self, status, CEchoRsp, CStoreRq, CStoreRsp, Event, Message, Reassembler,
    VERIFICATION_SOP_CLASS,
};
use crate::integrity::{
    decode_tag_pdv, random_nonce, Digests, Hasher, IntegrityAnswer, IntegrityConfig,
    IntegrityOffer, Manifest, PendingDigests, Policy, SessionKey, INTEGRITY_SOP_CLASS, TAG_LEN,
    TLS_EXPORTER_LABEL, TLS_EXPORTER_LEN,
};
use crate::part10::{FileMeta, IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};
use crate::pdu::{
    AssociateAc, AssociateRj, AssociateRq, AsyncOpsWindow, PData, Pdv, PresentationContextAc,
    RoleSelection, SopClassExtended, UserInformation, APPLICATION_CONTEXT_NAME, PROTOCOL_VERSION,
};
use crate::store::{
    choose_transfer_syntax, is_storage_sop_class, validate_uid, PartialObject,
    IMPLICIT_VR_LITTLE_ENDIAN,
};
use crate::tls::{PeerCertificate, Stream, TlsError, TlsServer, TlsStream};
use crate::transport;

pub use crate::conn::DEFAULT_MAX_PDU;
pub use crate::integrity::INTEGRITY_CHECK_FAILED;
pub use crate::scu::AcceptedContext;
pub use crate::transport::{NetError, Timeouts};

mod access;
mod commit;
mod durable;

pub use access::{InvalidNetwork, Network, UserIdentity, UserVerdict};

pub use durable::MAX_OPS_PERFORMED;
use durable::{Done, Job, Origin, Pool, Workers};

/// C-STORE failure: the SOP Instance UID is not a valid UID (a code of the
/// "Error: cannot understand" Cxxx range of PS3.4 Table B.2-1, chosen by securepdu).
pub const INVALID_SOP_INSTANCE_UID: u16 = 0xC210;

/// C-STORE failure: the storage handler returned an error (Cxxx range).
pub const HANDLER_FAILED: u16 = 0xC001;

/// Free space an SCP keeps on its storage volume unless told otherwise.
pub const DEFAULT_MIN_FREE_SPACE: u64 = 64 << 20;

/// How often blocked threads look at the shutdown flag.
const POLL: Duration = Duration::from_millis(250);

/// Bytes of one object between two looks at the free space of the volume.
const SPACE_CHECK_EVERY: u64 = 64 << 20;

/// C-STORE failure: the storage volume is below its free-space reserve (in
/// PS3.4's "Refused: Out of Resources" range, A7xx).
pub const OUT_OF_SPACE: u16 = 0xA701;

/// Whether the storage volume keeps [`ScpConfig::min_free_space`] with `more`
/// bytes written; else the status and comment to refuse with. A volume whose
/// free space cannot be read is not refused on that account (a failing write
/// still is).
fn space_left(config: &ScpConfig, more: u64) -> Result<(), (u16, String)> {
    if config.min_free_space == 0 {
        return Ok(());
    }
    match crate::store::free_space(&config.storage_dir) {
        Ok(free) if free < config.min_free_space.saturating_add(more) => Err((
            OUT_OF_SPACE,
            format!(
                "disk full: {} MB free, below the {} MB reserve",
                free >> 20,
                config.min_free_space >> 20
            ),
        )),
        _ => Ok(()),
    }
}

/// How often the association's thread looks for answers from the durability
/// workers while some are outstanding, where they cannot wake it (a stream
/// that cannot be polled).
const ANSWER_POLL: Duration = Duration::from_millis(1);

/// Longest Error Comment (0000,0902), LO.
const MAX_ERROR_COMMENT: usize = 64;

/// How the storage SCP behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScpConfig {
    /// Our AE title.
    pub ae_title: String,
    /// Reject associations whose called AE title is not `ae_title`.
    pub require_called_ae: bool,
    /// Where received objects are written (created if missing).
    pub storage_dir: PathBuf,
    /// Most associations served at once; one more is rejected (transient, local
    /// limit exceeded).
    pub max_associations: usize,
    /// Largest P-DATA-TF we accept (advertised).
    pub max_pdu: u32,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Binds client certificate identities to calling AE titles: the common name
    /// (CN) of a verified client certificate -> the calling AE titles it may use.
    /// Empty: no binding. Otherwise a peer without a listed CN, or using an AE
    /// title not listed for its CN, is rejected as calling-AE-title-not-recognized.
    pub allowed_calling_aes: BTreeMap<String, Vec<String>>,
    /// End-to-end integrity protection (`None`: off). The key also signs the
    /// manifest lines (their `mac`), whatever the policy.
    pub integrity: Option<IntegrityConfig>,
    /// Called with a summary of every PDU sent and received on every
    /// association (`None`: no trace).
    pub trace: Option<TraceHook>,
    /// Calling AE titles allowed to associate; empty: any.
    pub calling_ae_allow_list: Vec<String>,
    /// Networks peers may connect from; empty: any.
    pub allowed_networks: Vec<Network>,
    /// Refuse peers that send no user identity (PS3.7 D.3.3.7) or whose
    /// identity [`StoreHandler::verify_user`] does not check.
    pub require_user_identity: bool,
    /// Most associations at once from one IP address (0: only
    /// `max_associations` applies); one more is rejected as a local limit.
    pub max_associations_per_peer: usize,
    /// Largest object accepted, in bytes (0: no limit). A larger one is
    /// refused with "out of resources" (0xA700) and nothing of it is kept.
    pub max_object_size: u64,
    /// Free space kept on the storage volume, in bytes: an object that would
    /// leave less is refused with "out of resources" (0xA701) and nothing of it
    /// is kept.
    pub min_free_space: u64,
    /// Most C-STOREs a peer may have outstanding when it proposes an
    /// asynchronous operations window (PS3.7 D.3.3.3); 1 answers every peer
    /// synchronously. At most [`MAX_OPS_PERFORMED`].
    pub max_ops_performed: u16,
}

impl Default for ScpConfig {
    fn default() -> Self {
        Self {
            ae_title: "SECUREPDU".into(),
            require_called_ae: false,
            storage_dir: PathBuf::from("."),
            max_associations: 32,
            max_pdu: DEFAULT_MAX_PDU,
            timeouts: Timeouts::default(),
            allowed_calling_aes: BTreeMap::new(),
            integrity: None,
            trace: None,
            calling_ae_allow_list: Vec::new(),
            allowed_networks: Vec::new(),
            require_user_identity: false,
            max_associations_per_peer: 0,
            max_object_size: 0,
            min_free_space: DEFAULT_MIN_FREE_SPACE,
            max_ops_performed: MAX_OPS_PERFORMED,
        }
    }
}

/// The common name (CN) in a subject written as `CN=...,O=...`.
pub fn common_name(subject: &str) -> Option<&str> {
    subject
        .split(',')
        .find_map(|rdn| rdn.trim().strip_prefix("CN="))
}

/// Whether the peer's certificate identity may use `calling_ae` under `config`'s
/// binding (always true when there is no binding).
fn identity_allows(
    config: &ScpConfig,
    certificate: Option<&PeerCertificate>,
    calling_ae: &str,
) -> bool {
    if config.allowed_calling_aes.is_empty() {
        return true;
    }
    let Some(cn) = certificate
        .and_then(|c| c.subject.as_deref())
        .and_then(common_name)
    else {
        return false;
    };
    config
        .allowed_calling_aes
        .get(cn)
        .is_some_and(|aes| aes.iter().any(|ae| ae.trim() == calling_ae.trim()))
}

/// An object received, durable on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Its file: `<storage_dir>/<SOP Instance UID>.dcm`.
    pub path: PathBuf,
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// Transfer syntax of the data set (as received).
    pub transfer_syntax: String,
    /// The peer's AE title.
    pub calling_ae: String,
    /// The AE title the peer called.
    pub called_ae: String,
    /// The peer's address.
    pub peer: SocketAddr,
    /// File size in bytes (Part 10 header included).
    pub size: u64,
    /// Over TLS with client authentication: the client's verified certificate.
    pub peer_certificate: Option<PeerCertificate>,
    /// SHA-256 of the whole file as written (header and data set).
    pub sha256: [u8; 32],
    /// When integrity protection was in force: (key id, the verified tag).
    pub integrity: Option<(String, [u8; TAG_LEN])>,
}

/// A status chosen by the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerStatus {
    /// Status (0000,0900).
    pub status: u16,
    /// Error Comment (0000,0902), at most 64 characters are sent.
    pub error_comment: Option<String>,
}

/// What the application does with received objects and association events.
pub trait StoreHandler: Send + Sync + 'static {
    /// Called after the object is durable (fsynced and renamed), before the
    /// response is sent. `Ok(None)`: Success. `Ok(Some(s))`: answer `s`.
    /// `Err(msg)`: failure [`HANDLER_FAILED`] with `msg` as error comment (the
    /// file stays where it is). A panic counts as `Err`.
    fn on_stored(&self, obj: &StoredObject) -> Result<Option<HandlerStatus>, String>;

    /// An association request was accepted or rejected.
    fn on_association(&self, _peer: SocketAddr, _calling: &str, _called: &str, _accepted: bool) {}

    /// A TLS handshake failed (the connection was closed; nothing else happens).
    fn on_tls_error(&self, _peer: SocketAddr, _error: &TlsError) {}

    /// An association request was rejected, and why (called after
    /// [`Self::on_association`] with `accepted` false), e.g. "the peer did not
    /// propose securepdu integrity (required)".
    fn on_refused(&self, _peer: SocketAddr, _calling: &str, _called: &str, _reason: &str) {}

    /// A C-STORE failed its integrity check (tag mismatch or missing tag): the
    /// object was not stored and the peer got [`INTEGRITY_CHECK_FAILED`].
    /// `detail` is "tag mismatch" or "tag missing".
    fn on_integrity_failure(&self, _peer: SocketAddr, _sop_instance_uid: &str, _detail: &str) {}

    /// Verifies the user identity a peer sent (PS3.7 D.3.3.7). `None` (the
    /// default): not checked, and the association goes on unless
    /// [`ScpConfig::require_user_identity`].
    fn verify_user(&self, _peer: SocketAddr, _identity: &UserIdentity) -> Option<UserVerdict> {
        None
    }

    /// Something went wrong that no peer is told about in detail: an
    /// association thread panicked (the association was aborted), stale
    /// temporary files were removed at start-up. For the log.
    fn on_error(&self, _peer: Option<SocketAddr>, _message: &str) {}
}

struct Inner {
    config: ScpConfig,
    manifest: Manifest,
    committer: commit::Committer,
    /// Makes objects durable for associations with an asynchronous window.
    durable: Workers,
    tls: Option<TlsServer>,
    handler: Arc<dyn StoreHandler>,
    wake_addr: SocketAddr,
    shutdown: AtomicBool,
    /// After a shutdown: when associations still transferring are aborted.
    abort_at: Mutex<Option<Instant>>,
    active: AtomicUsize,
    /// Associations being served per peer address.
    per_peer: Mutex<HashMap<IpAddr, usize>>,
    /// Connections over a limit, waiting for their A-ASSOCIATE-RJ; `None`
    /// once the server stopped.
    rejects: Mutex<Option<SyncSender<Refused>>>,
    /// Where rejectors take those connections from.
    reject_queue: Mutex<Option<Arc<Mutex<Receiver<Refused>>>>>,
    /// Rejectors running, and those of them idle.
    rejectors: AtomicUsize,
    idle_rejectors: AtomicUsize,
    panics: AtomicUsize,
    serial: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Inner {
    /// Takes one of `ip`'s association slots, if the per-peer limit allows.
    fn take_peer_slot(&self, ip: IpAddr) -> bool {
        let limit = self.config.max_associations_per_peer;
        let mut per_peer = lock(&self.per_peer);
        let n = per_peer.entry(ip).or_insert(0);
        if limit > 0 && *n >= limit {
            return false;
        }
        *n += 1;
        true
    }

    fn release_peer_slot(&self, ip: IpAddr) {
        let mut per_peer = lock(&self.per_peer);
        if let Some(n) = per_peer.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_peer.remove(&ip);
            }
        }
    }

    /// Whether a shutdown's grace period is over.
    fn past_abort_deadline(&self, now: Instant) -> bool {
        self.shutdown.load(Ordering::SeqCst) && lock(&self.abort_at).is_none_or(|at| now >= at)
    }
}

/// A connection over a limit, its peer, and why it is refused.
type Refused = (TcpStream, SocketAddr, String);

/// Most threads answering connections over a limit with an A-ASSOCIATE-RJ,
/// one connection at a time each: a burst of connections costs a queue entry
/// each, not a thread each, and a few peers that stall cannot hold up the
/// answers to the others. They start as the queue needs them and stop when
/// idle for [`REJECTOR_IDLE`].
const MAX_REJECTORS: usize = 16;

/// How long an idle rejector waits for work before it stops.
const REJECTOR_IDLE: Duration = Duration::from_secs(5);

/// Connections waiting for a rejector; past this, excess connections are closed
/// without an answer.
const REJECT_QUEUE: usize = 1024;

/// How long a rejector waits for a rejected peer's A-ASSOCIATE-RQ, and then
/// for it to close: a slow peer holds a rejector no longer than this, twice.
const REJECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A storage SCP bound to a port.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Stops a [`Server`] from any thread.
#[derive(Clone)]
pub struct ShutdownHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShutdownHandle").finish_non_exhaustive()
    }
}

impl ShutdownHandle {
    /// Stops accepting and wakes [`Server::serve`], which returns once the
    /// associations in progress have ended (or after a grace period of the ACSE
    /// timeout). Associations idle between messages are aborted.
    pub fn shutdown(&self) {
        self.shutdown_within(self.inner.config.timeouts.acse);
    }

    /// Stops accepting; associations between messages are aborted at once,
    /// those in the middle of one may finish it within `grace` and are aborted
    /// after it (the peer gets no Success for an object not stored).
    /// [`Server::serve`] returns once they have all ended.
    pub fn shutdown_within(&self, grace: Duration) {
        *lock(&self.inner.abort_at) = Instant::now().checked_add(grace);
        self.inner.shutdown.store(true, Ordering::SeqCst);
        // Wake the blocking accept; the accept timeout covers a failed wake-up.
        let _ = TcpStream::connect_timeout(&self.inner.wake_addr, Duration::from_secs(1));
    }

    /// Whether shutdown was requested.
    pub fn is_shutdown(&self) -> bool {
        self.inner.shutdown.load(Ordering::SeqCst)
    }
}

impl Server {
    /// Binds `host`:`port` ("::" or "": dual-stack, falling back to 0.0.0.0; port 0
    /// picks a free port). Creates the storage directory if needed.
    pub fn bind(
        host: &str,
        port: u16,
        config: ScpConfig,
        handler: Arc<dyn StoreHandler>,
    ) -> Result<Server, NetError> {
        Self::bind_tls(host, port, config, handler, None)
    }

    /// [`Self::bind`], serving TLS when `tls` is given. Each connection's
    /// handshake runs in its association's thread, bounded by the ACSE timeout.
    pub fn bind_tls(
        host: &str,
        port: u16,
        config: ScpConfig,
        handler: Arc<dyn StoreHandler>,
        tls: Option<TlsServer>,
    ) -> Result<Server, NetError> {
        validate_ae_title(&config.ae_title, "AE title")?;
        if config.max_associations == 0 {
            return Err(NetError::InvalidArgument(
                "max_associations must be at least 1".into(),
            ));
        }
        std::fs::create_dir_all(&config.storage_dir)?;
        if !config.storage_dir.is_dir() {
            return Err(NetError::InvalidArgument(format!(
                "{} is not a directory",
                config.storage_dir.display()
            )));
        }
        let listener = transport::listen(host, port)?;
        let local_addr = listener.local_addr()?;
        // accept() honours SO_RCVTIMEO on Linux: a bounded wait for the flag.
        let _ = SockRef::from(&listener).set_read_timeout(Some(POLL));
        let manifest = Manifest::new(
            &config.storage_dir,
            config.integrity.as_ref().map(|c| c.key.clone()),
        );
        let inner = Arc::new(Inner {
            committer: commit::Committer::new(config.storage_dir.clone()),
            durable: Workers::new(),
            manifest,
            config,
            tls,
            handler,
            wake_addr: transport::connectable(local_addr),
            shutdown: AtomicBool::new(false),
            abort_at: Mutex::new(None),
            active: AtomicUsize::new(0),
            per_peer: Mutex::new(HashMap::new()),
            rejects: Mutex::new(None),
            reject_queue: Mutex::new(None),
            rejectors: AtomicUsize::new(0),
            idle_rejectors: AtomicUsize::new(0),
            panics: AtomicUsize::new(0),
            serial: AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
        });
        let (tx, rx) = sync_channel(REJECT_QUEUE);
        *lock(&inner.rejects) = Some(tx);
        *lock(&inner.reject_queue) = Some(Arc::new(Mutex::new(rx)));
        // Temporary files of a server that died mid-transfer are debris: no
        // peer was told Success for them.
        match crate::store::remove_stale_partials(&inner.config.storage_dir) {
            Ok(0) => {}
            Ok(n) => inner.handler.on_error(
                None,
                &format!("removed {n} temporary file(s) left by an earlier run"),
            ),
            Err(e) => inner
                .handler
                .on_error(None, &format!("cannot look for stale temporary files: {e}")),
        }
        Ok(Server {
            listener,
            local_addr,
            inner,
        })
    }

    /// The address bound (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that stops [`Self::serve`].
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Associations being served now.
    pub fn active_associations(&self) -> usize {
        self.inner.active.load(Ordering::SeqCst)
    }

    /// Association threads that panicked (each ended its association only).
    pub fn panicked_associations(&self) -> usize {
        self.inner.panics.load(Ordering::SeqCst)
    }

    /// Accepts connections until shutdown, one thread per association. Returns
    /// after shutdown once the association threads have ended (waiting at most
    /// the ACSE timeout for them).
    pub fn serve(&self) -> Result<(), NetError> {
        transport::accept_until(
            &self.listener,
            &self.inner.shutdown,
            |stream, peer| self.dispatch(stream, peer),
            || self.reap(),
        );
        // Refuse new connections at once (they get a reset) rather than leave
        // them in the backlog, unanswered, until the process exits.
        let _ = SockRef::from(&self.listener).shutdown(std::net::Shutdown::Both);
        // Closing the queue lets the rejectors answer what is queued and stop.
        lock(&self.inner.rejects).take();
        lock(&self.inner.reject_queue).take();
        self.join_all();
        // Every association has its answers; idle workers leave now.
        self.inner.durable.close();
        Ok(())
    }

    /// Starts one more rejector, if fewer than [`MAX_REJECTORS`] run.
    fn start_rejector(&self) {
        let inner = &self.inner;
        let Some(queue) = lock(&inner.reject_queue).clone() else {
            return;
        };
        let started = inner
            .rejectors
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_REJECTORS).then_some(n + 1)
            })
            .is_ok();
        if !started {
            return;
        }
        let inner2 = Arc::clone(inner);
        let spawned = std::thread::Builder::new()
            .name("securepdu-scp-reject".into())
            .spawn(move || {
                loop {
                    inner2.idle_rejectors.fetch_add(1, Ordering::SeqCst);
                    let idle_since = Instant::now();
                    // One idle rejector at a time waits on the queue; the
                    // others wait for the lock, and their idle time counts.
                    let guard = lock(&queue);
                    let left = REJECTOR_IDLE.saturating_sub(idle_since.elapsed());
                    let next = guard.recv_timeout(left);
                    drop(guard);
                    inner2.idle_rejectors.fetch_sub(1, Ordering::SeqCst);
                    let Ok((stream, peer, why)) = next else {
                        break;
                    };
                    let _ = catch_unwind(AssertUnwindSafe(|| {
                        reject_busy(stream, peer, &inner2, &why);
                    }));
                }
                inner2.rejectors.fetch_sub(1, Ordering::SeqCst);
            });
        match spawned {
            Ok(handle) => lock(&inner.threads).push(handle),
            Err(_) => {
                inner.rejectors.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    fn reap(&self) {
        let mut threads = lock(&self.inner.threads);
        threads.retain(|t| !t.is_finished());
    }

    fn join_all(&self) {
        // Associations still running get the shutdown's grace period, and a
        // second to send their A-ABORT after it.
        let deadline = lock(&self.inner.abort_at)
            .unwrap_or_else(Instant::now)
            .checked_add(Duration::from_secs(1));
        loop {
            self.reap();
            if lock(&self.inner.threads).is_empty() {
                return;
            }
            if matches!(deadline, Some(d) if Instant::now() >= d) {
                // Stragglers end by their own timeouts; they are detached.
                lock(&self.inner.threads).clear();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn dispatch(&self, stream: TcpStream, peer: SocketAddr) {
        transport::tune(&stream);
        let inner = Arc::clone(&self.inner);
        let n = inner.serial.fetch_add(1, Ordering::Relaxed);
        let limit = inner.config.max_associations;
        let busy = inner
            .active
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |a| {
                (a < limit).then_some(a + 1)
            })
            .is_err();
        let refusal = if busy {
            Some(format!("too many associations at once (limit {limit})"))
        } else if !inner.take_peer_slot(peer.ip()) {
            inner.active.fetch_sub(1, Ordering::SeqCst);
            Some(format!(
                "too many associations from {} at once (limit {})",
                peer.ip(),
                inner.config.max_associations_per_peer
            ))
        } else {
            None
        };
        if let Some(why) = refusal {
            // A full queue, or a stopped server: close without an answer.
            let queued = lock(&inner.rejects)
                .as_ref()
                .is_some_and(|tx| tx.try_send((stream, peer, why)).is_ok());
            if queued && inner.idle_rejectors.load(Ordering::SeqCst) == 0 {
                self.start_rejector();
            }
            return;
        }
        let inner2 = Arc::clone(&inner);
        let spawned = std::thread::Builder::new()
            .name(format!("securepdu-scp-{n}"))
            .spawn(move || {
                let result =
                    catch_unwind(AssertUnwindSafe(|| run_association(stream, peer, &inner2)));
                if result.is_err() {
                    inner2.panics.fetch_add(1, Ordering::SeqCst);
                }
                inner2.release_peer_slot(peer.ip());
                inner2.active.fetch_sub(1, Ordering::SeqCst);
            });
        match spawned {
            Ok(handle) => lock(&self.inner.threads).push(handle),
            Err(_) => {
                inner.release_peer_slot(peer.ip());
                inner.active.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn acceptor(config: &ScpConfig, artim: Duration) -> Association {
    Association::new(Config {
        role: Role::Acceptor,
        artim_timeout: artim,
        max_pdu_receive: config.max_pdu,
    })
}

/// Answers one association beyond a limit: A-ASSOCIATE-RJ rejected-transient,
/// service-provider (presentation), local-limit-exceeded. A slow peer gets
/// [`REJECT_TIMEOUT`] for its request and for closing after the answer.
fn reject_busy(stream: TcpStream, peer: SocketAddr, inner: &Inner, why: &str) {
    let artim = inner.config.timeouts.acse.min(REJECT_TIMEOUT);
    let _ = stream.set_write_timeout(Some(artim));
    let Some(stream) = secure(stream, peer, inner, artim) else {
        return;
    };
    let mut conn = Connection::new(stream, acceptor(&inner.config, artim));
    conn.set_trace(inner.config.trace.clone(), Some(peer));
    let now = Instant::now();
    if conn.association_mut().transport_accepted(now).is_err() {
        return;
    }
    let Some(rq) = conn.wait_request(POLL, &inner.shutdown) else {
        return;
    };
    let rj = AssociateRj {
        result: 2,
        source: 3,
        reason: 2,
    };
    let now = Instant::now();
    if conn.association_mut().reject(rj, now).is_ok() && conn.flush(now).is_ok() {
        let h = &inner.handler;
        h.on_association(peer, &rq.calling_ae, &rq.called_ae, false);
        h.on_refused(peer, &rq.calling_ae, &rq.called_ae, why);
        conn.wait_closed();
    }
}

/// The association's stream: the TCP stream itself, or a TLS session after a
/// handshake (in this association's thread, within `timeout`). `None` after a
/// failed handshake, reported to the handler.
fn secure(stream: TcpStream, peer: SocketAddr, inner: &Inner, timeout: Duration) -> Option<Stream> {
    match &inner.tls {
        None => Some(Stream::Plain(stream)),
        Some(server) => match TlsStream::accept(stream, server, timeout) {
            Ok(tls) => Some(Stream::Tls(Box::new(tls))),
            Err(e) => {
                inner.handler.on_tls_error(peer, &e);
                None
            }
        },
    }
}

/// Association negotiation: the A-ASSOCIATE-AC and the accepted contexts, or the
/// A-ASSOCIATE-RJ.
pub fn negotiate(
    rq: &AssociateRq,
    config: &ScpConfig,
) -> Result<(AssociateAc, Vec<AcceptedContext>), AssociateRj> {
    if config.require_called_ae && rq.called_ae.trim() != config.ae_title.trim() {
        // Rejected-permanent, service-user, called-AE-title-not-recognized.
        return Err(AssociateRj {
            result: 1,
            source: 1,
            reason: 7,
        });
    }
    if rq.application_context != APPLICATION_CONTEXT_NAME {
        // Rejected-permanent, service-user, application-context-name-not-supported.
        return Err(AssociateRj {
            result: 1,
            source: 1,
            reason: 2,
        });
    }
    let mut accepted = Vec::new();
    let mut items = Vec::with_capacity(rq.presentation_contexts.len());
    for pc in &rq.presentation_contexts {
        let supported = pc.abstract_syntax == VERIFICATION_SOP_CLASS
            || is_storage_sop_class(&pc.abstract_syntax);
        let chosen = if supported {
            choose_transfer_syntax(&pc.abstract_syntax, &pc.transfer_syntaxes)
        } else {
            None
        };
        let (result, ts) = match (supported, chosen) {
            (true, Some(ts)) => {
                accepted.push(AcceptedContext {
                    id: pc.id,
                    abstract_syntax: pc.abstract_syntax.clone(),
                    transfer_syntax: ts.to_owned(),
                });
                (0, ts.to_owned())
            }
            // The transfer syntax sub-item is not significant when rejected, but
            // some peers expect one.
            (supported, _) => (
                if supported { 4 } else { 3 },
                pc.transfer_syntaxes
                    .first()
                    .cloned()
                    .unwrap_or_else(|| IMPLICIT_VR_LITTLE_ENDIAN.to_owned()),
            ),
        };
        items.push(PresentationContextAc {
            id: pc.id,
            result,
            transfer_syntax: Some(ts),
        });
    }
    // SCP/SCU role selection: the peer may be SCU of what we accepted; we take no
    // SCP role of the peer's.
    let role_selection = rq
        .user_info
        .role_selection
        .iter()
        .filter(|rs| {
            accepted
                .iter()
                .any(|c| c.abstract_syntax == rs.sop_class_uid)
        })
        .map(|rs| RoleSelection {
            sop_class_uid: rs.sop_class_uid.clone(),
            scu_role: rs.scu_role.min(1),
            scp_role: 0,
        })
        .collect();
    let ac = AssociateAc {
        protocol_version: PROTOCOL_VERSION,
        called_ae: rq.called_ae.clone(),
        calling_ae: rq.calling_ae.clone(),
        application_context: APPLICATION_CONTEXT_NAME.to_owned(),
        presentation_contexts: items,
        user_info: UserInformation {
            max_pdu_length: Some(config.max_pdu),
            implementation_class_uid: Some(IMPLEMENTATION_CLASS_UID.to_owned()),
            implementation_version_name: Some(IMPLEMENTATION_VERSION_NAME.to_owned()),
            role_selection,
            async_ops_window: async_window_answer(rq, config),
            ..UserInformation::default()
        },
    };
    Ok((ac, accepted))
}

/// Our answer to a proposed asynchronous operations window (PS3.7 D.3.3.3.2):
/// we perform up to the peer's invoked maximum, capped by our own, and invoke
/// one at a time (we invoke none). No window proposed, or ours is 1: no item,
/// which means synchronous operation.
fn async_window_answer(rq: &AssociateRq, config: &ScpConfig) -> Option<AsyncOpsWindow> {
    let proposed = rq.user_info.async_ops_window?;
    let ours = config.max_ops_performed.clamp(1, MAX_OPS_PERFORMED);
    // 0 proposed means unlimited.
    let performed = match proposed.max_invoked {
        0 => ours,
        n => n.min(ours),
    };
    (performed > 1).then_some(AsyncOpsWindow {
        max_invoked: 1,
        max_performed: performed,
    })
}

/// Integrity protection agreed for an association.
#[derive(Debug)]
struct ScpIntegrity {
    context_id: u8,
    key_id: String,
    session: SessionKey,
}

/// What integrity negotiation decided.
#[derive(Debug)]
enum IntegrityDecision {
    /// Off (no key, or policy off): the integrity context stays rejected.
    Off,
    /// Not in force (not proposed, unknown key id, ...), which the policy allows.
    Declined,
    /// In force.
    Accepted(ScpIntegrity),
    /// Required but impossible: reject the association; why.
    Refused(String),
}

/// Integrity negotiation after [`negotiate`] accepted the association: on
/// success the integrity context is accepted in `ac` and the answer item added.
/// `tls_exporter` is empty without TLS.
fn negotiate_integrity(
    rq: &AssociateRq,
    config: &ScpConfig,
    ac: &mut AssociateAc,
    tls_exporter: &[u8],
) -> IntegrityDecision {
    let Some(ic) = config.integrity.as_ref().filter(|c| c.enabled()) else {
        return IntegrityDecision::Off;
    };
    let proposed = rq
        .presentation_contexts
        .iter()
        .find(|pc| pc.abstract_syntax == INTEGRITY_SOP_CLASS);
    let item = rq
        .user_info
        .sop_class_extended
        .iter()
        .find(|x| x.sop_class_uid == INTEGRITY_SOP_CLASS);
    let accepted = match (proposed, item) {
        (Some(pc), Some(item)) => {
            match IntegrityOffer::decode(&item.service_class_application_information) {
                Err(e) => Err(format!("its integrity offer is unusable: {e}")),
                Ok(offer) if offer.key_id != ic.key.id() => Err(format!(
                    "it uses integrity key id {:?}, which we do not hold",
                    offer.key_id
                )),
                Ok(offer) => accept_integrity(rq, ic, &offer, pc.id, ac, tls_exporter),
            }
        }
        _ => Err("the peer did not propose securepdu integrity".to_owned()),
    };
    match accepted {
        Ok(active) => IntegrityDecision::Accepted(active),
        Err(why) if ic.policy == Policy::Required => {
            IntegrityDecision::Refused(format!("{why} (integrity required)"))
        }
        Err(_) => IntegrityDecision::Declined,
    }
}

fn accept_integrity(
    rq: &AssociateRq,
    ic: &IntegrityConfig,
    offer: &IntegrityOffer,
    context_id: u8,
    ac: &mut AssociateAc,
    tls_exporter: &[u8],
) -> Result<ScpIntegrity, String> {
    let nonce = random_nonce().map_err(|e| e.to_string())?;
    let session = SessionKey::derive(
        &ic.key,
        &offer.nonce,
        &nonce,
        &rq.calling_ae,
        &rq.called_ae,
        tls_exporter,
    )
    .map_err(|e| e.to_string())?;
    let Some(pc) = ac
        .presentation_contexts
        .iter_mut()
        .find(|pc| pc.id == context_id)
    else {
        return Err("internal: the integrity context is missing from the answer".into());
    };
    pc.result = 0;
    let info = IntegrityAnswer {
        nonce,
        confirm: session.confirm(),
    }
    .encode();
    ac.user_info.sop_class_extended.push(SopClassExtended {
        sop_class_uid: INTEGRITY_SOP_CLASS.to_owned(),
        service_class_application_information: info,
    });
    Ok(ScpIntegrity {
        context_id,
        key_id: ic.key.id().to_owned(),
        session,
    })
}

/// Why `negotiate` rejected, in words.
fn reject_reason(rj: &AssociateRj, rq: &AssociateRq, config: &ScpConfig) -> String {
    match (rj.source, rj.reason) {
        (1, 7) => format!(
            "called AE title {:?} is not ours ({:?})",
            rq.called_ae.trim(),
            config.ae_title.trim()
        ),
        (1, 2) => format!(
            "application context {:?} not supported",
            rq.application_context
        ),
        _ => transport::describe_reject(rj.result, rj.source, rj.reason),
    }
}

fn run_association(stream: TcpStream, peer: SocketAddr, inner: &Arc<Inner>) {
    let config = &inner.config;
    let _ = stream.set_write_timeout(Some(config.timeouts.dimse));
    let Some(stream) = secure(stream, peer, inner, config.timeouts.acse) else {
        return;
    };
    let peer_certificate = stream.peer_certificate_info();
    let mut conn = Connection::new(stream, acceptor(config, config.timeouts.acse));
    conn.set_trace(config.trace.clone(), Some(peer));
    let now = Instant::now();
    if conn.association_mut().transport_accepted(now).is_err() {
        return;
    }
    // A panic (a bug here, or in a handler) ends this association with an
    // A-ABORT and a log line; the server and its other associations go on.
    let accepted = catch_unwind(AssertUnwindSafe(|| {
        establish(&mut conn, peer, peer_certificate.as_ref(), inner)
    }));
    let accepted = match accepted {
        Ok(Some(accepted)) => accepted,
        Ok(None) => return,
        Err(_) => return panicked(&mut conn, peer, inner),
    };
    let Accepted {
        rq,
        contexts,
        integrity,
        window,
    } = accepted;
    let peer_max = conn.association().peer_max_pdu_length().unwrap_or(16_384);
    let origin = Arc::new(Origin {
        inner: Arc::clone(inner),
        calling_ae: rq.calling_ae.trim().to_owned(),
        called_ae: rq.called_ae.trim().to_owned(),
        peer,
        peer_certificate,
    });
    // Workers wake this thread when an answer is ready.
    let pool = (window > 1).then(|| Pool::new(Arc::clone(&origin), conn.waker()));
    let mut session = Session {
        conn,
        pool,
        origin,
        contexts,
        peer_max,
        reassembler: Reassembler::new(),
        current: None,
        integrity,
        awaiting_tag: None,
        hasher: None,
        window,
    };
    if catch_unwind(AssertUnwindSafe(|| session.run())).is_err() {
        panicked(&mut session.conn, peer, inner);
    }
}

/// After a panic on an association's thread: abort it, count and report it.
fn panicked(conn: &mut Connection<Stream>, peer: SocketAddr, inner: &Inner) {
    inner.panics.fetch_add(1, Ordering::SeqCst);
    // The connection may be mid-operation; a second panic only loses the A-ABORT.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if !conn.is_closed() {
            conn.abort();
        }
    }));
    let _ = catch_unwind(AssertUnwindSafe(|| {
        inner.handler.on_error(
            Some(peer),
            "internal error (panic) on an association's thread; the association was aborted",
        );
    }));
}

/// What an accepted association goes on with.
struct Accepted {
    rq: AssociateRq,
    contexts: Vec<AcceptedContext>,
    integrity: Option<ScpIntegrity>,
    /// Operations the peer may have outstanding.
    window: usize,
}

/// Waits for the A-ASSOCIATE-RQ and answers it: admission (networks, AE
/// titles, identities), presentation contexts, integrity. `None` when the
/// association was rejected or the connection failed.
fn establish(
    conn: &mut Connection<Stream>,
    peer: SocketAddr,
    peer_certificate: Option<&PeerCertificate>,
    inner: &Inner,
) -> Option<Accepted> {
    let config = &inner.config;
    let rq = conn.wait_request(POLL, &inner.shutdown)?;
    let negotiated = access::admit(config, inner.handler.as_ref(), peer, &rq, peer_certificate)
        .and_then(|user_identity| {
            let (mut ac, contexts) = negotiate(&rq, config).map_err(|rj| {
                let why = reject_reason(&rj, &rq, config);
                (rj, why)
            })?;
            ac.user_info.user_identity_ac = user_identity;
            Ok((ac, contexts))
        });
    let negotiated = negotiated.and_then(|(mut ac, contexts)| {
        let exporter = match conn
            .stream()
            .export_keying_material(TLS_EXPORTER_LABEL, TLS_EXPORTER_LEN)
        {
            Ok(e) => Ok(e.unwrap_or_default()),
            Err(e) => Err(e.to_string()),
        };
        let decision = match exporter {
            Ok(exporter) => negotiate_integrity(&rq, config, &mut ac, &exporter),
            Err(e)
                if config
                    .integrity
                    .as_ref()
                    .is_some_and(|c| c.policy == Policy::Required) =>
            {
                IntegrityDecision::Refused(format!("TLS exporter unavailable: {e}"))
            }
            Err(_) => IntegrityDecision::Declined,
        };
        match decision {
            // Rejected-permanent, service-user, no-reason-given.
            IntegrityDecision::Refused(why) => Err((
                AssociateRj {
                    result: 1,
                    source: 1,
                    reason: 1,
                },
                why,
            )),
            IntegrityDecision::Accepted(active) => Ok((ac, contexts, Some(active))),
            IntegrityDecision::Off | IntegrityDecision::Declined => Ok((ac, contexts, None)),
        }
    });
    let now = Instant::now();
    match negotiated {
        Err((rj, why)) => {
            if conn.association_mut().reject(rj, now).is_ok() && conn.flush(now).is_ok() {
                let h = &inner.handler;
                h.on_association(peer, &rq.calling_ae, &rq.called_ae, false);
                h.on_refused(peer, &rq.calling_ae, &rq.called_ae, &why);
                conn.wait_closed();
            }
            None
        }
        Ok((ac, contexts, integrity)) => {
            let window = ac
                .user_info
                .async_ops_window
                .map_or(1, |w| usize::from(w.max_performed.max(1)));
            if conn.association_mut().accept(ac, now).is_err() || conn.flush(now).is_err() {
                conn.abort();
                return None;
            }
            inner
                .handler
                .on_association(peer, &rq.calling_ae, &rq.called_ae, true);
            Some(Accepted {
                rq,
                contexts,
                integrity,
                window,
            })
        }
    }
}

/// The message being received.
// At most two live per association, and Store is the common case: boxing it
// would only add an allocation per C-STORE.
#[allow(clippy::large_enum_variant)]
enum Incoming {
    Store {
        rq: CStoreRq,
        transfer_syntax: String,
        /// `None` once refused or failed.
        writer: Option<PartialObject>,
        /// The status to answer instead of storing.
        failure: Option<(u16, String)>,
    },
    /// A request we do not handle, whose data set is being discarded.
    Other { response: Option<Message> },
}

struct Session {
    conn: Connection<Stream>,
    origin: Arc<Origin>,
    contexts: Vec<AcceptedContext>,
    peer_max: u32,
    reassembler: Reassembler,
    current: Option<(u8, Incoming)>,
    integrity: Option<ScpIntegrity>,
    /// A C-STORE whose data set is complete, waiting for its tag PDV.
    awaiting_tag: Option<(u8, Incoming)>,
    /// Hashes the object being written (file SHA-256 and, with integrity in
    /// force, its tag) off this thread; started at the first C-STORE.
    hasher: Option<Hasher>,
    /// Operations the peer may have outstanding (1: synchronous).
    window: usize,
    /// Makes objects durable off this thread when `window` > 1.
    pool: Option<Pool>,
}

impl Session {
    fn run(&mut self) {
        let timeouts = self.origin.inner.config.timeouts;
        let mut last_rx = Instant::now();
        loop {
            if self.answer_ready().is_err() {
                self.conn.abort();
                return;
            }
            let now = Instant::now();
            let between_messages = self.reassembler.is_idle()
                && self.current.is_none()
                && self.awaiting_tag.is_none()
                && self.outstanding() == 0;
            let limit = if between_messages {
                timeouts.idle
            } else {
                timeouts.dimse
            };
            let deadline = last_rx.checked_add(limit);
            if matches!(deadline, Some(d) if now >= d) {
                if self.awaiting_tag.is_some() {
                    // The sender's fault: answer the C-STORE, keep the association.
                    if self.tag_missing().is_err() {
                        self.conn.abort();
                        return;
                    }
                    last_rx = Instant::now();
                    continue;
                }
                self.conn.abort();
                return;
            }
            // After a shutdown, a message in progress may finish within the
            // grace period; then the association ends.
            let inner = &self.origin.inner;
            if inner.shutdown.load(Ordering::SeqCst)
                && (between_messages || inner.past_abort_deadline(now))
            {
                self.conn.abort();
                return;
            }
            // With answers outstanding and no waker, look at the pool often:
            // the peer may be waiting for one before it sends anything more.
            let poll = if self.outstanding() > 0 && !self.pool.as_ref().is_some_and(Pool::wakes) {
                ANSWER_POLL
            } else {
                POLL
            };
            let slice = match (deadline, now.checked_add(poll)) {
                (Some(d), Some(p)) => Some(d.min(p)),
                (d, p) => d.or(p),
            };
            let ind = match self.conn.wait_indication(slice) {
                Ok(None) => continue,
                Ok(Some(ind)) => ind,
                Err(_) => return,
            };
            last_rx = Instant::now();
            let handled = match ind {
                Indication::PData(pdata) => self.on_pdata(pdata),
                Indication::ReleaseRequest => {
                    // A message cut short by the release is dropped (its
                    // temporary file with it).
                    self.current = None;
                    self.awaiting_tag = None;
                    // Objects received whole are answered before the release.
                    if self.answer_all().is_err() {
                        self.conn.abort();
                        return;
                    }
                    let now = Instant::now();
                    if self.conn.association_mut().respond_release(now).is_ok()
                        && self.conn.flush(now).is_ok()
                    {
                        self.conn.wait_closed();
                    }
                    return;
                }
                Indication::Aborted { .. }
                | Indication::ProviderAborted { .. }
                | Indication::Closed => return,
                _ => Ok(()),
            };
            match handled {
                Ok(()) => {}
                // The peer's P-DATA broke the rules (a context not accepted,
                // fragments out of sequence, a malformed tag): an invalid PDU.
                Err(e @ (NetError::Protocol(_) | NetError::Dimse(_))) => {
                    self.conn.abort_invalid(e.to_string());
                    return;
                }
                Err(_) => {
                    self.conn.abort();
                    return;
                }
            }
        }
    }

    /// Handles the PDVs of one P-DATA-TF. An error means: abort the association.
    fn on_pdata(&mut self, pdata: PData) -> Result<(), NetError> {
        let mut events = Vec::new();
        for pdv in pdata.pdvs {
            // Integrity PDVs never reach the DIMSE reassembler.
            if let Some(integrity) = &self.integrity {
                if pdv.context_id == integrity.context_id {
                    self.on_tag_pdv(&pdv)?;
                    continue;
                }
            }
            if self.awaiting_tag.is_some() {
                self.tag_missing()?;
            }
            events.clear();
            self.reassembler.push_pdv(pdv, &mut events)?;
            for event in events.drain(..) {
                match event {
                    Event::Command {
                        message,
                        context_id,
                    } => self.on_command(message, context_id)?,
                    Event::DatasetFragment { data, .. } => self.on_fragment(data),
                    Event::DatasetComplete { .. } => self.on_complete()?,
                }
            }
        }
        Ok(())
    }

    fn context(&self, id: u8) -> Result<&AcceptedContext, NetError> {
        self.contexts.iter().find(|c| c.id == id).ok_or_else(|| {
            NetError::Protocol(format!(
                "message on presentation context {id}, which was not accepted"
            ))
        })
    }

    fn on_command(&mut self, message: Message, context_id: u8) -> Result<(), NetError> {
        let ctx = self.context(context_id)?.clone();
        match message {
            Message::CEchoRq(rq) => {
                let rsp = Message::CEchoRsp(CEchoRsp::to_request(&rq, status::SUCCESS));
                self.conn.send_command(context_id, &rsp, self.peer_max)
            }
            Message::CStoreRq(rq) => {
                let incoming = self.start_store(rq, &ctx);
                self.current = Some((context_id, incoming));
                Ok(())
            }
            other => {
                if dimse::command_field::is_response(other.command_field()) {
                    // Nothing was asked of the peer; ignore (discarding any data set).
                    if other.has_dataset() {
                        self.current = Some((context_id, Incoming::Other { response: None }));
                    }
                    return Ok(());
                }
                let response = other.unrecognized_operation_response();
                if other.has_dataset() {
                    self.current = Some((context_id, Incoming::Other { response }));
                    Ok(())
                } else if let Some(rsp) = response {
                    self.conn.send_command(context_id, &rsp, self.peer_max)
                } else {
                    Ok(())
                }
            }
        }
    }

    fn start_store(&mut self, rq: CStoreRq, ctx: &AcceptedContext) -> Incoming {
        let sop_class = &rq.affected_sop_class_uid;
        let failure = if !is_storage_sop_class(sop_class) {
            Some((
                status::SOP_CLASS_NOT_SUPPORTED,
                format!("{sop_class} is not a storage SOP class"),
            ))
        } else if *sop_class != ctx.abstract_syntax {
            Some((
                status::SOP_CLASS_NOT_SUPPORTED,
                format!("SOP class differs from context {}", ctx.id),
            ))
        } else if let Err(e) = validate_uid(&rq.affected_sop_instance_uid) {
            Some((
                INVALID_SOP_INSTANCE_UID,
                format!("invalid SOP Instance UID: {}", e.reason),
            ))
        } else {
            None
        };
        let transfer_syntax = ctx.transfer_syntax.clone();
        let failure = failure.or_else(|| self.space_left(0).err());
        if let Some(failure) = failure {
            return Incoming::Store {
                rq,
                transfer_syntax,
                writer: None,
                failure: Some(failure),
            };
        }
        let mut meta = FileMeta::new(
            sop_class.clone(),
            rq.affected_sop_instance_uid.clone(),
            transfer_syntax.clone(),
        );
        meta.source_application_entity_title = Some(self.origin.calling_ae.clone());
        let dir = &self.origin.inner.config.storage_dir;
        // Without integrity there is no tag to compute, and the writer hashes
        // the file for the manifest on its way to disk: no hashing worker, and
        // the receive buffer is free again as soon as a fragment is copied.
        let created = if self.integrity.is_none() {
            PartialObject::create(dir, &meta).map(|w| (w, None))
        } else {
            PartialObject::create_unhashed(dir, &meta).map(|(w, h)| (w, Some(h)))
        };
        match created {
            Ok((writer, None)) => Incoming::Store {
                rq,
                transfer_syntax,
                writer: Some(writer),
                failure: None,
            },
            Ok((writer, Some(header))) => {
                let tagger = self.integrity.as_ref().map(|i| {
                    i.session.tagger(
                        rq.message_id,
                        &rq.affected_sop_class_uid,
                        &rq.affected_sop_instance_uid,
                        &transfer_syntax,
                    )
                });
                let window = self.window;
                let hasher = self.hasher.get_or_insert_with(|| {
                    let name = format!("securepdu-scp-hash-{}", self.origin.peer.port());
                    // With a window, the durability worker waits for the
                    // digests, so this thread need not hash even small objects.
                    if window > 1 {
                        Hasher::eager(&name)
                    } else {
                        Hasher::new(&name)
                    }
                });
                // The file SHA-256 covers the header and the data set, in file
                // order; the tag covers the data set only.
                hasher.begin(true, tagger);
                match hasher.file(header) {
                    Ok(()) => Incoming::Store {
                        rq,
                        transfer_syntax,
                        writer: Some(writer),
                        failure: None,
                    },
                    Err(e) => Incoming::Store {
                        rq,
                        transfer_syntax,
                        writer: None,
                        failure: Some((status::OUT_OF_RESOURCES, format!("cannot store: {e}"))),
                    },
                }
            }
            Err(e) => Incoming::Store {
                rq,
                transfer_syntax,
                writer: None,
                failure: Some((status::OUT_OF_RESOURCES, format!("cannot create file: {e}"))),
            },
        }
    }

    fn on_fragment(&mut self, data: Bytes) {
        if let Some((
            _,
            Incoming::Store {
                writer, failure, ..
            },
        )) = &mut self.current
        {
            if let Some(w) = writer {
                let (before, after) = (w.len(), w.len().saturating_add(data.len() as u64));
                let config = &self.origin.inner.config;
                let over = if config.max_object_size > 0 && after > config.max_object_size {
                    Err((
                        status::OUT_OF_RESOURCES,
                        format!(
                            "object larger than {} bytes (limit)",
                            config.max_object_size
                        ),
                    ))
                } else if before / SPACE_CHECK_EVERY != after / SPACE_CHECK_EVERY {
                    // A long object may fill the volume while it arrives.
                    space_left(config, SPACE_CHECK_EVERY)
                } else {
                    Ok(())
                };
                // The digests are computed over the bytes as they are written:
                // the worker gets the same buffer, not a copy or a re-read.
                let written = over.and_then(|()| {
                    w.write(&data)
                        .map_err(|e| (status::OUT_OF_RESOURCES, format!("cannot write: {e}")))
                        .and_then(|()| match (&self.integrity, &mut self.hasher) {
                            (None, _) => Ok(()), // the writer hashes
                            (Some(_), Some(h)) => h.data(data).map_err(|e| {
                                (status::OUT_OF_RESOURCES, format!("cannot store: {e}"))
                            }),
                            (Some(_), None) => {
                                Err((status::OUT_OF_RESOURCES, "cannot store: no hasher".into()))
                            }
                        })
                });
                if let Err(why) = written {
                    // Dropping the writer removes the temporary file; the rest
                    // of the data set is read and discarded.
                    *writer = None;
                    *failure = Some(why);
                }
            }
        }
    }

    /// Whether the storage volume keeps its reserve with `more` bytes written.
    fn space_left(&self, more: u64) -> Result<(), (u16, String)> {
        space_left(&self.origin.inner.config, more)
    }

    /// Ends the object being written: its digests, perhaps still being
    /// computed by the hashing worker (none without integrity: the writer
    /// has the file's SHA-256).
    fn digests(&mut self) -> PendingDigests {
        match (&self.integrity, &mut self.hasher) {
            (None, _) => PendingDigests::Ready(Digests::default()),
            (Some(_), Some(h)) => h.finish_later(),
            (Some(_), None) => PendingDigests::Gone,
        }
    }

    fn on_complete(&mut self) -> Result<(), NetError> {
        let Some((context_id, incoming)) = self.current.take() else {
            return Ok(());
        };
        match incoming {
            Incoming::Other { response } => match response {
                Some(rsp) => self.conn.send_command(context_id, &rsp, self.peer_max),
                None => Ok(()),
            },
            // With integrity in force every C-STORE data set is followed by its
            // tag, even one we refuse: answer once the tag is in.
            store @ Incoming::Store { .. } if self.integrity.is_some() => {
                self.awaiting_tag = Some((context_id, store));
                Ok(())
            }
            Incoming::Store {
                rq,
                transfer_syntax,
                writer,
                failure,
                ..
            } => {
                let (status, comment) = match (writer, failure) {
                    (_, Some(failure)) => (failure.0, Some(failure.1)),
                    (None, None) => (status::OUT_OF_RESOURCES, None),
                    (Some(writer), None) => {
                        let digests = self.digests();
                        return self.store(Job {
                            context_id,
                            rq,
                            transfer_syntax,
                            writer,
                            digests,
                            tag: None,
                        });
                    }
                };
                self.respond_store(context_id, &rq, status, comment)
            }
        }
    }

    fn respond_store(
        &mut self,
        context_id: u8,
        rq: &CStoreRq,
        status: u16,
        comment: Option<String>,
    ) -> Result<(), NetError> {
        let mut rsp = CStoreRsp::to_request(rq, status);
        rsp.error_comment = comment.map(|c| truncate(&c, MAX_ERROR_COMMENT));
        self.conn
            .send_command(context_id, &Message::CStoreRsp(rsp), self.peer_max)
    }

    /// The tag PDV of the C-STORE awaiting it: compare, then store or refuse.
    /// An error (no C-STORE awaiting, malformed, another message's) aborts.
    fn on_tag_pdv(&mut self, pdv: &Pdv) -> Result<(), NetError> {
        let Some((context_id, incoming)) = self.awaiting_tag.take() else {
            return Err(NetError::Protocol(
                "integrity tag received while no C-STORE awaits one".into(),
            ));
        };
        let Incoming::Store {
            rq,
            transfer_syntax,
            writer,
            failure,
        } = incoming
        else {
            return Err(NetError::Protocol(
                "integrity tag received for a message other than a C-STORE".into(),
            ));
        };
        if !pdv.is_command || !pdv.is_last {
            return Err(NetError::Protocol(
                "integrity tag PDV without its command and last bits".into(),
            ));
        }
        let (message_id, tag) = decode_tag_pdv(&pdv.data)?;
        if message_id != rq.message_id {
            return Err(NetError::Protocol(format!(
                "integrity tag for message {message_id} while message {} awaits one",
                rq.message_id
            )));
        }
        let (status, comment) = match (writer, failure) {
            (_, Some(failure)) => (failure.0, Some(failure.1)),
            (Some(writer), None) => {
                // Checked against ours before the file is made durable.
                let key_id = self
                    .integrity
                    .as_ref()
                    .map(|i| i.key_id.clone())
                    .unwrap_or_default();
                let digests = self.digests();
                return self.store(Job {
                    context_id,
                    rq,
                    transfer_syntax,
                    writer,
                    digests,
                    tag: Some((key_id, tag)),
                });
            }
            (None, None) => (status::OUT_OF_RESOURCES, None),
        };
        self.respond_store(context_id, &rq, status, comment)
    }

    /// The C-STORE awaiting its tag gets none (another message began, or the
    /// DIMSE timeout passed): refuse it.
    fn tag_missing(&mut self) -> Result<(), NetError> {
        let Some((context_id, incoming)) = self.awaiting_tag.take() else {
            return Ok(());
        };
        let Incoming::Store {
            rq,
            writer,
            failure,
            ..
        } = incoming
        else {
            return Ok(());
        };
        drop(writer);
        let (status, comment) = match failure {
            Some(f) => (f.0, Some(f.1)),
            None => self.integrity_failed(&rq, "tag missing"),
        };
        self.respond_store(context_id, &rq, status, comment)
    }

    fn integrity_failed(&self, rq: &CStoreRq, detail: &str) -> (u16, Option<String>) {
        self.origin.integrity_failed(rq, detail)
    }

    /// Makes a received object durable and answers it: here and now with a
    /// synchronous peer, else on the pool (first waiting for an answer while
    /// the peer has its whole window outstanding).
    fn store(&mut self, job: Job) -> Result<(), NetError> {
        let dimse = self.origin.inner.config.timeouts.dimse;
        let window = self.window;
        while let Some(done) = self
            .pool
            .as_mut()
            .filter(|p| p.outstanding() >= window)
            .and_then(|p| p.wait(dimse))
        {
            self.answer(done)?;
        }
        let job = match &mut self.pool {
            Some(pool) => match pool.submit(job) {
                None => return Ok(()),
                // The workers are gone: store here from now on.
                Some(job) => job,
            },
            None => job,
        };
        let done = self.origin.finish(job);
        self.answer(done)
    }

    /// Sends the C-STORE-RSP of a finished job.
    fn answer(&mut self, done: Done) -> Result<(), NetError> {
        self.respond_store(done.context_id, &done.rq, done.status, done.comment)
    }

    /// Sends the answers the pool has ready.
    fn answer_ready(&mut self) -> Result<(), NetError> {
        let ready = self.pool.as_mut().map(Pool::ready).unwrap_or_default();
        ready.into_iter().try_for_each(|done| self.answer(done))
    }

    /// Waits for every outstanding answer and sends it (before a release).
    fn answer_all(&mut self) -> Result<(), NetError> {
        let dimse = self.origin.inner.config.timeouts.dimse;
        while let Some(done) = self
            .pool
            .as_mut()
            .filter(|p| p.outstanding() > 0)
            .and_then(|p| p.wait(dimse))
        {
            self.answer(done)?;
        }
        Ok(())
    }

    fn outstanding(&self) -> usize {
        self.pool.as_ref().map_or(0, Pool::outstanding)
    }
}

/// At most `max` bytes of `s`, cut on a character boundary.
fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::PresentationContextRq;

    fn rq(called: &str, pcs: Vec<(u8, &str, Vec<&str>)>) -> AssociateRq {
        AssociateRq {
            protocol_version: 1,
            called_ae: called.into(),
            calling_ae: "SCU".into(),
            application_context: APPLICATION_CONTEXT_NAME.into(),
            presentation_contexts: pcs
                .into_iter()
                .map(|(id, a, ts)| PresentationContextRq {
                    id,
                    abstract_syntax: a.into(),
                    transfer_syntaxes: ts.into_iter().map(String::from).collect(),
                })
                .collect(),
            user_info: UserInformation::default(),
        }
    }

    #[test]
    fn negotiation() {
        let config = ScpConfig {
            ae_title: "STORE".into(),
            require_called_ae: true,
            ..ScpConfig::default()
        };
        let ct = "1.2.840.10008.5.1.4.1.1.2";
        let r = rq(
            "STORE",
            vec![
                (1, VERIFICATION_SOP_CLASS, vec!["1.2.840.10008.1.2"]),
                (3, ct, vec!["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"]),
                (5, "1.2.3.4", vec!["1.2.840.10008.1.2"]),
                (7, ct, vec!["9.9"]),
            ],
        );
        let (ac, accepted) = negotiate(&r, &config).unwrap();
        let results: Vec<u8> = ac.presentation_contexts.iter().map(|p| p.result).collect();
        assert_eq!(results, vec![0, 0, 3, 4]);
        assert_eq!(accepted.len(), 2);
        // The proposer's first supported syntax wins.
        assert_eq!(accepted[1].transfer_syntax, "1.2.840.10008.1.2");

        let wrong = rq("OTHER", vec![]);
        let rj = negotiate(&wrong, &config).unwrap_err();
        assert_eq!((rj.result, rj.source, rj.reason), (1, 1, 7));
        let mut bad_ctx = rq("STORE", vec![]);
        bad_ctx.application_context = "1.2.3".into();
        let rj = negotiate(&bad_ctx, &config).unwrap_err();
        assert_eq!((rj.result, rj.source, rj.reason), (1, 1, 2));
    }

    #[test]
    fn certificate_identity_binds_calling_ae_titles() {
        let cert = |subject: &str| PeerCertificate {
            der: Vec::new(),
            subject: Some(subject.to_owned()),
        };
        let mut config = ScpConfig::default();
        assert!(
            identity_allows(&config, None, "ANY"),
            "no binding: everyone"
        );
        config
            .allowed_calling_aes
            .insert("MODALITY1".into(), vec!["CT1".into(), "CT1B".into()]);
        let m1 = cert("O=Hospital,CN=MODALITY1");
        assert_eq!(common_name("O=Hospital,CN=MODALITY1"), Some("MODALITY1"));
        assert!(identity_allows(&config, Some(&m1), "CT1B"));
        assert!(!identity_allows(&config, Some(&m1), "MR2"));
        assert!(!identity_allows(&config, Some(&cert("CN=OTHER")), "CT1"));
        assert!(
            !identity_allows(&config, None, "CT1"),
            "binding needs a certificate"
        );
    }

    #[test]
    fn integrity_negotiation() {
        use crate::integrity::{IntegrityKey, NONCE_LEN};
        let key = IntegrityKey::new("k", &[1; 32]).unwrap();
        let ct = "1.2.840.10008.5.1.4.1.1.2";
        let mut r = rq(
            "STORE",
            vec![
                (1, ct, vec!["1.2.840.10008.1.2"]),
                (3, INTEGRITY_SOP_CLASS, vec!["1.2.840.10008.1.2"]),
            ],
        );
        let offer = |id: &str| SopClassExtended {
            sop_class_uid: INTEGRITY_SOP_CLASS.into(),
            service_class_application_information: IntegrityOffer {
                key_id: id.into(),
                nonce: [7; NONCE_LEN],
            }
            .encode()
            .unwrap(),
        };
        r.user_info.sop_class_extended = vec![offer("k")];
        let mut config = ScpConfig::default();
        // No key: the context stays rejected like at any standard peer.
        let (mut ac, _) = negotiate(&r, &config).unwrap();
        assert_eq!(ac.presentation_contexts[1].result, 3);
        assert!(matches!(
            negotiate_integrity(&r, &config, &mut ac, b""),
            IntegrityDecision::Off
        ));

        config.integrity = Some(IntegrityConfig::new(key.clone(), Policy::Required));
        let (mut ac, _) = negotiate(&r, &config).unwrap();
        let IntegrityDecision::Accepted(active) = negotiate_integrity(&r, &config, &mut ac, b"")
        else {
            panic!("not accepted");
        };
        assert_eq!(active.context_id, 3);
        assert_eq!(ac.presentation_contexts[1].result, 0);
        let answer = IntegrityAnswer::decode(
            &ac.user_info.sop_class_extended[0].service_class_application_information,
        )
        .unwrap();
        let scu_side =
            SessionKey::derive(&key, &[7; NONCE_LEN], &answer.nonce, "SCU", "STORE", b"").unwrap();
        assert_eq!(scu_side.confirm(), answer.confirm);

        r.user_info.sop_class_extended = vec![offer("other")];
        let (mut ac, _) = negotiate(&r, &config).unwrap();
        match negotiate_integrity(&r, &config, &mut ac, b"") {
            IntegrityDecision::Refused(why) => assert!(why.contains("\"other\""), "{why}"),
            other => panic!("{other:?}"),
        }
        config.integrity = Some(IntegrityConfig::new(key, Policy::Opportunistic));
        let (mut ac, _) = negotiate(&r, &config).unwrap();
        assert!(matches!(
            negotiate_integrity(&r, &config, &mut ac, b""),
            IntegrityDecision::Declined
        ));
        assert_eq!(ac.presentation_contexts[1].result, 3);
        assert!(ac.user_info.sop_class_extended.is_empty());
    }

    #[test]
    fn truncation() {
        assert_eq!(truncate("abc", 2), "ab");
        assert_eq!(truncate("é", 1), "");
        assert_eq!(truncate("abc", 64), "abc");
    }
}
