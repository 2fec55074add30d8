//! DIMSE message framing (PS3.7): command sets, fragmentation, reassembly.
//!
//! - [`CommandSet`] and [`Message`]: the group 0000 command set in Implicit VR Little
//!   Endian (PS3.7 §6.3.1, §9.3), typed for C-ECHO and C-STORE, generic otherwise;
//! - [`fragment_command`], [`fragment_dataset`], [`DatasetFragmenter`]: split a
//!   message into P-DATA-TF PDUs that fit the peer's maximum length;
//! - [`Reassembler`]: turns received PDVs back into commands and streamed data set
//!   fragments;
//! - [`status`]: status codes and their categories (PS3.7 Annex C).
//!
//! No I/O: the transport moves the bytes.

mod command;
mod error;
mod fragment;
mod message;
mod reassembly;
pub mod status;

pub use command::{command_field, tag, CommandSet, DATA_SET_PRESENT, NO_DATA_SET};
pub use error::DimseError;
pub use fragment::{
    fragment_command, fragment_dataset, max_pdv_data, DatasetFragmenter, DEFAULT_CHUNK, MAX_CHUNK,
    PDV_HEADER_LEN,
};
pub use message::{CEchoRq, CEchoRsp, CStoreRq, CStoreRsp, Message, Priority};
pub use reassembly::{Event, Reassembler, DEFAULT_MAX_COMMAND_LEN};
pub use status::{classify as classify_status, StatusCategory};

/// Verification SOP Class UID (PS3.4 Annex A), the C-ECHO SOP class.
pub const VERIFICATION_SOP_CLASS: &str = "1.2.840.10008.1.1";

#[cfg(test)]
mod tests;
