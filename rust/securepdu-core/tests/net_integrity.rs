//! End-to-end integrity between securepdu peers over loopback: negotiation,
//! tags, a bit-flipping proxy, a replayed tag, the manifest and `verify_dir`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use bytes::Bytes;
use common::{client_tls, quick_timeouts, server_tls, Pki, TestServer, CT};
use securepdu_core::dimse::VERIFICATION_SOP_CLASS;
use securepdu_core::integrity::{
    sha256, verify_dir, IntegrityConfig, IntegrityError, IntegrityKey, ManifestEntry, Policy,
    INTEGRITY_CHECK_FAILED, MANIFEST_FILE,
};
use securepdu_core::scu::{read_file_meta_at, NetError, ScuAssociation, ScuConfig, Timeouts};
use securepdu_core::store::{EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN};
use securepdu_core::tls::TlsServer;

/// Verification and CT are contexts 1 and 3: the integrity context is 5.
const INTEGRITY_CTX: u8 = 5;

fn key(id: &str, byte: u8) -> IntegrityKey {
    IntegrityKey::parse(&format!("{id}:{}", format!("{byte:02x}").repeat(32))).unwrap()
}

fn cfg(id: &str, byte: u8, policy: Policy) -> Option<IntegrityConfig> {
    Some(IntegrityConfig::new(key(id, byte), policy))
}

/// An SCP on 127.0.0.1 with `integrity`, over TLS when `tls` is given.
fn start_scp(integrity: Option<IntegrityConfig>, tls: Option<TlsServer>) -> TestServer {
    TestServer::start_tls("127.0.0.1", tls, |c| c.integrity = integrity)
}

fn scu_config(integrity: Option<IntegrityConfig>) -> ScuConfig {
    ScuConfig {
        calling_ae: "TESTSCU".into(),
        called_ae: "STORE".into(),
        contexts: vec![
            (
                VERIFICATION_SOP_CLASS.into(),
                vec![IMPLICIT_VR_LITTLE_ENDIAN.into()],
            ),
            (CT.into(), vec![EXPLICIT_VR_LITTLE_ENDIAN.into()]),
        ],
        timeouts: quick_timeouts(),
        integrity,
        ..ScuConfig::default()
    }
}

fn connect(port: u16, integrity: Option<IntegrityConfig>) -> Result<ScuAssociation, NetError> {
    ScuAssociation::connect("127.0.0.1", port, scu_config(integrity))
}

fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

fn store(a: &mut ScuAssociation, uid: &str, data: Bytes) -> securepdu_core::scu::StoreOutcome {
    let ctx = a.find_context(CT, None).unwrap().id;
    a.store_bytes(ctx, CT, uid, data).unwrap()
}

fn manifest_lines(dir: &Path) -> Vec<String> {
    match std::fs::read_to_string(dir.join(MANIFEST_FILE)) {
        Ok(t) => t.lines().map(str::to_owned).collect(),
        Err(_) => Vec::new(),
    }
}

fn dcm_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dcm"))
        .collect();
    v.sort();
    v
}

