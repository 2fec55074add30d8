//! PDU codec for the seven PDU types of PS3.8 §9.3, with their items and the
//! user-information sub-items of PS3.7 Annex D.3.3.
//!
//! Values in, bytes out ([`Pdu::encode`]); bytes in, values or a typed
//! [`DecodeError`] out ([`Pdu::decode`]). [`Framer`] cuts a byte stream into whole
//! PDUs and refuses one whose declared length exceeds the configured maximum
//! before buffering its body.
//!
//! Receiving rules (what is lenient and why):
//! - reserved fields are sent as 0 and never tested (PS3.8 §9.3); message control
//!   header bits 2-7 are ignored;
//! - items of unrecognized types are skipped (PS3.8 §9.3.1: "shall be ignored and
//!   skipped"); unknown user information sub-items are kept in
//!   [`UserInformation::unknown`]; a *known* item type in the wrong place (a
//!   presentation context AC item in an RQ, a second application context) is
//!   [`DecodeError::UnexpectedItem`];
//! - values negotiation can refuse are decoded, not rejected: any protocol version,
//!   any presentation context ID, a missing application context (decoded as ""),
//!   no presentation contexts, a missing user information item (its default), a
//!   missing abstract syntax (""), an empty P-DATA-TF;
//! - AE titles are decoded as ISO 8859-1 with leading and trailing spaces stripped
//!   (not significant); UIDs as ISO 8859-1 with trailing NULs and spaces stripped,
//!   so any bytes decode and re-encode.
//!
//! Sending: AE titles are space-padded to 16 bytes, UIDs unpadded (at most 64
//! characters), text must be ISO 8859-1, and user information sub-items go out
//! in the order 0x51, 0x52, 0x55, 0x54, 0x58, 0x59, 0x53, 0x56, 0x57, unknown.

mod associate;
mod codes;
mod error;
mod framer;
mod pdata;
mod user_info;
mod wire;

#[cfg(test)]
pub(crate) mod strategies;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::Reader;
use wire::expect_len;

pub use associate::{
    AssociateAc, AssociateRj, AssociateRq, PresentationContextAc, PresentationContextRq,
};
pub use codes::{
    AbortReason, AbortSource, PresentationResult, RejectResult, RejectSource,
    APPLICATION_CONTEXT_NAME, PROTOCOL_VERSION,
};
pub use error::{DecodeError, EncodeError};
pub use framer::Framer;
pub use pdata::{write_pdv_header, PData, Pdv, PDV_OVERHEAD, SINGLE_PDV_HEADER_LEN};
pub use user_info::{
    AsyncOpsWindow, RoleSelection, SopClassCommonExtended, SopClassExtended, UnknownSubItem,
    UserIdentityAc, UserIdentityRq, UserInformation,
};

/// PDU type codes (first byte of every PDU), PS3.8 Table 9-11 ff.
pub mod pdu_type {
    /// A-ASSOCIATE-RQ.
    pub const ASSOCIATE_RQ: u8 = 0x01;
    /// A-ASSOCIATE-AC.
    pub const ASSOCIATE_AC: u8 = 0x02;
    /// A-ASSOCIATE-RJ.
    pub const ASSOCIATE_RJ: u8 = 0x03;
    /// P-DATA-TF.
    pub const P_DATA_TF: u8 = 0x04;
    /// A-RELEASE-RQ.
    pub const RELEASE_RQ: u8 = 0x05;
    /// A-RELEASE-RP.
    pub const RELEASE_RP: u8 = 0x06;
    /// A-ABORT.
    pub const ABORT: u8 = 0x07;
}

/// Length of the fixed PDU header: type (1), reserved (1), length (4).
pub const PDU_HEADER_LEN: usize = 6;

/// One Upper Layer protocol data unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    /// A-ASSOCIATE-RQ (type 0x01).
    AssociateRq(AssociateRq),
    /// A-ASSOCIATE-AC (type 0x02).
    AssociateAc(AssociateAc),
    /// A-ASSOCIATE-RJ (type 0x03).
    AssociateRj(AssociateRj),
    /// P-DATA-TF (type 0x04).
    PData(PData),
    /// A-RELEASE-RQ (type 0x05).
    ReleaseRq,
    /// A-RELEASE-RP (type 0x06).
    ReleaseRp,
    /// A-ABORT (type 0x07).
    Abort(Abort),
}

