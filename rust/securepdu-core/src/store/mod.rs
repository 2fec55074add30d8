//! Durable storage of received objects, and what the storage SCP accepts.
//!
//! [`PartialObject`] streams a data set to a hidden temporary file in the
//! storage directory, behind a Part 10 header; [`PartialObject::finish`] makes
//! it durable (fsync), renames it to `<SOP Instance UID>.dcm` and fsyncs the
//! directory. The SHA-256 of the file is computed as it is written (for the
//! integrity manifest), never by reading the file back. A partial object that is dropped unfinished deletes its temporary
//! file, so an aborted transfer never leaves a file under a final name.
//!
//! [`validate_uid`] keeps a peer's SOP Instance UID from ever becoming a path
//! other than `<digits and dots>.dcm`.

#[cfg(target_os = "linux")]
mod direct;
mod sop_classes;

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use ring::digest;

use crate::dimse::VERIFICATION_SOP_CLASS;
use crate::integrity::to32;
use crate::part10::FileMeta;

pub use sop_classes::STORAGE_SOP_CLASSES;

/// Implicit VR Little Endian.
pub const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
/// Explicit VR Little Endian.
pub const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";
/// Explicit VR Big Endian (retired, still accepted).
pub const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";
/// Deflated Explicit VR Little Endian.
pub const DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1.99";

/// Uncompressed transfer syntaxes the storage SCP accepts (and Verification uses).
pub const UNCOMPRESSED_TRANSFER_SYNTAXES: &[&str] = &[
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
];

/// Compressed (and otherwise encapsulated) transfer syntaxes of PS3.5 Table A-1
/// that the storage SCP accepts and stores as received, without decoding.
/// Retired JPEG processes (4.52-4.56, 4.58-4.66) are left out.
pub const COMPRESSED_TRANSFER_SYNTAXES: &[&str] = &[
    "1.2.840.10008.1.2.1.98", // Encapsulated Uncompressed Explicit VR Little Endian
    "1.2.840.10008.1.2.4.50", // JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51", // JPEG Extended (Process 2 & 4)
    "1.2.840.10008.1.2.4.57", // JPEG Lossless, Non-Hierarchical (Process 14)
    "1.2.840.10008.1.2.4.70", // JPEG Lossless, Process 14, Selection Value 1
    "1.2.840.10008.1.2.4.80", // JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81", // JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90", // JPEG 2000 (Lossless Only)
    "1.2.840.10008.1.2.4.91", // JPEG 2000
    "1.2.840.10008.1.2.4.92", // JPEG 2000 Part 2 Multi-component (Lossless Only)
    "1.2.840.10008.1.2.4.93", // JPEG 2000 Part 2 Multi-component
    "1.2.840.10008.1.2.4.94", // JPIP Referenced
    "1.2.840.10008.1.2.4.95", // JPIP Referenced Deflate
    "1.2.840.10008.1.2.4.100", // MPEG2 Main Profile / Main Level
    "1.2.840.10008.1.2.4.100.1", // Fragmentable MPEG2 MP@ML
    "1.2.840.10008.1.2.4.101", // MPEG2 Main Profile / High Level
    "1.2.840.10008.1.2.4.101.1", // Fragmentable MPEG2 MP@HL
    "1.2.840.10008.1.2.4.102", // MPEG-4 AVC/H.264 High Profile / Level 4.1
    "1.2.840.10008.1.2.4.102.1", // Fragmentable MPEG-4 AVC/H.264 HP@4.1
    "1.2.840.10008.1.2.4.103", // MPEG-4 AVC/H.264 BD-compatible HP@4.1
    "1.2.840.10008.1.2.4.103.1", // Fragmentable MPEG-4 AVC/H.264 BD-compatible
    "1.2.840.10008.1.2.4.104", // MPEG-4 AVC/H.264 HP@4.2 for 2D Video
    "1.2.840.10008.1.2.4.104.1", // Fragmentable, 2D Video
    "1.2.840.10008.1.2.4.105", // MPEG-4 AVC/H.264 HP@4.2 for 3D Video
    "1.2.840.10008.1.2.4.105.1", // Fragmentable, 3D Video
    "1.2.840.10008.1.2.4.106", // MPEG-4 AVC/H.264 Stereo HP@4.2
    "1.2.840.10008.1.2.4.106.1", // Fragmentable, Stereo
    "1.2.840.10008.1.2.4.107", // HEVC/H.265 Main Profile / Level 5.1
    "1.2.840.10008.1.2.4.108", // HEVC/H.265 Main 10 Profile / Level 5.1
    "1.2.840.10008.1.2.4.110", // JPEG XL Lossless
    "1.2.840.10008.1.2.4.111", // JPEG XL JPEG Recompression
    "1.2.840.10008.1.2.4.112", // JPEG XL
    "1.2.840.10008.1.2.4.201", // High-Throughput JPEG 2000 (Lossless Only)
    "1.2.840.10008.1.2.4.202", // HTJ2K with RPCL Options (Lossless Only)
    "1.2.840.10008.1.2.4.203", // High-Throughput JPEG 2000
    "1.2.840.10008.1.2.4.204", // JPIP HTJ2K Referenced
    "1.2.840.10008.1.2.4.205", // JPIP HTJ2K Referenced Deflate
    "1.2.840.10008.1.2.5",    // RLE Lossless
    "1.2.840.10008.1.2.7.1",  // SMPTE ST 2110-20 Uncompressed Progressive Active Video
    "1.2.840.10008.1.2.7.2",  // SMPTE ST 2110-20 Uncompressed Interlaced Active Video
    "1.2.840.10008.1.2.7.3",  // SMPTE ST 2110-30 PCM Digital Audio
];

