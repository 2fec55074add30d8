//! Cuts a byte stream into whole PDUs, refusing an unknown or over-long PDU from
//! its 6-byte header, before its body is buffered.

use bytes::BytesMut;

use super::{is_pdu_type, DecodeError, Pdu, PDU_HEADER_LEN};

/// Stream framer: feed bytes (or read into [`Framer::buffer_mut`]), take whole PDUs.
///
/// After it returns an error the framer is poisoned: every later call returns the
/// same error and received bytes are dropped (the association is being aborted).
#[derive(Debug)]
pub struct Framer {
    max_pdu_len: u32,
    buf: BytesMut,
    error: Option<DecodeError>,
}

impl Framer {
    /// A framer refusing PDUs whose PDU-length field exceeds `max_pdu_len` (a real
    /// cap: 0 refuses every PDU with a body).
    pub fn new(max_pdu_len: u32) -> Self {
        Self {
            max_pdu_len,
            buf: BytesMut::new(),
            error: None,
        }
    }

    /// The current maximum PDU-length value.
    pub fn max_pdu_len(&self) -> u32 {
        self.max_pdu_len
    }

    /// Changes the maximum (e.g. to the negotiated value). The check runs on every
    /// call, so it also applies to a PDU whose body is still being buffered.
    pub fn set_max_pdu_len(&mut self, max_pdu_len: u32) {
        self.max_pdu_len = max_pdu_len;
    }

    /// Appends received bytes (dropped once the framer is poisoned).
    pub fn feed(&mut self, data: &[u8]) {
        if self.error.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// The receive buffer, for a transport to read into directly (append only).
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes received and not yet handed out as PDUs.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes still missing before the next call can make progress: the rest of the
    /// header, or the rest of the PDU once its header is in (0 when a whole PDU is
    /// buffered). A hint for sizing reads; trust it only up to your own cap.
    pub fn needed(&self) -> usize {
        match self.header() {
            Some((_, len)) => PDU_HEADER_LEN
                .saturating_add(len as usize)
                .saturating_sub(self.buf.len()),
            None => PDU_HEADER_LEN - self.buf.len().min(PDU_HEADER_LEN),
        }
    }

    /// The error the framer is poisoned with, if any.
    pub fn error(&self) -> Option<&DecodeError> {
        self.error.as_ref()
    }

    fn header(&self) -> Option<(u8, u32)> {
        let h: [u8; PDU_HEADER_LEN] = self.buf.get(..PDU_HEADER_LEN)?.try_into().ok()?;
        let [ty, _, a, b, c, d] = h;
        Some((ty, u32::from_be_bytes([a, b, c, d])))
    }

    /// Next whole PDU; `Ok(None)` when more bytes are needed.
    ///
    /// The PDU-type byte is checked as soon as it arrives and the PDU-length as soon
    /// as the header is complete, so an unknown or too-long PDU is refused without
    /// buffering its body.
    pub fn next_pdu(&mut self) -> Result<Option<Pdu>, DecodeError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let result = self.try_next();
        if let Err(e) = &result {
            self.error = Some(e.clone());
            self.buf = BytesMut::new();
        }
        result
    }

    fn try_next(&mut self) -> Result<Option<Pdu>, DecodeError> {
        let Some(&ty) = self.buf.first() else {
            return Ok(None);
        };
        if !is_pdu_type(ty) {
            return Err(DecodeError::UnrecognizedPdu(ty));
        }
        let Some((_, len)) = self.header() else {
            return Ok(None);
        };
        if len > self.max_pdu_len {
            return Err(DecodeError::PduTooLong {
                pdu_type: ty,
                declared: len,
                max: self.max_pdu_len,
            });
        }
        let total = PDU_HEADER_LEN.saturating_add(len as usize);
        if self.buf.len() < total {
            return Ok(None);
        }
        let mut pdu = self.buf.split_to(total).freeze();
        let body = pdu.split_off(PDU_HEADER_LEN);
        Pdu::decode_body(ty, body).map(Some)
    }
}
