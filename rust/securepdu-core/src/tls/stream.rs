//! A TLS session over a `TcpStream`, usable as a [`Transport`].

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use rustls::{ClientConnection, ServerConnection};

use super::config::{TlsClient, TlsServer};
use super::error::{Side, TlsError};
use crate::codec::Reader;
use crate::conn::Transport;

/// TLS record content types (RFC 8446 §5.1): alert 21 (0x15), handshake 22 (0x16).
const RECORD_ALERT: u8 = 0x15;
const RECORD_HANDSHAKE: u8 = 0x16;

/// An established TLS session. Reads and writes carry DICOM PDUs; the record
/// layer adds one copy each way (into and out of rustls' buffers).
#[derive(Debug)]
pub struct TlsStream {
    conn: rustls::Connection,
    sock: TcpStream,
    side: Side,
    input: InputBuffer,
}

/// Size of one socket read after the handshake.
const INPUT_BUFFER: usize = 64 * 1024;

/// Socket input read in large chunks: rustls asks for 4 KiB at a time, and one
/// system call per 4 KiB would dominate bulk transfers. Costs one memcpy.
#[derive(Debug)]
struct InputBuffer {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl InputBuffer {
    fn new() -> Self {
        Self {
            data: Vec::new(),
            start: 0,
            end: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.start >= self.end
    }
}

/// What rustls reads from: the buffer, refilled from the socket only when
/// `may_block` (otherwise an empty buffer reads as `WouldBlock`).
struct Source<'a> {
    sock: &'a mut TcpStream,
    input: &'a mut InputBuffer,
    may_block: bool,
}

impl Read for Source<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let input = &mut *self.input;
        if input.is_empty() {
            if !self.may_block {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            if input.data.len() < INPUT_BUFFER {
                input.data.resize(INPUT_BUFFER, 0);
            }
            let n = self.sock.read(&mut input.data)?;
            input.start = 0;
            input.end = n;
        }
        let avail = input.data.get(input.start..input.end).unwrap_or_default();
        let n = avail.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), avail.get(..n)) {
            dst.copy_from_slice(src);
        }
        input.start = input.start.saturating_add(n);
        Ok(n)
    }
}

/// The verified certificate of the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The end-entity certificate, DER.
    pub der: Vec<u8>,
    /// Its subject, e.g. `CN=modality-1,O=Hospital` (`None` if it could not be read).
    pub subject: Option<String>,
}

fn remaining(deadline: Instant) -> Result<Duration, TlsError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(TlsError::HandshakeTimeout)
    } else {
        Ok(left)
    }
}

fn io_error(e: &io::Error) -> TlsError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => TlsError::HandshakeTimeout,
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => TlsError::ClosedDuringHandshake,
        _ => TlsError::Io(e.to_string()),
    }
}

