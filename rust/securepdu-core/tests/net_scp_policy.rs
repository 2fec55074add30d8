//! The storage SCP's admission rules and limits over loopback: allow-lists,
//! per-peer limits, user identity, object size, free space, start-up cleanup,
//! panics, shutdown with a grace period.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use securepdu_core::dimse::{CStoreRq, Message, Priority};
use securepdu_core::pdu::UserIdentityRq;
use securepdu_core::scp::{UserVerdict, OUT_OF_SPACE};
use securepdu_core::scu::{NetError, ScuAssociation};

use common::*;

fn rejected(err: &NetError) -> (u8, u8, u8) {
    match err {
        NetError::Rejected {
            result,
            source,
            reason,
        } => (*result, *source, *reason),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn calling_ae_allow_list() {
    let server = TestServer::start("127.0.0.1", |c| {
        c.calling_ae_allow_list = vec!["CT1".into(), "MR2 ".into()];
    });
    let err = ScuAssociation::connect("127.0.0.1", server.port(), scu_config(&[])).unwrap_err();
    // Rejected-permanent, service-user, calling-AE-title-not-recognized.
    assert_eq!(rejected(&err), (1, 1, 3));
    for ae in ["CT1", "MR2"] {
        let mut config = scu_config(&[]);
        config.calling_ae = ae.into();
        let mut scu = ScuAssociation::connect("127.0.0.1", server.port(), config).unwrap();
        scu.release().unwrap();
    }
}

#[test]
fn peer_network_allow_list_ipv4_and_ipv6() {
    let elsewhere = TestServer::start("::", |c| {
        c.allowed_networks = vec![
            "10.0.0.0/8".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ];
    });
    for host in ["127.0.0.1", "::1"] {
        let err = ScuAssociation::connect(host, elsewhere.port(), scu_config(&[])).unwrap_err();
        assert_eq!(rejected(&err), (1, 1, 1), "{host}");
    }
    let here = TestServer::start("::", |c| {
        c.allowed_networks = vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
    });
    for host in ["127.0.0.1", "::1"] {
        let mut scu = ScuAssociation::connect(host, here.port(), scu_config(&[])).unwrap();
        scu.release().unwrap();
    }
}

#[test]
fn per_peer_limit_rejects_transiently() {
    let server = TestServer::start("127.0.0.1", |c| c.max_associations_per_peer = 2);
    let mut held: Vec<ScuAssociation> = (0..2)
        .map(|_| ScuAssociation::connect("127.0.0.1", server.port(), scu_config(&[])).unwrap())
        .collect();
    let err = ScuAssociation::connect("127.0.0.1", server.port(), scu_config(&[])).unwrap_err();
    // Rejected-transient, service-provider (presentation), local-limit-exceeded.
    assert_eq!(rejected(&err), (2, 3, 2));
    // Another address of this machine is another peer.
    let mut v6 = ScuAssociation::connect("::1", server.port(), scu_config(&[]));
    if let Ok(v6) = &mut v6 {
        v6.release().unwrap();
    }
    held.pop().unwrap().release().unwrap();
    server.wait_until_active(1);
    let mut again = ScuAssociation::connect("127.0.0.1", server.port(), scu_config(&[])).unwrap();
    again.release().unwrap();
    held.pop().unwrap().release().unwrap();
}

fn rq_with_identity(
    port: u16,
    identity: Option<UserIdentityRq>,
) -> Result<ScuAssociation, NetError> {
    let mut config = scu_config(&[]);
    config.user_identity = identity;
    ScuAssociation::connect("127.0.0.1", port, config)
}

#[test]
fn user_identity_goes_to_the_verifier_and_its_answer_back() {
    let server = TestServer::start("127.0.0.1", |_| {});
    // No verifier: not checked, nothing answered (PS3.7 D.3.3.7).
    let jwt = UserIdentityRq {
        identity_type: 5,
        positive_response_requested: true,
        primary_field: b"eyJhbGciOi.x.y".to_vec(),
        secondary_field: Vec::new(),
    };
    let scu = rq_with_identity(server.port(), Some(jwt.clone())).unwrap();
    assert!(scu.associate_ac().user_info.user_identity_ac.is_none());
    drop(scu);
    *server.rec.user_verdict.lock().unwrap() = Some(UserVerdict::Accept {
        response: b"server-token".to_vec(),
    });
    let mut scu = rq_with_identity(server.port(), Some(jwt)).unwrap();
    let ac = scu
        .associate_ac()
        .user_info
        .user_identity_ac
        .clone()
        .unwrap();
    assert_eq!(ac.server_response, b"server-token");
    scu.release().unwrap();
    let seen = server.rec.identities.lock().unwrap().clone();
    assert_eq!(seen.last().unwrap().kind, 5);
    assert_eq!(seen.last().unwrap().primary, b"eyJhbGciOi.x.y");

    // Username and passcode, refused by the verifier.
    *server.rec.user_verdict.lock().unwrap() = Some(UserVerdict::Reject("bad passcode".into()));
    let password = UserIdentityRq {
        identity_type: 2,
        positive_response_requested: false,
        primary_field: b"alice".to_vec(),
        secondary_field: b"wrong".to_vec(),
    };
    let err = rq_with_identity(server.port(), Some(password)).unwrap_err();
    assert_eq!(rejected(&err), (1, 1, 1));
    assert_eq!(
        server
            .rec
            .identities
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .secondary,
        b"wrong"
    );
}

#[test]
fn required_user_identity_refuses_peers_without_one() {
    let server = TestServer::start("127.0.0.1", |c| c.require_user_identity = true);
    *server.rec.user_verdict.lock().unwrap() = Some(UserVerdict::Accept {
        response: Vec::new(),
    });
    let err = rq_with_identity(server.port(), None).unwrap_err();
    assert_eq!(rejected(&err), (1, 1, 1));
    let user = UserIdentityRq {
        identity_type: 1,
        positive_response_requested: true,
        primary_field: b"bob".to_vec(),
        secondary_field: Vec::new(),
    };
    let mut scu = rq_with_identity(server.port(), Some(user)).unwrap();
    // Asked for, so answered (empty for a username).
    let ac = scu
        .associate_ac()
        .user_info
        .user_identity_ac
        .clone()
        .unwrap();
    assert!(ac.server_response.is_empty());
    scu.release().unwrap();
}

#[test]
fn object_over_the_size_limit_is_refused_and_leaves_nothing() {
    let server = TestServer::start("127.0.0.1", |c| c.max_object_size = 100_000);
    let src = tempfile::tempdir().unwrap();
    let (mut scu, ctx) = mr_scu(&server);
    let (path, meta) = write_part10(src.path(), "1.2.3.50.1", &pattern(300_000, 1));
    let out = scu.store_file(&path, ctx, &meta).unwrap();
    assert_eq!(out.status, 0xA700, "{out:?}");
    assert!(out.error_comment.unwrap().contains("100000 bytes"));
    // The association goes on; a smaller object is stored.
    let (small, small_meta) = write_part10(src.path(), "1.2.3.50.2", &pattern(50_000, 2));
    assert_eq!(scu.store_file(&small, ctx, &small_meta).unwrap().status, 0);
    scu.release().unwrap();
    assert_eq!(files_in(server.dir()), vec!["1.2.3.50.2.dcm".to_owned()]);
    assert!(partials(server.dir()).is_empty());
}

#[test]
fn too_little_free_space_is_out_of_resources() {
    let server = TestServer::start("127.0.0.1", |c| c.min_free_space = u64::MAX / 2);
    let (mut scu, _) = mr_scu(&server);
    let ctx = scu.find_context(MR, None).unwrap().id;
    let out = scu
        .store_bytes(ctx, MR, "1.2.3.51", pattern(10_000, 3))
        .unwrap();
    assert_eq!(out.status, OUT_OF_SPACE);
    assert!(out.error_comment.unwrap().contains("reserve"));
    scu.release().unwrap();
    assert!(files_in(server.dir()).is_empty());
    assert!(partials(server.dir()).is_empty());
}

#[test]
fn stale_temporary_files_are_removed_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    // pid_max is at most 2^22 on Linux: this process cannot exist.
    let dead = dir.path().join(".1.2.3.60.4194304999.0.partial");
    let ours = dir
        .path()
        .join(format!(".1.2.3.61.{}.0.partial", std::process::id()));
    let other = dir.path().join("1.2.3.62.dcm");
    for p in [&dead, &ours, &other] {
        std::fs::write(p, b"x").unwrap();
    }
    let server = TestServer::start_in(dir, "127.0.0.1", |_| {});
    assert!(!dead.exists(), "a dead process's temporary file was kept");
    assert!(ours.exists() && other.exists());
    assert!(server.rec.errors.lock().unwrap()[0].contains("removed 1 temporary file"));
}

#[test]
fn a_panic_aborts_its_association_and_the_server_goes_on() {
    let server = TestServer::start("127.0.0.1", |_| {});
    server
        .rec
        .panic_once
        .store(true, std::sync::atomic::Ordering::SeqCst);
    // The panic comes right after the A-ASSOCIATE-AC: the next request meets
    // the A-ABORT.
    let mut scu = ScuAssociation::connect("127.0.0.1", server.port(), scu_config(&[])).unwrap();
    let err = scu.echo().unwrap_err();
    assert!(matches!(err, NetError::Aborted { .. }), "{err:?}");
    wait_until(|| !server.rec.errors.lock().unwrap().is_empty());
    assert_eq!(server.server.panicked_associations(), 1);
    assert!(server.rec.errors.lock().unwrap()[0].contains("panic"));
    let mut again = ScuAssociation::connect("127.0.0.1", server.port(), scu_config(&[])).unwrap();
    assert_eq!(again.echo().unwrap(), 0);
    again.release().unwrap();
}

/// A C-STORE whose data set stops halfway: the association is mid-message.
fn half_a_store(server: &TestServer) -> securepdu_core::conn::Connection<std::net::TcpStream> {
    let (mut conn, ctx) = raw_requestor(server.port());
    let rq = Message::CStoreRq(CStoreRq {
        message_id: 1,
        priority: Priority::Medium,
        affected_sop_class_uid: CT.into(),
        affected_sop_instance_uid: "1.2.3.70".into(),
        move_originator_ae_title: None,
        move_originator_message_id: None,
    });
    conn.send_command(ctx, &rq, 16_384).unwrap();
    conn.send_pdv(ctx, false, false, Bytes::from(vec![0u8; 1000]))
        .unwrap();
    conn
}

#[test]
fn shutdown_gives_transfers_their_grace_then_aborts() {
    let mut server = TestServer::start("127.0.0.1", |_| {});
    let mut conn = half_a_store(&server);
    wait_until(|| !partials(server.dir()).is_empty());
    let started = Instant::now();
    server.handle.shutdown_within(Duration::from_millis(600));
    server.thread.take().unwrap().join().unwrap();
    let took = started.elapsed();
    // Not before the grace period (the transfer could have finished), and
    // promptly after it.
    assert!(took >= Duration::from_millis(600), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let ind = conn.next_indication(deadline, "A-ABORT");
    assert!(
        matches!(
            ind,
            Ok(securepdu_core::association::Indication::Aborted { .. })
        ) || conn.is_closed(),
        "{ind:?}"
    );
    assert!(partials(server.dir()).is_empty(), "no temporary file left");
    assert!(files_in(server.dir()).is_empty());
}