/// Every storage SOP class UID the SCP accepts (PS3.4 Annex B).
pub fn storage_sop_classes() -> impl Iterator<Item = &'static str> {
    STORAGE_SOP_CLASSES.iter().map(|&(_, uid)| uid)
}

/// Whether `uid` is a storage SOP class of PS3.4 Annex B.
pub fn is_storage_sop_class(uid: &str) -> bool {
    STORAGE_SOP_CLASSES.iter().any(|&(_, u)| u == uid)
}

/// Whether the storage SCP accepts data sets in transfer syntax `uid`.
pub fn is_supported_transfer_syntax(uid: &str) -> bool {
    UNCOMPRESSED_TRANSFER_SYNTAXES.contains(&uid) || COMPRESSED_TRANSFER_SYNTAXES.contains(&uid)
}

/// The transfer syntax to accept from `proposed` for `abstract_syntax`: the first
/// proposed one we support, so the proposer's order decides. A sender lists the
/// syntax its object is already in first; accepting another would force it to
/// decode and re-encode the object instead of sending it from disk as it is.
/// Verification accepts uncompressed ones only. `None` if none is acceptable.
pub fn choose_transfer_syntax<'a>(
    abstract_syntax: &str,
    proposed: &'a [String],
) -> Option<&'a str> {
    let verification = abstract_syntax == VERIFICATION_SOP_CLASS;
    let usable = |ts: &str| {
        if verification {
            UNCOMPRESSED_TRANSFER_SYNTAXES.contains(&ts)
        } else {
            is_supported_transfer_syntax(ts)
        }
    };
    proposed.iter().find(|p| usable(p)).map(String::as_str)
}

/// Longest UID (PS3.5 §9.1).
pub const MAX_UID_LEN: usize = 64;

/// Why a string is not a UID we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid UID {uid:?}: {reason}")]
pub struct InvalidUid {
    /// The refused value (cut to 80 characters).
    pub uid: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// Checks a UID (PS3.5 §9.1): 1-64 characters, digits and dots only, no empty
/// component. Leading zeros in a component are tolerated (old equipment sends
/// them, and they cannot make a path). Anything accepted here is safe as a file
/// name: no separators, never "." or "..".
pub fn validate_uid(uid: &str) -> Result<(), InvalidUid> {
    let fail = |reason| {
        Err(InvalidUid {
            uid: uid.chars().take(80).collect(),
            reason,
        })
    };
    if uid.is_empty() {
        return fail("empty");
    }
    if uid.len() > MAX_UID_LEN {
        return fail("longer than 64 characters");
    }
    if !uid.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return fail("only digits and dots are allowed");
    }
    if uid.split('.').any(str::is_empty) {
        return fail("empty component");
    }
    Ok(())
}