#[test]
fn peers_agree_and_the_manifest_verifies() {
    let server = start_scp(cfg("site-a", 0x11, Policy::Opportunistic), None);
    let mut a = connect(server.port(), cfg("site-a", 0x11, Policy::Required)).unwrap();
    assert!(a.integrity_active());
    assert_eq!(a.integrity_key_id(), Some("site-a"));
    assert_eq!(a.echo().unwrap(), 0);
    // The integrity context is neither accepted nor rejected for the user.
    assert_eq!(a.accepted_contexts().len(), 2);
    assert!(a.rejected_contexts().is_empty());

    let data = pattern(700_001, 3);
    let out = store(&mut a, "1.2.3.1", data.clone());
    assert_eq!(out.status, 0, "{out:?}");
    let tag = out.integrity_tag.expect("a tag");

    // From a file too: written by the SCP above, streamed back under a new UID.
    let first = server.dir().join("1.2.3.1.dcm");
    let mut meta = read_file_meta_at(&first).unwrap();
    let bytes = std::fs::read(&first).unwrap();
    let file2 = server.dir().join("copy.bin");
    {
        let mut m2 =
            securepdu_core::part10::FileMeta::new(CT, "1.2.3.2", EXPLICIT_VR_LITTLE_ENDIAN);
        m2.source_application_entity_title = None;
        let mut f = std::fs::File::create(&file2).unwrap();
        f.write_all(&m2.encode()).unwrap();
        f.write_all(&bytes[meta.dataset_offset as usize..]).unwrap();
    }
    meta = read_file_meta_at(&file2).unwrap();
    let ctx = a.find_context(CT, None).unwrap().id;
    let out2 = a.store_file(&file2, ctx, &meta).unwrap();
    assert_eq!(out2.status, 0);
    assert!(out2.integrity_tag.is_some());
    std::fs::remove_file(&file2).unwrap();
    a.release().unwrap();
    server.wait_idle();

    let stored = server.rec.stored.lock().unwrap().clone();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].integrity, Some(("site-a".to_owned(), tag)));
    assert_eq!(
        stored[1].integrity.as_ref().unwrap().1,
        out2.integrity_tag.unwrap()
    );
    for obj in &stored {
        assert_eq!(obj.sha256, sha256(&std::fs::read(&obj.path).unwrap()));
    }

    // The manifest: one line per object, with a mac under the SCP's key.
    let lines = manifest_lines(server.dir());
    assert_eq!(lines.len(), 2);
    let k = key("site-a", 0x11);
    let e = ManifestEntry::parse(&lines[0], Some(&k)).unwrap();
    assert_eq!(e.file, "1.2.3.1.dcm");
    assert_eq!(e.key_id.as_deref(), Some("site-a"));
    assert_eq!(e.tag, Some(tag));
    assert_eq!(e.sha256, stored[0].sha256);
    assert_eq!(e.size, stored[0].size);
    assert_eq!(e.calling_ae, "TESTSCU");
    assert_eq!(e.called_ae, "STORE");
    assert!(e.peer.starts_with("127.0.0.1:"));
    assert!(e.stored_at.ends_with('Z'));
    let report = verify_dir(server.dir(), Some(&k)).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.ok, vec!["1.2.3.1.dcm", "1.2.3.2.dcm"]);
    assert!(report.mac_checked);

    // Tampering at rest.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(server.dir().join("1.2.3.1.dcm"))
        .unwrap();
    f.write_all(b"x").unwrap();
    drop(f);
    std::fs::remove_file(server.dir().join("1.2.3.2.dcm")).unwrap();
    std::fs::write(server.dir().join("9.9.dcm"), b"intruder").unwrap();
    let r = verify_dir(server.dir(), Some(&k)).unwrap();
    assert_eq!(r.changed, vec!["1.2.3.1.dcm"]);
    assert_eq!(r.missing, vec!["1.2.3.2.dcm"]);
    assert_eq!(r.unknown, vec!["9.9.dcm"]);
    assert!(r.bad_lines.is_empty());

    // Editing a manifest line (say, to match the tampered file) breaks its mac.
    let edited = lines[0].replace(
        &format!("\"size\":{}", e.size),
        &format!("\"size\":{}", e.size + 1),
    );
    std::fs::write(
        server.dir().join(MANIFEST_FILE),
        format!("{edited}\n{}\n", lines[1]),
    )
    .unwrap();
    let r = verify_dir(server.dir(), Some(&k)).unwrap();
    assert_eq!(r.bad_lines.len(), 1);
    assert_eq!(r.bad_lines[0].0, 1);
    assert!(r.bad_lines[0].1.contains("mac mismatch"), "{r:?}");
    let r = verify_dir(server.dir(), None).unwrap();
    assert!(r.bad_lines.is_empty() && !r.mac_checked, "{r:?}");
}

