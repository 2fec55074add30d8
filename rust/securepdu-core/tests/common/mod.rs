//! Shared by the loopback tests: a storage SCP on a free port with a
//! recording handler, SCU configurations, test data.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use securepdu_core::association::{Association, Config, Indication};
use securepdu_core::conn::Connection;
use securepdu_core::dimse::VERIFICATION_SOP_CLASS;
use securepdu_core::part10::{read_file_meta, FileMeta};
use securepdu_core::pdu::{
    AssociateRq, PresentationContextRq, UserInformation, APPLICATION_CONTEXT_NAME,
};
use securepdu_core::scp::{
    HandlerStatus, ScpConfig, Server, ShutdownHandle, StoreHandler, StoredObject, UserIdentity,
    UserVerdict,
};
use securepdu_core::scu::{ScuAssociation, ScuConfig, Timeouts};
use securepdu_core::store::{EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN};
use securepdu_core::tls::{TlsClient, TlsClientOptions, TlsError, TlsServer, TlsServerOptions};

pub const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
pub const MR: &str = "1.2.840.10008.5.1.4.1.1.4";

pub fn quick_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        acse: Duration::from_secs(5),
        dimse: Duration::from_secs(20),
        idle: Duration::from_secs(20),
    }
}

#[derive(Default)]
pub struct Recorder {
    pub stored: Mutex<Vec<StoredObject>>,
    pub associations: Mutex<Vec<(SocketAddr, String, String, bool)>>,
    pub answer: Mutex<Option<Result<Option<HandlerStatus>, String>>>,
    /// Holds up the handler for this SOP Instance UID, so its answer comes late.
    pub delay: Mutex<Option<(String, Duration)>>,
    /// What `verify_user` answers (`None`: identities are not checked).
    pub user_verdict: Mutex<Option<UserVerdict>>,
    /// The identities `verify_user` was given.
    pub identities: Mutex<Vec<UserIdentity>>,
    /// Messages given to `on_error`.
    pub errors: Mutex<Vec<String>>,
    /// Panic in the next `on_association` (once), as a bug would.
    pub panic_once: AtomicBool,
    /// TLS handshake failures reported.
    pub tls_errors: Mutex<Vec<TlsError>>,
    /// Reasons of refused associations.
    pub refused: Mutex<Vec<String>>,
    /// (SOP Instance UID, detail) of failed integrity checks.
    pub failures: Mutex<Vec<(String, String)>>,
}

impl StoreHandler for Recorder {
    fn on_stored(&self, obj: &StoredObject) -> Result<Option<HandlerStatus>, String> {
        let delay = self.delay.lock().unwrap().clone();
        if let Some((uid, pause)) = delay {
            if uid == obj.sop_instance_uid {
                std::thread::sleep(pause);
            }
        }
        self.stored.lock().unwrap().push(obj.clone());
        self.answer.lock().unwrap().clone().unwrap_or(Ok(None))
    }

    fn on_association(&self, peer: SocketAddr, calling: &str, called: &str, accepted: bool) {
        self.associations.lock().unwrap().push((
            peer,
            calling.to_owned(),
            called.to_owned(),
            accepted,
        ));
        if accepted && self.panic_once.swap(false, Ordering::SeqCst) {
            panic!("a handler bug");
        }
    }

    fn verify_user(&self, _peer: SocketAddr, identity: &UserIdentity) -> Option<UserVerdict> {
        self.identities.lock().unwrap().push(identity.clone());
        self.user_verdict.lock().unwrap().clone()
    }

    fn on_error(&self, _peer: Option<SocketAddr>, message: &str) {
        self.errors.lock().unwrap().push(message.to_owned());
    }

    fn on_tls_error(&self, _peer: SocketAddr, error: &TlsError) {
        self.tls_errors.lock().unwrap().push(error.clone());
    }

    fn on_refused(&self, _peer: SocketAddr, _calling: &str, _called: &str, reason: &str) {
        self.refused.lock().unwrap().push(reason.to_owned());
    }

