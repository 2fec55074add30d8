//! DIMSE status codes (PS3.7 Annex C) and their classification.
//!
//! Status (0000,0900) is a US; PS3.7 Annex C groups its values into Success, Warning,
//! Failure, Cancel and Pending. Service classes (PS3.4) assign the further meanings;
//! the C-STORE ones (PS3.4 Table B.2-1) are listed here as ranges.

/// Success.
pub const SUCCESS: u16 = 0x0000;

/// Warning: coercion of data elements (PS3.4 Table B.2-1).
pub const WARNING_COERCION_OF_DATA_ELEMENTS: u16 = 0xB000;
/// Warning: elements discarded (PS3.4 Table B.2-1).
pub const WARNING_ELEMENTS_DISCARDED: u16 = 0xB006;
/// Warning: data set does not match SOP class (PS3.4 Table B.2-1).
pub const WARNING_DATASET_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xB007;
/// Warning: attribute list error.
pub const WARNING_ATTRIBUTE_LIST_ERROR: u16 = 0x0107;
/// Warning: attribute value out of range.
pub const WARNING_ATTRIBUTE_VALUE_OUT_OF_RANGE: u16 = 0x0116;

/// Failure: processing failure.
pub const PROCESSING_FAILURE: u16 = 0x0110;
/// Failure: no such SOP instance.
pub const NO_SUCH_SOP_INSTANCE: u16 = 0x0112;
/// Failure: invalid SOP instance.
pub const INVALID_SOP_INSTANCE: u16 = 0x0117;
/// Failure: no such SOP class.
pub const NO_SUCH_SOP_CLASS: u16 = 0x0118;
/// Failure: duplicate SOP instance.
pub const DUPLICATE_SOP_INSTANCE: u16 = 0x0111;
/// Failure: missing attribute.
pub const MISSING_ATTRIBUTE: u16 = 0x0120;
/// Refused: SOP class not supported.
pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
/// Refused: not authorized.
pub const NOT_AUTHORIZED: u16 = 0x0124;
/// Failure: duplicate invocation.
pub const DUPLICATE_INVOCATION: u16 = 0x0210;
/// Failure: unrecognized operation, the answer to an unknown command.
pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;
/// Failure: mistyped argument.
pub const MISTYPED_ARGUMENT: u16 = 0x0212;
/// Failure: resource limitation.
pub const RESOURCE_LIMITATION: u16 = 0x0213;

/// Refused: out of resources, first code of the A7xx range (PS3.4 Table B.2-1).
pub const OUT_OF_RESOURCES: u16 = 0xA700;
/// Error: data set does not match SOP class, first code of the A9xx range.
pub const DATASET_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
/// Error: cannot understand, first code of the Cxxx range.
pub const CANNOT_UNDERSTAND: u16 = 0xC000;

/// Cancel.
pub const CANCEL: u16 = 0xFE00;
/// Pending.
pub const PENDING: u16 = 0xFF00;
/// Pending with warnings: optional keys not supported (PS3.4 C-FIND).
pub const PENDING_WARNING: u16 = 0xFF01;

/// The general meaning of a status code (PS3.7 Annex C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusCategory {
    /// 0000.
    Success,
    /// 0001, Bxxx, 0107, 0116.
    Warning,
    /// Everything else, including codes no standard assigns: an unknown status must
    /// not be mistaken for success.
    Failure,
    /// FE00.
    Cancel,
    /// FF00, FF01.
    Pending,
}

impl StatusCategory {
    /// Whether the operation completed without failure (success or warning).
    pub fn is_ok(self) -> bool {
        matches!(self, Self::Success | Self::Warning)
    }
}

/// Classifies a status code per PS3.7 Annex C.
pub fn classify(status: u16) -> StatusCategory {
    match status {
        SUCCESS => StatusCategory::Success,
        CANCEL => StatusCategory::Cancel,
        PENDING | PENDING_WARNING => StatusCategory::Pending,
        0x0001
        | 0xB000..=0xBFFF
        | WARNING_ATTRIBUTE_LIST_ERROR
        | WARNING_ATTRIBUTE_VALUE_OUT_OF_RANGE => StatusCategory::Warning,
        _ => StatusCategory::Failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories() {
        assert_eq!(classify(SUCCESS), StatusCategory::Success);
        for w in [0x0001, 0xB000, 0xB006, 0xB007, 0xBFFF, 0x0107, 0x0116] {
            assert_eq!(classify(w), StatusCategory::Warning, "{w:04X}");
        }
        for f in [
            0x0110, 0x0122, 0x0124, 0x0211, 0xA700, 0xA7FF, 0xA900, 0xC000, 0xCFFF, 0x0002, 0xFFFF,
        ] {
            assert_eq!(classify(f), StatusCategory::Failure, "{f:04X}");
        }
        assert_eq!(classify(0xFE00), StatusCategory::Cancel);
        assert_eq!(classify(0xFF00), StatusCategory::Pending);
        assert_eq!(classify(0xFF01), StatusCategory::Pending);
        assert!(classify(0xB000).is_ok());
        assert!(!classify(0xA700).is_ok());
    }
}
