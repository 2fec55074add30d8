//! A DICOM-aware peer security gateway: it relays associations, not bytes.
//!
//! For each inbound association (plain or TLS, one thread each) the gateway
//! reads the A-ASSOCIATE-RQ, picks a [`Route`] by the called AE title, applies
//! the route's policy ([`policy::admit`]), opens the onward association (plain
//! or TLS, IPv4 or IPv6) proposing the same presentation contexts (plus
//! securepdu's integrity offer when the route has a key), and passes the
//! onward A-ASSOCIATE-AC or -RJ back. It then relays DIMSE messages both ways
//! PDV by PDV, re-fragmenting to each side's maximum PDU length, never holding
//! a whole data set. With integrity in force onward, each C-STORE data set is
//! tagged as it streams through and the tag PDV follows it. Responses from the
//! final receiver are passed back byte for byte, so the sender only ever sees
//! the receiver's own Success. A-RELEASE and A-ABORT propagate; if either side
//! is lost the other is aborted.
//!
//! Refusals (PS3.8 Table 9-21): no route for the called AE title 1/1/7;
//! calling AE title not allowed 1/1/3; address or client certificate not
//! allowed 1/1/1; onward peer unreachable 2/1/1 ([`policy::onward_unavailable`]
//! says why that one); the onward peer's own A-ASSOCIATE-RJ is passed back as
//! it came.

mod policy;
mod relay;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::SockRef;

use crate::conn::{TraceHook, DEFAULT_MAX_PDU};
use crate::pdu::AssociateRj;
use crate::tls::{TlsError, TlsServer};
use crate::transport::{self, NetError, Timeouts};

pub use policy::{admit, onward_unavailable, select_route, Refusal, Route};

/// How often blocked threads look at the shutdown flag.
const POLL: Duration = Duration::from_millis(250);

/// How the gateway behaves.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Routes, looked up by called AE title (see [`select_route`]).
    pub routes: Vec<Route>,
    /// Largest P-DATA-TF we accept, advertised on both sides.
    pub max_pdu: u32,
    /// Timeouts: connect and ACSE for the onward association, DIMSE while a
    /// message or an answer is under way, idle between messages.
    pub timeouts: Timeouts,
    /// Most associations relayed at once; one more is rejected transient
    /// (2/3/2, local limit exceeded).
    pub max_associations: usize,
    /// Called with a summary of every PDU on both sides (`None`: no trace).
    pub trace: Option<TraceHook>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            routes: Vec::new(),
            max_pdu: DEFAULT_MAX_PDU,
            timeouts: Timeouts::default(),
            max_associations: 64,
            trace: None,
        }
    }
}

/// How a relayed association ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Released normally on both sides.
    Released,
    /// Refused by the gateway (route or policy).
    Refused(Refusal),
    /// The onward peer could not be reached (or its TLS handshake failed):
    /// the sender got 2/1/1.
    OnwardUnavailable(String),
    /// The onward peer rejected the association; its A-ASSOCIATE-RJ was
    /// passed back.
    OnwardRejected(AssociateRj),
    /// Aborted (both sides), and why.
    Aborted(String),
}

impl Outcome {
    /// Whether this counts as a failure.
    pub fn is_failure(&self) -> bool {
        !matches!(self, Self::Released)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Released => f.write_str("released"),
            Self::Refused(r) => write!(f, "refused: {r}"),
            Self::OnwardUnavailable(why) => {
                write!(f, "onward peer unavailable: {why} (A-ASSOCIATE-RJ 2/1/1)")
            }
            Self::OnwardRejected(rj) => write!(
                f,
                "rejected by the onward peer: {}",
                transport::describe_reject(rj.result, rj.source, rj.reason)
            ),
            Self::Aborted(why) => write!(f, "aborted: {why}"),
        }
    }
}

/// One relayed (or refused) association, for the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociationRecord {
    /// The inbound peer.
    pub peer: SocketAddr,
    /// Subject of its verified client certificate, over TLS.
    pub peer_subject: Option<String>,
    /// Calling AE title.
    pub calling_ae: String,
    /// Called AE title, as the peer sent it.
    pub called_ae: String,
    /// The route's name, once one was chosen.
    pub route: Option<String>,
    /// The onward peer (`host:port`), once a route was chosen.
    pub onward: Option<String>,
    /// C-STOREs answered with Success or Warning by the final receiver.
    pub objects: u64,
    /// Data set bytes relayed (both directions).
    pub bytes: u64,
    /// C-STOREs answered with a failure status.
    pub failed_objects: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it lasted.
    pub duration: Duration,
}

