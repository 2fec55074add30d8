//! A blocking driver of the sans-IO [`Association`] over any byte stream.
//!
//! [`Connection`] owns the stream and the state machine. It writes every
//! [`Output::Transmit`] (consecutive ones in one vectored write, so a P-DATA
//! header and its payload leave together), answers [`Output::Connect`] and
//! [`Output::CloseTransport`], reads peer bytes straight into the machine's
//! receive buffer and queues [`Indication`]s for the caller. Timeouts: each wait
//! has a deadline chosen by the caller (ACSE, DIMSE, idle), combined with the
//! machine's ARTIM deadline through the socket read timeout.
//!
//! The stream only needs [`Transport`] (`Read + Write` plus timeouts and
//! shutdown), so TLS can wrap a `TcpStream` later.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
#[cfg(unix)]
use std::os::fd::{AsFd, BorrowedFd};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};

use crate::association::{Association, Indication, Output};
use crate::codec::Reader;
use crate::dimse::{fragment_command, Message};
use crate::pdu::{pdu_name, pdu_type, AssociateAc, AssociateRq, PData, Pdu};

pub use crate::transport::{NetError, Timeouts};

/// Default maximum P-DATA-TF length securepdu advertises (256 KiB: large enough
/// for full-speed transfers, small enough for bounded buffers).
pub const DEFAULT_MAX_PDU: u32 = 262_144;

/// Smallest and largest single read into the receive buffer. The size adapts to
/// what the previous read returned, so a small PDU does not cost a large
/// zero-fill of the buffer. The largest is one default PDU: the buffer of an
/// association grows to about twice it, and each association touches that
/// much fresh memory. With 1 MiB, 64 associations storing 200 CT objects at
/// once spent 9% of all CPU time in page faults, most of them zero-filling
/// their receive buffers; 256 KiB gave +10% MB/s there (-12% SCP CPU) and +4%
/// on one association (paired runs, medians of 8).
const MIN_READ: usize = 16 * 1024;
const MAX_READ: usize = 256 << 10;

/// How long [`Connection::abort`] waits for the peer to close after an A-ABORT.
pub const ABORT_LINGER: Duration = Duration::from_millis(500);

/// Longest vectored write (IOV_MAX is 1024 on Linux; a handful is plenty).
const MAX_IOV: usize = 64;

/// A byte stream an association runs over.
pub trait Transport: Read + Write {
    /// Sets the read timeout (`None`: block). A read that times out fails with
    /// [`io::ErrorKind::WouldBlock`] or [`io::ErrorKind::TimedOut`].
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;
    /// Sets the write timeout (`None`: block).
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;
    /// Closes both directions (after the bytes written so far).
    fn shutdown(&mut self) -> io::Result<()>;
    /// Closes the write direction only (sends FIN), keeping reads possible.
    fn shutdown_write(&mut self) -> io::Result<()>;
    /// Acknowledges what was read at once instead of delaying the ACK; called
    /// after each read. A peer with Nagle's algorithm on (dcmtk's storescu by
    /// default) holds the short tail of each object until its earlier segments
    /// are acknowledged, and Linux delays ACKs by up to 40 ms on a connection
    /// that also sends (our C-STORE-RSPs): one stall per object without this.
    /// Best effort; the default does nothing.
    fn ack_now(&mut self) {}
    /// Bytes a read would return at once, when the transport can tell (plain
    /// TCP on Unix); `None` otherwise.
    fn ready_bytes(&self) -> Option<usize> {
        None
    }
    /// Waits up to `timeout` for input; `false` if none came. The read timeout
    /// cannot stand in for this on short waits: Linux rounds it up to whole
    /// timer ticks (a 1 ms timeout waited 8 ms here, at 250 Hz), and a storage
    /// SCP waiting for its durability workers' answers polls every
    /// millisecond. Built from [`Self::buffered_input`] and
    /// [`Self::socket_fd`]; without a socket to poll it cannot tell and says
    /// `true` (then the read waits, up to the read timeout).
    fn wait_readable(&mut self, timeout: Duration) -> io::Result<bool> {
        #[cfg(unix)]
        {
            let (input, _) = wait_input(self, Some(timeout), None)?;
            Ok(input)
        }
        #[cfg(not(unix))]
        {
            let _ = timeout;
            Ok(true)
        }
    }
    /// The socket underneath, for a poll that also waits for a [`Waker`];
    /// `None` (the default) when there is none to poll.
    #[cfg(unix)]
    fn socket_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    /// Input held above the socket (TLS plaintext) that a poll of the socket
    /// would miss.
    fn buffered_input(&mut self) -> bool {
        false
    }
}

/// Waits up to `timeout` (`None`: no limit) for input on `stream` or, when
/// given, for `also` to become readable: (input on the stream, `also` ready).
/// Input buffered above the socket counts at once; a stream without a socket
/// to poll says it has input (its read then waits).
#[cfg(unix)]
fn wait_input<S: Transport + ?Sized>(
    stream: &mut S,
    timeout: Option<Duration>,
    also: Option<BorrowedFd<'_>>,
) -> io::Result<(bool, bool)> {
    if stream.buffered_input() {
        return Ok((true, false));
    }
    let Some(sock) = stream.socket_fd() else {
        return Ok((true, false));
    };
    match also {
        Some(fd) => {
            let [input, ready] = poll_readable([sock, fd], timeout)?;
            Ok((input, ready))
        }
        None => {
            let [input] = poll_readable([sock], timeout)?;
            Ok((input, false))
        }
    }
}

