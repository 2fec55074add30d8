//! SCU <-> SCP over real loopback sockets (port 0), IPv4 and IPv6.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::{IpAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use securepdu_core::association::{Association, Config, Indication, Role};
use securepdu_core::conn::Connection;
use securepdu_core::dimse::{CStoreRq, Message, Priority};
use securepdu_core::part10::{read_file_meta, FileMeta};
use securepdu_core::scp::{
    negotiate, HandlerStatus, ScpConfig, Server, ShutdownHandle, INVALID_SOP_INSTANCE_UID,
};
use securepdu_core::scu::{NetError, ScuAssociation};
use securepdu_core::store::{EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN};

use common::*;

fn echo_and_store(host: &str, server: &TestServer) -> ScuAssociation {
    let mut scu = ScuAssociation::connect(host, server.port(), scu_config(&[CT])).unwrap();
    assert_eq!(scu.echo().unwrap(), 0);
    let ctx = scu.find_context(CT, None).unwrap().clone();
    assert_eq!(ctx.transfer_syntax, EXPLICIT_VR_LITTLE_ENDIAN);
    for i in 0..2u32 {
        let data = pattern(100_001 + i as usize, i);
        let uid = format!("1.2.826.0.1.3680043.2.1143.{i}");
        let out = scu.store_bytes(ctx.id, CT, &uid, data.clone()).unwrap();
        assert_eq!(out.status, 0, "{out:?}");
        let (meta, stored) = read_stored(&server.dir().join(format!("{uid}.dcm")));
        assert_eq!(stored, data.to_vec());
        assert_eq!(meta.media_storage_sop_class_uid, CT);
        assert_eq!(meta.media_storage_sop_instance_uid, uid);
        assert_eq!(meta.transfer_syntax_uid, EXPLICIT_VR_LITTLE_ENDIAN);
        assert_eq!(
            meta.source_application_entity_title.as_deref(),
            Some("TESTSCU")
        );
    }
    scu
}

#[test]
fn ipv4_echo_store_release() {
    let server = TestServer::start("127.0.0.1", |_| {});
    let mut scu = echo_and_store("127.0.0.1", &server);
    assert_eq!(scu.peer_addr().ip(), "127.0.0.1".parse::<IpAddr>().unwrap());
    assert!(scu.peer_max_pdu() > 0);
    scu.release().unwrap();
    assert!(!scu.is_established());
    server.wait_idle();
    let stored = server.rec.stored.lock().unwrap().clone();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].calling_ae, "TESTSCU");
    assert_eq!(stored[0].called_ae, "STORE");
    assert!(stored[0].peer.ip().is_ipv4());
    assert_eq!(
        stored[0].size,
        std::fs::metadata(&stored[0].path).unwrap().len()
    );
    assert_eq!(files_in(server.dir()).len(), 2, "no temporary files left");
    let assocs = server.rec.associations.lock().unwrap().clone();
    assert_eq!(assocs.len(), 1);
    assert!(assocs[0].3);
}

#[test]
fn ipv6_loopback() {
    let server = TestServer::start("::1", |_| {});
    let mut scu = echo_and_store("[::1]", &server);
    assert_eq!(scu.peer_addr().ip(), "::1".parse::<IpAddr>().unwrap());
    scu.release().unwrap();
    server.wait_idle();
    assert!(server.rec.stored.lock().unwrap()[0].peer.is_ipv6());
}

#[test]
fn dual_stack_reports_ipv4_peers_as_ipv4() {
    let server = TestServer::start("::", |_| {});
    let mut v4 = ScuAssociation::connect("127.0.0.1", server.port(), scu_config(&[])).unwrap();
    assert_eq!(v4.echo().unwrap(), 0);
    v4.release().unwrap();
    let mut v6 = ScuAssociation::connect("::1", server.port(), scu_config(&[])).unwrap();
    assert_eq!(v6.echo().unwrap(), 0);
    v6.release().unwrap();
    server.wait_idle();
    let assocs = server.rec.associations.lock().unwrap().clone();
    assert_eq!(
        assocs[0].0.ip(),
        "127.0.0.1".parse::<IpAddr>().unwrap(),
        "{assocs:?}"
    );
    assert_eq!(assocs[1].0.ip(), "::1".parse::<IpAddr>().unwrap());
}

