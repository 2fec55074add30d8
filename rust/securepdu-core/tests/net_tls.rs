//! SCU <-> SCP over TLS on loopback (port 0), with certificates made by rcgen
//! at test time (nothing is committed).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{Duration, Instant};

mod common;

use bytes::Bytes;
use common::{client_tls, quick_timeouts, server_tls, Pki, TestServer, CT};
use securepdu_core::dimse::VERIFICATION_SOP_CLASS;
use securepdu_core::scu::{NetError, ScuAssociation, ScuConfig, Timeouts};
use securepdu_core::store::{EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN};
use securepdu_core::tls::{
    certificate_subject, TlsClient, TlsClientOptions, TlsError, TlsProfile, TlsServer,
    TlsServerOptions,
};

/// An SCP on `host`, over TLS when `tls` is given.
fn start_scp(host: &str, tls: Option<TlsServer>) -> TestServer {
    TestServer::start_tls(host, tls, |_| {})
}

/// Waits (up to 5 s) for the SCP to report a TLS error.
fn tls_error(server: &TestServer) -> TlsError {
    let mut first = None;
    common::wait_until(|| {
        first = server.rec.tls_errors.lock().unwrap().first().cloned();
        first.is_some()
    });
    first.unwrap()
}

fn scu_config() -> ScuConfig {
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
        ..ScuConfig::default()
    }
}

fn connect(host: &str, port: u16, tls: &TlsClient) -> Result<ScuAssociation, NetError> {
    ScuAssociation::connect_tls(host, port, scu_config(), Some(tls))
}

fn tls_err(r: Result<ScuAssociation, NetError>) -> TlsError {
    match r {
        Err(NetError::Tls(e)) => e,
        Err(other) => panic!("expected a TLS error, got {other:?}"),
        Ok(_) => panic!("expected a TLS error, the association was established"),
    }
}

/// Echo, a 1 MB store and release; returns the negotiated (version, suite).
fn echo_and_store(host: &str, server: &TestServer, tls: &TlsClient) -> (String, String) {
    let mut a = connect(host, server.port(), tls).unwrap();
    assert_eq!(a.echo().unwrap(), 0);
    let data: Bytes = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let ctx = a.find_context(CT, None).unwrap().id;
    let out = a.store_bytes(ctx, CT, "1.2.3.4.5", data).unwrap();
    assert_eq!(out.status, 0);
    let session = a.tls_session().unwrap();
    a.release().unwrap();
    let stored = server.rec.stored.lock().unwrap();
    assert!(stored.last().unwrap().size > 1_000_000);
    session
}

#[test]
fn echo_and_store_tls13_and_tls12_ipv4_ipv6() {
    let pki = Pki::new("Test CA");
    for (host, bind) in [
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("localhost", "127.0.0.1"),
    ] {
        let server = start_scp(bind, Some(server_tls(&pki, |_| {})));
        let (v, _) = echo_and_store(host, &server, &client_tls(&pki, |_| {}));
        assert_eq!(v, "TLSv1.3");
        let tls12 = client_tls(&pki, |o| o.profile = TlsProfile::Tls12Only);
        let (v, suite) = echo_and_store(host, &server, &tls12);
        assert_eq!(v, "TLSv1.2");
        assert!(suite.contains("ECDHE") && suite.contains("GCM"), "{suite}");
        let chacha = client_tls(&pki, |o| {
            o.ciphers = vec!["TLS_CHACHA20_POLY1305_SHA256".into()];
        });
        let (_, suite) = echo_and_store(host, &server, &chacha);
        assert!(suite.contains("CHACHA20"), "{suite}");
    }
}

#[test]
fn mutual_tls_accepted_and_subject_given_to_handler() {
    let pki = Pki::new("Test CA");
    let server = start_scp(
        "127.0.0.1",
        Some(server_tls(&pki, |o| o.ca_file = Some(pki.ca()))),
    );
    let (cert, key) = pki.issue("client", "modality-1", &[], false);
    let tls = client_tls(&pki, |o| {
        o.cert_chain_file = Some(cert);
        o.key_file = Some(key);
    });
    echo_and_store("127.0.0.1", &server, &tls);
    let stored = server.rec.stored.lock().unwrap();
    let peer = stored[0].peer_certificate.as_ref().unwrap();
    assert_eq!(
        peer.subject.as_deref(),
        Some("CN=modality-1,O=Test Hospital")
    );
    assert_eq!(certificate_subject(&peer.der), peer.subject);
}

