//! The gateway on loopback: SCU -> gateway (IPv6) -> storage SCP (IPv4), the
//! refusals, integrity added onward, and a receiver lost mid-transfer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{pattern, quick_timeouts, read_stored, scu_config, wait_until, TestServer, CT, MR};
use securepdu_core::association::{Association, Config, Indication, Role};
use securepdu_core::conn::Connection;
use securepdu_core::gateway::{
    AssociationRecord, Gateway, GatewayConfig, GatewayHandler, GatewayShutdown, Outcome, Route,
};
use securepdu_core::integrity::{IntegrityConfig, IntegrityKey, Policy};
use securepdu_core::scp::{negotiate, ScpConfig};
use securepdu_core::scu::{NetError, ScuAssociation};
use securepdu_core::store::IMPLICIT_VR_LITTLE_ENDIAN;

#[derive(Default)]
struct Log(Mutex<Vec<AssociationRecord>>);

impl GatewayHandler for Log {
    fn on_association(&self, record: &AssociationRecord) {
        self.0.lock().unwrap().push(record.clone());
    }
}

struct TestGateway {
    gateway: Arc<Gateway>,
    stop: GatewayShutdown,
    thread: Option<JoinHandle<()>>,
    log: Arc<Log>,
}

impl TestGateway {
    fn start(host: &str, routes: Vec<Route>, max_pdu: u32) -> Self {
        let config = GatewayConfig {
            routes,
            max_pdu,
            timeouts: quick_timeouts(),
            ..GatewayConfig::default()
        };
        let log = Arc::new(Log::default());
        let gateway = Arc::new(Gateway::bind(host, 0, config, log.clone(), None).unwrap());
        let stop = gateway.shutdown_handle();
        let g = gateway.clone();
        let thread = std::thread::spawn(move || g.serve().unwrap());
        Self {
            gateway,
            stop,
            thread: Some(thread),
            log,
        }
    }

    fn port(&self) -> u16 {
        self.gateway.local_addr().port()
    }