/// Wraps a TLS error for the `io::Read`/`io::Write` interface; the network layer
/// unwraps it into [`crate::transport::NetError::Tls`].
fn tls_io(e: TlsError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl TlsStream {
    /// Runs the client handshake on a connected socket, within `timeout`.
    /// `host` is what was connected to (see [`TlsClient::server_name`]).
    pub fn connect(
        sock: TcpStream,
        client: &TlsClient,
        host: &str,
        timeout: Duration,
    ) -> Result<Self, TlsError> {
        let name = client.server_name(host)?;
        let expected = name.to_str().into_owned();
        let conn = ClientConnection::new(std::sync::Arc::clone(client.config()), name)
            .map_err(|e| TlsError::Other(e.to_string()))?;
        let mut stream = Self {
            conn: conn.into(),
            sock,
            side: Side::Client,
            input: InputBuffer::new(),
        };
        stream.handshake(timeout, Some(&expected))?;
        Ok(stream)
    }

    /// Runs the server handshake on an accepted socket, within `timeout`.
    ///
    /// On failure the alert (if any) is sent and the socket is closed gently.
    pub fn accept(
        sock: TcpStream,
        server: &TlsServer,
        timeout: Duration,
    ) -> Result<Self, TlsError> {
        let conn = ServerConnection::new(std::sync::Arc::clone(server.config()))
            .map_err(|e| TlsError::Other(e.to_string()))?;
        let mut stream = Self {
            conn: conn.into(),
            sock,
            side: Side::Server,
            input: InputBuffer::new(),
        };
        match stream.handshake(timeout, None) {
            Ok(()) => Ok(stream),
            Err(e) => {
                stream.linger();
                Err(e)
            }
        }
    }

    /// Shuts down writing and drains input briefly, so the peer reads our alert
    /// rather than a reset caused by its unread bytes.
    fn linger(&mut self) {
        let _ = self.sock.shutdown(Shutdown::Write);
        let deadline = Instant::now() + Duration::from_millis(300);
        let mut scratch = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.sock.set_read_timeout(Some(left)).is_err() {
                return;
            }
            match self.sock.read(&mut scratch) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    fn handshake(&mut self, timeout: Duration, expected: Option<&str>) -> Result<(), TlsError> {
        let deadline = Instant::now()
            .checked_add(timeout)
            .ok_or(TlsError::HandshakeTimeout)?;
        // The handshake sets its own socket timeouts; the caller's come back after.
        let saved = (self.sock.read_timeout(), self.sock.write_timeout());
        self.drive_handshake(deadline, expected)?;
        if let (Ok(read), Ok(write)) = saved {
            self.sock
                .set_read_timeout(read)
                .and_then(|()| self.sock.set_write_timeout(write))
                .map_err(|e| io_error(&e))?;
        }
        Ok(())
    }

    fn drive_handshake(
        &mut self,
        deadline: Instant,
        expected: Option<&str>,
    ) -> Result<(), TlsError> {
        let mut first_checked = false;
        while self.conn.is_handshaking() || self.conn.wants_write() {
            while self.conn.wants_write() {
                self.sock
                    .set_write_timeout(Some(remaining(deadline)?))
                    .map_err(|e| io_error(&e))?;
                match self.conn.write_tls(&mut self.sock) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(io_error(&e)),
                }
            }
            if !self.conn.is_handshaking() {
                break;
            }
            self.sock
                .set_read_timeout(Some(remaining(deadline)?))
                .map_err(|e| io_error(&e))?;
            if !first_checked {
                // The first byte tells a TLS record from a DICOM PDU (0x01-0x07).
                let mut first = [0u8; 1];
                match self.sock.peek(&mut first) {
                    Ok(0) => return Err(TlsError::ClosedDuringHandshake),
                    Ok(_) => {
                        let [byte] = first;
                        if byte != RECORD_HANDSHAKE && byte != RECORD_ALERT {
                            return Err(match self.side {
                                Side::Server => TlsError::PlainTcpToTlsPort { first_byte: byte },
                                Side::Client => TlsError::TlsToPlainPort { first_byte: byte },
                            });
                        }
                        first_checked = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io_error(&e)),
                }
            }
            match self.conn.read_tls(&mut self.sock) {
                Ok(0) => return Err(TlsError::ClosedDuringHandshake),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(&e)),
            }
            if let Err(e) = self.conn.process_new_packets() {
                // Send the alert describing the failure, if rustls queued one.
                let _ = self.conn.write_tls(&mut self.sock);
                return Err(TlsError::from_rustls(&e, self.side, expected));
            }
        }
        Ok(())
    }

    /// Writes every queued TLS record to the socket.
    fn write_out(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "connection closed while writing",
                    ))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The peer's end-entity certificate (verified, when verification is on).
    pub fn peer_certificate(&self) -> Option<&CertificateDer<'static>> {
        self.conn.peer_certificates().and_then(|c| c.first())
    }

    /// The peer's certificate with its subject, for the application.
    pub fn peer_certificate_info(&self) -> Option<PeerCertificate> {
        self.peer_certificate().map(|der| PeerCertificate {
            der: der.to_vec(),
            subject: certificate_subject(der),
        })
    }

    /// The negotiated protocol version, e.g. `TLSv1_3`.
    pub fn protocol_version(&self) -> Option<String> {
        // rustls names versions `TLSv1_3`; people (and openssl) write `TLSv1.3`.
        self.conn
            .protocol_version()
            .map(|v| format!("{v:?}").replace('_', "."))
    }

    /// The negotiated cipher suite by IANA name, e.g. `TLS_AES_128_GCM_SHA256`.
    pub fn cipher_suite(&self) -> Option<String> {
        self.conn.negotiated_cipher_suite().map(|s| {
            let name = format!("{:?}", s.suite());
            // rustls prefixes TLS 1.3 suites with `TLS13_`; IANA's names start `TLS_`.
            match name.strip_prefix("TLS13_") {
                Some(rest) => format!("TLS_{rest}"),
                None => name,
            }
        })
    }

    /// `len` bytes of keying material exported from the session (RFC 5705 /
    /// RFC 8446 §7.5) under `label`, without context: both ends of the same
    /// session get the same bytes, any other session different ones.
    pub fn export_keying_material(&self, label: &[u8], len: usize) -> Result<Vec<u8>, TlsError> {
        self.conn
            .export_keying_material(vec![0u8; len], label, None)
            .map_err(|e| TlsError::Other(format!("TLS exporter: {e}")))
    }

    /// Whether input is waiting here that a poll of the socket would not show:
    /// socket bytes read ahead into our buffer, or records rustls has
    /// decrypted but nobody has read yet.
    pub fn has_buffered_input(&mut self) -> bool {
        if !self.input.is_empty() {
            return true;
        }
        // An error here shows up, with its alert, on the next read.
        self.conn
            .process_new_packets()
            .map_or(true, |state| state.plaintext_bytes_to_read() > 0)
    }

    /// The underlying socket.
    pub fn tcp(&self) -> &TcpStream {
        &self.sock
    }

    fn close_notify(&mut self) {
        self.conn.send_close_notify();
        let _ = self.write_out();
    }
}

