//! Properties and unit tests of the PDU codec and the framer.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::strategies;
use super::*;

fn enc(p: &Pdu) -> Bytes {
    p.encode().unwrap()
}

/// Cuts `data` into chunks whose sizes cycle through `sizes` (each at least 1).
fn chunks<'a>(data: &'a [u8], sizes: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = data;
    let mut i = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(1)
            .clamp(1, rest.len());
        i += 1;
        let (a, b) = rest.split_at(n);
        rest = b;
        Some(a)
    })
}

proptest! {
    #[test]
    fn decode_inverts_encode(p in strategies::pdu()) {
        let bytes = enc(&p);
        prop_assert_eq!(Pdu::decode(bytes.clone()).unwrap(), p.clone());
        // And re-encoding the decoded value is byte-identical.
        prop_assert_eq!(enc(&Pdu::decode(bytes.clone()).unwrap()), bytes);
    }

    #[test]
    fn encode_into_appends(p in strategies::pdu(), prefix in proptest::collection::vec(any::<u8>(), 0..8)) {
        let mut out = BytesMut::from(&prefix[..]);
        p.encode_into(&mut out).unwrap();
        prop_assert_eq!(&out[..prefix.len()], &prefix[..]);
        prop_assert_eq!(&out[prefix.len()..], &enc(&p)[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Pdu::decode(Bytes::from(data.clone()));
        if let Some((&t, body)) = data.split_first() {
            let _ = Pdu::decode_body(t, Bytes::copy_from_slice(body));
        }
    }

    #[test]
    fn arbitrary_bodies_with_valid_headers_never_panic(
        t in 1u8..=7,
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut buf = vec![t, 0];
        buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
        buf.extend_from_slice(&body);
        let _ = Pdu::decode(Bytes::from(buf));
    }

    #[test]
    fn mutated_pdus_never_panic(p in strategies::pdu(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut bytes = enc(&p).to_vec();
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        let _ = Pdu::decode(Bytes::from(bytes.clone()));
        let mut f = Framer::new(1 << 16);
        f.feed(&bytes);
        while let Ok(Some(_)) = f.next_pdu() {}
    }

    #[test]
    fn framer_on_arbitrary_bytes_never_panics(
        data in proptest::collection::vec(any::<u8>(), 0..400),
        sizes in proptest::collection::vec(1usize..50, 1..8),
        max in 0u32..500,
    ) {
        let mut f = Framer::new(max);
        for c in chunks(&data, &sizes) {
            f.feed(c);
            loop {
                match f.next_pdu() {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(e) => {
                        // Poisoned: the same error again, and nothing buffered.
                        prop_assert_eq!(f.next_pdu(), Err(e));
                        prop_assert_eq!(f.buffered(), 0);
                        break;
                    }
                }
            }
        }
    }

    #[test]
    fn framer_yields_the_sequence(
        pdus in proptest::collection::vec(strategies::pdu(), 0..6),
        sizes in proptest::collection::vec(1usize..200, 1..8),
    ) {
        let mut stream = Vec::new();
        for p in &pdus {
            stream.extend_from_slice(&enc(p));
        }
        let mut f = Framer::new(u32::MAX);
        let mut got = Vec::new();
        for c in chunks(&stream, &sizes) {
            f.feed(c);
            while let Some(p) = f.next_pdu().unwrap() {
                got.push(p);
            }
        }
        prop_assert_eq!(got, pdus);
        prop_assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn too_long_is_refused_from_the_header(t in 1u8..=7, max in 0u32..u32::MAX, extra in 1u32..1000) {
        let declared = max.saturating_add(extra).max(max + 1);
        let mut f = Framer::new(max);
        let mut h = vec![t, 0];
        h.extend_from_slice(&declared.to_be_bytes());
        f.feed(&h[..5]);
        prop_assert_eq!(f.next_pdu(), Ok(None));
        f.feed(&h[5..]);
        prop_assert_eq!(f.next_pdu(), Err(DecodeError::PduTooLong { pdu_type: t, declared, max }));
    }

    #[test]
    fn pdv_header_matches_encode(ctx in any::<u8>(), cmd in any::<bool>(), last in any::<bool>(), data in strategies::blob(100)) {
        let p = Pdu::PData(PData { pdvs: vec![Pdv { context_id: ctx, is_command: cmd, is_last: last, data: Bytes::from(data.clone()) }] });
        let whole = enc(&p);
        let h = PData::header_for_single_pdv(ctx, cmd, last, data.len()).unwrap();
        prop_assert_eq!(&whole[..SINGLE_PDV_HEADER_LEN], &h[..]);
        prop_assert_eq!(&whole[SINGLE_PDV_HEADER_LEN..], &data[..]);
        let mut out = BytesMut::new();
        write_pdv_header(&mut out, ctx, cmd, last, data.len()).unwrap();
        prop_assert_eq!(&out[..], &h[..]);
        if let Pdu::PData(pd) = &p {
            prop_assert_eq!(pd.encoded_len(), whole.len());
        }
    }
}

#[test]
fn unknown_type_is_refused_from_the_first_byte() {
    let mut f = Framer::new(100);
    f.feed(&[0x08]);
    assert_eq!(f.next_pdu(), Err(DecodeError::UnrecognizedPdu(8)));
    f.feed(&[0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0]);
    assert_eq!(f.next_pdu(), Err(DecodeError::UnrecognizedPdu(8)));
    assert_eq!(f.buffered(), 0);
}

#[test]
fn framer_needs_and_set_max() {
    let mut f = Framer::new(3);
    assert_eq!(f.needed(), 6);
    f.feed(&[5, 0, 0, 0]);
    assert_eq!(f.needed(), 2);
    f.feed(&[0, 4]);
    assert_eq!(f.needed(), 4);
    f.set_max_pdu_len(4);
    assert_eq!(f.next_pdu(), Ok(None));
    f.buffer_mut().extend_from_slice(&[0, 0, 0, 0, 6]);
    assert_eq!(f.next_pdu(), Ok(Some(Pdu::ReleaseRq)));
    assert_eq!(f.buffered(), 1);
    assert_eq!(f.next_pdu(), Ok(None));
}

#[test]
fn pdata_data_is_zero_copy() {
    let p = Pdu::PData(PData {
        pdvs: vec![
            Pdv {
                context_id: 1,
                is_command: true,
                is_last: false,
                data: Bytes::from_static(b"abc"),
            },
            Pdv {
                context_id: 3,
                is_command: false,
                is_last: true,
                data: Bytes::from_static(b"defg"),
            },
        ],
    });
    let buf = enc(&p);
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let Pdu::PData(d) = Pdu::decode(buf.clone()).unwrap() else {
        panic!()
    };
    for pdv in &d.pdvs {
        assert!(range.contains(&(pdv.data.as_ptr() as usize)));
    }
    // And through the framer.
    let mut f = Framer::new(1000);
    f.feed(&buf);
    let Some(Pdu::PData(d2)) = f.next_pdu().unwrap() else {
        panic!()
    };
    assert_eq!(d2, d);
}

#[test]
fn message_control_bits_2_to_7_are_ignored() {
    let b = Bytes::from_static(&[4, 0, 0, 0, 0, 7, 0, 0, 0, 3, 1, 0xfd, 0x42]);
    let Pdu::PData(d) = Pdu::decode(b).unwrap() else {
        panic!()
    };
    assert_eq!(
        d.pdvs,
        vec![Pdv {
            context_id: 1,
            is_command: true,
            is_last: false,
            data: Bytes::from_static(&[0x42])
        }]
    );
}

#[test]
fn whole_pdu_length_is_checked() {
    let good = enc(&Pdu::ReleaseRq);
    let mut long = good.to_vec();
    long.push(0);
    assert_eq!(
        Pdu::decode(Bytes::from(long)),
        Err(DecodeError::TrailingBytes {
            what: "A-RELEASE-RQ",
            extra: 1
        })
    );
    assert!(matches!(
        Pdu::decode(good.slice(..9)),
        Err(DecodeError::Truncated { .. })
    ));
    assert!(matches!(
        Pdu::decode(good.slice(..3)),
        Err(DecodeError::Truncated { .. })
    ));
    assert_eq!(
        Pdu::decode(Bytes::new()).unwrap_err().abort_reason(),
        AbortReason::InvalidPduParameterValue
    );
    // A-RELEASE-RQ with PDU-length 5.
    assert_eq!(
        Pdu::decode(Bytes::from_static(&[5, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0])),
        Err(DecodeError::LengthMismatch {
            what: "A-RELEASE-RQ",
            declared: 5,
            expected: 4
        })
    );
    assert_eq!(
        Pdu::decode(Bytes::from_static(&[0x10, 0, 0, 0, 0, 0])),
        Err(DecodeError::UnrecognizedPdu(0x10))
    );
}

fn rq() -> AssociateRq {
    AssociateRq {
        protocol_version: PROTOCOL_VERSION,
        called_ae: "ANY-SCP".into(),
        calling_ae: "ECHOSCU".into(),
        application_context: APPLICATION_CONTEXT_NAME.into(),
        presentation_contexts: vec![PresentationContextRq {
            id: 1,
            abstract_syntax: "1.2.840.10008.1.1".into(),
            transfer_syntaxes: vec!["1.2.840.10008.1.2".into()],
        }],
        user_info: UserInformation {
            max_pdu_length: Some(16384),
            ..Default::default()
        },
    }
}

/// Inserts `item` into the variable field of an encoded A-ASSOCIATE-RQ, before the user info item.
fn with_item_before_user_info(rq: &AssociateRq, item: &[u8]) -> Bytes {
    let b = enc(&Pdu::AssociateRq(rq.clone())).to_vec();
    let ui_at = b.iter().rposition(|&x| x == 0x50).unwrap();
    let mut out = b[..ui_at].to_vec();
    out.extend_from_slice(item);
    out.extend_from_slice(&b[ui_at..]);
    let len = (out.len() - 6) as u32;
    out[2..6].copy_from_slice(&len.to_be_bytes());
    Bytes::from(out)
}

#[test]
fn unknown_items_are_skipped_known_misplaced_refused() {
    let r = rq();
    // Unknown item type 0x99 at the top level: ignored (PS3.8 §9.3.1).
    let b = with_item_before_user_info(&r, &[0x99, 0, 0, 2, 1, 2]);
    assert_eq!(Pdu::decode(b).unwrap(), Pdu::AssociateRq(r.clone()));
    // A presentation context AC item in an RQ: unexpected-PDU-parameter.
    let b = with_item_before_user_info(&r, &[0x21, 0, 0, 4, 1, 0, 0, 0]);
    let e = Pdu::decode(b).unwrap_err();
    assert_eq!(
        e,
        DecodeError::UnexpectedItem {
            within: "A-ASSOCIATE-RQ",
            item_type: 0x21
        }
    );
    assert_eq!(e.abort_reason(), AbortReason::UnexpectedPduParameter);
    // A second application context item.
    let b = with_item_before_user_info(&r, &[0x10, 0, 0, 1, b'1']);
    assert!(matches!(
        Pdu::decode(b),
        Err(DecodeError::UnexpectedItem {
            item_type: 0x10,
            ..
        })
    ));
    // An item whose length runs past the PDU.
    let b = with_item_before_user_info(&r, &[0x99, 0, 0xff, 0xff]);
    assert!(matches!(Pdu::decode(b), Err(DecodeError::Truncated { .. })));
}

#[test]
fn unknown_user_info_sub_items_are_kept() {
    let mut r = rq();
    r.user_info.unknown.push(UnknownSubItem {
        item_type: 0x60,
        data: vec![1, 2, 3],
    });
    let b = enc(&Pdu::AssociateRq(r.clone()));
    assert_eq!(Pdu::decode(b).unwrap(), Pdu::AssociateRq(r.clone()));
    // A known type in `unknown` cannot be encoded.
    r.user_info.unknown.push(UnknownSubItem {
        item_type: 0x51,
        data: vec![],
    });
    assert!(matches!(
        Pdu::AssociateRq(r).encode(),
        Err(EncodeError::InvalidField { .. })
    ));
}

#[test]
fn lenient_decoding_of_missing_items() {
    // Only the fixed fields: no application context, no contexts, no user info.
    let mut b = vec![1, 0, 0, 0, 0, 68, 0, 1, 0, 0];
    b.extend_from_slice(b"  CALLED        ");
    b.extend_from_slice(b"CALLING         ");
    b.extend_from_slice(&[0; 32]);
    let Pdu::AssociateRq(rq) = Pdu::decode(Bytes::from(b)).unwrap() else {
        panic!()
    };
    assert_eq!(rq.called_ae, "CALLED");
    assert_eq!(rq.calling_ae, "CALLING");
    assert_eq!(rq.application_context, "");
    assert!(rq.presentation_contexts.is_empty());
    assert_eq!(rq.user_info, UserInformation::default());
    // Protocol version 2 is not a decode error either (the acceptor rejects it).
    assert_eq!(rq.protocol_version, 1);
}

#[test]
fn uid_padding_is_stripped() {
    // Encode raw padding (encode writes UIDs as given), then decode strips it.
    let mut padded = rq();
    padded.application_context.push('\0');
    padded.presentation_contexts[0]
        .abstract_syntax
        .push_str(" \0");
    padded.presentation_contexts[0].transfer_syntaxes[0].push(' ');
    padded.user_info.implementation_class_uid = Some("1.2.3\0".into());
    let got = Pdu::decode(enc(&Pdu::AssociateRq(padded))).unwrap();
    let mut want = rq();
    want.user_info.implementation_class_uid = Some("1.2.3".into());
    assert_eq!(got, Pdu::AssociateRq(want));
}

#[test]
fn encode_errors() {
    let mut r = rq();
    r.called_ae = "ABCDEFGHIJKLMNOPQ".into();
    assert_eq!(
        Pdu::AssociateRq(r.clone()).encode(),
        Err(EncodeError::TooLong {
            field: "called AE title",
            len: 17,
            max: 16
        })
    );
    r.called_ae = "\u{20ac}".into();
    assert!(matches!(
        Pdu::AssociateRq(r.clone()).encode(),
        Err(EncodeError::InvalidField { .. })
    ));
    r.called_ae = "A".into();
    r.presentation_contexts[0].transfer_syntaxes[0] = "1".repeat(65);
    assert!(matches!(
        Pdu::AssociateRq(r.clone()).encode(),
        Err(EncodeError::TooLong { max: 64, .. })
    ));
    r = rq();
    r.user_info.implementation_version_name = Some("X".repeat(17));
    assert!(matches!(
        Pdu::AssociateRq(r.clone()).encode(),
        Err(EncodeError::TooLong { max: 16, .. })
    ));
    r = rq();
    r.user_info.user_identity_rq = Some(UserIdentityRq {
        identity_type: 1,
        positive_response_requested: false,
        primary_field: vec![0; 70000],
        secondary_field: vec![],
    });
    assert!(matches!(
        Pdu::AssociateRq(r.clone()).encode(),
        Err(EncodeError::TooLong { .. })
    ));
    // The user information item as a whole above 65535 bytes.
    r = rq();
    r.user_info.user_identity_rq = Some(UserIdentityRq {
        identity_type: 1,
        positive_response_requested: false,
        primary_field: vec![0; 40000],
        secondary_field: vec![0; 40000],
    });
    let mut out = BytesMut::from(&b"keep"[..]);
    assert!(matches!(
        Pdu::AssociateRq(r).encode_into(&mut out),
        Err(EncodeError::TooLong { .. })
    ));
    assert_eq!(&out[..], b"keep");
}

#[test]
fn names_and_types() {
    let all = [
        (Pdu::AssociateRq(rq()), 1, "A-ASSOCIATE-RQ"),
        (
            Pdu::AssociateAc(AssociateAc {
                protocol_version: 1,
                called_ae: String::new(),
                calling_ae: String::new(),
                application_context: String::new(),
                presentation_contexts: vec![],
                user_info: UserInformation::default(),
            }),
            2,
            "A-ASSOCIATE-AC",
        ),
        (
            Pdu::AssociateRj(AssociateRj {
                result: 1,
                source: 1,
                reason: 1,
            }),
            3,
            "A-ASSOCIATE-RJ",
        ),
        (Pdu::PData(PData::default()), 4, "P-DATA-TF"),
        (Pdu::ReleaseRq, 5, "A-RELEASE-RQ"),
        (Pdu::ReleaseRp, 6, "A-RELEASE-RP"),
        (Pdu::Abort(Abort::user()), 7, "A-ABORT"),
    ];
    for (p, t, n) in all {
        assert_eq!(p.pdu_type(), t);
        assert_eq!(p.name(), n);
        assert_eq!(enc(&p)[0], t);
    }
}

#[test]
fn abort_from_decode_error() {
    let e = DecodeError::UnrecognizedPdu(0x42);
    assert_eq!(
        Abort::from(&e),
        Abort {
            source: 2,
            reason: 1
        }
    );
    assert_eq!(
        Abort::provider(AbortReason::InvalidPduParameterValue),
        Abort {
            source: 2,
            reason: 6
        }
    );
    // And each error kind the decoder produces, from real bytes.
    let pdv_short = Bytes::from_static(&[4, 0, 0, 0, 0, 5, 0, 0, 0, 1, 1]);
    let e = Pdu::decode(pdv_short).unwrap_err();
    assert!(matches!(e, DecodeError::InvalidValue { .. }));
    assert_eq!(e.abort_reason(), AbortReason::InvalidPduParameterValue);
}
