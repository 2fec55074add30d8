//! PDU codec for the seven PDU types of PS3.8 §9.3, with their items and the
//! user-information sub-items of PS3.7 Annex D.3.3.
//!
//! Values in, bytes out ([`Pdu::encode`]); bytes in, values or a typed
//! [`DecodeError`] out ([`Pdu::decode`]). [`Framer`] cuts a byte stream into whole
//! PDUs and refuses one whose declared length exceeds the configured maximum
//! before buffering its body.

mod associate;
mod codes;
mod error;
mod framer;
mod pdata;
mod user_info;

pub use associate::{AssociateAc, AssociateRj, AssociateRq, PresentationContextAc, PresentationContextRq};
pub use codes::{
    AbortReason, AbortSource, PresentationResult, RejectResult, RejectSource, APPLICATION_CONTEXT_NAME,
    PROTOCOL_VERSION,
};
pub use error::{DecodeError, EncodeError};
pub use framer::Framer;
pub use pdata::{PData, Pdv};
pub use user_info::{
    AsyncOpsWindow, RoleSelection, SopClassCommonExtended, SopClassExtended, UnknownSubItem, UserIdentityAc,
    UserIdentityRq, UserInformation,
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
    /// Decodes exactly one whole PDU (header and body). (Stub.)
    pub fn decode(buf: bytes::Bytes) -> Result<Pdu, DecodeError> {
        let _ = buf;
        todo!()
    }

    /// Encodes this PDU. (Stub.)
    pub fn encode(&self) -> Result<bytes::Bytes, EncodeError> {
        todo!()
    }
}