#[test]
fn a_different_key_under_the_same_id_is_refused_at_association() {
    let server = start_scp(cfg("site-a", 0x11, Policy::Opportunistic), None);
    let err = connect(server.port(), cfg("site-a", 0x22, Policy::Opportunistic)).unwrap_err();
    match err {
        NetError::Integrity(IntegrityError::KeyMismatch { key_id }) => assert_eq!(key_id, "site-a"),
        other => panic!("expected a key mismatch, got {other:?}"),
    }
    assert!(err_text(server.port()).contains("different key"));
    server.wait_idle();
    assert!(dcm_files(server.dir()).is_empty());
}

fn err_text(port: u16) -> String {
    connect(port, cfg("site-a", 0x22, Policy::Opportunistic))
        .unwrap_err()
        .to_string()
}

#[test]
fn required_scp_rejects_unknown_key_ids_and_plain_peers() {
    let server = start_scp(cfg("site-a", 0x11, Policy::Required), None);
    for integrity in [cfg("site-b", 0x11, Policy::Opportunistic), None] {
        match connect(server.port(), integrity) {
            Err(NetError::Rejected {
                result: 1,
                source: 1,
                reason: 1,
            }) => {}
            other => panic!("expected A-ASSOCIATE-RJ 1/1/1, got {other:?}"),
        }
    }
    server.wait_idle();
    let refused = server.rec.refused.lock().unwrap().clone();
    assert_eq!(refused.len(), 2);
    assert!(refused[0].contains("key id \"site-b\""), "{refused:?}");
    assert!(refused[1].contains("did not propose"), "{refused:?}");
    assert!(refused.iter().all(|r| r.contains("required")));
    // The right key gets in.
    let mut a = connect(server.port(), cfg("site-a", 0x11, Policy::Opportunistic)).unwrap();
    assert!(a.integrity_active());
    a.release().unwrap();
}

#[test]
fn required_scu_refuses_a_peer_without_integrity() {
    for scp in [None, cfg("site-a", 0x11, Policy::Off)] {
        let server = start_scp(scp, None);
        match connect(server.port(), cfg("site-a", 0x11, Policy::Required)) {
            Err(NetError::Integrity(e @ IntegrityError::Unsupported(_))) => {
                assert!(e.to_string().contains("(required)"), "{e}");
            }
            other => panic!("expected an integrity error, got {other:?}"),
        }
    }
}

#[test]
fn opportunistic_scu_works_with_a_peer_without_integrity() {
    let server = start_scp(None, None);
    let mut a = connect(server.port(), cfg("site-a", 0x11, Policy::Opportunistic)).unwrap();
    assert!(!a.integrity_active());
    assert!(a.rejected_contexts().is_empty());
    let out = store(&mut a, "1.2.4", pattern(1000, 1));
    assert_eq!(out.status, 0);
    assert_eq!(out.integrity_tag, None);
    a.release().unwrap();
    server.wait_idle();
    let obj = server.rec.stored.lock().unwrap()[0].clone();
    assert_eq!(obj.integrity, None);
    let lines = manifest_lines(server.dir());
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].contains("\"key_id\":null,\"tag\":null"),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with(",\"mac\":null}"));
    assert!(verify_dir(server.dir(), None).unwrap().is_clean());

    // An SCU with policy off does not even propose it.
    let server = start_scp(cfg("site-a", 0x11, Policy::Required), None);
    assert!(matches!(
        connect(server.port(), cfg("site-a", 0x11, Policy::Off)),
        Err(NetError::Rejected { reason: 1, .. })
    ));
}

#[test]
fn too_many_contexts_with_the_integrity_context() {
    let mut config = scu_config(cfg("site-a", 0x11, Policy::Opportunistic));
    config.contexts = vec![(CT.into(), vec![EXPLICIT_VR_LITTLE_ENDIAN.into()]); 128];
    // Refused before any connection is attempted (port 9 would fail otherwise).
    match ScuAssociation::connect("127.0.0.1", 9, config) {
        Err(NetError::InvalidArgument(m)) => assert!(m.contains("integrity"), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// What the proxy does to the requestor's PDUs.
#[derive(Clone)]
enum Mode {
    /// Flip one bit in the first non-empty data set PDV it sees.
    FlipOnce(Arc<AtomicBool>),
    /// Remember the data of tag PDVs (integrity context).
    Record(Arc<Mutex<Vec<Vec<u8>>>>),
    /// Replace the data of tag PDVs with these bytes.
    Replay(Vec<u8>),
    /// Drop P-DATA-TF PDUs that carry a tag PDV.
    DropTags,
}

/// A loopback TCP proxy to `target`, rewriting requestor-to-acceptor P-DATA-TF
/// PDUs per `mode`. Returns its port.
fn proxy(target: u16, mode: Mode) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let server = TcpStream::connect(("127.0.0.1", target)).unwrap();
            let mode = mode.clone();
            std::thread::spawn(move || pump(client, server, mode));
        }
    });
    port
}