/// Waits up to `timeout` (`None`: no limit) until any of `fds` has bytes (or
/// EOF, or an error: the read that follows says which) to read; which ones do.
/// poll(2) keeps to the timeout where a socket read timeout is rounded up to
/// timer ticks.
#[cfg(unix)]
pub(crate) fn poll_readable<const N: usize>(
    fds: [BorrowedFd<'_>; N],
    timeout: Option<Duration>,
) -> io::Result<[bool; N]> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let timeout = timeout.map(|t| Timespec {
        tv_sec: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(t.subsec_nanos()),
    });
    let mut fds = fds.map(|fd| PollFd::from_borrowed_fd(fd, PollFlags::IN));
    match poll(&mut fds, timeout.as_ref()) {
        Ok(_) | Err(rustix::io::Errno::INTR) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(fds.each_ref().map(|fd| !fd.revents().is_empty()))
}

impl Transport for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        TcpStream::shutdown(self, Shutdown::Both)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        TcpStream::shutdown(self, Shutdown::Write)
    }

    fn ack_now(&mut self) {
        quickack(self);
    }

    fn ready_bytes(&self) -> Option<usize> {
        #[cfg(unix)]
        {
            rustix::io::ioctl_fionread(self)
                .ok()
                .and_then(|n| usize::try_from(n).ok())
        }
        #[cfg(not(unix))]
        {
            None
        }
    }

    #[cfg(unix)]
    fn socket_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.as_fd())
    }
}

/// Sends any delayed ACK now and ACKs the next segments at once (TCP_QUICKACK,
/// which Linux clears again by itself; elsewhere a no-op).
pub(crate) fn quickack(stream: &TcpStream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = rustix::net::sockopt::set_tcp_quickack(stream, true);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = stream;
    }
}

/// One PDU sent or received, summarised in one line for a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PduTrace {
    /// The peer, when the connection knows it.
    pub peer: Option<SocketAddr>,
    /// Sent (true) or received (false).
    pub sent: bool,
    /// The PDU type name, e.g. `"P-DATA-TF"`.
    pub pdu: &'static str,
    /// The whole summary, e.g. `"received P-DATA-TF 262150 bytes: 1 PDV ctx 3 data last"`.
    pub line: String,
}

/// A hook called with every [`PduTrace`] of a connection. Cheap to clone;
/// two hooks are equal when they share the same function.
#[derive(Clone)]
pub struct TraceHook(Arc<dyn Fn(&PduTrace) + Send + Sync>);

impl TraceHook {
    /// Wraps a function.
    pub fn new(f: impl Fn(&PduTrace) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Calls the function.
    pub fn call(&self, trace: &PduTrace) {
        (self.0)(trace);
    }
}

impl fmt::Debug for TraceHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TraceHook(..)")
    }
}

impl PartialEq for TraceHook {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TraceHook {}

/// The trace of one connection: the hook, the peer, and how many bytes of the
/// PDU being sent are still to come (a P-DATA header and its data are queued
/// as separate buffers).
#[derive(Debug)]
struct Tracer {
    hook: TraceHook,
    peer: Option<SocketAddr>,
    tx_left: usize,
}

impl Tracer {
    fn emit(&self, sent: bool, pdu: &'static str, detail: fmt::Arguments<'_>) {
        let dir = if sent { "sent" } else { "received" };
        let line = format!("{dir} {pdu}{detail}");
        self.hook.call(&PduTrace {
            peer: self.peer,
            sent,
            pdu,
            line,
        });
    }

    /// One buffer queued for writing: summarised from our own PDU header (and,
    /// for an A-ASSOCIATE, the request or answer the machine keeps) when it
    /// starts a PDU; a continuation (P-DATA payload) only counts down.
    fn sent(&mut self, bytes: &[u8], assoc: &Association) {
        if self.tx_left > 0 {
            self.tx_left = self.tx_left.saturating_sub(bytes.len());
            return;
        }
        let mut r = Reader::new(bytes);
        let (Some(ty), Some(_), Some(len)) = (r.u8(), r.u8(), r.u32_be()) else {
            return;
        };
        let total = usize::try_from(len).unwrap_or(usize::MAX).saturating_add(6);
        self.tx_left = total.saturating_sub(bytes.len());
        let name = pdu_name(ty);
        match ty {
            pdu_type::ASSOCIATE_RQ => match assoc.associate_rq() {
                Some(rq) => self.emit(
                    true,
                    name,
                    format_args!(" {total} bytes: {}", rq_summary(rq)),
                ),
                None => self.emit(true, name, format_args!(" {total} bytes")),
            },
            pdu_type::ASSOCIATE_AC => match assoc.associate_ac() {
                Some(ac) => self.emit(
                    true,
                    name,
                    format_args!(" {total} bytes: {}", ac_summary(ac)),
                ),
                None => self.emit(true, name, format_args!(" {total} bytes")),
            },
            pdu_type::P_DATA_TF => {
                // PDV items: item length (4), context ID (1), message control header (1).
                let mut pdvs = Vec::new();
                while let (Some(item_len), Some(ctx), Some(mch)) = (r.u32_be(), r.u8(), r.u8()) {
                    pdvs.push(pdv_summary(ctx, mch & 1 != 0, mch & 2 != 0));
                    let data = usize::try_from(item_len)
                        .unwrap_or(usize::MAX)
                        .saturating_sub(2);
                    if r.skip(data).is_none() {
                        break;
                    }
                }
                self.emit(
                    true,
                    name,
                    format_args!(" {total} bytes: {}", pdvs_summary(&pdvs)),
                );
            }
            // A-ASSOCIATE-RJ: reserved (1), result (1), source (1), reason (1);
            // A-ABORT: reserved (2), source (1), reason (1).
            pdu_type::ASSOCIATE_RJ => {
                let (_, result, source, reason) = (r.u8(), r.u8(), r.u8(), r.u8());
                self.emit(
                    true,
                    name,
                    format_args!(": {}", rj_summary(result, source, reason)),
                );
            }
            pdu_type::ABORT => {
                let (_, _, source, reason) = (r.u8(), r.u8(), r.u8(), r.u8());
                self.emit(
                    true,
                    name,
                    format_args!(": {}", abort_summary(source, reason)),
                );
            }
            _ => self.emit(true, name, format_args!("")),
        }
    }