impl Read for TlsStream {
    /// Decrypts as many records as are already at hand into `buf`, blocking (up
    /// to the read timeout) only when nothing is.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut total = 0usize;
        loop {
            let Some(dst) = buf.get_mut(total..) else {
                return Ok(total);
            };
            match self.conn.reader().read(dst) {
                Ok(0) => return Ok(total),
                Ok(n) => {
                    total = total.saturating_add(n);
                    if total >= buf.len() || self.input.is_empty() {
                        return Ok(total);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // Closed without close_notify: to DICOM, just a closed transport.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(total),
                Err(_) if total > 0 => return Ok(total),
                Err(e) => return Err(e),
            }
            if self.conn.wants_write() {
                if let Err(e) = self.write_out() {
                    return if total > 0 { Ok(total) } else { Err(e) };
                }
            }
            let mut source = Source {
                sock: &mut self.sock,
                input: &mut self.input,
                may_block: total == 0,
            };
            match self.conn.read_tls(&mut source) {
                Ok(_) => {}
                Err(_) if total > 0 => return Ok(total),
                Err(e) => return Err(e),
            }
            if let Err(e) = self.conn.process_new_packets() {
                let _ = self.conn.write_tls(&mut self.sock);
                return Err(tls_io(TlsError::from_rustls(&e, self.side, None)));
            }
            // After EOF (read_tls returned 0) the reader reports the end next.
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.conn.writer().write(buf)?;
        self.write_out()?;
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let n = self.conn.writer().write_vectored(bufs)?;
        self.write_out()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_out()?;
        self.sock.flush()
    }
}

impl Transport for TlsStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_read_timeout(timeout)
    }

    fn ack_now(&mut self) {
        crate::conn::quickack(&self.sock);
    }

    #[cfg(unix)]
    fn socket_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        Some(self.sock.as_fd())
    }

    fn buffered_input(&mut self) -> bool {
        self.has_buffered_input()
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_write_timeout(timeout)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.close_notify();
        self.sock.shutdown(Shutdown::Both)
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.close_notify();
        self.sock.shutdown(Shutdown::Write)
    }
}

/// The byte stream of an association: plain TCP or TLS.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream>),
}

impl Stream {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => t.tcp(),
        }
    }

    /// Whether input is buffered above the socket (TLS only), where polling
    /// the socket would not see it.
    pub fn has_buffered_input(&mut self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(t) => t.has_buffered_input(),
        }
    }
}

impl Stream {
    /// Over TLS, keying material exported from the session (see
    /// [`TlsStream::export_keying_material`]); `Ok(None)` over plain TCP.
    pub fn export_keying_material(
        &self,
        label: &[u8],
        len: usize,
    ) -> Result<Option<Vec<u8>>, TlsError> {
        match self {
            Self::Plain(_) => Ok(None),
            Self::Tls(t) => t.export_keying_material(label, len).map(Some),
        }
    }