/// The final file name of an object: `<SOP Instance UID>.dcm`.
pub fn file_name_for(sop_instance_uid: &str) -> Result<String, InvalidUid> {
    validate_uid(sop_instance_uid)?;
    Ok(format!("{sop_instance_uid}.dcm"))
}

/// Write buffer of a partial object: gathers small PDVs (16 KiB from many
/// peers) into fewer writes; fragments at least this large bypass it, so the
/// usual 256 KiB ones go from the receive buffer to the file without a copy.
const WRITE_BUFFER: usize = 64 << 10;

/// Past this many bytes written since the last time, the kernel is asked to
/// start writing them to disk (Linux): a large object's final fsync then finds
/// little left to do, instead of writing the whole object while the peer waits.
const WRITEBACK_EVERY: u64 = 8 << 20;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Where a partial object's bytes go, and who hashes them when it is hashed
/// here: with O_DIRECT, the writer, just before each chunk goes to disk (off
/// the receive thread); through the page cache, the writing thread.
enum Sink {
    /// Through the page cache, gathered by a write buffer.
    Cached(BufWriter<File>, Option<digest::Context>),
    /// Around it, with O_DIRECT (Linux; see `direct.rs` for why).
    #[cfg(target_os = "linux")]
    Direct(direct::DirectFile),
}

impl Sink {
    /// Opens a new file: with O_DIRECT where the filesystem allows it.
    fn create_new(path: &Path, hash: bool) -> io::Result<Self> {
        #[cfg(target_os = "linux")]
        if let Some(file) = direct::create_new(path)? {
            return Ok(Self::Direct(direct::DirectFile::new(file, hash)));
        }
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        Ok(Self::Cached(
            BufWriter::with_capacity(WRITE_BUFFER, file),
            hash.then(|| digest::Context::new(&digest::SHA256)),
        ))
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Self::Cached(w, sha256) => {
                w.write_all(data)?;
                if let Some(sha256) = sha256 {
                    sha256.update(data);
                }
                Ok(())
            }
            #[cfg(target_os = "linux")]
            Self::Direct(d) => d.write(data),
        }
    }

    /// Everything written: the file (not yet fsynced), and its SHA-256 when
    /// hashed here.
    fn into_file(self) -> io::Result<(File, Option<[u8; 32]>)> {
        match self {
            Self::Cached(w, sha256) => {
                let file = w.into_inner().map_err(|e| e.into_error())?;
                Ok((file, sha256.map(|c| to32(c.finish().as_ref()))))
            }
            #[cfg(target_os = "linux")]
            Self::Direct(d) => d.finish(),
        }
    }
}

/// A received object being written to a temporary file. Dropping it unfinished
/// removes the temporary file.
pub struct PartialObject {
    dir: PathBuf,
    temp_path: PathBuf,
    final_name: String,
    file: Option<Sink>,
    written: u64,
    /// Bytes up to which writeback was started.
    written_back: u64,
    /// The file's SHA-256 is computed here (by the sink); `false` when the
    /// caller hashes the bytes elsewhere ([`PartialObject::create_unhashed`]).
    hashed: bool,
}

/// A received object made durable by [`PartialObject::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableObject {
    /// Its final path, `<dir>/<SOP Instance UID>.dcm`.
    pub path: PathBuf,
    /// File size (Part 10 header included).
    pub size: u64,
    /// SHA-256 of the whole file as written.
    pub sha256: [u8; 32],
}