fn pump(mut client: TcpStream, mut server: TcpStream, mode: Mode) {
    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut s2, &mut c2);
        let _ = c2.shutdown(Shutdown::Both);
    });
    loop {
        let mut header = [0u8; 6];
        if client.read_exact(&mut header).is_err() {
            break;
        }
        let len = u32::from_be_bytes(header[2..6].try_into().unwrap()) as usize;
        let mut body = vec![0u8; len];
        if client.read_exact(&mut body).is_err() {
            break;
        }
        if header[0] == 0x04 {
            // Tag PDVs travel alone in their P-DATA-TF: context ID at byte 4.
            if matches!(mode, Mode::DropTags) && body.get(4) == Some(&INTEGRITY_CTX) {
                continue;
            }
            rewrite_pdata(&mut body, &mode);
        }
        if server.write_all(&header).is_err() || server.write_all(&body).is_err() {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Write);
}

/// PDV items: length (4), context ID (1), message control header (1), data.
fn rewrite_pdata(body: &mut [u8], mode: &Mode) {
    let mut at = 0;
    while at + 6 <= body.len() {
        let len = u32::from_be_bytes(body[at..at + 4].try_into().unwrap()) as usize;
        let ctx = body[at + 4];
        let control = body[at + 5];
        let data = at + 6..at + 4 + len;
        match mode {
            Mode::FlipOnce(done) => {
                let is_dataset = control & 1 == 0;
                if is_dataset && !data.is_empty() && !done.swap(true, Ordering::SeqCst) {
                    body[data.start + data.len() / 2] ^= 0x10;
                }
            }
            Mode::Record(tags) if ctx == INTEGRITY_CTX => {
                tags.lock().unwrap().push(body[data].to_vec());
            }
            Mode::Replay(tag) if ctx == INTEGRITY_CTX => {
                assert_eq!(tag.len(), data.len());
                body[data].copy_from_slice(tag);
            }
            _ => {}
        }
        at += 4 + len;
    }
}

#[test]
fn a_flipped_bit_on_the_wire_is_refused_and_nothing_is_stored() {
    let server = start_scp(cfg("site-a", 0x11, Policy::Required), None);
    let flipped = Arc::new(AtomicBool::new(false));
    let port = proxy(server.port(), Mode::FlipOnce(flipped.clone()));
    let mut a = connect(port, cfg("site-a", 0x11, Policy::Required)).unwrap();
    assert!(a.integrity_active());
    let data = pattern(300_000, 9);
    let out = store(&mut a, "1.2.5.1", data.clone());
    assert!(flipped.load(Ordering::SeqCst));
    assert_eq!(out.status, INTEGRITY_CHECK_FAILED, "{out:?}");
    assert_eq!(
        out.error_comment.as_deref(),
        Some("integrity check failed: tag mismatch")
    );
    assert!(dcm_files(server.dir()).is_empty());
    assert!(manifest_lines(server.dir()).is_empty());
    let no_partials = std::fs::read_dir(server.dir()).unwrap().count() == 0;
    assert!(no_partials, "the temporary file is gone");
    assert_eq!(
        server.rec.failures.lock().unwrap().clone(),
        vec![("1.2.5.1".to_owned(), "tag mismatch".to_owned())]
    );
    // The association goes on: the retry (not flipped) is stored.
    let out = store(&mut a, "1.2.5.1", data);
    assert_eq!(out.status, 0);
    a.release().unwrap();
    server.wait_idle();
    assert_eq!(dcm_files(server.dir()), vec!["1.2.5.1.dcm"]);
    assert_eq!(manifest_lines(server.dir()).len(), 1);
    assert!(verify_dir(server.dir(), Some(&key("site-a", 0x11)))
        .unwrap()
        .is_clean());
}

