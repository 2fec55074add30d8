//! Result, source and reason codes of PS3.8 Tables 9-21 and 9-26, and the
//! constants every association uses.

/// The only protocol version defined by PS3.8 (bit 0 set).
pub const PROTOCOL_VERSION: u16 = 0x0001;

/// DICOM Application Context Name (PS3.7 Annex A.2.1).
pub const APPLICATION_CONTEXT_NAME: &str = "1.2.840.10008.3.1.1.1";

/// A-ABORT source (PS3.8 Table 9-26).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AbortSource {
    /// DICOM UL service-user (initiated abort).
    ServiceUser = 0,
    /// Reserved value 1.
    Reserved = 1,
    /// DICOM UL service-provider (initiated abort).
    ServiceProvider = 2,
}

/// A-ABORT reason when the service-provider aborted (PS3.8 Table 9-26).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AbortReason {
    /// 0: reason-not-specified.
    NotSpecified = 0,
    /// 1: unrecognized-PDU.
    UnrecognizedPdu = 1,
    /// 2: unexpected-PDU.
    UnexpectedPdu = 2,
    /// 4: unrecognized-PDU-parameter.
    UnrecognizedPduParameter = 4,
    /// 5: unexpected-PDU-parameter.
    UnexpectedPduParameter = 5,
    /// 6: invalid-PDU-parameter-value.
    InvalidPduParameterValue = 6,
}

/// A-ASSOCIATE-RJ result (PS3.8 Table 9-21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RejectResult {
    /// 1: rejected-permanent.
    Permanent = 1,
    /// 2: rejected-transient.
    Transient = 2,
}

/// A-ASSOCIATE-RJ source (PS3.8 Table 9-21). Reasons depend on the source:
/// service-user: 1 no-reason-given, 2 application-context-name-not-supported,
/// 3 calling-AE-title-not-recognized, 7 called-AE-title-not-recognized;
/// service-provider (ACSE): 1 no-reason-given, 2 protocol-version-not-supported;
/// service-provider (presentation): 1 temporary-congestion, 2 local-limit-exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RejectSource {
    /// 1: DICOM UL service-user.
    ServiceUser = 1,
    /// 2: DICOM UL service-provider (ACSE related function).
    ServiceProviderAcse = 2,
    /// 3: DICOM UL service-provider (presentation related function).
    ServiceProviderPresentation = 3,
}

/// Presentation context result in an A-ASSOCIATE-AC (PS3.8 Table 9-18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PresentationResult {
    /// 0: acceptance.
    Acceptance = 0,
    /// 1: user-rejection.
    UserRejection = 1,
    /// 2: no-reason (provider rejection).
    NoReason = 2,
    /// 3: abstract-syntax-not-supported (provider rejection).
    AbstractSyntaxNotSupported = 3,
    /// 4: transfer-syntaxes-not-supported (provider rejection).
    TransferSyntaxesNotSupported = 4,
}

/// `TryFrom<u8>` for the code enums; the error is the unknown raw value.
macro_rules! try_from_u8 {
    ($t:ty { $($v:ident),+ $(,)? }) => {
        impl TryFrom<u8> for $t {
            type Error = u8;

            fn try_from(value: u8) -> Result<Self, u8> {
                $(if value == <$t>::$v as u8 {
                    return Ok(<$t>::$v);
                })+
                Err(value)
            }
        }

        impl From<$t> for u8 {
            fn from(value: $t) -> u8 {
                value as u8
            }
        }
    };
}

try_from_u8!(AbortSource {
    ServiceUser,
    Reserved,
    ServiceProvider
});
try_from_u8!(AbortReason {
    NotSpecified,
    UnrecognizedPdu,
    UnexpectedPdu,
    UnrecognizedPduParameter,
    UnexpectedPduParameter,
    InvalidPduParameterValue,
});
try_from_u8!(RejectResult {
    Permanent,
    Transient
});
try_from_u8!(RejectSource {
    ServiceUser,
    ServiceProviderAcse,
    ServiceProviderPresentation
});
try_from_u8!(PresentationResult {
    Acceptance,
    UserRejection,
    NoReason,
    AbstractSyntaxNotSupported,
    TransferSyntaxesNotSupported,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_u8() {
        for b in 0..=255u8 {
            if let Ok(v) = AbortReason::try_from(b) {
                assert_eq!(u8::from(v), b);
            }
            if let Ok(v) = PresentationResult::try_from(b) {
                assert_eq!(u8::from(v), b);
            }
        }
        assert_eq!(AbortReason::try_from(3), Err(3));
        assert_eq!(AbortSource::try_from(2), Ok(AbortSource::ServiceProvider));
        assert_eq!(
            RejectSource::try_from(3),
            Ok(RejectSource::ServiceProviderPresentation)
        );
        assert_eq!(RejectResult::try_from(0), Err(0));
        assert_eq!(
            PresentationResult::try_from(4),
            Ok(PresentationResult::TransferSyntaxesNotSupported)
        );
    }
}
