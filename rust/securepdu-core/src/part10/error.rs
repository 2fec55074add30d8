//! Errors reading a Part 10 file meta information header.

use thiserror::Error;

/// Why the file meta information could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Part10Error {
    /// The buffer ends inside the header: read until the buffer holds at least
    /// `at_least` bytes from the start of the file, then call again.
    #[error("file meta information incomplete: need at least {at_least} bytes")]
    NeedMore {
        /// Total bytes (from the start of the file) needed to make progress.
        at_least: usize,
    },
    /// No "DICM" prefix after the 128-byte preamble.
    #[error("not a DICOM Part 10 file (no DICM prefix at offset 128)")]
    NotPart10,
    /// The header would be larger than the cap.
    #[error("file meta information exceeds {limit} bytes")]
    MetaTooLong {
        /// The cap, in bytes from the start of the file.
        limit: usize,
    },
    /// An element's VR is not two upper-case letters (e.g. Implicit VR meta, which
    /// PS3.10 forbids).
    #[error("element (0002,{element:04X}) has invalid VR {vr:?}")]
    InvalidVr {
        /// Element number in group 0002.
        element: u16,
        /// The two bytes found.
        vr: [u8; 2],
    },
    /// An element has undefined length, which group 0002 never uses.
    #[error("element (0002,{element:04X}) has undefined length")]
    UndefinedLength {
        /// Element number in group 0002.
        element: u16,
    },
    /// The same element appears twice.
    #[error("element (0002,{element:04X}) appears more than once")]
    DuplicateElement {
        /// Element number in group 0002.
        element: u16,
    },
    /// File Meta Information Group Length (0002,0000) disagrees with the elements.
    #[error("file meta group length is {declared} but its elements take {actual} bytes")]
    GroupLengthMismatch {
        /// The declared value.
        declared: u32,
        /// Bytes of group 0002 elements actually found after the group length.
        actual: usize,
    },
    /// A required element is absent.
    #[error("required element (0002,{element:04X}) {name} is missing")]
    MissingElement {
        /// Element number in group 0002.
        element: u16,
        /// Its keyword.
        name: &'static str,
    },
    /// An element's value is malformed.
    #[error("element (0002,{element:04X}) has an invalid value: {reason}")]
    InvalidValue {
        /// Element number in group 0002.
        element: u16,
        /// What is wrong with it.
        reason: &'static str,
    },
}
