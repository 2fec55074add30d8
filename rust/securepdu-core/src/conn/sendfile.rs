//! Zero-copy sending of stored files over plain TCP (Linux): sendfile(2) moves
//! data-set bytes from the page cache to the socket without passing through
//! user space. TLS and integrity tagging need the bytes in user space, so they
//! keep the read-and-write path.

use std::fs::File;
use std::io;

use super::Connection;
use crate::tls::Stream;
use crate::transport::NetError;

impl Connection<Stream> {
    /// Whether the stream is plain TCP, so file bytes can go to it with
    /// [`Self::send_file_payload`].
    pub fn is_plain_tcp(&self) -> bool {
        matches!(self.stream, Stream::Plain(_))
    }

    /// Holds (`true`) or releases (`false`) partial segments on a plain TCP
    /// stream (TCP_CORK), so a 12-byte PDV header does not leave as a segment of
    /// its own; releasing sends what is held. Best effort: whether it was set.
    pub fn set_cork(&self, on: bool) -> bool {
        match &self.stream {
            Stream::Plain(tcp) => rustix::net::sockopt::set_tcp_cork(tcp, on).is_ok(),
            Stream::Tls(_) => false,
        }
    }

    /// Writes exactly `len` bytes of `file` from `*offset` (advanced past what
    /// was sent) with sendfile(2): the payload after
    /// [`Connection::send_pdv_header`]. Short transfers are resumed; a write
    /// timeout is [`NetError::Timeout`], as for other writes. A file that ends
    /// early is an error and leaves the stream unwritable: the peer has been
    /// promised `len` bytes, so not even an A-ABORT may follow; aborting then
    /// only closes the connection.
    pub fn send_file_payload(
        &mut self,
        file: &File,
        offset: &mut u64,
        len: usize,
    ) -> Result<(), NetError> {
        let Stream::Plain(tcp) = &self.stream else {
            return Err(NetError::InvalidArgument(
                "sendfile needs a plain TCP connection".into(),
            ));
        };
        if self.write_broken || self.closed {
            self.write_broken = true;
            return Err(NetError::Io(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the connection can no longer be written to",
            )));
        }
        let mut left = len;
        while left > 0 {
            match rustix::fs::sendfile(tcp, file, Some(offset), left) {
                Ok(0) => {
                    self.write_broken = true;
                    return Err(NetError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the file ended {left} bytes before the end of its data set"),
                    )));
                }
                Ok(n) => left = left.saturating_sub(n),
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return self.write_failed(io::Error::from(e)),
            }
        }
        Ok(())
    }
}