impl std::fmt::Debug for PartialObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartialObject")
            .field("temp_path", &self.temp_path)
            .field("final_name", &self.final_name)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl PartialObject {
    /// Creates `.<SOP Instance UID>.<pid>.<counter>.partial` in `dir` and writes
    /// the Part 10 header of `meta` into it. The SOP Instance UID must pass
    /// [`validate_uid`].
    pub fn create(dir: &Path, meta: &FileMeta) -> io::Result<Self> {
        let (mut obj, header) = Self::open(dir, meta, true)?;
        obj.write(&header)?;
        Ok(obj)
    }

    /// [`Self::create`] for a caller that hashes the file itself (on another
    /// thread, see [`crate::integrity::Hasher`]): returns the Part 10 header
    /// written, which starts the file, to hash before the data set. Finish
    /// with [`Self::finish_hashed`].
    pub fn create_unhashed(dir: &Path, meta: &FileMeta) -> io::Result<(Self, Bytes)> {
        let (mut obj, header) = Self::open(dir, meta, false)?;
        let header = Bytes::from(header);
        obj.write(&header)?;
        Ok((obj, header))
    }

    fn open(dir: &Path, meta: &FileMeta, hashed: bool) -> io::Result<(Self, Vec<u8>)> {
        let uid = &meta.media_storage_sop_instance_uid;
        let final_name = file_name_for(uid)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp_path = dir.join(format!(".{uid}.{}.{n}.partial", std::process::id()));
        let file = Sink::create_new(&temp_path, hashed)?;
        let obj = Self {
            dir: dir.to_owned(),
            temp_path,
            final_name,
            file: Some(file),
            written: 0,
            written_back: 0,
            hashed,
        };
        Ok((obj, meta.encode()))
    }

    /// Appends data set bytes (hashed on their way to disk, unless created
    /// with [`Self::create_unhashed`]).
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let file = self.file.as_mut().ok_or_else(closed)?;
        file.write_all(data)?;
        self.written = self.written.saturating_add(data.len() as u64);
        #[cfg(target_os = "linux")]
        if self.written.saturating_sub(self.written_back) >= WRITEBACK_EVERY {
            self.start_writeback();
        }
        Ok(())
    }

    /// Starts writeback of what the file holds so far. POSIX_FADV_DONTNEED
    /// makes Linux start writing the range without waiting for it (and drop the
    /// pages once clean: nobody reads them back soon). Only a hint: durability
    /// still comes from the fsync in [`Self::finish`].
    #[cfg(target_os = "linux")]
    fn start_writeback(&mut self) {
        let Some(Sink::Cached(file, _)) = &self.file else {
            return; // nothing cached to write back
        };
        let in_file = self.written.saturating_sub(file.buffer().len() as u64);
        let len = in_file.saturating_sub(self.written_back);
        if let Some(len) = std::num::NonZeroU64::new(len) {
            let _ = rustix::fs::fadvise(
                file.get_ref(),
                self.written_back,
                Some(len),
                rustix::fs::Advice::DontNeed,
            );
            self.written_back = in_file;
        }
    }

    /// Bytes written so far, header included.
    pub fn len(&self) -> u64 {
        self.written
    }

    /// Whether nothing was written (never true after [`Self::create`]).
    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// The temporary file's path.
    pub fn temp_path(&self) -> &Path {
        &self.temp_path
    }

    /// Makes the object durable: flush, fsync, rename to `<SOP Instance UID>.dcm`
    /// (replacing an older copy of the same instance), fsync the directory.
    /// Returns the final path, the file size and its SHA-256. On error the
    /// temporary file is removed. Only for an object from [`Self::create`].
    pub fn finish(self) -> io::Result<DurableObject> {
        self.make_durable(None)
    }

    /// [`Self::finish`] for an object from [`Self::create_unhashed`], with the
    /// SHA-256 its caller computed over the header and every byte written.
    pub fn finish_hashed(self, sha256: [u8; 32]) -> io::Result<DurableObject> {
        self.make_durable(Some(sha256))
    }

    fn make_durable(self, sha256: Option<[u8; 32]>) -> io::Result<DurableObject> {
        let dir = self.dir.clone();
        let done = self.finish_renamed(sha256)?;
        if let Err(e) = sync_dir(&dir) {
            // Not durable, so not stored: the peer gets a failure and may retry.
            let _ = fs::remove_file(&done.path);
            return Err(e);
        }
        Ok(done)
    }

    /// [`Self::finish`] (`sha256` `None`) or [`Self::finish_hashed`] without
    /// the last step: the file is fsynced and renamed, but the rename is
    /// durable only once the caller fsyncs the directory ([`sync_dir`]), which
    /// it may do once for several objects.
    pub fn finish_renamed(mut self, sha256: Option<[u8; 32]>) -> io::Result<DurableObject> {
        if sha256.is_some() == self.hashed {
            return Err(io::Error::other(if self.hashed {
                "internal: partial object hashed here, use finish"
            } else {
                "internal: partial object hashed elsewhere, use finish_hashed"
            }));
        }
        let (file, ours) = self.file.take().ok_or_else(closed)?.into_file()?;
        let sha256 = sha256.or(ours).ok_or_else(closed)?;
        file.sync_all()?;
        drop(file);
        let final_path = self.dir.join(&self.final_name);
        fs::rename(&self.temp_path, &final_path)?;
        // The rename is done: from here on the temporary path no longer exists.
        self.temp_path = PathBuf::new();
        Ok(DurableObject {
            path: final_path,
            size: self.written,
            sha256,
        })
    }
}

