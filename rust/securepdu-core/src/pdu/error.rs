//! Decode and encode errors. Every decode error names the A-ABORT source and
//! reason (PS3.8 Table 9-26) that the state machine sends for it.

use super::codes::{AbortReason, AbortSource};

/// Why bytes from the peer are not a valid PDU.
///
/// The codec is deliberately lenient where the standard says a field is "not
/// tested" or where association negotiation has its own way to refuse a value
/// (bad protocol version, unknown application context, no presentation
/// contexts): those decode and the acceptor answers with A-ASSOCIATE-RJ or a
/// rejected presentation context. What remains here are bytes that cannot be
/// read as the PDU they claim to be; the state machine answers them with
/// A-ABORT (source [`AbortSource::ServiceProvider`], reason [`Self::abort_reason`]).
///
/// Reason 2 (unexpected-PDU) is never produced here: a well-formed PDU that
/// arrives in the wrong state is the state machine's call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The PDU-type byte is not one of the seven PDU types.
    /// Reason 1 (unrecognized-PDU): the standard's exact case.
    #[error("unrecognized PDU type 0x{0:02x}")]
    UnrecognizedPdu(u8),

    /// The PDU-length field exceeds the configured maximum (refused from the
    /// header alone, before the body is buffered).
    /// Reason 6 (invalid-PDU-parameter-value): the PDU-length parameter has a
    /// value this association does not allow (PS3.8 Annex D.1: exceeding the
    /// maximum length "shall be a protocol error").
    #[error("PDU type 0x{pdu_type:02x} declares length {declared}, above the maximum {max}")]
    PduTooLong {
        /// PDU-type byte.
        pdu_type: u8,
        /// Value of the PDU-length field.
        declared: u32,
        /// The configured maximum.
        max: u32,
    },

    /// A PDU, item or field ends before its declared or fixed length.
    /// Reason 6 (invalid-PDU-parameter-value): an enclosing length field is wrong.
    #[error("{what} truncated: needs {needed} bytes, {available} available")]
    Truncated {
        /// Which PDU, item or field.
        what: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },

    /// Bytes follow the end of the PDU given to [`super::Pdu::decode`].
    /// Reason 6 (invalid-PDU-parameter-value): the PDU-length field disagrees with the data.
    #[error("{extra} bytes after the end of the {what}")]
    TrailingBytes {
        /// Which PDU.
        what: &'static str,
        /// How many bytes are left over.
        extra: usize,
    },

    /// A fixed-size PDU or item declares a length other than its defined one
    /// (e.g. an A-RELEASE-RQ PDU-length other than 4, a maximum length sub-item
    /// of other than 4 bytes).
    /// Reason 6 (invalid-PDU-parameter-value): the length field has an invalid value.
    #[error("{what} has length {declared}, expected {expected}")]
    LengthMismatch {
        /// Which PDU or item.
        what: &'static str,
        /// The declared length.
        declared: usize,
        /// The defined length.
        expected: usize,
    },

    /// An item of a type unknown to this codec where only a known one can be
    /// interpreted. The decoder itself never returns this: PS3.8 §9.3.1 says
    /// "items of unrecognized types shall be ignored and skipped", so unknown
    /// items and user-information sub-items are skipped (the latter kept in
    /// `UserInformation::unknown`). It exists for stricter validators built on
    /// the codec. Reason 4 (unrecognized-PDU-parameter).
    #[error("unrecognized item type 0x{item_type:02x} in {within}")]
    UnrecognizedItem {
        /// The enclosing PDU or item.
        within: &'static str,
        /// The item-type byte.
        item_type: u8,
    },

    /// A known item type where it does not belong (a presentation context AC item
    /// in an A-ASSOCIATE-RQ, a second application context item, a second
    /// abstract syntax sub-item, a user information sub-item at the top level, a
    /// second maximum length sub-item...).
    /// Reason 5 (unexpected-PDU-parameter).
    #[error("unexpected item type 0x{item_type:02x} in {within}")]
    UnexpectedItem {
        /// The enclosing PDU or item.
        within: &'static str,
        /// The item-type byte.
        item_type: u8,
    },

    /// A field whose value cannot be interpreted (e.g. a PDV item too short to
    /// hold its presentation context ID and message control header).
    /// Reason 6 (invalid-PDU-parameter-value).
    #[error("invalid {field}: {detail}")]
    InvalidValue {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        detail: String,
    },
}