/// A-ABORT PDU (PS3.8 §9.3.8): who aborted and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Abort {
    /// Source (Table 9-26): 0 service-user, 2 service-provider (raw, lossless).
    pub source: u8,
    /// Reason/diagnostic; significant only when the provider aborted.
    pub reason: u8,
}

impl Pdu {
    /// Decodes exactly one whole PDU: the 6-byte header (PDU-type, reserved, PDU-length)
    /// and a body of exactly PDU-length bytes. Missing or extra bytes are errors.
    /// P-DATA-TF data are zero-copy slices of `buf`.
    pub fn decode(buf: Bytes) -> Result<Pdu, DecodeError> {
        let mut r = Reader::new(&buf);
        let available = r.left();
        let truncated = || DecodeError::Truncated {
            what: "PDU header",
            needed: PDU_HEADER_LEN,
            available,
        };
        let ty = r.u8().ok_or_else(truncated)?;
        if !is_pdu_type(ty) {
            return Err(DecodeError::UnrecognizedPdu(ty));
        }
        let _reserved = r.u8().ok_or_else(truncated)?;
        let len = r.u32_be().ok_or_else(truncated)?;
        let what = pdu_name(ty);
        let len = usize::try_from(len).map_err(|_| DecodeError::Truncated {
            what,
            needed: usize::MAX,
            available,
        })?;
        let left = r.left();
        if left < len {
            return Err(DecodeError::Truncated {
                what,
                needed: len,
                available: left,
            });
        }
        if left > len {
            return Err(DecodeError::TrailingBytes {
                what,
                extra: left - len,
            });
        }
        Pdu::decode_body(ty, buf.slice(PDU_HEADER_LEN..))
    }

    /// Decodes a PDU body (everything after the 6-byte header) of type `pdu_type`.
    pub fn decode_body(pdu_type: u8, body: Bytes) -> Result<Pdu, DecodeError> {
        Ok(match pdu_type {
            pdu_type::ASSOCIATE_RQ => Pdu::AssociateRq(AssociateRq::decode_body(&body)?),
            pdu_type::ASSOCIATE_AC => Pdu::AssociateAc(AssociateAc::decode_body(&body)?),
            pdu_type::ASSOCIATE_RJ => Pdu::AssociateRj(AssociateRj::decode_body(&body)?),
            pdu_type::P_DATA_TF => Pdu::PData(PData::decode_body(&body)?),
            // A-RELEASE-RQ/RP (PS3.8 Tables 9-24, 9-25): 4 reserved bytes, not tested.
            pdu_type::RELEASE_RQ => {
                expect_len(&Reader::new(&body), 4, "A-RELEASE-RQ")?;
                Pdu::ReleaseRq
            }
            pdu_type::RELEASE_RP => {
                expect_len(&Reader::new(&body), 4, "A-RELEASE-RP")?;
                Pdu::ReleaseRp
            }
            pdu_type::ABORT => Pdu::Abort(Abort::decode_body(&body)?),
            other => return Err(DecodeError::UnrecognizedPdu(other)),
        })
    }

    /// Encodes this PDU into a new buffer.
    pub fn encode(&self) -> Result<Bytes, EncodeError> {
        let mut out = BytesMut::with_capacity(self.size_hint());
        self.encode_into(&mut out)?;
        Ok(out.freeze())
    }