impl Drop for PartialObject {
    fn drop(&mut self) {
        self.file = None;
        if !self.temp_path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.temp_path);
        }
    }
}

fn closed() -> io::Error {
    io::Error::other("partial object already finished")
}

/// Bytes available to us on the volume holding `dir`.
#[cfg(target_os = "linux")]
pub fn free_space(dir: &Path) -> io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Bytes available on the volume holding `dir` (not looked up here: unlimited).
#[cfg(not(target_os = "linux"))]
pub fn free_space(_dir: &Path) -> io::Result<u64> {
    Ok(u64::MAX)
}

/// Removes the temporary files of objects that a process which no longer runs
/// was receiving into `dir` (`.<uid>.<pid>.<n>.partial`, see
/// [`PartialObject::create`]): no peer was answered Success for them. Files of
/// a live process (another server on the same folder) are left alone; where
/// liveness cannot be told (not Linux), every other process counts as gone.
/// Returns how many were removed.
pub fn remove_stale_partials(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(pid) = partial_owner(&name.to_string_lossy()) else {
            continue;
        };
        if pid == std::process::id() || process_alive(pid) {
            continue;
        }
        if entry.file_type()?.is_file() && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// The process id in a temporary file's name, if it is one of ours.
fn partial_owner(name: &str) -> Option<u32> {
    let stem = name.strip_prefix('.')?.strip_suffix(".partial")?;
    let mut parts = stem.rsplitn(3, '.');
    let _counter: u64 = parts.next()?.parse().ok()?;
    parts.next()?.parse().ok()
}

#[cfg(target_os = "linux")]
fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(not(target_os = "linux"))]
fn process_alive(_pid: u32) -> bool {
    false
}

