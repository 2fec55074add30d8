//! Unit tests for the file meta information reader and writer.

use proptest::prelude::*;

use super::*;

fn sample() -> FileMeta {
    let mut m = FileMeta::new(
        "1.2.840.10008.5.1.4.1.1.2",
        "1.2.3.4.5.6.7",
        "1.2.840.10008.1.2.1",
    );
    m.source_application_entity_title = Some("STORESCU".into());
    m.dataset_offset = m.encode().len() as u64;
    m
}

/// Builds one Explicit VR LE group 0002 element with a short length.
fn short_el(element: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
    let mut v = vec![0x02, 0x00];
    v.extend_from_slice(&element.to_le_bytes());
    v.extend_from_slice(vr);
    v.extend_from_slice(&(value.len() as u16).to_le_bytes());
    v.extend_from_slice(value);
    v
}

#[test]
fn new_and_round_trip() {
    let m = FileMeta::new("1.2.840.10008.5.1.4.1.1.7", "1.2.3", "1.2.840.10008.1.2");
    assert_eq!(m.implementation_class_uid, IMPLEMENTATION_CLASS_UID);
    assert_eq!(
        m.implementation_version_name.as_deref(),
        Some(IMPLEMENTATION_VERSION_NAME)
    );
    assert_eq!(m.meta_information_version, [0, 1]);
    let bytes = m.encode();
    assert_eq!(m.dataset_offset, bytes.len() as u64);
    assert_eq!(read_file_meta(&bytes).unwrap(), m);

    let m = sample();
    let mut file = m.encode();
    assert!(file[..128].iter().all(|b| *b == 0));
    assert_eq!(&file[128..132], b"DICM");
    assert_eq!(file.len() % 2, 0);
    // Group length covers everything after it.
    assert_eq!(
        u32::from_le_bytes(file[140..144].try_into().unwrap()) as usize,
        file.len() - 144
    );
    // Padding: "1.2.3.4.5.6.7" (13) + NUL, "SECUREPDU_010" (13) + space.
    assert!(file.windows(14).any(|w| w == b"1.2.3.4.5.6.7\0"));
    assert!(file.windows(14).any(|w| w == b"SECUREPDU_010 "));
    // A data set follows: reading stops at its first element.
    let header_len = file.len();
    file.extend_from_slice(&[0x08, 0x00, 0x16, 0x00, b'U', b'I', 2, 0, b'1', 0]);
    let read = read_file_meta(&file).unwrap();
    assert_eq!(read, m);
    assert_eq!(read.dataset_offset, header_len as u64);
}

#[test]
fn optional_fields_absent() {
    let mut m = sample();
    m.implementation_version_name = None;
    m.source_application_entity_title = None;
    m.dataset_offset = m.encode().len() as u64;
    assert_eq!(read_file_meta(&m.encode()).unwrap(), m);
}

#[test]
fn not_part10_and_need_more() {
    assert_eq!(
        read_file_meta(&[]),
        Err(Part10Error::NeedMore { at_least: 132 })
    );
    assert_eq!(
        read_file_meta(&[0; 131]),
        Err(Part10Error::NeedMore { at_least: 132 })
    );
    assert_eq!(read_file_meta(&[0; 200]), Err(Part10Error::NotPart10));
    let mut b = vec![0; 128];
    b.extend_from_slice(b"DICM");
    assert_eq!(
        read_file_meta(&b),
        Err(Part10Error::NeedMore { at_least: 134 })
    );
}

#[test]
fn every_prefix_needs_more_or_is_exact() {
    let m = sample();
    let mut file = m.encode();
    let header_len = file.len();
    file.extend_from_slice(&[0x08, 0x00, 0x16, 0x00]);
    for cut in 0..file.len() {
        match read_file_meta(&file[..cut]) {
            Err(Part10Error::NeedMore { at_least }) => {
                assert!(at_least > cut, "cut {cut}: at_least {at_least}")
            }
            // With a group length the header is complete from its end on.
            Ok(got) => {
                assert!(cut >= header_len, "cut {cut}");
                assert_eq!(got, m);
            }
            Err(e) => panic!("cut {cut}: {e}"),
        }
    }
}

#[test]
fn without_group_length_reads_to_next_group() {
    let m = sample();
    let full = m.encode();
    // Drop the 12-byte group length element.
    let mut file = full[..132].to_vec();
    file.extend_from_slice(&full[144..]);
    // The header alone is ambiguous: more bytes may belong to group 0002.
    assert!(matches!(
        read_file_meta(&file),
        Err(Part10Error::NeedMore { .. })
    ));
    let header_len = file.len();
    file.extend_from_slice(&[0x08, 0x00]);
    let got = read_file_meta(&file).unwrap();
    assert_eq!(got.dataset_offset, header_len as u64);
    assert_eq!(got.transfer_syntax_uid, m.transfer_syntax_uid);
}

