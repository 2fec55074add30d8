//! Part 10 header reader: `read_file_meta` on arbitrary bytes. A caller loop that
//! reads more whenever told `NeedMore` must always make progress and stop within
//! `MAX_META_LEN`; a header that reads back re-encodes to one that reads the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use securepdu_core::part10::{read_file_meta, FileMeta, Part10Error, MAX_META_LEN};

fuzz_target!(|data: &[u8]| {
    let result = read_file_meta(data);
    if let Err(Part10Error::NeedMore { at_least }) = result {
        assert!(
            at_least > data.len() && at_least <= MAX_META_LEN,
            "NeedMore({at_least}) with {} bytes",
            data.len()
        );
    }

    // The loop a file reader runs: start small, grow to what it is told.
    let mut n = data.len().min(132);
    let incremental = loop {
        match read_file_meta(&data[..n]) {
            Err(Part10Error::NeedMore { at_least }) if at_least <= data.len() => {
                assert!(
                    at_least > n,
                    "NeedMore({at_least}) does not advance from {n}"
                );
                n = at_least;
            }
            other => break other,
        }
    };
    // Stopping early agrees with reading everything, unless the shorter buffer
    // legitimately ended the header (no group length, group 0002 at the end).
    if let (Ok(a), Ok(b)) = (&incremental, &result) {
        assert!(a.dataset_offset <= b.dataset_offset || n == data.len());
    }

    if let Ok(meta) = result {
        assert!(meta.dataset_offset as usize <= data.len().min(MAX_META_LEN));
        let encoded = meta.encode();
        let again = match read_file_meta(&encoded) {
            Ok(m) => m,
            Err(e) => panic!("re-encoded header does not read: {e}"),
        };
        assert_eq!(again.dataset_offset as usize, encoded.len());
        let normal = |m: &FileMeta| FileMeta {
            meta_information_version: Vec::new(),
            dataset_offset: 0,
            ..m.clone()
        };
        assert_eq!(normal(&again), normal(&meta), "header round trip");
    }
});
