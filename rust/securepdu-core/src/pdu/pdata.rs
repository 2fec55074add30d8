//! P-DATA-TF PDU (PS3.8 §9.3.5) and its presentation data value items.

use bytes::{BufMut, Bytes, BytesMut};

use super::{pdu_type, DecodeError, EncodeError, PDU_HEADER_LEN};
use crate::codec::Reader;

/// P-DATA-TF PDU: one or more presentation data values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PData {
    /// The PDV items, in order.
    pub pdvs: Vec<Pdv>,
}

/// Presentation data value item (PS3.8 §9.3.5.1 and Annex E).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdv {
    /// Presentation context ID (odd, 1-255).
    pub context_id: u8,
    /// Message control header bit 0: command (true) or data set (false) fragment.
    pub is_command: bool,
    /// Message control header bit 1: last fragment of the command or data set.
    pub is_last: bool,
    /// The fragment; a slice of the received PDU buffer, not a copy.
    pub data: Bytes,
}

/// Bytes before the data of a P-DATA-TF PDU carrying one PDV: PDU header (6),
/// PDV item length (4), presentation context ID (1), message control header (1).
pub const SINGLE_PDV_HEADER_LEN: usize = PDU_HEADER_LEN + PDV_OVERHEAD;

/// Bytes a PDV item adds to its data: item length (4), context ID (1), message control header (1).
pub const PDV_OVERHEAD: usize = 6;

/// Message control header (PS3.8 Annex E.2): bit 0 command, bit 1 last fragment.
fn message_control_header(is_command: bool, is_last: bool) -> u8 {
    u8::from(is_command) | (u8::from(is_last) << 1)
}

impl Pdv {
    /// Encoded size of this PDV item, with its 4-byte length field.
    pub fn encoded_len(&self) -> usize {
        PDV_OVERHEAD.saturating_add(self.data.len())
    }
}

impl PData {
    /// Size of the P-DATA-TF variable field (the PDU-length value).
    pub fn body_len(&self) -> usize {
        self.pdvs
            .iter()
            .fold(0usize, |acc, p| acc.saturating_add(p.encoded_len()))
    }

    /// Size of the whole encoded PDU, header included.
    pub fn encoded_len(&self) -> usize {
        PDU_HEADER_LEN.saturating_add(self.body_len())
    }

    /// The 12 bytes preceding `data_len` bytes of data in a P-DATA-TF PDU holding a
    /// single PDV, so a transport can send header and payload without copying the payload.
    pub fn header_for_single_pdv(
        context_id: u8,
        is_command: bool,
        is_last: bool,
        data_len: usize,
    ) -> Result<[u8; SINGLE_PDV_HEADER_LEN], EncodeError> {
        let too_long = || EncodeError::TooLong {
            field: "PDV data",
            len: data_len,
            max: (u32::MAX as usize).saturating_sub(PDV_OVERHEAD),
        };
        let item_len =
            u32::try_from(data_len.checked_add(2).ok_or_else(too_long)?).map_err(|_| too_long())?;
        let pdu_len = item_len.checked_add(4).ok_or_else(too_long)?;
        let mut h = [0u8; SINGLE_PDV_HEADER_LEN];
        let [t, _, l0, l1, l2, l3, i0, i1, i2, i3, cid, mch] = &mut h;
        *t = pdu_type::P_DATA_TF;
        [*l0, *l1, *l2, *l3] = pdu_len.to_be_bytes();
        [*i0, *i1, *i2, *i3] = item_len.to_be_bytes();
        *cid = context_id;
        *mch = message_control_header(is_command, is_last);
        Ok(h)
    }

    /// Decodes a P-DATA-TF body (PS3.8 Table 9-22): one or more PDV items, each
    /// item-length (4), presentation-context-ID (1), presentation-data-value whose first
    /// byte is the message control header (Annex E.2; bits 2-7 not tested).
    /// The PDV data are slices of `body`, not copies. An empty body decodes as no PDVs
    /// (the standard wants at least one; nothing is lost by tolerating none).
    pub(crate) fn decode_body(body: &bytes::Bytes) -> Result<Self, DecodeError> {
        const WHAT: &str = "presentation data value item";
        let mut r = Reader::new(body);
        let mut pdvs = Vec::new();
        while !r.is_empty() {
            let available = r.left();
            let len = r.u32_be().ok_or(DecodeError::Truncated {
                what: WHAT,
                needed: 4,
                available,
            })?;
            let len = usize::try_from(len).map_err(|_| DecodeError::InvalidValue {
                field: "PDV item length",
                detail: format!("{len} does not fit in memory"),
            })?;
            if len < 2 {
                return Err(DecodeError::InvalidValue {
                    field: "PDV item length",
                    detail: format!(
                        "{len} is too short for the context ID and message control header"
                    ),
                });
            }
            let start = r.position();
            let left = r.left();
            let mut v = r.sub(len).ok_or(DecodeError::Truncated {
                what: WHAT,
                needed: len,
                available: left,
            })?;
            let context_id = v.u8().ok_or(DecodeError::Truncated {
                what: WHAT,
                needed: 2,
                available: 0,
            })?;
            let mch = v.u8().ok_or(DecodeError::Truncated {
                what: WHAT,
                needed: 2,
                available: 1,
            })?;
            pdvs.push(Pdv {
                context_id,
                is_command: mch & 0x01 != 0,
                is_last: mch & 0x02 != 0,
                data: body.slice(start + 2..start + len),
            });
        }
        Ok(PData { pdvs })
    }

    /// Appends the body (after the PDU header).
    pub(crate) fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        for pdv in &self.pdvs {
            let item_len = u32::try_from(pdv.data.len().saturating_add(2)).map_err(|_| {
                EncodeError::TooLong {
                    field: "PDV data",
                    len: pdv.data.len(),
                    max: (u32::MAX as usize).saturating_sub(2),
                }
            })?;
            out.put_u32(item_len);
            out.put_u8(pdv.context_id);
            out.put_u8(message_control_header(pdv.is_command, pdv.is_last));
            out.put_slice(&pdv.data);
        }
        Ok(())
    }
}

/// Appends the 12-byte header of a one-PDV P-DATA-TF PDU (see
/// [`PData::header_for_single_pdv`]); the caller sends `data_len` bytes of data after it.
pub fn write_pdv_header(
    out: &mut BytesMut,
    context_id: u8,
    is_command: bool,
    is_last: bool,
    data_len: usize,
) -> Result<(), EncodeError> {
    out.put_slice(&PData::header_for_single_pdv(
        context_id, is_command, is_last, data_len,
    )?);
    Ok(())
}