    fn records(&self, n: usize) -> Vec<AssociationRecord> {
        wait_until(|| self.log.0.lock().unwrap().len() >= n);
        self.log.0.lock().unwrap().clone()
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.stop.shutdown();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn route_to(port: u16) -> Route {
    let mut r = Route::to("store", "127.0.0.1", port);
    r.called_ae = Some("STORE".into());
    r
}

#[test]
fn relays_objects_across_address_families_and_pdu_sizes() {
    // The receiver takes 16 KiB PDUs, the sender sends 64 KiB ones, the
    // gateway advertises 32 KiB: each hop is cut to its own size.
    let scp = TestServer::start("127.0.0.1", |c| c.max_pdu = 16_384);
    let gw = TestGateway::start("::1", vec![route_to(scp.port())], 32_768);
    let mut config = scu_config(&[CT, MR]);
    config.max_pdu = 65_536;
    let mut scu = ScuAssociation::connect("::1", gw.port(), config).unwrap();
    assert_eq!(scu.peer_max_pdu(), 32_768);
    assert_eq!(scu.echo().unwrap(), 0);
    let ctx = scu
        .find_context(CT, Some(IMPLICIT_VR_LITTLE_ENDIAN))
        .map(|c| c.id)
        .unwrap_or_else(|| scu.find_context(CT, None).unwrap().id);
    let sizes = [0usize, 1, 5_000, 300_000, 2_000_000];
    for (i, len) in sizes.iter().enumerate() {
        let uid = format!("1.2.3.{i}");
        let out = scu
            .store_bytes(ctx, CT, &uid, pattern(*len, i as u32))
            .unwrap();
        assert_eq!(out.status, 0, "object {i}");
    }
    scu.release().unwrap();
    let stored = scp.rec.stored.lock().unwrap().clone();
    assert_eq!(stored.len(), sizes.len());
    for (i, len) in sizes.iter().enumerate() {
        let obj = stored
            .iter()
            .find(|o| o.sop_instance_uid == format!("1.2.3.{i}"))
            .unwrap();
        assert_eq!(
            obj.calling_ae, "TESTSCU",
            "the calling AE title passes through"
        );
        let (_, data) = read_stored(&obj.path);
        assert_eq!(data, pattern(*len, i as u32).to_vec());
    }
    let records = gw.records(1);
    let r = &records[0];
    assert_eq!(r.outcome, Outcome::Released, "{r}");
    assert_eq!(r.objects, sizes.len() as u64);
    assert_eq!(r.bytes, sizes.iter().sum::<usize>() as u64);
    assert_eq!(r.route.as_deref(), Some("store"));
    let counters = gw.gateway.counters();
    assert_eq!(counters[0].associations, 1);
    assert_eq!(counters[0].objects, sizes.len() as u64);
    assert_eq!(counters[0].failures, 0);
}

#[test]
fn integrity_is_added_onward() {
    let key = IntegrityKey::new("site", &[9; 32]).unwrap();
    let k2 = key.clone();
    let scp = TestServer::start("127.0.0.1", move |c| {
        c.integrity = Some(IntegrityConfig::new(k2, Policy::Required));
    });
    let mut route = route_to(scp.port());
    route.integrity = Some(IntegrityConfig::new(key, Policy::Required));
    let gw = TestGateway::start("127.0.0.1", vec![route], 65_536);
    let mut scu = ScuAssociation::connect("127.0.0.1", gw.port(), scu_config(&[CT])).unwrap();
    let ctx = scu.find_context(CT, None).unwrap().id;
    for i in 0..3u32 {
        let out = scu
            .store_bytes(ctx, CT, &format!("1.2.4.{i}"), pattern(200_000, i))
            .unwrap();
        assert_eq!(out.status, 0);
    }
    scu.release().unwrap();
    let stored = scp.rec.stored.lock().unwrap().clone();
    assert_eq!(stored.len(), 3);
    assert!(stored.iter().all(|o| o.integrity.is_some()));
}

#[test]
fn refusals_carry_the_right_reject() {
    let scp = TestServer::start("127.0.0.1", |_| {});
    let mut strict = route_to(scp.port());
    strict.allowed_calling_aes = vec!["CT1".into()];
    let mut netted = Route::to("net", "127.0.0.1", scp.port());
    netted.called_ae = Some("NETTED".into());
    netted.allowed_networks = vec!["192.0.2.0/24".parse().unwrap()];
    // A port nobody listens on.
    let dead_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut dead = Route::to("dead", "127.0.0.1", dead_port);
    dead.called_ae = Some("DEAD".into());
    let gw = TestGateway::start("127.0.0.1", vec![strict, netted, dead], 65_536);
    let cases = [
        ("NOWHERE", (1, 1, 7)),
        ("STORE", (1, 1, 3)),
        ("NETTED", (1, 1, 1)),
        ("DEAD", (2, 1, 1)),
    ];
    for (called, want) in cases {
        let mut config = scu_config(&[CT]);
        config.called_ae = called.into();
        match ScuAssociation::connect("127.0.0.1", gw.port(), config) {
            Err(NetError::Rejected {
                result,
                source,
                reason,
            }) => assert_eq!((result, source, reason), want, "{called}"),
            other => panic!("{called}: {other:?}"),
        }
    }
    let records = gw.records(4);
    assert!(records.iter().all(|r| r.outcome.is_failure()));
    assert_eq!(gw.gateway.unrouted(), 1);
    let counters = gw.gateway.counters();
    assert_eq!(counters.iter().map(|c| c.failures).sum::<u64>(), 3);
    assert!(scp.rec.associations.lock().unwrap().is_empty());
}

/// A receiver that accepts, takes part of the first data set, and vanishes.
fn dying_receiver() -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut conn = Connection::new(
            stream,
            Association::new(Config {
                role: Role::Acceptor,
                artim_timeout: Duration::from_secs(5),
                max_pdu_receive: 16_384,
            }),
        );
        let now = Instant::now();
        conn.association_mut().transport_accepted(now).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let rq = match conn.next_indication(deadline, "RQ").unwrap() {
            Indication::AssociateRequest(rq) => rq,
            other => panic!("{other:?}"),
        };
        let (ac, _) = negotiate(&rq, &ScpConfig::default()).unwrap();
        let now = Instant::now();
        conn.association_mut().accept(ac, now).unwrap();
        conn.flush(now).unwrap();
        let mut data = 0usize;
        while data < 100_000 {
            match conn.next_indication(deadline, "P-DATA").unwrap() {
                Indication::PData(p) => {
                    data += p
                        .pdvs
                        .iter()
                        .filter(|v| !v.is_command)
                        .map(|v| v.data.len())
                        .sum::<usize>()
                }
                other => panic!("{other:?}"),
            }
        }
        // Killed: the socket closes without a word.
        drop(conn);
    });
    (port, thread)
}

#[test]
fn a_receiver_lost_mid_transfer_never_yields_success() {
    let (port, receiver) = dying_receiver();
    let gw = TestGateway::start("127.0.0.1", vec![route_to(port)], 65_536);
    let mut scu = ScuAssociation::connect("127.0.0.1", gw.port(), scu_config(&[CT])).unwrap();
    let ctx = scu.find_context(CT, None).unwrap().id;
    let result = scu.store_bytes(ctx, CT, "1.2.5.1", pattern(8_000_000, 5));
    match result {
        Ok(out) => assert_ne!(out.status, 0, "Success for an object never stored"),
        Err(e) => assert!(
            matches!(
                e,
                NetError::Aborted { .. } | NetError::ProviderAborted { .. } | NetError::Io(_)
            ),
            "{e:?}"
        ),
    }
    receiver.join().unwrap();
    let records = gw.records(1);
    assert!(
        matches!(records[0].outcome, Outcome::Aborted(_)),
        "{}",
        records[0]
    );
    assert_eq!(records[0].objects, 0);
    assert_eq!(gw.gateway.counters()[0].failures, 1);
}