#[test]
fn store_file_streams_from_disk() {
    // A small SCP maximum PDU: many fragments, and a data set length that is
    // not a multiple of the fragment size.
    let server = TestServer::start("127.0.0.1", |c| c.max_pdu = 16_384);
    let src = tempfile::tempdir().unwrap();
    let uid = "1.2.3.4.5.6.7";
    let data = pattern(3_000_017, 7);
    let mut bytes = FileMeta::new(MR, uid, IMPLICIT_VR_LITTLE_ENDIAN).encode();
    bytes.extend_from_slice(&data);
    let path = src.path().join("in.dcm");
    std::fs::write(&path, &bytes).unwrap();
    let meta = read_file_meta(&bytes).unwrap();

    let mut config = scu_config(&[]);
    config
        .contexts
        .push((MR.into(), vec![IMPLICIT_VR_LITTLE_ENDIAN.into()]));
    let mut scu = ScuAssociation::connect("localhost", server.port(), config).unwrap();
    assert_eq!(scu.peer_max_pdu(), 16_384);
    let ctx = scu
        .find_context(MR, Some(IMPLICIT_VR_LITTLE_ENDIAN))
        .unwrap()
        .id;
    let out = scu.store_file(&path, ctx, &meta).unwrap();
    assert_eq!(out.status, 0);
    let (got_meta, got) = read_stored(&server.dir().join(format!("{uid}.dcm")));
    assert_eq!(got_meta.transfer_syntax_uid, IMPLICIT_VR_LITTLE_ENDIAN);
    assert!(got == data.to_vec());

    // A file whose transfer syntax the context was not accepted with is refused
    // locally, and the association stays usable.
    let mut other = meta.clone();
    other.transfer_syntax_uid = EXPLICIT_VR_LITTLE_ENDIAN.into();
    assert!(matches!(
        scu.store_file(&path, ctx, &other),
        Err(NetError::InvalidArgument(_))
    ));
    assert_eq!(scu.echo().unwrap(), 0);
    scu.release().unwrap();
}

#[test]
fn store_file_multi_megabyte_small_pdu_over_plain_tcp() {
    // Plain TCP without integrity: on Linux the data set goes with sendfile(2),
    // one 16 KiB PDV at a time behind its header. Two files on one association,
    // then an echo: the stream is still in step after each.
    let server = TestServer::start("127.0.0.1", |c| c.max_pdu = 16_384);
    let src = tempfile::tempdir().unwrap();
    let (mut scu, ctx) = mr_scu(&server);
    assert_eq!(scu.peer_max_pdu(), 16_384);
    for (uid, len) in [("1.2.3.9.1", 9_437_201), ("1.2.3.9.2", 16_378)] {
        let data = pattern(len, len as u32);
        let (path, meta) = write_part10(src.path(), uid, &data);
        let out = scu.store_file(&path, ctx, &meta).unwrap();
        assert_eq!(out.status, 0);
        let (_, got) = read_stored(&server.dir().join(format!("{uid}.dcm")));
        assert!(got == data.to_vec(), "{uid}: data set differs");
    }
    assert_eq!(scu.echo().unwrap(), 0);
    scu.release().unwrap();
}

#[test]
fn async_window_pipelines_stores_each_answered_once_durable() {
    // Both sides default to a window of 16: the SCU sends up to 16 C-STOREs
    // before the first answer. The handler holds up the first object, so later
    // answers overtake it and the SCU must match answers to requests by ID.
    let server = TestServer::start("127.0.0.1", |_| {});
    *server.rec.delay.lock().unwrap() = Some(("1.2.3.7.0".into(), Duration::from_millis(300)));
    let src = tempfile::tempdir().unwrap();
    let (mut scu, ctx) = mr_scu(&server);
    assert_eq!(scu.async_window(), 16);
    let mut sent = Vec::new();
    for i in 0..40u32 {
        let uid = format!("1.2.3.7.{i}");
        let data = pattern(20_000 + i as usize * 1000, i);
        let (path, meta) = write_part10(src.path(), &uid, &data);
        let pending = scu.begin_store_file(&path, ctx, &meta).unwrap();
        sent.push((uid, data, pending));
    }
    for (uid, data, pending) in sent {
        let out = scu.finish_store(pending).unwrap();
        assert_eq!(out.status, 0, "{uid}: {out:?}");
        // Answered Success only once durable: the file is in place already.
        let (_, got) = read_stored(&server.dir().join(format!("{uid}.dcm")));
        assert!(got == data.to_vec(), "{uid}: data set differs");
    }
    assert_eq!(server.rec.stored.lock().unwrap().len(), 40);
    assert_eq!(scu.echo().unwrap(), 0);
    scu.release().unwrap();
}

