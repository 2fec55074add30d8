use proptest::prelude::*;

use super::*;

const HEX64: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn key() -> IntegrityKey {
    IntegrityKey::parse(&format!("site-a:{HEX64}")).unwrap()
}

#[test]
fn key_parsing() {
    let k = key();
    assert_eq!(k.id(), "site-a");
    assert_eq!(k.secret().len(), 32);
    let same =
        IntegrityKey::parse(&format!("\n  site-a : {}  \n\n", HEX64.to_uppercase())).unwrap();
    assert_eq!(same, k);
    let long = IntegrityKey::parse(&format!("x:{HEX64}{HEX64}")).unwrap();
    assert_eq!(long.secret().len(), 64);

    let short = &HEX64[..62];
    for bad in [
        String::new(),
        "   \n".to_owned(),
        HEX64.to_owned(),
        format!(":{HEX64}"),
        format!("a b:{HEX64}"),
        format!("{}:{HEX64}", "k".repeat(65)),
        format!("é:{HEX64}"),
        format!("a:{short}"),
        format!("a:{HEX64}0"),
        format!("a:{}zz", &HEX64[..62]),
        format!("a:{HEX64}\nb:{HEX64}"),
        format!("a:b:{HEX64}"),
    ] {
        let err = IntegrityKey::parse(&bad).unwrap_err();
        assert!(matches!(err, IntegrityError::InvalidKey(_)), "{bad:?}");
        assert!(!err.to_string().contains("0a0b0c"), "{err}");
    }
    assert!(IntegrityKey::parse(&format!("{}:{HEX64}", "k".repeat(64))).is_ok());
}

#[test]
fn key_debug_is_redacted() {
    let s = format!("{:?}", key());
    assert!(s.contains("site-a") && s.contains("redacted"), "{s}");
    assert!(!s.contains("0a") && !s.contains("10, 11"), "{s}");
    let c = IntegrityConfig::new(key(), Policy::Required);
    assert!(!format!("{c:?}").contains("0a0b"));
    let other = IntegrityKey::new("site-a", &[7u8; 32]).unwrap();
    assert_ne!(other, key());
}

#[test]
fn policies() {
    assert_eq!(Policy::default(), Policy::Opportunistic);
    for p in [Policy::Off, Policy::Opportunistic, Policy::Required] {
        assert_eq!(p.as_str().parse::<Policy>().unwrap(), p);
    }
    assert_eq!("REQUIRED".parse::<Policy>().unwrap(), Policy::Required);
    assert!("sometimes".parse::<Policy>().is_err());
}

#[test]
fn negotiation_items_round_trip() {
    let offer = IntegrityOffer {
        key_id: "site-a".into(),
        nonce: [9; 32],
    };
    let bytes = offer.encode().unwrap();
    assert_eq!(bytes.len(), 2 + 6 + 32);
    assert_eq!(&bytes[..3], &[1, 6, b's']);
    assert_eq!(IntegrityOffer::decode(&bytes).unwrap(), offer);
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(IntegrityOffer::decode(&longer).is_err());
    assert!(IntegrityOffer::decode(&bytes[..bytes.len() - 1]).is_err());
    let mut v2 = bytes.clone();
    v2[0] = 2;
    assert!(IntegrityOffer::decode(&v2).is_err());
    let bad_id = IntegrityOffer {
        key_id: "a:b".into(),
        nonce: [0; 32],
    };
    assert!(bad_id.encode().is_err());

    let answer = IntegrityAnswer {
        nonce: [1; 32],
        confirm: [2; 32],
    };
    let bytes = answer.encode();
    assert_eq!(bytes.len(), 65);
    assert_eq!(IntegrityAnswer::decode(&bytes).unwrap(), answer);
    assert!(IntegrityAnswer::decode(&bytes[..64]).is_err());
    assert!(IntegrityAnswer::decode(&[]).is_err());

    let pdv = encode_tag_pdv(0x0102, &[3; 32]);
    assert_eq!(&pdv[..3], &[1, 2, 3]);
    assert_eq!(decode_tag_pdv(&pdv).unwrap(), (0x0102, [3; 32]));
    assert!(decode_tag_pdv(&pdv[..33]).is_err());
    assert!(decode_tag_pdv(&[0; 35]).is_err());
}