    /// An indication the machine queued: the ones carrying a peer PDU are
    /// summarised from the decoded value.
    fn received(&self, ind: &Indication, assoc: &Association) {
        match ind {
            Indication::AssociateRequest(rq) => {
                let len = encoded_len(Pdu::AssociateRq((**rq).clone()));
                self.emit(
                    false,
                    "A-ASSOCIATE-RQ",
                    format_args!(" {len} bytes: {}", rq_summary(rq)),
                );
            }
            Indication::ProviderRejected(_) => match assoc.associate_rq() {
                Some(rq) => self.emit(
                    false,
                    "A-ASSOCIATE-RQ",
                    format_args!(" (not acceptable): {}", rq_summary(rq)),
                ),
                None => self.emit(false, "A-ASSOCIATE-RQ", format_args!(" (not acceptable)")),
            },
            Indication::Accepted(ac) => {
                let len = encoded_len(Pdu::AssociateAc((**ac).clone()));
                self.emit(
                    false,
                    "A-ASSOCIATE-AC",
                    format_args!(" {len} bytes: {}", ac_summary(ac)),
                );
            }
            Indication::Rejected(rj) => self.emit(
                false,
                "A-ASSOCIATE-RJ",
                format_args!(
                    ": {}",
                    rj_summary(Some(rj.result), Some(rj.source), Some(rj.reason))
                ),
            ),
            Indication::PData(p) => {
                let pdvs: Vec<String> = p
                    .pdvs
                    .iter()
                    .map(|v| pdv_summary(v.context_id, v.is_command, v.is_last))
                    .collect();
                self.emit(
                    false,
                    "P-DATA-TF",
                    format_args!(" {} bytes: {}", p.encoded_len(), pdvs_summary(&pdvs)),
                );
            }
            Indication::ReleaseRequest => self.emit(false, "A-RELEASE-RQ", format_args!("")),
            Indication::ReleaseCollision { .. } => {
                self.emit(false, "A-RELEASE-RQ", format_args!(" (release collision)"))
            }
            Indication::ReleaseConfirm { .. } => self.emit(false, "A-RELEASE-RP", format_args!("")),
            Indication::Aborted { source, reason } => self.emit(
                false,
                "A-ABORT",
                format_args!(": {}", abort_summary(Some(*source), Some(*reason))),
            ),
            Indication::ProviderAborted { .. } | Indication::Closed => {}
        }
    }
}

/// Length of a PDU we only have decoded (an A-ASSOCIATE, once per association).
fn encoded_len(pdu: Pdu) -> String {
    pdu.encode()
        .map_or_else(|_| "?".to_owned(), |b| b.len().to_string())
}

fn rq_summary(rq: &AssociateRq) -> String {
    format!(
        "calling {} called {}, {} contexts, max PDU {}",
        rq.calling_ae.trim(),
        rq.called_ae.trim(),
        rq.presentation_contexts.len(),
        max_pdu(rq.user_info.max_pdu_length)
    )
}

fn ac_summary(ac: &AssociateAc) -> String {
    let accepted = ac
        .presentation_contexts
        .iter()
        .filter(|c| c.result == 0)
        .count();
    format!(
        "calling {} called {}, {accepted} of {} contexts accepted, max PDU {}",
        ac.calling_ae.trim(),
        ac.called_ae.trim(),
        ac.presentation_contexts.len(),
        max_pdu(ac.user_info.max_pdu_length)
    )
}

fn max_pdu(len: Option<u32>) -> String {
    match len {
        Some(0) => "unlimited".to_owned(),
        Some(n) => n.to_string(),
        None => "not given".to_owned(),
    }
}

fn pdv_summary(context_id: u8, is_command: bool, is_last: bool) -> String {
    let kind = if is_command { "command" } else { "data" };
    let last = if is_last { "last" } else { "more" };
    format!("ctx {context_id} {kind} {last}")
}

fn pdvs_summary(pdvs: &[String]) -> String {
    let plural = if pdvs.len() == 1 { "" } else { "s" };
    format!("{} PDV{plural} {}", pdvs.len(), pdvs.join(", "))
}

fn rj_summary(result: Option<u8>, source: Option<u8>, reason: Option<u8>) -> String {
    let show = |v: Option<u8>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
    format!(
        "result {} source {} reason {}",
        show(result),
        show(source),
        show(reason)
    )
}

fn abort_summary(source: Option<u8>, reason: Option<u8>) -> String {
    let show = |v: Option<u8>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
    format!("source {} reason {}", show(source), show(reason))
}

/// One association running over a stream. See the module documentation.
#[derive(Debug)]
pub struct Connection<S: Transport> {
    stream: S,
    assoc: Association,
    indications: VecDeque<Indication>,
    /// The transport is closed (by us or by the peer).
    closed: bool,
    /// The machine went back to Sta1 ([`Indication::Closed`] was queued).
    finished: bool,
    /// The read timeout last set on the stream, to skip redundant syscalls.
    read_timeout: Option<Option<Duration>>,
    read_size: usize,
    pending: VecDeque<Bytes>,
    /// A write failed: nothing more can be sent, but reading may still work.
    write_broken: bool,
    /// The PDU trace, when one is set (nothing is summarised otherwise).
    tracer: Option<Tracer>,
    /// The receiving end of [`Self::waker`], polled beside the stream.
    #[cfg(unix)]
    wake: Option<UnixStream>,
    /// A [`Waker`] ended the last wait.
    woken: bool,
}

/// Ends a [`Connection::wait_indication`] of another thread early: a storage
/// SCP's durability workers have an answer for the association's thread,
/// which then needs no short poll to notice it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Waker {
    #[cfg(unix)]
    tx: Arc<UnixStream>,
}