#[test]
fn malformed_headers() {
    let m = sample();
    let full = m.encode();
    let body = &full[144..];
    let with = |len: u32, extra: &[u8]| {
        let mut f = full[..132].to_vec();
        f.extend(short_el(0x0000, b"UL", &len.to_le_bytes()));
        f.extend_from_slice(body);
        f.extend_from_slice(extra);
        f.extend_from_slice(&[0x08, 0x00, 0x05, 0x00]);
        f
    };
    // Group length too small, then too large (a group 0002 element lies beyond it).
    assert!(matches!(
        read_file_meta(&with(body.len() as u32 - 2, &[])),
        Err(Part10Error::GroupLengthMismatch { .. })
    ));
    assert!(matches!(
        read_file_meta(&with(body.len() as u32 + 8, &[])),
        Err(Part10Error::GroupLengthMismatch { .. })
    ));
    // Duplicate element.
    let dup = short_el(0x0010, b"UI", b"1.2\0");
    assert_eq!(
        read_file_meta(&with(body.len() as u32 + dup.len() as u32, &dup)),
        Err(Part10Error::DuplicateElement { element: 0x0010 })
    );
    // Missing transfer syntax.
    let mut f = full[..132].to_vec();
    f.extend(short_el(0x0002, b"UI", b"1.2\0"));
    f.extend(short_el(0x0003, b"UI", b"1.3\0"));
    f.extend(short_el(0x0012, b"UI", b"1.4\0"));
    f.extend_from_slice(&[0x08, 0x00]);
    assert_eq!(
        read_file_meta(&f),
        Err(Part10Error::MissingElement {
            element: 0x0010,
            name: "TransferSyntaxUID"
        })
    );
    // Implicit VR meta (forbidden): the "VR" bytes are a length.
    let mut f = full[..132].to_vec();
    f.extend_from_slice(&[0x02, 0x00, 0x10, 0x00, 0x14, 0x00, 0x00, 0x00]);
    f.extend_from_slice(b"1.2.840.10008.1.2.1\0");
    assert!(matches!(
        read_file_meta(&f),
        Err(Part10Error::InvalidVr {
            element: 0x0010,
            ..
        })
    ));
    // Undefined length.
    let mut f = full[..132].to_vec();
    f.extend_from_slice(&[
        0x02, 0x00, 0x01, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
    ]);
    assert_eq!(
        read_file_meta(&f),
        Err(Part10Error::UndefinedLength { element: 1 })
    );
    // A huge declared value length is refused without reading (or allocating) it.
    let mut f = full[..132].to_vec();
    f.extend_from_slice(&[
        0x02, 0x00, 0x01, 0x00, b'O', b'B', 0, 0, 0x00, 0x00, 0x10, 0x00,
    ]);
    assert_eq!(
        read_file_meta(&f),
        Err(Part10Error::MetaTooLong {
            limit: MAX_META_LEN
        })
    );
    // Group length element not first.
    let mut f = full[..132].to_vec();
    f.extend(short_el(0x0002, b"UI", b"1.2\0"));
    f.extend(short_el(0x0000, b"UL", &[0, 0, 0, 0]));
    assert!(matches!(
        read_file_meta(&f),
        Err(Part10Error::InvalidValue { element: 0, .. })
    ));
}

#[test]
fn uid_padding_is_stripped() {
    let mut f = vec![0; 128];
    f.extend_from_slice(b"DICM");
    f.extend(short_el(0x0002, b"UI", b"1.2\0"));
    f.extend(short_el(0x0003, b"UI", b"1.23 "));
    f.extend(short_el(0x0010, b"UI", b"1.2.840.10008.1.2\0"));
    f.extend(short_el(0x0012, b"UI", b"9.9"));
    f.extend_from_slice(&[0x08, 0x00]);
    let m = read_file_meta(&f).unwrap();
    assert_eq!(m.media_storage_sop_class_uid, "1.2");
    assert_eq!(m.media_storage_sop_instance_uid, "1.23");
    assert_eq!(m.transfer_syntax_uid, "1.2.840.10008.1.2");
    assert_eq!(m.implementation_class_uid, "9.9");
    assert!(m.meta_information_version.is_empty());
    assert_eq!(m.dataset_offset, f.len() as u64 - 2);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = read_file_meta(&tail);
        let mut f = vec![0u8; 128];
        f.extend_from_slice(b"DICM");
        f.extend_from_slice(&tail);
        let _ = read_file_meta(&f);
    }

    #[test]
    fn mutations_never_panic_or_overread(idx in 132usize..400, val in any::<u8>(), cut in 0usize..420) {
        let mut f = sample().encode();
        f.extend_from_slice(&[0x08, 0x00, 0x16, 0x00]);
        if let Some(x) = f.get_mut(idx) { *x = val; }
        f.truncate(cut);
        if let Ok(m) = read_file_meta(&f) {
            prop_assert!(m.dataset_offset as usize <= f.len());
        }
        if let Err(Part10Error::NeedMore { at_least }) = read_file_meta(&f) {
            prop_assert!(at_least > f.len() && at_least <= MAX_META_LEN);
        }
    }

    #[test]
    fn round_trip_arbitrary_uids(
        class in "[0-9]{1,3}(\\.[0-9]{1,8}){0,6}",
        inst in "[0-9]{1,3}(\\.[0-9]{1,8}){0,6}",
        ae in proptest::option::of("[A-Z]{1,16}"),
    ) {
        let mut m = FileMeta::new(class, inst, "1.2.840.10008.1.2.1");
        m.source_application_entity_title = ae;
        m.dataset_offset = m.encode().len() as u64;
        prop_assert_eq!(read_file_meta(&m.encode()).unwrap(), m);
    }
}
