//! Errors of the DIMSE layer: command-set decoding, fragmentation and reassembly.

use thiserror::Error;

/// A DIMSE command set, fragment sequence or fragmenter call was invalid.
///
/// Use [`DimseError::is_association_fatal`] to decide whether the association must be
/// aborted: once the PDV stream is out of step (a fragment arrived that the message
/// framing of PS3.7 §6.3 does not allow, or a command could not be understood well
/// enough to know whether a data set follows), there is no way to find the start of
/// the next message, so the only safe answer is A-ABORT.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DimseError {
    /// An element header or value runs past the end of the command set.
    #[error("command set truncated at offset {offset}")]
    Truncated {
        /// Offset of the element that does not fit.
        offset: usize,
    },
    /// The command set holds an element outside group 0000.
    #[error("element ({group:04X},{element:04X}) is not in command group 0000")]
    NotCommandGroup {
        /// The group found.
        group: u16,
        /// The element number found.
        element: u16,
    },
    /// The same command element appears twice.
    #[error("element (0000,{element:04X}) appears more than once")]
    DuplicateElement {
        /// The repeated element number.
        element: u16,
    },
    /// Command Group Length (0000,0000) disagrees with the bytes that follow it.
    #[error("command group length {declared} but {actual} bytes follow it")]
    GroupLengthMismatch {
        /// The declared value.
        declared: u32,
        /// The number of bytes actually present after the group length element.
        actual: usize,
    },
    /// A required command element is absent.
    #[error("required element (0000,{element:04X}) {name} is missing")]
    MissingElement {
        /// Element number in group 0000.
        element: u16,
        /// Its keyword.
        name: &'static str,
    },
    /// A command element has a value of the wrong size or form.
    #[error("element (0000,{element:04X}) has an invalid value: {reason}")]
    InvalidValue {
        /// Element number in group 0000.
        element: u16,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Command Data Set Type (0000,0800) contradicts the command: a C-STORE-RQ
    /// without a data set, or a C-ECHO or C-STORE-RSP with one.
    #[error("command 0x{command_field:04X} cannot have Command Data Set Type 0x{value:04X}")]
    UnexpectedDataSetType {
        /// The Command Field.
        command_field: u16,
        /// The Command Data Set Type received.
        value: u16,
    },
    /// The command fragments add up to more than the configured maximum.
    #[error("command set exceeds {limit} bytes")]
    CommandTooLong {
        /// The configured maximum.
        limit: usize,
    },
    /// A data set fragment arrived while no data set was announced (no command yet,
    /// or a command with Command Data Set Type 0101H).
    #[error("data set fragment on context {context_id} while no data set is expected")]
    UnexpectedDataset {
        /// Context of the offending PDV.
        context_id: u8,
    },
    /// A command fragment arrived while the announced data set was still incomplete.
    #[error("command fragment on context {context_id} while a data set is expected")]
    CommandDuringDataset {
        /// Context of the offending PDV.
        context_id: u8,
    },
    /// A fragment's presentation context differs from that of the message in progress.
    #[error("fragment on context {got} in the middle of a message on context {expected}")]
    ContextChanged {
        /// The context of the message in progress.
        expected: u8,
        /// The context of the offending PDV.
        got: u8,
    },
    /// The reassembler already failed; it must be reset (and the association aborted).
    #[error("reassembler used after a fatal error")]
    Poisoned,
    /// A chunk handed to a [`DatasetFragmenter`](super::DatasetFragmenter) is empty,
    /// too long for one PDV, longer than what remains, or comes after the last one.
    #[error("invalid data set chunk of {len} bytes (at most {max} allowed)")]
    InvalidChunk {
        /// Length of the chunk offered.
        len: usize,
        /// The most that could have been accepted.
        max: usize,
    },
}

impl DimseError {
    /// Whether the association must be aborted (A-ABORT) after this error.
    ///
    /// Everything a peer can cause is fatal: a malformed or contradictory command set
    /// leaves it unknown whether (and where) a data set follows, and out-of-sequence
    /// fragments mean the message framing is lost. Only [`DimseError::InvalidChunk`],
    /// a local misuse of the fragmenter, is not.
    pub fn is_association_fatal(&self) -> bool {
        !matches!(self, Self::InvalidChunk { .. })
    }
}
