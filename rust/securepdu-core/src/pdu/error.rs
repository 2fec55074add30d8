//! Decode and encode errors. Every decode error names the A-ABORT source and
//! reason (PS3.8 Table 9-26) that the state machine sends for it.

use super::codes::{AbortReason, AbortSource};

/// Why bytes from the peer are not a valid PDU. (Stub: helper fills variants.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The first byte is not one of the seven PDU types.
    #[error("unrecognized PDU type 0x{0:02x}")]
    UnrecognizedPdu(u8),
}

impl DecodeError {
    /// A-ABORT source to send for this error (always the service-provider).
    pub fn abort_source(&self) -> AbortSource {
        AbortSource::ServiceProvider
    }

    /// A-ABORT reason/diagnostic to send for this error.
    pub fn abort_reason(&self) -> AbortReason {
        match self {
            DecodeError::UnrecognizedPdu(_) => AbortReason::UnrecognizedPdu,
        }
    }
}

/// Why a PDU value cannot be encoded (a local error: nothing is sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A field does not fit its length field or its allowed range.
    #[error("{field} is invalid: {why}")]
    InvalidField {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
}
