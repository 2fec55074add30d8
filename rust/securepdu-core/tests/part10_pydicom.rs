//! Reads a Part 10 file written by pydicom.
//!
//! `tests/data/sc_explicit_le.dcm` (444 bytes) was generated with pydicom 3.0.2:
//!
//! ```python
//! from pydicom.dataset import Dataset, FileMetaDataset
//! from pydicom.uid import ExplicitVRLittleEndian
//! m = FileMetaDataset()
//! m.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
//! m.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.10.1361.99.1"
//! m.TransferSyntaxUID = ExplicitVRLittleEndian
//! m.SourceApplicationEntityTitle = "PYDICOM_GEN"
//! ds = Dataset(); ds.file_meta = m
//! ds.SOPClassUID = m.MediaStorageSOPClassUID; ds.SOPInstanceUID = m.MediaStorageSOPInstanceUID
//! ds.PatientName = "Test^Part10"; ds.PatientID = "P10"
//! ds.save_as("sc_explicit_le.dcm", enforce_file_format=True)
//! ```
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use securepdu_core::part10::{read_file_meta, FileMeta, Part10Error};

const FILE: &[u8] = include_bytes!("data/sc_explicit_le.dcm");

#[test]
fn reads_pydicom_file() {
    let m = read_file_meta(FILE).unwrap();
    assert_eq!(m.media_storage_sop_class_uid, "1.2.840.10008.5.1.4.1.1.7");
    assert_eq!(
        m.media_storage_sop_instance_uid,
        "1.2.826.0.1.3680043.10.1361.99.1"
    );
    assert_eq!(m.transfer_syntax_uid, "1.2.840.10008.1.2.1");
    assert_eq!(m.implementation_class_uid, "1.2.826.0.1.3680043.8.498.1");
    assert_eq!(
        m.implementation_version_name.as_deref(),
        Some("PYDICOM 3.0.2")
    );
    assert_eq!(
        m.source_application_entity_title.as_deref(),
        Some("PYDICOM_GEN")
    );
    assert_eq!(m.meta_information_version, [0x00, 0x01]);
    // 132 + (0002,0000) element (12) + group length 194.
    assert_eq!(m.dataset_offset, 338);
    // The data set starts with (0008,0016) SOP Class UID.
    assert_eq!(&FILE[338..344], b"\x08\x00\x16\x00UI");
}

#[test]
fn prefixes_of_pydicom_file() {
    for cut in 0..FILE.len() {
        match read_file_meta(&FILE[..cut]) {
            Err(Part10Error::NeedMore { at_least }) => assert!(at_least > cut),
            Ok(m) => assert!(cut >= 338 && m.dataset_offset == 338, "prefix {cut}"),
            Err(e) => panic!("prefix {cut}: {e}"),
        }
    }
}

#[test]
fn reencoded_header_reads_the_same() {
    let m = read_file_meta(FILE).unwrap();
    let mut ours = m.encode();
    assert_eq!(ours.len(), 338, "same elements and padding as pydicom");
    assert_eq!(ours, FILE[..338]);
    ours.extend_from_slice(&FILE[338..]);
    assert_eq!(read_file_meta(&ours).unwrap(), m);
    let _ = FileMeta::new("1.2", "1.3", "1.2.840.10008.1.2.1");
}