impl std::fmt::Display for AssociationRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} -> {} via route {} to {}{}: {} objects, {} bytes, {} failed, {:.2} s, {}",
            self.peer,
            self.calling_ae.trim(),
            self.called_ae.trim(),
            self.route.as_deref().unwrap_or("-"),
            self.onward.as_deref().unwrap_or("-"),
            self.peer_subject
                .as_deref()
                .map(|s| format!(" (certificate {s})"))
                .unwrap_or_default(),
            self.objects,
            self.bytes,
            self.failed_objects,
            self.duration.as_secs_f64(),
            self.outcome
        )
    }
}

/// What the application hears about the gateway's associations.
pub trait GatewayHandler: Send + Sync + 'static {
    /// One call per association, when it ended (or was refused).
    fn on_association(&self, _record: &AssociationRecord) {}

    /// An inbound TLS handshake failed (the connection was closed).
    fn on_tls_error(&self, _peer: SocketAddr, _error: &TlsError) {}

    /// Something no peer is told about in detail (a panicked thread).
    fn on_error(&self, _peer: Option<SocketAddr>, _message: &str) {}
}

/// A handler that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHandler;

impl GatewayHandler for NoHandler {}

/// Counters of one route, updated as associations go.
#[derive(Debug, Default)]
struct Counters {
    associations: AtomicU64,
    objects: AtomicU64,
    bytes: AtomicU64,
    failures: AtomicU64,
}

/// A snapshot of one route's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteCounters {
    /// The route's name.
    pub route: String,
    /// Associations that chose this route (refused by its policy included).
    pub associations: u64,
    /// Objects the final receiver answered with Success or Warning.
    pub objects: u64,
    /// Data set bytes relayed, both directions.
    pub bytes: u64,
    /// Associations that did not end in a release (refused, unreachable,
    /// rejected onward, aborted) plus C-STOREs answered with a failure.
    pub failures: u64,
}

struct Inner {
    config: GatewayConfig,
    tls: Option<TlsServer>,
    handler: Arc<dyn GatewayHandler>,
    counters: Vec<Counters>,
    /// Associations refused for want of a route.
    unrouted: AtomicU64,
    wake_addr: SocketAddr,
    shutdown: AtomicBool,
    active: AtomicUsize,
    serial: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Inner {
    fn counters_of(&self, route: &str) -> Option<&Counters> {
        self.config
            .routes
            .iter()
            .position(|r| r.name == route)
            .and_then(|i| self.counters.get(i))
    }

    /// Counts a finished association and reports it.
    fn finish(&self, record: &AssociationRecord) {
        match record.route.as_deref().and_then(|r| self.counters_of(r)) {
            Some(c) => {
                c.associations.fetch_add(1, Ordering::Relaxed);
                c.objects.fetch_add(record.objects, Ordering::Relaxed);
                c.bytes.fetch_add(record.bytes, Ordering::Relaxed);
                let failed = u64::from(record.outcome.is_failure());
                c.failures.fetch_add(
                    failed.saturating_add(record.failed_objects),
                    Ordering::Relaxed,
                );
            }
            None => {
                self.unrouted.fetch_add(1, Ordering::Relaxed);
            }
        }
        let _ = catch_unwind(AssertUnwindSafe(|| self.handler.on_association(record)));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A gateway bound to its listening port.
pub struct Gateway {
    listener: TcpListener,
    local_addr: SocketAddr,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("local_addr", &self.local_addr)
            .field("routes", &self.inner.config.routes.len())
            .finish_non_exhaustive()
    }
}

/// Stops a [`Gateway`] from any thread.
#[derive(Clone)]
pub struct GatewayShutdown {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GatewayShutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayShutdown").finish_non_exhaustive()
    }
}

impl GatewayShutdown {
    /// Stops accepting and wakes [`Gateway::serve`]. Associations between
    /// messages are aborted on both sides; one in the middle of a message gets
    /// the ACSE timeout to finish it.
    pub fn shutdown(&self) {
        self.inner.shutdown.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.inner.wake_addr, Duration::from_secs(1));
    }
}