#[test]
fn session_keys_bind_every_input() {
    let k = key();
    let base = derive_session_key(&k, &[1; 32], &[2; 32], "SCU", "SCP", b"").unwrap();
    let again = derive_session_key(&k, &[1; 32], &[2; 32], " SCU ", "SCP  ", b"").unwrap();
    assert_eq!(base, again, "AE titles are trimmed");
    let variants = [
        derive_session_key(&k, &[9; 32], &[2; 32], "SCU", "SCP", b"").unwrap(),
        derive_session_key(&k, &[1; 32], &[9; 32], "SCU", "SCP", b"").unwrap(),
        derive_session_key(&k, &[1; 32], &[2; 32], "SCU2", "SCP", b"").unwrap(),
        derive_session_key(&k, &[1; 32], &[2; 32], "SCU", "SCP2", b"").unwrap(),
        // Length prefixes keep "SC"+"USCP" apart from "SCU"+"SCP".
        derive_session_key(&k, &[1; 32], &[2; 32], "SC", "USCP", b"").unwrap(),
        derive_session_key(&k, &[1; 32], &[2; 32], "SCU", "SCP", &[0; 32]).unwrap(),
        derive_session_key(
            &IntegrityKey::new("site-a", &[5; 32]).unwrap(),
            &[1; 32],
            &[2; 32],
            "SCU",
            "SCP",
            b"",
        )
        .unwrap(),
    ];
    for v in variants {
        assert_ne!(v, base);
    }
    // Cross-check against RFC 5869 HKDF built from plain HMAC-SHA256.
    let mut salt = vec![1u8; 32];
    salt.extend_from_slice(&[2; 32]);
    let prk = hmac_sha256(&salt, k.secret());
    let mut info = b"securepdu integrity v1".to_vec();
    info.extend_from_slice(&[0, 3]);
    info.extend_from_slice(b"SCU");
    info.extend_from_slice(&[0, 3]);
    info.extend_from_slice(b"SCP");
    info.push(1);
    assert_eq!(hmac_sha256(&prk, &info), base);

    let s = SessionKey::from_bytes(&base);
    assert_eq!(
        s.confirm(),
        hmac_sha256(&base, b"securepdu integrity confirm v1")
    );
    assert_eq!(format!("{s:?}"), "SessionKey(<redacted>)");
}

/// RFC 4231 test cases 1 and 2 (HMAC-SHA-256).
#[test]
fn rfc4231_vectors() {
    let cases: [(&[u8], &[u8], &str); 2] = [
        (
            &[0x0b; 20],
            b"Hi There",
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        (
            b"Jefe",
            b"what do ya want for nothing?",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
    ];
    for (k, data, want) in cases {
        assert_eq!(to_hex(&hmac_sha256(k, data)), want);
        for split in 0..=data.len() {
            let mut m = HmacSha256::new(k);
            m.update(&data[..split]);
            m.update(&data[split..]);
            assert_eq!(to_hex(&m.finish()), want);
        }
    }
    assert_eq!(
        to_hex(&sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(from_hex32(&to_hex(&[7; 32])), Some([7; 32]));
    assert_eq!(from_hex32("00"), None);
}

fn one_shot_tag(k: &[u8; 32], id: u16, class: &str, inst: &str, ts: &str, data: &[u8]) -> [u8; 32] {
    let mut m = b"C-STORE".to_vec();
    m.extend_from_slice(&id.to_be_bytes());
    for s in [class, inst, ts] {
        m.extend_from_slice(&(s.len() as u16).to_be_bytes());
        m.extend_from_slice(s.as_bytes());
    }
    m.extend_from_slice(data);
    m.extend_from_slice(&(data.len() as u64).to_be_bytes());
    hmac_sha256(k, &m)
}

#[test]
fn tag_binds_message_fields() {
    let k = SessionKey::from_bytes(&[4; 32]);
    let tag = |id, class, inst, ts, data: &[u8]| {
        let mut t = k.tagger(id, class, inst, ts);
        t.update(data);
        t.finish()
    };
    let base = tag(1, "1.2", "1.3", "1.2.840.10008.1.2", b"abc");
    assert_eq!(
        base,
        one_shot_tag(&[4; 32], 1, "1.2", "1.3", "1.2.840.10008.1.2", b"abc")
    );
    assert_ne!(base, tag(2, "1.2", "1.3", "1.2.840.10008.1.2", b"abc"));
    assert_ne!(base, tag(1, "1.2.1", "1.3", "1.2.840.10008.1.2", b"abc"));
    assert_ne!(base, tag(1, "1.2", "1.4", "1.2.840.10008.1.2", b"abc"));
    assert_ne!(base, tag(1, "1.2", "1.3", "1.2.840.10008.1.2.1", b"abc"));
    assert_ne!(base, tag(1, "1.2", "1.3", "1.2.840.10008.1.2", b"abd"));
    assert!(ct_eq(&base, &base.clone()));
    assert!(!ct_eq(&base, &[0; 32]));
    assert!(!ct_eq(&base, &base[..31]));
}

proptest! {
    #[test]
    fn any_chunking_gives_the_one_shot_tag(
        data in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        key in any::<[u8; 32]>(),
        id in any::<u16>(),
    ) {
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (data.len() + 1)).collect();
        cuts.sort_unstable();
        let s = SessionKey::from_bytes(&key);
        let mut t = s.tagger(id, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", "1.2.840.10008.1.2.1");
        let mut start = 0;
        for c in cuts.into_iter().chain([data.len()]) {
            t.update(&data[start..c]);
            start = c;
        }
        prop_assert_eq!(t.len(), data.len() as u64);
        let want = one_shot_tag(&key, id, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", "1.2.840.10008.1.2.1", &data);
        prop_assert_eq!(t.finish(), want);
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = IntegrityOffer::decode(&bytes);
        let _ = IntegrityAnswer::decode(&bytes);
        let _ = decode_tag_pdv(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = IntegrityKey::parse(&text);
        let _ = ManifestEntry::parse(&text, None);
        let _ = ManifestEntry::parse(&text, Some(&key()));
    }

    #[test]
    fn offers_round_trip(id in "[!-9;-~]{1,64}", nonce in any::<[u8; 32]>()) {
        let offer = IntegrityOffer { key_id: id, nonce };
        prop_assert_eq!(IntegrityOffer::decode(&offer.encode().unwrap()).unwrap(), offer);
    }
}