impl DecodeError {
    /// A-ABORT source to send for this error (always the service-provider).
    pub fn abort_source(&self) -> AbortSource {
        AbortSource::ServiceProvider
    }

    /// A-ABORT reason/diagnostic to send for this error (PS3.8 Table 9-26); see
    /// each variant for why.
    pub fn abort_reason(&self) -> AbortReason {
        match self {
            DecodeError::UnrecognizedPdu(_) => AbortReason::UnrecognizedPdu,
            DecodeError::UnrecognizedItem { .. } => AbortReason::UnrecognizedPduParameter,
            DecodeError::UnexpectedItem { .. } => AbortReason::UnexpectedPduParameter,
            DecodeError::PduTooLong { .. }
            | DecodeError::Truncated { .. }
            | DecodeError::TrailingBytes { .. }
            | DecodeError::LengthMismatch { .. }
            | DecodeError::InvalidValue { .. } => AbortReason::InvalidPduParameterValue,
        }
    }
}

/// Why a PDU value cannot be encoded (a local error: nothing is sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A field holds a value its encoding cannot represent.
    #[error("{field} is invalid: {why}")]
    InvalidField {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },

    /// A field or item is longer than its length field or the standard allows
    /// (AE title over 16 characters, UID over 64, item over 65535 bytes...).
    #[error("{field} is {len} long, the maximum is {max}")]
    TooLong {
        /// Which field or item.
        field: &'static str,
        /// Its length (characters for text, bytes otherwise).
        len: usize,
        /// The maximum.
        max: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_variants() -> Vec<(DecodeError, AbortReason)> {
        vec![
            (
                DecodeError::UnrecognizedPdu(9),
                AbortReason::UnrecognizedPdu,
            ),
            (
                DecodeError::PduTooLong {
                    pdu_type: 4,
                    declared: 10,
                    max: 5,
                },
                AbortReason::InvalidPduParameterValue,
            ),
            (
                DecodeError::Truncated {
                    what: "x",
                    needed: 2,
                    available: 1,
                },
                AbortReason::InvalidPduParameterValue,
            ),
            (
                DecodeError::TrailingBytes {
                    what: "x",
                    extra: 1,
                },
                AbortReason::InvalidPduParameterValue,
            ),
            (
                DecodeError::LengthMismatch {
                    what: "x",
                    declared: 5,
                    expected: 4,
                },
                AbortReason::InvalidPduParameterValue,
            ),
            (
                DecodeError::UnrecognizedItem {
                    within: "x",
                    item_type: 0x99,
                },
                AbortReason::UnrecognizedPduParameter,
            ),
            (
                DecodeError::UnexpectedItem {
                    within: "x",
                    item_type: 0x21,
                },
                AbortReason::UnexpectedPduParameter,
            ),
            (
                DecodeError::InvalidValue {
                    field: "x",
                    detail: "y".into(),
                },
                AbortReason::InvalidPduParameterValue,
            ),
        ]
    }

    #[test]
    fn every_variant_maps_to_a_reason() {
        for (e, reason) in all_variants() {
            assert_eq!(e.abort_reason(), reason, "{e}");
            assert_eq!(e.abort_source(), AbortSource::ServiceProvider);
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn reason_codes_are_table_9_26() {
        let codes: Vec<u8> = all_variants()
            .iter()
            .map(|(e, _)| e.abort_reason() as u8)
            .collect();
        assert_eq!(codes, vec![1, 6, 6, 6, 6, 4, 5, 6]);
        assert_eq!(AbortSource::ServiceProvider as u8, 2);
    }
}
