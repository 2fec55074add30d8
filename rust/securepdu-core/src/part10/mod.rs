//! Part 10 file meta information (PS3.10 §7.1): read and write the header.
//!
//! A Part 10 file is a 128-byte preamble, the prefix "DICM", the file meta
//! information (group 0002, always Explicit VR Little Endian) and then the data set
//! in the transfer syntax named by (0002,0010). [`read_file_meta`] parses the header
//! from the first bytes of a file, asking for more if needed, and reports where the
//! data set starts; [`FileMeta::encode`] writes a header in front of a received data
//! set. No I/O here.

mod error;
mod meta;

pub use error::Part10Error;
pub use meta::{read_file_meta, FileMeta, DICM_OFFSET, MAX_META_LEN, PREAMBLE_LEN};

/// securepdu's Implementation Class UID (0002,0012), also sent in A-ASSOCIATE.
pub const IMPLEMENTATION_CLASS_UID: &str = "1.2.826.0.1.3680043.10.1361.1";

/// securepdu's Implementation Version Name (0002,0013), SH (at most 16 characters).
pub const IMPLEMENTATION_VERSION_NAME: &str = "SECUREPDU_010";

#[cfg(test)]
mod tests;