impl Gateway {
    /// Binds `host`:`port` ("::" or "": dual-stack; port 0 picks a free port).
    /// `tls`: TLS on the listening side (with client certificate verification
    /// when the server options name a CA).
    pub fn bind(
        host: &str,
        port: u16,
        config: GatewayConfig,
        handler: Arc<dyn GatewayHandler>,
        tls: Option<TlsServer>,
    ) -> Result<Self, NetError> {
        if config.routes.is_empty() {
            return Err(NetError::InvalidArgument("a gateway needs a route".into()));
        }
        if config.max_associations == 0 {
            return Err(NetError::InvalidArgument(
                "max_associations must be at least 1".into(),
            ));
        }
        for (i, r) in config.routes.iter().enumerate() {
            if let Some(ae) = r.to_called_ae.as_deref().or(r.called_ae.as_deref()) {
                crate::conn::validate_ae_title(ae, "route AE title")?;
            }
            if config.routes.iter().take(i).any(|o| o.name == r.name) {
                return Err(NetError::InvalidArgument(format!(
                    "two routes are named {:?}",
                    r.name
                )));
            }
        }
        let listener = transport::listen(host, port)?;
        let local_addr = listener.local_addr()?;
        let _ = SockRef::from(&listener).set_read_timeout(Some(POLL));
        let counters = config.routes.iter().map(|_| Counters::default()).collect();
        let inner = Arc::new(Inner {
            config,
            tls,
            handler,
            counters,
            unrouted: AtomicU64::new(0),
            wake_addr: transport::connectable(local_addr),
            shutdown: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            serial: AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
        });
        Ok(Self {
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
    pub fn shutdown_handle(&self) -> GatewayShutdown {
        GatewayShutdown {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Associations being relayed now.
    pub fn active_associations(&self) -> usize {
        self.inner.active.load(Ordering::SeqCst)
    }

    /// Each route's counters, in route order.
    pub fn counters(&self) -> Vec<RouteCounters> {
        self.inner
            .config
            .routes
            .iter()
            .zip(&self.inner.counters)
            .map(|(r, c)| RouteCounters {
                route: r.name.clone(),
                associations: c.associations.load(Ordering::Relaxed),
                objects: c.objects.load(Ordering::Relaxed),
                bytes: c.bytes.load(Ordering::Relaxed),
                failures: c.failures.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Associations refused because no route served their called AE title.
    pub fn unrouted(&self) -> u64 {
        self.inner.unrouted.load(Ordering::Relaxed)
    }

    /// Accepts connections until shutdown, one thread per association; returns
    /// once they have ended (waiting at most the ACSE timeout for them).
    pub fn serve(&self) -> Result<(), NetError> {
        transport::accept_until(
            &self.listener,
            &self.inner.shutdown,
            |stream, peer| self.dispatch(stream, peer),
            || lock(&self.inner.threads).retain(|t| !t.is_finished()),
        );
        let deadline = Instant::now()
            .checked_add(self.inner.config.timeouts.acse)
            .and_then(|d| d.checked_add(Duration::from_secs(1)));
        loop {
            lock(&self.inner.threads).retain(|t| !t.is_finished());
            if lock(&self.inner.threads).is_empty() {
                return Ok(());
            }
            if matches!(deadline, Some(d) if Instant::now() >= d) {
                lock(&self.inner.threads).clear();
                return Ok(());
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
        if busy {
            inner.active.fetch_add(1, Ordering::SeqCst);
        }
        let spawned = std::thread::Builder::new()
            .name(format!("securepdu-gw-{n}"))
            .spawn(move || {
                let result = catch_unwind(AssertUnwindSafe(|| {
                    relay::run_association(stream, peer, &inner, busy);
                }));
                if result.is_err() {
                    let _ = catch_unwind(AssertUnwindSafe(|| {
                        inner.handler.on_error(
                            Some(peer),
                            "internal error (panic) on a gateway thread; the association was dropped",
                        );
                    }));
                }
                inner.active.fetch_sub(1, Ordering::SeqCst);
            });
        match spawned {
            Ok(handle) => lock(&self.inner.threads).push(handle),
            Err(_) => {
                self.inner.active.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}