impl Waker {
    /// Wakes the connection (again, if it has not looked yet: one byte waiting
    /// is enough, so a full buffer is no error).
    pub fn wake(&self) {
        // send(2) with MSG_NOSIGNAL: the connection may be gone already, and a
        // write to its closed end must not raise SIGPIPE in a host process
        // that does not ignore it.
        #[cfg(unix)]
        {
            use rustix::net::{send, SendFlags};
            let _ = send(&*self.tx, &[1], SendFlags::NOSIGNAL | SendFlags::DONTWAIT);
        }
    }
}

impl<S: Transport> Connection<S> {
    /// Wraps a connected stream and a fresh association.
    pub fn new(stream: S, assoc: Association) -> Self {
        Self {
            stream,
            assoc,
            indications: VecDeque::new(),
            closed: false,
            finished: false,
            read_timeout: None,
            read_size: MIN_READ,
            pending: VecDeque::new(),
            write_broken: false,
            tracer: None,
            #[cfg(unix)]
            wake: None,
            woken: false,
        }
    }

    /// A [`Waker`] for this connection's waits; `None` where the stream cannot
    /// be polled together with it (then a caller expecting one polls often).
    pub fn waker(&mut self) -> Option<Waker> {
        #[cfg(unix)]
        {
            self.stream.socket_fd()?;
            let (rx, tx) = UnixStream::pair().ok()?;
            rx.set_nonblocking(true).ok()?;
            tx.set_nonblocking(true).ok()?;
            self.wake = Some(rx);
            Some(Waker { tx: Arc::new(tx) })
        }
        #[cfg(not(unix))]
        {
            None
        }
    }

    /// Calls `hook` with a one-line summary of every PDU sent and received from
    /// now on (`None`: stop). `peer` is passed along in each [`PduTrace`].
    pub fn set_trace(&mut self, hook: Option<TraceHook>, peer: Option<SocketAddr>) {
        self.tracer = hook.map(|hook| Tracer {
            hook,
            peer,
            tx_left: 0,
        });
    }

    /// The state machine.
    pub fn association(&self) -> &Association {
        &self.assoc
    }

    /// The state machine, to call a primitive; call [`Self::flush`] afterwards.
    pub fn association_mut(&mut self) -> &mut Association {
        &mut self.assoc
    }