    fn on_integrity_failure(&self, _peer: SocketAddr, uid: &str, detail: &str) {
        self.failures
            .lock()
            .unwrap()
            .push((uid.to_owned(), detail.to_owned()));
    }
}

/// A storage SCP on a free port, serving from its own thread into a temporary
/// directory, with a [`Recorder`]; shut down and joined when dropped.
pub struct TestServer {
    pub server: Arc<Server>,
    pub handle: ShutdownHandle,
    pub thread: Option<JoinHandle<()>>,
    pub rec: Arc<Recorder>,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub fn start(host: &str, tweak: impl FnOnce(&mut ScpConfig)) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), host, tweak)
    }

    /// [`Self::start`] storing into `dir`.
    pub fn start_in(
        dir: tempfile::TempDir,
        host: &str,
        tweak: impl FnOnce(&mut ScpConfig),
    ) -> Self {
        Self::launch(dir, host, None, tweak)
    }

    /// [`Self::start`] over TLS when `tls` is given.
    pub fn start_tls(
        host: &str,
        tls: Option<TlsServer>,
        tweak: impl FnOnce(&mut ScpConfig),
    ) -> Self {
        Self::launch(tempfile::tempdir().unwrap(), host, tls, tweak)
    }

    fn launch(
        dir: tempfile::TempDir,
        host: &str,
        tls: Option<TlsServer>,
        tweak: impl FnOnce(&mut ScpConfig),
    ) -> Self {
        let mut config = ScpConfig {
            ae_title: "STORE".into(),
            storage_dir: dir.path().to_owned(),
            timeouts: quick_timeouts(),
            ..ScpConfig::default()
        };
        tweak(&mut config);
        let rec = Arc::new(Recorder::default());
        let server = Arc::new(Server::bind_tls(host, 0, config, rec.clone(), tls).unwrap());
        let handle = server.shutdown_handle();
        let s = server.clone();
        let thread = std::thread::spawn(move || s.serve().unwrap());
        Self {
            server,
            handle,
            thread: Some(thread),
            rec,
            dir,
        }
    }

    pub fn port(&self) -> u16 {
        self.server.local_addr().port()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn wait_until_active(&self, n: usize) {
        wait_until(|| self.server.active_associations() == n);
    }

    pub fn wait_idle(&self) {
        wait_until(|| self.server.active_associations() == 0);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

/// A CA and the files of the certificates it issued, in a temporary directory
/// (made at test time: nothing is committed).
pub struct Pki {
    pub dir: tempfile::TempDir,
    ca_cert: rcgen::Certificate,
    pub ca_key: KeyPair,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = p.self_signed(&ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
        Self {
            dir,
            ca_cert,
            ca_key,
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Issues a certificate for `sans`; returns (chain file, key file).
    pub fn issue(&self, file: &str, cn: &str, sans: &[&str], expired: bool) -> (PathBuf, PathBuf) {
        let mut p =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.distinguished_name
            .push(DnType::OrganizationName, "Test Hospital");
        if expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.ca_cert, &self.ca_key).unwrap();
        let chain = self.dir.path().join(format!("{file}.pem"));
        let keyf = self.dir.path().join(format!("{file}.key"));
        std::fs::write(&chain, cert.pem()).unwrap();
        std::fs::write(&keyf, key.serialize_pem()).unwrap();
        (chain, keyf)
    }

    /// The server's certificate: localhost, 127.0.0.1 and ::1.
    pub fn server(&self) -> (PathBuf, PathBuf) {
        self.issue("server", "scp", &["localhost", "127.0.0.1", "::1"], false)
    }
}

/// The SCP side of TLS with `pki`'s server certificate, options tweaked.
pub fn server_tls(pki: &Pki, tweak: impl FnOnce(&mut TlsServerOptions)) -> TlsServer {
    let (cert, key) = pki.server();
    let mut o = TlsServerOptions::new(cert, key);
    tweak(&mut o);
    TlsServer::new(&o).unwrap()
}

/// The SCU side of TLS trusting `pki`'s CA, options tweaked.
pub fn client_tls(pki: &Pki, tweak: impl FnOnce(&mut TlsClientOptions)) -> TlsClient {
    let mut o = TlsClientOptions {
        ca_file: Some(pki.ca()),
        ..TlsClientOptions::default()
    };
    tweak(&mut o);
    TlsClient::new(&o).unwrap()
}

/// Polls `cond` for up to 5 s.
pub fn wait_until(mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "condition not reached in 5 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn scu_config(contexts: &[&str]) -> ScuConfig {
    let mut c: Vec<(String, Vec<String>)> = vec![(
        VERIFICATION_SOP_CLASS.into(),
        vec![IMPLICIT_VR_LITTLE_ENDIAN.into()],
    )];
    for a in contexts {
        c.push((
            (*a).into(),
            vec![
                EXPLICIT_VR_LITTLE_ENDIAN.into(),
                IMPLICIT_VR_LITTLE_ENDIAN.into(),
            ],
        ));
    }
    ScuConfig {
        calling_ae: "TESTSCU".into(),
        called_ae: "STORE".into(),
        contexts: c,
        timeouts: quick_timeouts(),
        ..ScuConfig::default()
    }
}

pub fn pattern(len: usize, seed: u32) -> Bytes {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// The received file's header and data set.
pub fn read_stored(path: &Path) -> (FileMeta, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let meta = read_file_meta(&bytes).unwrap();
    let data = bytes[meta.dataset_offset as usize..].to_vec();
    (meta, data)
}

pub fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != securepdu_core::integrity::MANIFEST_FILE)
        .collect();
    v.sort();
    v
}

/// A Part 10 file of `data` under `dir`, and its header.
pub fn write_part10(dir: &Path, uid: &str, data: &[u8]) -> (PathBuf, FileMeta) {
    let mut bytes = FileMeta::new(MR, uid, IMPLICIT_VR_LITTLE_ENDIAN).encode();
    bytes.extend_from_slice(data);
    let path = dir.join(format!("{uid}.in"));
    std::fs::write(&path, &bytes).unwrap();
    (path, read_file_meta(&bytes).unwrap())
}

pub fn mr_scu(server: &TestServer) -> (ScuAssociation, u8) {
    let mut config = scu_config(&[]);
    config
        .contexts
        .push((MR.into(), vec![IMPLICIT_VR_LITTLE_ENDIAN.into()]));
    let scu = ScuAssociation::connect("127.0.0.1", server.port(), config).unwrap();
    let ctx = scu
        .find_context(MR, Some(IMPLICIT_VR_LITTLE_ENDIAN))
        .unwrap()
        .id;
    (scu, ctx)
}

/// A requestor driven by hand, to stop in the middle of a message.
pub fn raw_requestor(port: u16) -> (Connection<TcpStream>, u8) {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut conn = Connection::new(stream, Association::new(Config::requestor()));
    let rq = AssociateRq {
        protocol_version: 1,
        called_ae: "STORE".into(),
        calling_ae: "RAW".into(),
        application_context: APPLICATION_CONTEXT_NAME.into(),
        presentation_contexts: vec![PresentationContextRq {
            id: 1,
            abstract_syntax: CT.into(),
            transfer_syntaxes: vec![IMPLICIT_VR_LITTLE_ENDIAN.into()],
        }],
        user_info: UserInformation::default(),
    };
    let now = Instant::now();
    conn.association_mut().request_association(rq, now).unwrap();
    conn.flush(now).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    match conn.next_indication(deadline, "AC").unwrap() {
        Indication::Accepted(_) => {}
        other => panic!("{other:?}"),
    }
    (conn, 1)
}

pub fn partials(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".partial"))
        .collect()
}