#[test]
fn release_with_stores_outstanding_answers_them_first() {
    let server = TestServer::start("127.0.0.1", |_| {});
    let src = tempfile::tempdir().unwrap();
    let (mut scu, ctx) = mr_scu(&server);
    for i in 0..5u32 {
        let uid = format!("1.2.3.8.{i}");
        let (path, meta) = write_part10(src.path(), &uid, &pattern(50_000, i));
        scu.begin_store_file(&path, ctx, &meta).unwrap();
    }
    scu.release().unwrap();
    let stored = files_in(server.dir());
    assert_eq!(stored.len(), 5, "{stored:?}");
}

#[test]
fn async_window_is_one_when_either_side_says_so() {
    let sync_scp = TestServer::start("127.0.0.1", |c| c.max_ops_performed = 1);
    let (scu, _) = mr_scu(&sync_scp);
    assert_eq!(scu.async_window(), 1);
    drop(scu);
    let server = TestServer::start("127.0.0.1", |_| {});
    let mut config = scu_config(&[MR]);
    config.max_ops_invoked = 1;
    let mut scu = ScuAssociation::connect("127.0.0.1", server.port(), config).unwrap();
    assert_eq!(scu.async_window(), 1);
    assert!(scu.associate_ac().user_info.async_ops_window.is_none());
    scu.release().unwrap();
}

#[test]
fn store_file_truncated_while_sending_fails() {
    // The file shrinks after its length was taken: the SCP's trace hook cuts it
    // short when the first data-set PDV arrives, long before the SCU can have
    // sent 32 MiB into the socket buffers.
    let src = tempfile::tempdir().unwrap();
    let uid = "1.2.3.9.3";
    let (path, meta) = write_part10(src.path(), uid, &vec![0x5a; 32 << 20]);
    let cut_at = meta.dataset_offset + 100_000;
    let victim = path.clone();
    let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cut_hook = cut.clone();
    let hook = securepdu_core::conn::TraceHook::new(move |t| {
        if !t.sent && t.line.contains(" data ") && !cut_hook.swap(true, Ordering::SeqCst) {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&victim)
                .unwrap();
            f.set_len(cut_at).unwrap();
        }
    });
    let server = TestServer::start("127.0.0.1", |c| {
        c.max_pdu = 16_384;
        c.trace = Some(hook);
    });
    let (mut scu, ctx) = mr_scu(&server);
    let err = scu.store_file(&path, ctx, &meta).unwrap_err();
    assert!(cut.load(Ordering::SeqCst));
    assert!(
        matches!(&err, NetError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof),
        "{err:?}"
    );
    assert!(!scu.is_established());
    server.wait_idle();
    assert!(files_in(server.dir()).is_empty());
    assert!(server.rec.stored.lock().unwrap().is_empty());
}

#[test]
fn fifty_megabytes() {
    let server = TestServer::start("127.0.0.1", |_| {});
    let mut scu = ScuAssociation::connect("127.0.0.1", server.port(), scu_config(&[CT])).unwrap();
    let ctx = scu.find_context(CT, None).unwrap().id;
    let data = pattern(50 << 20, 50);
    let out = scu.store_bytes(ctx, CT, "1.2.50", data.clone()).unwrap();
    assert_eq!(out.status, 0);
    let (_, got) = read_stored(&server.dir().join("1.2.50.dcm"));
    assert!(got == data.to_vec());
    scu.release().unwrap();
}