    /// The peer's certificate, over TLS.
    pub fn peer_certificate_info(&self) -> Option<PeerCertificate> {
        match self {
            Self::Plain(_) => None,
            Self::Tls(t) => t.peer_certificate_info(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write_vectored(bufs),
            Self::Tls(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

impl Transport for Stream {
    fn ack_now(&mut self) {
        match self {
            Self::Plain(s) => s.ack_now(),
            Self::Tls(s) => s.ack_now(),
        }
    }

    #[cfg(unix)]
    fn socket_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        match self {
            Self::Plain(s) => s.socket_fd(),
            Self::Tls(s) => s.socket_fd(),
        }
    }

    fn buffered_input(&mut self) -> bool {
        self.has_buffered_input()
    }

    fn ready_bytes(&self) -> Option<usize> {
        match self {
            Self::Plain(s) => s.ready_bytes(),
            // What waits in the socket is ciphertext, not what a read returns.
            Self::Tls(_) => None,
        }
    }

    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Plain(s) => Transport::set_read_timeout(s, timeout),
            Self::Tls(s) => s.set_read_timeout(timeout),
        }
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Plain(s) => Transport::set_write_timeout(s, timeout),
            Self::Tls(s) => s.set_write_timeout(timeout),
        }
    }

    fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => Transport::shutdown(s),
            Self::Tls(s) => s.shutdown(),
        }
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.shutdown_write(),
            Self::Tls(s) => s.shutdown_write(),
        }
    }
}

/// X.509 attribute type OIDs (content octets) and their short names.
const NAME_ATTRIBUTES: &[(&[u8], &str)] = &[
    (&[0x55, 0x04, 0x03], "CN"),
    (&[0x55, 0x04, 0x06], "C"),
    (&[0x55, 0x04, 0x07], "L"),
    (&[0x55, 0x04, 0x08], "ST"),
    (&[0x55, 0x04, 0x0A], "O"),
    (&[0x55, 0x04, 0x0B], "OU"),
];

/// One DER TLV: (tag, content). Definite lengths up to 4 bytes only.
fn der_tlv<'a>(r: &mut Reader<'a>) -> Option<(u8, &'a [u8])> {
    let tag = r.u8()?;
    let first = r.u8()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for _ in 0..n {
            len = (len << 8) | usize::from(r.u8()?);
        }
        len
    };
    Some((tag, r.take(len)?))
}

/// The subject of a DER certificate as `CN=...,O=...`, attributes in encoded
/// order (unknown types shown as `?`). `None` if the certificate cannot be parsed.
///
/// Certificate ::= SEQUENCE { tbsCertificate, ... }; TBSCertificate ::= SEQUENCE
/// { [0] version OPTIONAL, serialNumber, signature, issuer, validity, subject, ... }.
pub fn certificate_subject(der: &[u8]) -> Option<String> {
    let (_, cert) = der_tlv(&mut Reader::new(der))?;
    let (_, tbs) = der_tlv(&mut Reader::new(cert))?;
    let mut r = Reader::new(tbs);
    let (mut tag, _) = der_tlv(&mut r)?;
    if tag == 0xA0 {
        tag = der_tlv(&mut r)?.0; // serialNumber
    }
    if tag != 0x02 {
        return None;
    }
    der_tlv(&mut r)?; // signature
    der_tlv(&mut r)?; // issuer
    der_tlv(&mut r)?; // validity
    let (_, subject) = der_tlv(&mut r)?;
    // Name ::= SEQUENCE OF SET OF SEQUENCE { type OID, value ANY }.
    let mut parts = Vec::new();
    let mut rdns = Reader::new(subject);
    while rdns.left() > 0 {
        let (_, set) = der_tlv(&mut rdns)?;
        let mut atvs = Reader::new(set);
        while atvs.left() > 0 {
            let (_, atv) = der_tlv(&mut atvs)?;
            let mut a = Reader::new(atv);
            let (_, oid) = der_tlv(&mut a)?;
            let (_, value) = der_tlv(&mut a)?;
            let name = NAME_ATTRIBUTES
                .iter()
                .find(|(o, _)| *o == oid)
                .map_or("?", |(_, n)| n);
            parts.push(format!("{name}={}", String::from_utf8_lossy(value)));
        }
    }
    Some(parts.join(","))
}