#[test]
fn client_without_certificate_refused() {
    let pki = Pki::new("Test CA");
    for profile in [TlsProfile::Tls13Only, TlsProfile::Tls12Only] {
        let server = start_scp(
            "127.0.0.1",
            Some(server_tls(&pki, |o| o.ca_file = Some(pki.ca()))),
        );
        let tls = client_tls(&pki, |o| o.profile = profile);
        let e = tls_err(connect("127.0.0.1", server.port(), &tls));
        assert_eq!(e, TlsError::ClientCertificateMissing, "{profile:?}");
        assert_eq!(tls_error(&server), TlsError::ClientCertificateMissing);
    }
}

#[test]
fn client_certificate_from_another_ca_refused() {
    let pki = Pki::new("Test CA");
    let other = Pki::new("Other CA");
    let server = start_scp(
        "127.0.0.1",
        Some(server_tls(&pki, |o| o.ca_file = Some(pki.ca()))),
    );
    let (cert, key) = other.issue("client", "intruder", &[], false);
    let tls = client_tls(&pki, |o| {
        o.cert_chain_file = Some(cert);
        o.key_file = Some(key);
    });
    let e = tls_err(connect("127.0.0.1", server.port(), &tls));
    assert!(
        matches!(e, TlsError::ClientCertificateRefused { .. }),
        "{e:?}"
    );
    assert!(
        matches!(
            tls_error(&server),
            TlsError::ClientCertificateRefused { .. }
        ),
        "{:?}",
        tls_error(&server)
    );
}

#[test]
fn untrusted_issuer() {
    let pki = Pki::new("Test CA");
    let other = Pki::new("Other CA");
    let server = start_scp("127.0.0.1", Some(server_tls(&pki, |_| {})));
    let e = tls_err(connect(
        "127.0.0.1",
        server.port(),
        &client_tls(&other, |_| {}),
    ));
    assert_eq!(e, TlsError::UntrustedIssuer);
    assert!(matches!(
        tls_error(&server),
        TlsError::CertificateRefusedByPeer { .. }
    ));
}

#[test]
fn system_store_only_on_request() {
    let pki = Pki::new("Test CA");
    let server = start_scp("127.0.0.1", Some(server_tls(&pki, |_| {})));
    // No CA file and no system store: nothing to verify against.
    let none = TlsClient::new(&TlsClientOptions::default()).unwrap_err();
    assert!(none.to_string().contains("CA file"), "{none}");
    // The system store holds public CAs, not this private one.
    let system = client_tls(&pki, |o| {
        o.ca_file = None;
        o.use_system_roots = true;
    });
    let e = tls_err(connect("127.0.0.1", server.port(), &system));
    assert_eq!(e, TlsError::UntrustedIssuer);
    // Both: the CA file still works.
    let both = client_tls(&pki, |o| o.use_system_roots = true);
    echo_and_store("127.0.0.1", &server, &both);
}

#[test]
fn expired_certificate() {
    let pki = Pki::new("Test CA");
    let (cert, key) = pki.issue("old", "scp", &["127.0.0.1"], true);
    let server = start_scp(
        "127.0.0.1",
        Some(TlsServer::new(&TlsServerOptions::new(cert, key)).unwrap()),
    );
    let e = tls_err(connect(
        "127.0.0.1",
        server.port(),
        &client_tls(&pki, |_| {}),
    ));
    assert_eq!(e, TlsError::Expired);
}