/// fsyncs a directory so a rename in it survives a crash (POSIX; elsewhere a no-op).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids() {
        for ok in [
            "1.2.840.10008.1.1",
            "1",
            "0.1.2",
            "1.2.0003",
            &"1.".repeat(31)[..61],
        ] {
            assert!(validate_uid(ok).is_ok(), "{ok}");
        }
        let long = format!("1.{}", "2".repeat(63));
        for bad in [
            "",
            ".",
            "..",
            "../etc/passwd",
            "1.2/3",
            "1.2\\3",
            "1..2",
            ".1.2",
            "1.2.",
            "1.2 ",
            "1.2\0",
            "１.２",
            long.as_str(),
        ] {
            assert!(validate_uid(bad).is_err(), "{bad:?}");
        }
        assert!(validate_uid(&"1".repeat(64)).is_ok());
        assert!(validate_uid(&"1".repeat(65)).is_err());
    }

    #[test]
    fn lists() {
        assert_eq!(STORAGE_SOP_CLASSES.len(), 170);
        assert!(is_storage_sop_class("1.2.840.10008.5.1.4.1.1.2")); // CT
        assert!(!is_storage_sop_class(VERIFICATION_SOP_CLASS));
        for (_, uid) in STORAGE_SOP_CLASSES {
            assert!(validate_uid(uid).is_ok());
        }
        for ts in UNCOMPRESSED_TRANSFER_SYNTAXES
            .iter()
            .chain(COMPRESSED_TRANSFER_SYNTAXES)
        {
            assert!(validate_uid(ts).is_ok());
        }
    }

    #[test]
    fn transfer_syntax_preference() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ct = "1.2.840.10008.5.1.4.1.1.2";
        let both = p(&[IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN]);
        assert_eq!(
            choose_transfer_syntax(ct, &both),
            Some(IMPLICIT_VR_LITTLE_ENDIAN)
        );
        let reversed = p(&[EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN]);
        assert_eq!(
            choose_transfer_syntax(ct, &reversed),
            Some(EXPLICIT_VR_LITTLE_ENDIAN)
        );
        let jpeg = p(&["1.2.3", "1.2.840.10008.1.2.4.50"]);
        assert_eq!(
            choose_transfer_syntax(ct, &jpeg),
            Some("1.2.840.10008.1.2.4.50")
        );
        assert_eq!(choose_transfer_syntax(VERIFICATION_SOP_CLASS, &jpeg), None);
        assert_eq!(choose_transfer_syntax(ct, &p(&["1.2.3"])), None);
    }

    #[test]
    fn partial_object_lifecycle() {
        let dir = tempfile::tempdir().unwrap();
        let meta = FileMeta::new(
            "1.2.840.10008.5.1.4.1.1.2",
            "1.2.3.4",
            EXPLICIT_VR_LITTLE_ENDIAN,
        );
        let mut obj = PartialObject::create(dir.path(), &meta).unwrap();
        let temp = obj.temp_path().to_owned();
        assert!(temp
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(".1.2.3.4."));
        obj.write(b"abcd").unwrap();
        let done = obj.finish().unwrap();
        assert_eq!(done.path, dir.path().join("1.2.3.4.dcm"));
        assert_eq!(done.size, meta.dataset_offset + 4);
        assert!(!temp.exists());
        let bytes = fs::read(&done.path).unwrap();
        assert!(bytes.ends_with(b"abcd"));
        assert_eq!(done.sha256, crate::integrity::sha256(&bytes));

        let mut dropped = PartialObject::create(dir.path(), &meta).unwrap();
        dropped.write(b"xy").unwrap();
        let temp = dropped.temp_path().to_owned();
        assert!(temp.exists());
        drop(dropped);
        assert!(!temp.exists());

        // Hashed elsewhere: the caller hashes the header returned, then the data.
        let (mut obj, header) = PartialObject::create_unhashed(dir.path(), &meta).unwrap();
        obj.write(b"abcd").unwrap();
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&header);
        ctx.update(b"abcd");
        let sha = crate::integrity::sha256(&fs::read(&done.path).unwrap());
        assert_eq!(ctx.finish().as_ref(), &sha[..]);
        let again = obj.finish_hashed(sha).unwrap();
        assert_eq!((again.size, again.sha256), (done.size, done.sha256));
        // Each finish matches its create.
        let (unhashed, _) = PartialObject::create_unhashed(dir.path(), &meta).unwrap();
        assert!(unhashed.finish().is_err());
        let hashed = PartialObject::create(dir.path(), &meta).unwrap();
        assert!(hashed.finish_hashed(sha).is_err());

        let bad = FileMeta::new("1.2", "../x", EXPLICIT_VR_LITTLE_ENDIAN);
        assert!(PartialObject::create(dir.path(), &bad).is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
