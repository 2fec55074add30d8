//! Cuts a byte stream into whole PDUs. (Stub: helper implements.)

use bytes::BytesMut;

use super::{DecodeError, Pdu};

/// Stream framer: feed bytes, take whole PDUs.
#[derive(Debug)]
pub struct Framer {
    max_len: u32,
    buf: BytesMut,
}

impl Framer {
    /// A framer refusing PDUs whose declared length exceeds `max_len`.
    pub fn new(max_len: u32) -> Self {
        Self { max_len, buf: BytesMut::new() }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Next whole PDU, `Ok(None)` when more bytes are needed.
    pub fn next_pdu(&mut self) -> Result<Option<Pdu>, DecodeError> {
        let _ = self.max_len;
        todo!()
    }
}