#[test]
fn wrong_host_name_and_opt_out() {
    let pki = Pki::new("Test CA");
    let (cert, key) = pki.issue("elsewhere", "scp", &["pacs.example.org"], false);
    let server = start_scp(
        "127.0.0.1",
        Some(TlsServer::new(&TlsServerOptions::new(cert, key)).unwrap()),
    );
    let e = tls_err(connect(
        "127.0.0.1",
        server.port(),
        &client_tls(&pki, |_| {}),
    ));
    assert_eq!(
        e,
        TlsError::WrongHostName {
            expected: "127.0.0.1".into()
        }
    );
    // The right name given explicitly is accepted.
    let named = client_tls(&pki, |o| o.server_name = Some("pacs.example.org".into()));
    echo_and_store("127.0.0.1", &server, &named);
    // verify_hostname = false accepts the wrong name...
    let lax = client_tls(&pki, |o| o.verify_hostname = false);
    echo_and_store("127.0.0.1", &server, &lax);
    // ...but still checks the issuer.
    let other = Pki::new("Other CA");
    let lax_other = client_tls(&other, |o| o.verify_hostname = false);
    let e = tls_err(connect("127.0.0.1", server.port(), &lax_other));
    assert_eq!(e, TlsError::UntrustedIssuer);
}

#[test]
fn no_common_protocol_version() {
    let pki = Pki::new("Test CA");
    let server = start_scp(
        "127.0.0.1",
        Some(server_tls(&pki, |o| o.profile = TlsProfile::Tls12Only)),
    );
    let tls = client_tls(&pki, |o| o.profile = TlsProfile::Tls13Only);
    let e = tls_err(connect("127.0.0.1", server.port(), &tls));
    assert_eq!(e, TlsError::NoCommonProtocolVersion);
    assert_eq!(tls_error(&server), TlsError::NoCommonProtocolVersion);
}

#[test]
fn no_common_cipher_suite() {
    let pki = Pki::new("Test CA");
    let server = start_scp(
        "127.0.0.1",
        Some(server_tls(&pki, |o| {
            o.ciphers = vec!["TLS_AES_256_GCM_SHA384".into()];
        })),
    );
    let tls = client_tls(&pki, |o| o.ciphers = vec!["TLS_AES_128_GCM_SHA256".into()]);
    let e = tls_err(connect("127.0.0.1", server.port(), &tls));
    assert_eq!(e, TlsError::NoCommonCipherSuite);
    assert_eq!(tls_error(&server), TlsError::NoCommonCipherSuite);
}

#[test]
fn plain_and_tls_mismatch_and_scp_keeps_serving() {
    let pki = Pki::new("Test CA");
    let tls_server = start_scp("127.0.0.1", Some(server_tls(&pki, |_| {})));
    // Plain SCU to the TLS SCP: the SCP names the cause; the SCU sees a closed connection.
    let plain = ScuAssociation::connect("127.0.0.1", tls_server.port(), scu_config());
    let hint = plain
        .expect_err("a plain SCU cannot associate with a TLS port")
        .to_string();
    assert!(hint.contains("expects TLS"), "{hint}");
    assert_eq!(
        tls_error(&tls_server),
        TlsError::PlainTcpToTlsPort { first_byte: 0x01 }
    );
    // The TLS SCP still serves TLS clients.
    echo_and_store("127.0.0.1", &tls_server, &client_tls(&pki, |_| {}));

    // TLS SCU to a plain SCP.
    let plain_server = start_scp("127.0.0.1", None);
    let e = tls_err(connect(
        "127.0.0.1",
        plain_server.port(),
        &client_tls(&pki, |_| {}),
    ));
    assert!(
        matches!(
            e,
            TlsError::TlsToPlainPort { .. } | TlsError::ClosedDuringHandshake
        ),
        "{e:?}"
    );
    // The plain SCP still serves plain clients.
    let mut a = ScuAssociation::connect("127.0.0.1", plain_server.port(), scu_config()).unwrap();
    assert_eq!(a.echo().unwrap(), 0);
    a.release().unwrap();
}

#[test]
fn handshake_timeout_does_not_block_others() {
    let pki = Pki::new("Test CA");
    let timeouts = Timeouts {
        acse: Duration::from_secs(3),
        ..quick_timeouts()
    };
    let server = TestServer::start_tls("127.0.0.1", Some(server_tls(&pki, |_| {})), |c| {
        c.timeouts = timeouts
    });
    // A client that connects and says nothing.
    let _silent = std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    let started = Instant::now();
    echo_and_store("127.0.0.1", &server, &client_tls(&pki, |_| {}));
    // Served while the silent client's handshake is still pending.
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert_eq!(tls_error(&server), TlsError::HandshakeTimeout);
}