#[test]
fn sixteen_concurrent_associations() {
    let server = TestServer::start("127.0.0.1", |_| {});
    let port = server.port();
    let workers: Vec<_> = (0..16u32)
        .map(|w| {
            std::thread::spawn(move || {
                let mut scu =
                    ScuAssociation::connect("127.0.0.1", port, scu_config(&[CT])).unwrap();
                let ctx = scu.find_context(CT, None).unwrap().id;
                for i in 0..3u32 {
                    let data = pattern(200_000 + (w * 3 + i) as usize, w * 3 + i);
                    let out = scu
                        .store_bytes(ctx, CT, &format!("1.2.16.{w}.{i}"), data)
                        .unwrap();
                    assert_eq!(out.status, 0);
                }
                scu.release().unwrap();
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    for w in 0..16u32 {
        for i in 0..3u32 {
            let (meta, got) = read_stored(&server.dir().join(format!("1.2.16.{w}.{i}.dcm")));
            assert_eq!(
                meta.media_storage_sop_instance_uid,
                format!("1.2.16.{w}.{i}")
            );
            assert!(got == pattern(200_000 + (w * 3 + i) as usize, w * 3 + i).to_vec());
        }
    }
    assert_eq!(files_in(server.dir()).len(), 48);
}

/// Threads of this process making objects durable (their names are cut to
/// 15 bytes by the kernel).
fn durability_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == "securepdu-scp-d")
        .count()
}

#[cfg(target_os = "linux")]
#[test]
fn many_pipelining_associations_share_the_servers_durability_workers() {
    // 64 associations at once, each with 4 C-STOREs outstanding: every object
    // is answered Success once durable, the server never runs more than its
    // 48 durability threads (not 8 per association: 64 x 4 objects waiting),
    // and they leave once idle.
    let server = TestServer::start("127.0.0.1", |c| c.max_associations = 64);
    let port = server.port();
    let src = Arc::new(tempfile::tempdir().unwrap());
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut most = 0;
            while !done.load(Ordering::SeqCst) {
                most = most.max(durability_threads());
                std::thread::sleep(Duration::from_millis(2));
            }
            most
        })
    };
    let senders: Vec<_> = (0..64u32)
        .map(|a| {
            let src = Arc::clone(&src);
            std::thread::spawn(move || {
                let mut config = scu_config(&[]);
                config
                    .contexts
                    .push((MR.into(), vec![IMPLICIT_VR_LITTLE_ENDIAN.into()]));
                let mut scu = ScuAssociation::connect("127.0.0.1", port, config).unwrap();
                let ctx = scu.find_context(MR, None).unwrap().id;
                let pending: Vec<_> = (0..4u32)
                    .map(|i| {
                        let uid = format!("1.2.64.{a}.{i}");
                        let (path, meta) =
                            write_part10(src.path(), &uid, &pattern(30_000, a * 4 + i));
                        scu.begin_store_file(&path, ctx, &meta).unwrap()
                    })
                    .collect();
                for p in pending {
                    assert_eq!(scu.finish_store(p).unwrap().status, 0);
                }
                scu.release().unwrap();
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let most = watcher.join().unwrap();
    assert!(
        (1..=48).contains(&most),
        "{most} durability threads at once"
    );
    for a in 0..64u32 {
        for i in 0..4u32 {
            let (_, got) = read_stored(&server.dir().join(format!("1.2.64.{a}.{i}.dcm")));
            assert!(got == pattern(30_000, a * 4 + i).to_vec(), "1.2.64.{a}.{i}");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while durability_threads() > 0 {
        assert!(
            Instant::now() < deadline,
            "durability threads still running when idle"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn wrong_called_ae_is_rejected() {
    let server = TestServer::start("127.0.0.1", |c| c.require_called_ae = true);
    let mut config = scu_config(&[]);
    config.called_ae = "SOMEONE".into();
    let err = ScuAssociation::connect("127.0.0.1", server.port(), config).unwrap_err();
    assert!(
        matches!(
            err,
            NetError::Rejected {
                result: 1,
                source: 1,
                reason: 7
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("called AE title not recognized"));
    // The right title is accepted.
    let mut scu = ScuAssociation::connect("127.0.0.1", server.port(), scu_config(&[])).unwrap();
    scu.release().unwrap();
}

#[test]
fn one_association_too_many_is_rejected_transiently() {
    let server = TestServer::start("127.0.0.1", |c| c.max_associations = 1);
    let mut first = ScuAssociation::connect("127.0.0.1", server.port(), scu_config(&[])).unwrap();
    wait_until(|| server.server.active_associations() == 1);
    let err = ScuAssociation::connect("127.0.0.1", server.port(), scu_config(&[])).unwrap_err();
    assert!(
        matches!(
            err,
            NetError::Rejected {
                result: 2,
                source: 3,
                reason: 2
            }
        ),
        "{err:?}"
    );
    assert_eq!(first.echo().unwrap(), 0);
    first.release().unwrap();
    server.wait_idle();
    let mut again = ScuAssociation::connect("127.0.0.1", server.port(), scu_config(&[])).unwrap();
    again.release().unwrap();
}

#[test]
fn unsupported_abstract_and_transfer_syntaxes_are_rejected() {
    let server = TestServer::start("127.0.0.1", |_| {});
    let mut config = scu_config(&[CT, "1.2.3.4.5"]);
    config.contexts.push((MR.into(), vec!["1.2.3.999".into()]));
    let mut scu = ScuAssociation::connect("127.0.0.1", server.port(), config).unwrap();
    let rejected = scu.rejected_contexts();
    assert_eq!(
        rejected,
        vec![(5, "1.2.3.4.5".to_string(), 3), (7, MR.to_string(), 4)]
    );
    assert!(scu.find_context(CT, None).is_some());
    assert!(scu.find_context(MR, None).is_none());
    // Storing on a context that was not accepted is refused locally.
    assert!(matches!(
        scu.store_bytes(5, "1.2.3.4.5", "1.2.3", Bytes::from_static(b"xx")),
        Err(NetError::InvalidArgument(_))
    ));
    scu.release().unwrap();
}

#[test]
fn invalid_sop_instance_uid_is_refused_without_a_file() {
    let server = TestServer::start("127.0.0.1", |_| {});
    let mut scu = ScuAssociation::connect("127.0.0.1", server.port(), scu_config(&[CT])).unwrap();
    let ctx = scu.find_context(CT, None).unwrap().id;
    let long = format!("1.{}", "2".repeat(70));
    for bad in ["../../evil", "1.2/3", "1..2", long.as_str()] {
        let out = scu.store_bytes(ctx, CT, bad, pattern(1000, 1)).unwrap();
        assert_eq!(out.status, INVALID_SOP_INSTANCE_UID, "{bad}");
        assert!(out
            .error_comment
            .unwrap()
            .contains("invalid SOP Instance UID"));
    }
    // A SOP class that differs from the context's is refused too.
    let out = scu.store_bytes(ctx, MR, "1.2.3", pattern(10, 1)).unwrap();
    assert_eq!(out.status, 0x0122);
    assert_eq!(scu.echo().unwrap(), 0);
    scu.release().unwrap();
    server.wait_idle();
    assert!(files_in(server.dir()).is_empty());
    assert!(server.rec.stored.lock().unwrap().is_empty());
}

#[test]
fn handler_statuses() {
    let server = TestServer::start("127.0.0.1", |_| {});
    let mut scu = ScuAssociation::connect("127.0.0.1", server.port(), scu_config(&[CT])).unwrap();
    let ctx = scu.find_context(CT, None).unwrap().id;
    *server.rec.answer.lock().unwrap() = Some(Err("database is down".into()));
    let out = scu.store_bytes(ctx, CT, "1.2.1", pattern(10, 1)).unwrap();
    assert_eq!(out.status, 0xC001);
    assert_eq!(out.error_comment.as_deref(), Some("database is down"));
    *server.rec.answer.lock().unwrap() = Some(Ok(Some(HandlerStatus {
        status: 0xB000,
        error_comment: None,
    })));
    let out = scu.store_bytes(ctx, CT, "1.2.2", pattern(10, 2)).unwrap();
    assert_eq!(out.status, 0xB000);
    scu.release().unwrap();
}

#[test]
fn abort_mid_store_leaves_no_file() {
    let server = TestServer::start("127.0.0.1", |_| {});
    let (mut conn, ctx) = raw_requestor(server.port());
    let rq = Message::CStoreRq(CStoreRq {
        message_id: 1,
        priority: Priority::Medium,
        affected_sop_class_uid: CT.into(),
        affected_sop_instance_uid: "1.2.99".into(),
        move_originator_ae_title: None,
        move_originator_message_id: None,
    });
    conn.send_command(ctx, &rq, 16_384).unwrap();
    conn.send_pdv(ctx, false, false, pattern(10_000, 3))
        .unwrap();
    // The SCP has started writing the temporary file, hidden, never the final name.
    wait_until(|| !partials(server.dir()).is_empty());
    let partial = partials(server.dir()).remove(0);
    let name = partial.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with(".1.2.99."), "{name}");
    conn.abort();
    server.wait_idle();
    assert!(
        files_in(server.dir()).is_empty(),
        "{:?}",
        files_in(server.dir())
    );
    assert!(server.rec.stored.lock().unwrap().is_empty());
}

#[test]
fn scu_reports_peer_abort_mid_store() {
    peer_abort_mid_store(true);
}

#[test]
fn scu_reports_peer_abort_then_reset_mid_store() {
    peer_abort_mid_store(false);
}

/// `linger`: the fake SCP drains input after its A-ABORT (as [`Connection::abort`]
/// does); otherwise it drops the socket at once, so the SCU's writes fail with a
/// reset and the A-ABORT must be found in what was already received.
fn peer_abort_mid_store(linger: bool) {
    // A fake SCP that accepts, then aborts once data set bytes arrive.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let fake = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut conn = Connection::new(stream, Association::new(Config::new(Role::Acceptor)));
        let now = Instant::now();
        conn.association_mut().transport_accepted(now).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match conn.next_indication(deadline, "test").unwrap() {
                Indication::AssociateRequest(rq) => {
                    let (ac, _) = negotiate(&rq, &ScpConfig::default()).unwrap();
                    let now = Instant::now();
                    conn.association_mut().accept(ac, now).unwrap();
                    conn.flush(now).unwrap();
                }
                Indication::PData(p) if p.pdvs.iter().any(|v| !v.is_command) => {
                    if linger {
                        conn.abort();
                    } else {
                        let now = Instant::now();
                        conn.association_mut().abort(now).unwrap();
                        conn.flush(now).unwrap();
                    }
                    return;
                }
                _ => {}
            }
        }
    });
    let mut scu = ScuAssociation::connect("127.0.0.1", port, scu_config(&[CT])).unwrap();
    let ctx = scu.find_context(CT, None).unwrap().id;
    let err = scu
        .store_bytes(ctx, CT, "1.2.3", pattern(64 << 20, 9))
        .unwrap_err();
    assert!(
        matches!(err, NetError::Aborted { source: 0, .. }),
        "{err:?}"
    );
    assert!(!scu.is_established());
    fake.join().unwrap();
}

#[test]
fn idle_association_is_aborted() {
    let server = TestServer::start("127.0.0.1", |c| {
        c.timeouts.idle = Duration::from_millis(300)
    });
    let mut scu = ScuAssociation::connect("127.0.0.1", server.port(), scu_config(&[])).unwrap();
    server.wait_idle();
    let err = scu.echo().unwrap_err();
    assert!(
        matches!(
            err,
            NetError::Aborted { .. } | NetError::Io(_) | NetError::ProviderAborted { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn shutdown_returns_promptly() {
    let server = TestServer::start("127.0.0.1", |_| {});
    let mut scu = ScuAssociation::connect("127.0.0.1", server.port(), scu_config(&[])).unwrap();
    assert_eq!(scu.echo().unwrap(), 0);
    let started = Instant::now();
    drop(server); // shuts down and joins serve()
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(scu.echo().is_err());
}

#[test]
fn thread_safety_for_bindings() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Server>();
    send_sync::<ShutdownHandle>();
    send_sync::<NetError>();
    send::<ScuAssociation>();
}