    /// Appends this PDU to `out`. On error `out` is left as it was.
    pub fn encode_into(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        let result = self.encode_unchecked(out, start);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_unchecked(&self, out: &mut BytesMut, start: usize) -> Result<(), EncodeError> {
        out.reserve(self.size_hint());
        out.put_u8(self.pdu_type());
        out.put_u8(0);
        out.put_u32(0);
        match self {
            Pdu::AssociateRq(rq) => rq.encode_body(out)?,
            Pdu::AssociateAc(ac) => ac.encode_body(out)?,
            Pdu::AssociateRj(rj) => rj.encode_body(out),
            Pdu::PData(p) => p.encode_body(out)?,
            Pdu::ReleaseRq | Pdu::ReleaseRp => out.put_u32(0),
            Pdu::Abort(a) => a.encode_body(out),
        }
        let len = out.len() - start - PDU_HEADER_LEN;
        let len32 = u32::try_from(len).map_err(|_| EncodeError::TooLong {
            field: "PDU",
            len,
            max: u32::MAX as usize,
        })?;
        if let Some(slot) = out.get_mut(start + 2..start + PDU_HEADER_LEN) {
            slot.copy_from_slice(&len32.to_be_bytes());
        }
        Ok(())
    }

    /// Rough encoded size, to reserve the output buffer once.
    fn size_hint(&self) -> usize {
        match self {
            Pdu::PData(p) => p.encoded_len(),
            Pdu::AssociateRq(_) | Pdu::AssociateAc(_) => 512,
            _ => PDU_HEADER_LEN + 4,
        }
    }

    /// The PDU-type byte.
    pub fn pdu_type(&self) -> u8 {
        match self {
            Pdu::AssociateRq(_) => pdu_type::ASSOCIATE_RQ,
            Pdu::AssociateAc(_) => pdu_type::ASSOCIATE_AC,
            Pdu::AssociateRj(_) => pdu_type::ASSOCIATE_RJ,
            Pdu::PData(_) => pdu_type::P_DATA_TF,
            Pdu::ReleaseRq => pdu_type::RELEASE_RQ,
            Pdu::ReleaseRp => pdu_type::RELEASE_RP,
            Pdu::Abort(_) => pdu_type::ABORT,
        }
    }

    /// The PDU's name as PS3.8 writes it ("A-ASSOCIATE-RQ", "P-DATA-TF", ...).
    pub fn name(&self) -> &'static str {
        pdu_name(self.pdu_type())
    }
}

/// Name of a PDU type byte ("unrecognized PDU" for unknown ones).
pub fn pdu_name(ty: u8) -> &'static str {
    match ty {
        pdu_type::ASSOCIATE_RQ => "A-ASSOCIATE-RQ",
        pdu_type::ASSOCIATE_AC => "A-ASSOCIATE-AC",
        pdu_type::ASSOCIATE_RJ => "A-ASSOCIATE-RJ",
        pdu_type::P_DATA_TF => "P-DATA-TF",
        pdu_type::RELEASE_RQ => "A-RELEASE-RQ",
        pdu_type::RELEASE_RP => "A-RELEASE-RP",
        pdu_type::ABORT => "A-ABORT",
        _ => "unrecognized PDU",
    }
}

/// Whether `ty` is one of the seven PDU types.
pub fn is_pdu_type(ty: u8) -> bool {
    (pdu_type::ASSOCIATE_RQ..=pdu_type::ABORT).contains(&ty)
}

impl Abort {
    /// Decodes an A-ABORT body (PS3.8 Table 9-26): reserved (2), source (1), reason/diag. (1).
    fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        const WHAT: &str = "A-ABORT";
        let mut r = Reader::new(body);
        expect_len(&r, 4, WHAT)?;
        let bytes: [u8; 4] = r.array().ok_or(DecodeError::Truncated {
            what: WHAT,
            needed: 4,
            available: 0,
        })?;
        let [_, _, source, reason] = bytes;
        Ok(Abort { source, reason })
    }

    fn encode_body(&self, out: &mut BytesMut) {
        out.put_slice(&[0, 0, self.source, self.reason]);
    }

    /// A service-provider abort (source 2) with `reason`.
    pub fn provider(reason: AbortReason) -> Self {
        Abort {
            source: AbortSource::ServiceProvider as u8,
            reason: reason as u8,
        }
    }

    /// A service-user abort (source 0, reason 0).
    pub fn user() -> Self {
        Abort {
            source: AbortSource::ServiceUser as u8,
            reason: 0,
        }
    }
}

impl From<&DecodeError> for Abort {
    /// The A-ABORT to send in answer to a decode error.
    fn from(e: &DecodeError) -> Self {
        Abort {
            source: e.abort_source() as u8,
            reason: e.abort_reason() as u8,
        }
    }
}