/// Runs the openssl command (Debian's openssl; the test fails without it).
fn openssl_convert(args: &[&str]) -> bool {
    std::process::Command::new("openssl")
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn sec1_and_pkcs1_keys() {
    let pki = Pki::new("Test CA");
    let (cert, key) = pki.server();
    let sec1 = pki.dir.path().join("sec1.key");
    let (k, s) = (key.to_str().unwrap(), sec1.to_str().unwrap());
    assert!(
        openssl_convert(&["ec", "-in", k, "-out", s]),
        "openssl is needed to make a SEC1 key (apt-get install openssl)"
    );
    assert!(std::fs::read_to_string(&sec1)
        .unwrap()
        .contains("BEGIN EC PRIVATE KEY"));
    let server = start_scp(
        "127.0.0.1",
        Some(TlsServer::new(&TlsServerOptions::new(&cert, &sec1)).unwrap()),
    );
    echo_and_store("127.0.0.1", &server, &client_tls(&pki, |_| {}));

    // RSA: an openssl-made PKCS#1 key and a certificate for it signed by the CA.
    let dir = pki.dir.path();
    let p = |n: &str| dir.join(n).to_str().unwrap().to_owned();
    assert!(openssl_convert(&[
        "genrsa",
        "-traditional",
        "-out",
        &p("rsa.key"),
        "2048"
    ]));
    assert!(std::fs::read_to_string(p("rsa.key"))
        .unwrap()
        .contains("BEGIN RSA PRIVATE KEY"));
    std::fs::write(dir.join("ca.key"), pki.ca_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    assert!(openssl_convert(&[
        "req",
        "-new",
        "-key",
        &p("rsa.key"),
        "-subj",
        "/CN=rsa-scp",
        "-out",
        &p("rsa.csr")
    ]));
    assert!(openssl_convert(&[
        "x509",
        "-req",
        "-in",
        &p("rsa.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &p("ext.cnf"),
        "-out",
        &p("rsa.pem")
    ]));
    let server = start_scp(
        "127.0.0.1",
        Some(TlsServer::new(&TlsServerOptions::new(p("rsa.pem"), p("rsa.key"))).unwrap()),
    );
    let (_, suite) = echo_and_store(
        "127.0.0.1",
        &server,
        &client_tls(&pki, |o| o.profile = TlsProfile::Tls12Only),
    );
    assert!(suite.contains("ECDHE_RSA"), "{suite}");
}

#[test]
fn invalid_cipher_name_lists_allowed() {
    let pki = Pki::new("Test CA");
    let o = TlsClientOptions {
        ca_file: Some(pki.ca()),
        ciphers: vec!["TLS_RSA_WITH_AES_128_CBC_SHA".into()],
        ..TlsClientOptions::default()
    };
    let e = TlsClient::new(&o).unwrap_err();
    match &e {
        TlsError::InvalidCipherName { name, allowed } => {
            assert_eq!(name, "TLS_RSA_WITH_AES_128_CBC_SHA");
            assert!(allowed.contains("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("CBC"));
    // rustls' own TLS13_ spelling is accepted too.
    let ok = TlsClientOptions {
        ca_file: Some(pki.ca()),
        ciphers: vec!["TLS13_AES_128_GCM_SHA256".into()],
        ..TlsClientOptions::default()
    };
    TlsClient::new(&ok).unwrap();
}

#[test]
fn bad_pem_files() {
    let pki = Pki::new("Test CA");
    let junk = pki.dir.path().join("junk.pem");
    std::fs::write(&junk, "not a PEM file").unwrap();
    let e = TlsServer::new(&TlsServerOptions::new(&junk, &junk)).unwrap_err();
    assert!(matches!(e, TlsError::BadPem { .. }), "{e:?}");
    let (cert, _) = pki.server();
    let e = TlsServer::new(&TlsServerOptions::new(cert, &junk)).unwrap_err();
    assert!(matches!(e, TlsError::BadPem { .. }), "{e:?}");
}
