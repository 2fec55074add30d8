//! PDU decoder: `Pdu::decode` on arbitrary bytes, encode -> decode round trip of
//! whatever decodes, and the streaming `Framer` fed the same bytes in an
//! input-derived chunking, which must agree with feeding them all at once.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use securepdu_core::pdu::{DecodeError, Framer, Pdu};

fuzz_target!(|data: &[u8]| {
    if let Ok(pdu) = Pdu::decode(Bytes::copy_from_slice(data)) {
        round_trip(&pdu);
    }

    // Reference: the whole stream at once, no length cap.
    let reference = frame(data, u32::MAX, &mut std::iter::repeat(usize::MAX));
    for pdu in reference.0.iter() {
        round_trip(pdu);
    }
    // Arbitrary chunking (lengths 0..=63 from a PRNG seeded by the input, so a
    // crash reproduces from the file alone) must not change the outcome.
    let mut rng = seed(data);
    let mut chunks = std::iter::from_fn(move || Some((next(&mut rng) % 64) as usize));
    assert_eq!(
        frame(data, u32::MAX, &mut chunks),
        reference,
        "chunking changed the result"
    );

    // A small cap only cuts the stream short: what it lets through is a prefix of
    // the reference, and anything less ends in a refusal naming a longer PDU.
    let cap = u32::from(data.last().copied().unwrap_or(0)) * 4;
    let (pdus, err) = frame(data, cap, &mut std::iter::repeat(7));
    assert!(reference.0.starts_with(&pdus), "cap changed a PDU");
    match err {
        Some(DecodeError::PduTooLong { declared, max, .. }) => {
            assert!(declared > max && max == cap)
        }
        other => assert_eq!(
            (pdus.len(), other),
            (reference.0.len(), reference.1.clone())
        ),
    }
});

/// Feeds `data` to a framer in the given chunk sizes, taking PDUs as it goes.
/// Returns the PDUs and the error that poisoned the framer, if any.
fn frame(
    data: &[u8],
    cap: u32,
    chunks: &mut dyn Iterator<Item = usize>,
) -> (Vec<Pdu>, Option<DecodeError>) {
    let mut framer = Framer::new(cap);
    let mut pdus = Vec::new();
    let mut rest = data;
    loop {
        let n = chunks.next().unwrap_or(usize::MAX).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        framer.feed(chunk);
        loop {
            match framer.next_pdu() {
                Ok(Some(pdu)) => pdus.push(pdu),
                Ok(None) => {
                    // Waiting for bytes: the hint must ask for at least one more.
                    assert!(framer.needed() > 0, "framer stalled with needed() == 0");
                    break;
                }
                Err(e) => {
                    // Poisoned: the same error forever, received bytes dropped.
                    framer.feed(b"\x01\x00\x00\x00\x00\x00");
                    assert_eq!(framer.next_pdu().err(), Some(e.clone()));
                    assert_eq!(framer.buffered(), 0);
                    return (pdus, Some(e));
                }
            }
        }
        if rest.is_empty() {
            return (pdus, None);
        }
    }
}

/// Whatever decodes and re-encodes must decode to the same value (encoding may
/// legitimately refuse a decoded value, e.g. a UID longer than 64 characters).
fn round_trip(pdu: &Pdu) {
    if let Ok(bytes) = pdu.encode() {
        match Pdu::decode(bytes.clone()) {
            Ok(again) => assert_eq!(&again, pdu, "round trip changed the PDU"),
            Err(e) => panic!(
                "re-encoded {} does not decode: {e}\n{bytes:02x?}",
                pdu.name()
            ),
        }
    }
}

fn seed(data: &[u8]) -> u64 {
    // FNV-1a: cheap, deterministic, spreads small input changes.
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }) | 1
}

fn next(state: &mut u64) -> u64 {
    // xorshift64
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}