#[test]
fn a_tag_replayed_into_another_association_is_refused() {
    let server = start_scp(cfg("site-a", 0x11, Policy::Required), None);
    let tags = Arc::new(Mutex::new(Vec::new()));
    let port = proxy(server.port(), Mode::Record(tags.clone()));
    let data = pattern(5000, 4);
    let mut a = connect(port, cfg("site-a", 0x11, Policy::Required)).unwrap();
    assert_eq!(store(&mut a, "1.2.6.1", data.clone()).status, 0);
    a.release().unwrap();
    let recorded = tags.lock().unwrap()[0].clone();
    assert_eq!(recorded.len(), 34);

    // Same data, same UID, same message ID 1: only the session key differs.
    let port = proxy(server.port(), Mode::Replay(recorded));
    let mut a = connect(port, cfg("site-a", 0x11, Policy::Required)).unwrap();
    let out = store(&mut a, "1.2.6.1", data);
    assert_eq!(out.status, INTEGRITY_CHECK_FAILED);
    a.release().unwrap();
    server.wait_idle();
    assert_eq!(manifest_lines(server.dir()).len(), 1);
}

#[test]
fn peers_agree_over_tls() {
    let pki = Pki::new("Test CA");
    let (tls_server, tls_client) = (server_tls(&pki, |_| {}), client_tls(&pki, |_| {}));
    let server = start_scp(cfg("site-a", 0x11, Policy::Required), Some(tls_server));
    let mut a = ScuAssociation::connect_tls(
        "127.0.0.1",
        server.port(),
        scu_config(cfg("site-a", 0x11, Policy::Required)),
        Some(&tls_client),
    )
    .unwrap();
    assert!(a.tls_session().is_some());
    assert!(a.integrity_active());
    let out = store(&mut a, "1.2.7.1", pattern(400_000, 7));
    assert_eq!(out.status, 0);
    a.release().unwrap();
    server.wait_idle();
    let obj = server.rec.stored.lock().unwrap()[0].clone();
    assert_eq!(
        obj.integrity,
        Some(("site-a".into(), out.integrity_tag.unwrap()))
    );
    assert!(verify_dir(server.dir(), Some(&key("site-a", 0x11)))
        .unwrap()
        .is_clean());

    // The wrong key still fails under TLS.
    let err = ScuAssociation::connect_tls(
        "127.0.0.1",
        server.port(),
        scu_config(cfg("site-a", 0x12, Policy::Opportunistic)),
        Some(&tls_client),
    )
    .unwrap_err();
    assert!(
        matches!(err, NetError::Integrity(IntegrityError::KeyMismatch { .. })),
        "{err:?}"
    );
}

#[test]
fn a_missing_tag_is_refused_after_the_dimse_timeout() {
    let timeouts = Timeouts {
        dimse: Duration::from_secs(1),
        ..quick_timeouts()
    };
    let server = TestServer::start_tls("127.0.0.1", None, |c| {
        c.integrity = cfg("site-a", 0x11, Policy::Required);
        c.timeouts = timeouts;
    });
    let port = proxy(server.port(), Mode::DropTags);
    let mut a = connect(port, cfg("site-a", 0x11, Policy::Required)).unwrap();
    let out = store(&mut a, "1.2.8.1", pattern(2000, 5));
    assert_eq!(out.status, INTEGRITY_CHECK_FAILED);
    assert_eq!(
        out.error_comment.as_deref(),
        Some("integrity check failed: tag missing")
    );
    assert!(a.is_established());
    a.release().unwrap();
    server.wait_idle();
    assert!(std::fs::read_dir(server.dir()).unwrap().next().is_none());
    assert_eq!(server.rec.failures.lock().unwrap()[0].1, "tag missing");
}