    /// The stream.
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// The stream, e.g. to set a write timeout.
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Whether the transport connection is closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether the association is over (the machine returned to Sta1).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// As acceptor: waits for the A-ASSOCIATE-RQ, which ARTIM bounds. Looks at
    /// `stop` every `poll`; when it is set, aborts and returns `None`, as it
    /// does when the connection fails or ARTIM expires.
    pub fn wait_request(&mut self, poll: Duration, stop: &AtomicBool) -> Option<AssociateRq> {
        loop {
            match self.wait_indication(Instant::now().checked_add(poll)) {
                Ok(Some(Indication::AssociateRequest(rq))) => return Some(*rq),
                Ok(Some(_)) => {}
                Ok(None) => {
                    if stop.load(Ordering::SeqCst) {
                        self.abort();
                        return None;
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Waits until the peer closes the connection or ARTIM expires (after an
    /// A-ASSOCIATE-RJ or A-RELEASE-RP, PS3.8 Sta13).
    pub fn wait_closed(&mut self) {
        while !self.finished {
            if self.wait_indication(None).is_err() {
                return;
            }
        }
    }

    /// Carries out every pending output: writes bytes, connects (the stream is
    /// already connected, so this only confirms it), closes, queues indications.
    pub fn flush(&mut self, now: Instant) -> Result<(), NetError> {
        while let Some(out) = self.assoc.poll_output() {
            match out {
                Output::Transmit(bytes) => {
                    if !bytes.is_empty() {
                        if let Some(t) = &mut self.tracer {
                            t.sent(&bytes, &self.assoc);
                        }
                        self.pending.push_back(bytes);
                    }
                }
                Output::Connect => {
                    self.write_pending()?;
                    self.assoc.transport_connected(now)?;
                }
                Output::CloseTransport => {
                    self.write_pending()?;
                    self.close_stream();
                }
                Output::Indication(ind) => {
                    if let Some(t) = &self.tracer {
                        t.received(&ind, &self.assoc);
                    }
                    if ind == Indication::Closed {
                        self.finished = true;
                    }
                    self.indications.push_back(ind);
                }
            }
        }
        self.write_pending()
    }

    fn close_stream(&mut self) {
        if !self.closed {
            let _ = self.stream.shutdown();
            self.closed = true;
        }
        self.pending.clear();
    }

    /// Writes the queued PDUs, several buffers per system call.
    fn write_pending(&mut self) -> Result<(), NetError> {
        if self.write_broken {
            if self.pending.is_empty() {
                return Ok(());
            }
            self.pending.clear();
            return Err(NetError::Io(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the connection can no longer be written to",
            )));
        }
        if self.closed {
            self.pending.clear();
            return Ok(());
        }
        while !self.pending.is_empty() {
            let result = {
                let slices: Vec<IoSlice<'_>> = self
                    .pending
                    .iter()
                    .take(MAX_IOV)
                    .map(|b| IoSlice::new(b))
                    .collect();
                self.stream.write_vectored(&slices)
            };
            match result {
                Ok(0) => {
                    return self.write_failed(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "connection closed while writing",
                    ))
                }
                Ok(mut n) => {
                    while n > 0 {
                        let Some(front) = self.pending.front_mut() else {
                            break;
                        };
                        if n >= front.len() {
                            n -= front.len();
                            self.pending.pop_front();
                        } else {
                            front.advance(n);
                            n = 0;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.write_failed(e),
            }
        }
        Ok(())
    }

    /// A write failed. The stream is left open for reading: the peer may have sent
    /// an A-ABORT before closing (see [`Self::collect_abort`]); the caller ends the
    /// association with [`Self::abort`].
    fn write_failed(&mut self, e: io::Error) -> Result<(), NetError> {
        let timed_out = matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        );
        self.pending.clear();
        self.write_broken = true;
        if timed_out {
            Err(NetError::Timeout {
                what: "the peer to accept data",
            })
        } else {
            Err(NetError::from(e))
        }
    }

    /// The transport is gone: tell the machine (Evt17) and queue what it says.
    fn lost_transport(&mut self, now: Instant) {
        self.close_stream();
        if self.assoc.transport_closed(now).is_ok() {
            // Only indications can come out now; writing is impossible.
            while let Some(out) = self.assoc.poll_output() {
                if let Output::Indication(ind) = out {
                    if ind == Indication::Closed {
                        self.finished = true;
                    }
                    self.indications.push_back(ind);
                }
            }
        }
    }

    /// Sends a P-DATA-TF.
    pub fn send_pdata(&mut self, pdata: PData) -> Result<(), NetError> {
        let now = Instant::now();
        self.assoc.send_pdata(pdata, now)?;
        self.flush(now)
    }

    /// Sends one PDV as its own P-DATA-TF without copying `data`.
    pub fn send_pdv(
        &mut self,
        context_id: u8,
        is_command: bool,
        is_last: bool,
        data: Bytes,
    ) -> Result<(), NetError> {
        let now = Instant::now();
        self.assoc
            .send_pdv_parts(context_id, is_command, is_last, data, now)?;
        self.flush(now)
    }

    /// Sends the 12-byte header of a P-DATA-TF holding one data-set PDV of `len`
    /// bytes; the caller then writes exactly `len` payload bytes to the stream
    /// itself (e.g. with [`Connection::send_file_payload`]) before anything else
    /// is sent, or aborts. The state machine decides, as for [`Self::send_pdv`],
    /// whether the PDV may be sent and whether it fits the peer's maximum length.
    pub fn send_pdv_header(
        &mut self,
        context_id: u8,
        is_last: bool,
        len: usize,
    ) -> Result<(), NetError> {
        let now = Instant::now();
        self.assoc
            .send_pdv_header(context_id, false, is_last, len, now)?;
        self.flush(now)
    }

    /// Sends a DIMSE command, fragmented for a peer whose maximum length is `peer_max`.
    pub fn send_command(
        &mut self,
        context_id: u8,
        message: &Message,
        peer_max: u32,
    ) -> Result<(), NetError> {
        for pdata in fragment_command(context_id, message.encode(), peer_max) {
            self.send_pdata(pdata)?;
        }
        Ok(())
    }

    /// Sends an A-ABORT (if there is still a connection) and closes the transport.
    ///
    /// After the A-ABORT the write side is shut down and peer bytes are discarded
    /// for up to [`ABORT_LINGER`] (or until the peer closes), so the peer reads
    /// the A-ABORT instead of a connection reset caused by unread data.
    pub fn abort(&mut self) {
        let now = Instant::now();
        if !self.closed && self.assoc.abort(now).is_ok() {
            self.send_abort_and_linger();
        }
        self.lost_transport(Instant::now());
    }

    /// Sends the A-ABORT the machine queued (its other outputs are dropped),
    /// then lingers briefly so the peer reads it before the connection closes.
    fn send_abort_and_linger(&mut self) {
        while let Some(out) = self.assoc.poll_output() {
            if let Output::Transmit(bytes) = out {
                if let Some(t) = &mut self.tracer {
                    t.sent(&bytes, &self.assoc);
                }
                self.pending.push_back(bytes);
            }
        }
        if self.write_pending().is_ok() {
            self.linger(ABORT_LINGER);
        }
    }

    /// A-ABORT for a P-DATA-TF the service-user found invalid: service-provider
    /// source, invalid-PDU-parameter-value (see
    /// [`Association::invalid_pdata`]); then closes like [`Self::abort`].
    pub fn abort_invalid(&mut self, detail: String) {
        let now = Instant::now();
        if !self.closed && self.assoc.invalid_pdata(detail, now).is_ok() {
            self.send_abort_and_linger();
        }
        self.lost_transport(Instant::now());
    }

    /// Shuts down writing and discards input until EOF or `grace` passes.
    fn linger(&mut self, grace: Duration) {
        if self.stream.shutdown_write().is_err() {
            return;
        }
        let Some(deadline) = Instant::now().checked_add(grace) else {
            return;
        };
        let mut scratch = vec![0u8; MIN_READ];
        self.read_timeout = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                return;
            }
            match self.stream.read(&mut scratch) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// Next queued indication, without waiting.
    pub fn pop_indication(&mut self) -> Option<Indication> {
        self.indications.pop_front()
    }

    /// Waits for the next indication until `until` (`None`: no deadline but ARTIM).
    /// `Ok(None)` when `until` passed first. Once the association is over and every
    /// indication was handed out, fails with [`NetError::Protocol`].
    pub fn wait_indication(
        &mut self,
        until: Option<Instant>,
    ) -> Result<Option<Indication>, NetError> {
        loop {
            if let Some(ind) = self.indications.pop_front() {
                return Ok(Some(ind));
            }
            if self.finished || self.closed {
                return Err(NetError::Protocol("the association is closed".into()));
            }
            let now = Instant::now();
            if let Some(artim) = self.assoc.poll_timeout() {
                if artim <= now {
                    self.assoc.handle_timeout(now);
                    self.flush(now)?;
                    continue;
                }
            }
            if matches!(until, Some(u) if u <= now) {
                return Ok(None);
            }
            let wake = match (until, self.assoc.poll_timeout()) {
                (Some(u), Some(a)) => Some(u.min(a)),
                (u, a) => u.or(a),
            };
            let timeout = wake.map(|w| {
                w.saturating_duration_since(now)
                    .max(Duration::from_millis(1))
            });
            self.read_once(timeout)?;
            if std::mem::take(&mut self.woken) && self.indications.is_empty() {
                return Ok(None);
            }
        }
    }

    /// [`Self::wait_indication`] with a required deadline: on expiry the
    /// association is aborted and the error is [`NetError::Timeout`].
    pub fn next_indication(
        &mut self,
        deadline: Instant,
        what: &'static str,
    ) -> Result<Indication, NetError> {
        match self.wait_indication(Some(deadline))? {
            Some(ind) => Ok(ind),
            None => {
                self.abort();
                Err(NetError::Timeout { what })
            }
        }
    }

    fn has_waker(&self) -> bool {
        #[cfg(unix)]
        {
            self.wake.is_some()
        }
        #[cfg(not(unix))]
        {
            false
        }
    }

    /// Waits up to `timeout` for input or the [`Waker`]; whether input came
    /// (a wake sets `woken`).
    #[cfg(unix)]
    fn wait_or_wake(&mut self, timeout: Option<Duration>) -> io::Result<bool> {
        let Some(wake) = self.wake.as_ref() else {
            return Ok(true);
        };
        let (input, woken) = wait_input(&mut self.stream, timeout, Some(wake.as_fd()))?;
        if woken {
            // Drain every wake so far; the caller looks at all answers now.
            let mut drain = [0u8; 512];
            while matches!((&*wake).read(&mut drain), Ok(n) if n > 0) {}
            self.woken = true;
        }
        Ok(input)
    }

    #[cfg(not(unix))]
    fn wait_or_wake(&mut self, _timeout: Option<Duration>) -> io::Result<bool> {
        Ok(true)
    }

    /// One read into the machine's receive buffer (at most `timeout`), then
    /// processing of every whole PDU in it.
    fn read_once(&mut self, timeout: Option<Duration>) -> Result<(), NetError> {
        let waited = match timeout {
            _ if self.has_waker() => self.wait_or_wake(timeout),
            Some(t) => self.stream.wait_readable(t),
            None => Ok(true),
        };
        match waited {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => {
                self.lost_transport(Instant::now());
                return Err(e.into());
            }
        }
        if self.read_timeout != Some(timeout) {
            self.stream.set_read_timeout(timeout)?;
            self.read_timeout = Some(timeout);
        }
        // Zero-filling the spare space is the price of a safe read into it:
        // fill what is waiting in the socket where it says so, else a size
        // that adapts to what the previous reads returned.
        let (size, waiting) = match self.stream.ready_bytes() {
            Some(n) if n > 0 => (n.min(MAX_READ), true),
            _ => (self.read_size, false),
        };
        let buf = self.assoc.receive_buffer();
        let start = buf.len();
        buf.resize(start.saturating_add(size), 0);
        let result = match buf.get_mut(start..) {
            Some(spare) => self.stream.read(spare),
            None => Ok(0),
        };
        let got = *result.as_ref().unwrap_or(&0);
        buf.truncate(start.saturating_add(got));
        let now = Instant::now();
        match result {
            Ok(0) => {
                self.lost_transport(now);
                Ok(())
            }
            Ok(n) => {
                self.stream.ack_now();
                // Only reads that had to wait teach the size: the others
                // were sized by the socket.
                self.read_size = if waiting {
                    self.read_size
                } else if n == size {
                    size.saturating_mul(2).min(MAX_READ)
                } else {
                    n.saturating_mul(2).clamp(MIN_READ, MAX_READ)
                };
                self.assoc.process(now);
                self.flush(now)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                ) =>
            {
                self.lost_transport(now);
                Ok(())
            }
            Err(e) => {
                self.lost_transport(now);
                Err(NetError::from(e))
            }
        }
    }

    /// After a failed write: picks up an A-ABORT the peer may have sent before
    /// closing (waiting at most `grace`), so the caller can report it.
    pub fn collect_abort(&mut self, grace: Duration) -> Option<NetError> {
        let deadline = Instant::now().checked_add(grace);
        loop {
            match self.indications.pop_front() {
                Some(Indication::Aborted { source, reason }) => {
                    return Some(NetError::Aborted { source, reason })
                }
                Some(_) => continue,
                None => {}
            }
            if self.closed || self.finished {
                return None;
            }
            match self.wait_indication(deadline) {
                Ok(Some(ind)) => self.indications.push_front(ind),
                Ok(None) => return None,
                // The A-ABORT may have been queued just before the error.
                Err(_) => {
                    return self.indications.drain(..).find_map(|ind| match ind {
                        Indication::Aborted { source, reason } => {
                            Some(NetError::Aborted { source, reason })
                        }
                        _ => None,
                    })
                }
            }
        }
    }

    /// Consumes the connection, returning the stream and the machine.
    pub fn into_parts(self) -> (S, Association) {
        (self.stream, self.assoc)
    }
}

/// Checks an AE title we are about to send: 1-16 characters of ISO 646 without
/// backslash or control characters, not all spaces (PS3.5 Table 6.2-1, AE).
pub fn validate_ae_title(ae: &str, what: &str) -> Result<(), NetError> {
    let trimmed = ae.trim();
    let ok = !trimmed.is_empty()
        && trimmed.len() <= 16
        && trimmed
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'\\');
    if ok {
        Ok(())
    } else {
        Err(NetError::InvalidArgument(format!(
            "{what} {ae:?} must be 1-16 printable ASCII characters without backslash"
        )))
    }
}

/// Maps an indication that ends the association to its error.
pub fn indication_error(ind: &Indication) -> Option<NetError> {
    match ind {
        Indication::Aborted { source, reason } => Some(NetError::Aborted {
            source: *source,
            reason: *reason,
        }),
        Indication::ProviderAborted { reason, detail, .. } => Some(NetError::ProviderAborted {
            reason: *reason,
            detail: detail.clone(),
        }),
        Indication::Rejected(rj) => Some(NetError::Rejected {
            result: rj.result,
            source: rj.source,
            reason: rj.reason,
        }),
        Indication::Closed => Some(NetError::Protocol("the association is closed".into())),
        _ => None,
    }
}

#[cfg(target_os = "linux")]
mod sendfile;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::association::{Config, LocalError, Role};
    use crate::pdu::{AssociateAc, AssociateRq, Pdu, UserInformation};

    /// An in-memory stream: reads come from `input`, writes are recorded.
    #[derive(Default)]
    struct Mock {
        input: std::collections::VecDeque<u8>,
        written: Vec<u8>,
        write_calls: usize,
    }

    impl Read for Mock {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.input.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.input.len());
            for (dst, src) in buf.iter_mut().zip(self.input.drain(..n)) {
                *dst = src;
            }
            Ok(n)
        }
    }

    impl Write for Mock {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_calls += 1;
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.write_calls += 1;
            // Accept at most 5 bytes per call, to exercise partial writes.
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(5 - n);
                self.written.extend_from_slice(&b[..take]);
                n += take;
                if n == 5 {
                    break;
                }
            }
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Transport for Mock {
        fn set_read_timeout(&mut self, _: Option<Duration>) -> io::Result<()> {
            Ok(())
        }
        fn set_write_timeout(&mut self, _: Option<Duration>) -> io::Result<()> {
            Ok(())
        }
        fn shutdown(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn shutdown_write(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn established(peer_max: u32) -> Connection<Mock> {
        let mut conn = Connection::new(
            Mock::default(),
            Association::new(Config::new(Role::Requestor)),
        );
        let rq = AssociateRq {
            protocol_version: 1,
            called_ae: "A".into(),
            calling_ae: "B".into(),
            application_context: crate::pdu::APPLICATION_CONTEXT_NAME.into(),
            presentation_contexts: vec![],
            user_info: UserInformation::default(),
        };
        let now = Instant::now();
        conn.association_mut().request_association(rq, now).unwrap();
        conn.flush(now).unwrap();
        let ac = AssociateAc {
            protocol_version: 1,
            called_ae: "A".into(),
            calling_ae: "B".into(),
            application_context: crate::pdu::APPLICATION_CONTEXT_NAME.into(),
            presentation_contexts: vec![],
            user_info: UserInformation {
                max_pdu_length: Some(peer_max),
                ..UserInformation::default()
            },
        };
        let bytes = Pdu::AssociateAc(ac).encode().unwrap();
        conn.stream_mut().input.extend(bytes.iter());
        let deadline = Instant::now() + Duration::from_secs(1);
        let ind = conn.next_indication(deadline, "AC").unwrap();
        assert!(matches!(ind, Indication::Accepted(_)));
        conn.stream_mut().written.clear();
        conn
    }

    #[test]
    fn pdv_header_and_data_leave_together() {
        let mut conn = established(100);
        let data = Bytes::from_static(b"0123456789abcdef");
        conn.send_pdv(1, false, true, data.clone()).unwrap();
        let w = &conn.stream().written;
        let header = PData::header_for_single_pdv(1, false, true, data.len()).unwrap();
        assert_eq!(&w[..12], &header);
        assert_eq!(&w[12..], &data[..]);
        let decoded = Pdu::decode(Bytes::copy_from_slice(w)).unwrap();
        assert!(matches!(decoded, Pdu::PData(p) if p.pdvs[0].data == data));

        // Larger than the peer's maximum: refused, nothing written.
        let before = conn.stream().written.len();
        let big = Bytes::from(vec![0u8; 95]);
        assert!(matches!(
            conn.send_pdv(1, false, true, big),
            Err(NetError::Local(LocalError::PduTooLarge { .. }))
        ));
        assert_eq!(conn.stream().written.len(), before);
    }

    #[test]
    fn trace_summarises_sent_and_received_pdus() {
        let lines = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let sink = Arc::clone(&lines);
        let mut conn = established(100);
        conn.set_trace(
            Some(TraceHook::new(move |t| {
                sink.lock().unwrap().push(t.line.clone())
            })),
            None,
        );
        conn.send_pdv(3, false, true, Bytes::from_static(b"abcd"))
            .unwrap();
        let pdata = PData {
            pdvs: vec![
                crate::pdu::Pdv {
                    context_id: 1,
                    is_command: true,
                    is_last: false,
                    data: Bytes::from_static(b"xy"),
                },
                crate::pdu::Pdv {
                    context_id: 1,
                    is_command: true,
                    is_last: true,
                    data: Bytes::from_static(b"z"),
                },
            ],
        };
        conn.send_pdata(pdata.clone()).unwrap();
        let bytes = Pdu::PData(pdata).encode().unwrap();
        conn.stream_mut().input.extend(bytes.iter());
        let rp = Pdu::ReleaseRp.encode().unwrap();
        conn.association_mut()
            .request_release(Instant::now())
            .unwrap();
        conn.flush(Instant::now()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(1);
        conn.next_indication(deadline, "P-DATA").unwrap();
        conn.stream_mut().input.extend(rp.iter());
        conn.next_indication(deadline, "RP").unwrap();
        assert_eq!(
            *lines.lock().unwrap(),
            [
                "sent P-DATA-TF 16 bytes: 1 PDV ctx 3 data last",
                "sent P-DATA-TF 21 bytes: 2 PDVs ctx 1 command more, ctx 1 command last",
                "sent A-RELEASE-RQ",
                "received P-DATA-TF 21 bytes: 2 PDVs ctx 1 command more, ctx 1 command last",
                "received A-RELEASE-RP",
            ]
        );
    }

    #[test]
    fn deadline_expiry_is_a_timeout() {
        let mut conn = established(0);
        let err = conn
            .next_indication(Instant::now(), "a response")
            .unwrap_err();
        assert!(matches!(err, NetError::Timeout { what: "a response" }));
        assert!(conn.is_closed());
    }

    /// A connected pair on loopback: (the peer's end, ours).
    fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (peer, listener.accept().unwrap().0)
    }

    /// Plain TCP tells how much a read returns at once (what sizes the
    /// zero-filled space of the next read), and quick ACKs are accepted.
    #[cfg(unix)]
    #[test]
    fn tcp_reports_ready_bytes() {
        let (mut peer, mut ours) = tcp_pair();
        assert_eq!(ours.ready_bytes(), Some(0));
        peer.write_all(&[7u8; 3000]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while ours.ready_bytes() != Some(3000) {
            assert!(Instant::now() < deadline, "{:?}", ours.ready_bytes());
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut buf = vec![0u8; 3000];
        ours.read_exact(&mut buf).unwrap();
        ours.ack_now();
        assert_eq!(ours.ready_bytes(), Some(0));
        assert!(buf.iter().all(|&b| b == 7));
    }

    /// Waiting for input says whether any came, and a short wait is about as
    /// short as asked: a socket read timeout of 1 ms waited 8 ms on a 250 Hz
    /// kernel, which held every answer of a storage SCP's durability workers.
    #[cfg(unix)]
    #[test]
    fn tcp_waits_for_input_precisely() {
        let (mut peer, mut ours) = tcp_pair();
        let shortest = (0..20)
            .map(|_| {
                let started = Instant::now();
                assert!(!ours.wait_readable(Duration::from_millis(1)).unwrap());
                started.elapsed()
            })
            .min()
            .unwrap();
        assert!(shortest >= Duration::from_millis(1), "{shortest:?}");
        assert!(shortest < Duration::from_millis(4), "{shortest:?}");
        peer.write_all(b"x").unwrap();
        assert!(ours.wait_readable(Duration::from_secs(5)).unwrap());
        let mut buf = [0u8; 1];
        ours.read_exact(&mut buf).unwrap();
        drop(peer);
        // A closed peer is input too: the read that follows returns 0.
        assert!(ours.wait_readable(Duration::from_secs(5)).unwrap());
        assert_eq!(ours.read(&mut buf).unwrap(), 0);
    }

    /// A [`Waker`] ends a wait at once, from any thread; wakes piling up
    /// before the wait end one wait, not every later one.
    #[cfg(unix)]
    #[test]
    fn waker_ends_a_wait_early() {
        let (_peer, ours) = tcp_pair();
        let mut conn = Connection::new(ours, Association::new(Config::new(Role::Acceptor)));
        let waker = conn
            .waker()
            .expect("a TCP stream can be polled with a waker");
        let long = || Some(Instant::now() + Duration::from_secs(10));

        // Nothing woke it: the wait lasts its time.
        let started = Instant::now();
        assert!(conn
            .wait_indication(Some(Instant::now() + Duration::from_millis(50)))
            .unwrap()
            .is_none());
        assert!(started.elapsed() >= Duration::from_millis(50));

        // Woken by another thread while waiting.
        let other = waker.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            other.wake();
        });
        let started = Instant::now();
        assert!(conn.wait_indication(long()).unwrap().is_none());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        t.join().unwrap();

        // Many wakes before the wait (more than the socket holds): one early end.
        for _ in 0..100_000 {
            waker.wake();
        }
        let started = Instant::now();
        assert!(conn.wait_indication(long()).unwrap().is_none());
        assert!(started.elapsed() < Duration::from_secs(5));
        let started = Instant::now();
        assert!(conn
            .wait_indication(Some(Instant::now() + Duration::from_millis(30)))
            .unwrap()
            .is_none());
        assert!(
            started.elapsed() >= Duration::from_millis(30),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn ae_titles() {
        assert!(validate_ae_title("STORE", "x").is_ok());
        assert!(validate_ae_title(" A ", "x").is_ok());
        for bad in ["", "   ", "ABCDEFGHIJKLMNOPQ", "A\\B", "A\u{1}", "é"] {
            assert!(validate_ae_title(bad, "x").is_err(), "{bad:?}");
        }
    }
}
