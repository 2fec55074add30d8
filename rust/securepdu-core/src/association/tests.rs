//! Tests of the association driver: ARTIM with a fake clock, an in-memory
//! requestor/acceptor pair, every (reachable state, event) pair against the
//! table, and a proptest that arbitrary inputs never panic.

use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::pdu::{
    Abort, AbortReason, AbortSource, AssociateAc, AssociateRj, AssociateRq, PData, Pdu, Pdv,
    PresentationContextAc, PresentationContextRq, UserInformation, APPLICATION_CONTEXT_NAME,
    PROTOCOL_VERSION,
};

const VERIFICATION: &str = "1.2.840.10008.1.1";
const IMPLICIT_LE: &str = "1.2.840.10008.1.2";

fn rq() -> AssociateRq {
    AssociateRq {
        protocol_version: PROTOCOL_VERSION,
        called_ae: "ANY-SCP".into(),
        calling_ae: "ECHOSCU".into(),
        application_context: APPLICATION_CONTEXT_NAME.into(),
        presentation_contexts: vec![PresentationContextRq {
            id: 1,
            abstract_syntax: VERIFICATION.into(),
            transfer_syntaxes: vec![IMPLICIT_LE.into()],
        }],
        user_info: UserInformation {
            implementation_class_uid: Some("1.2.3.4".into()),
            ..UserInformation::default()
        },
    }
}

fn ac() -> AssociateAc {
    AssociateAc {
        protocol_version: PROTOCOL_VERSION,
        called_ae: "ANY-SCP".into(),
        calling_ae: "ECHOSCU".into(),
        application_context: APPLICATION_CONTEXT_NAME.into(),
        presentation_contexts: vec![PresentationContextAc {
            id: 1,
            result: 0,
            transfer_syntax: Some(IMPLICIT_LE.into()),
        }],
        user_info: UserInformation {
            implementation_class_uid: Some("1.2.3.4".into()),
            ..UserInformation::default()
        },
    }
}

fn rj() -> AssociateRj {
    AssociateRj {
        result: 1,
        source: 1,
        reason: 7,
    }
}

fn pdata(bytes: &'static [u8]) -> PData {
    PData {
        pdvs: vec![Pdv {
            context_id: 1,
            is_command: true,
            is_last: true,
            data: Bytes::from_static(bytes),
        }],
    }
}

fn enc(pdu: Pdu) -> Bytes {
    pdu.encode().unwrap()
}

fn drain(a: &mut Association) -> Vec<Output> {
    std::iter::from_fn(|| a.poll_output()).collect()
}

/// The PDUs among `outputs`, decoded.
fn sent(outputs: &[Output]) -> Vec<Pdu> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Transmit(b) => Some(Pdu::decode(b.clone()).unwrap()),
            _ => None,
        })
        .collect()
}

fn indications(outputs: &[Output]) -> Vec<Indication> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Indication(i) => Some(i.clone()),
            _ => None,
        })
        .collect()
}

fn closes(outputs: &[Output]) -> bool {
    outputs.contains(&Output::CloseTransport)
}

// ----- an in-memory requestor/acceptor pair -------------------------------------

/// Two associations wired back to back: `Transmit` bytes go to the other side's
/// `receive_data`, `CloseTransport` becomes the other side's transport-closed
/// indication, `Connect` connects both.
struct Pair {
    req: Association,
    acc: Association,
    req_ind: Vec<Indication>,
    acc_ind: Vec<Indication>,
    now: Instant,
}

impl Pair {
    fn new() -> Self {
        Self {
            req: Association::new(Config::requestor()),
            acc: Association::new(Config::acceptor()),
            req_ind: Vec::new(),
            acc_ind: Vec::new(),
            now: Instant::now(),
        }
    }

    /// Moves outputs between the two sides until neither has any left.
    fn pump(&mut self) {
        let now = self.now;
        loop {
            let mut progressed = false;
            while let Some(o) = self.req.poll_output() {
                progressed = true;
                match o {
                    Output::Connect => {
                        self.acc.transport_accepted(now).unwrap();
                        self.req.transport_connected(now).unwrap();
                    }
                    Output::Transmit(b) => self.acc.receive_data(&b, now),
                    Output::CloseTransport => {
                        if self.acc.state() != State::Sta1 {
                            self.acc.transport_closed(now).unwrap();
                        }
                    }
                    Output::Indication(i) => self.req_ind.push(i),
                }
            }
            while let Some(o) = self.acc.poll_output() {
                progressed = true;
                match o {
                    Output::Connect => panic!("acceptor asked to connect"),
                    Output::Transmit(b) => self.req.receive_data(&b, now),
                    Output::CloseTransport => {
                        if self.req.state() != State::Sta1 {
                            self.req.transport_closed(now).unwrap();
                        }
                    }
                    Output::Indication(i) => self.acc_ind.push(i),
                }
            }
            if !progressed {
                break;
            }
        }
    }

    fn take_req(&mut self) -> Vec<Indication> {
        std::mem::take(&mut self.req_ind)
    }

    fn take_acc(&mut self) -> Vec<Indication> {
        std::mem::take(&mut self.acc_ind)
    }

    /// Associates and accepts; both sides end in Sta6.
    fn established() -> Self {
        let mut p = Pair::new();
        p.req.request_association(rq(), p.now).unwrap();
        p.pump();
        assert_eq!(p.acc.state(), State::Sta3);
        let ind = p.take_acc();
        let [Indication::AssociateRequest(got)] = ind.as_slice() else {
            panic!("{ind:?}")
        };
        assert_eq!(got.calling_ae, "ECHOSCU");
        assert_eq!(got.user_info.max_pdu_length, Some(DEFAULT_MAX_PDU_RECEIVE));
        p.acc.accept(ac(), p.now).unwrap();
        p.pump();
        let ind = p.take_req();
        assert!(
            matches!(ind.as_slice(), [Indication::Accepted(_)]),
            "{ind:?}"
        );
        assert_eq!(p.req.state(), State::Sta6);
        assert_eq!(p.acc.state(), State::Sta6);
        p
    }
}

#[test]
fn associate_and_accept() {
    let p = Pair::established();
    assert!(p.req.is_established() && p.acc.is_established());
    assert_eq!(p.req.peer_max_pdu_length(), Some(DEFAULT_MAX_PDU_RECEIVE));
    assert_eq!(p.acc.peer_max_pdu_length(), Some(DEFAULT_MAX_PDU_RECEIVE));
    assert_eq!(p.req.associate_rq().unwrap().called_ae, "ANY-SCP");
    assert_eq!(p.acc.associate_ac().unwrap().presentation_contexts.len(), 1);
    assert_eq!(p.req.poll_timeout(), None);
    assert_eq!(p.acc.poll_timeout(), None, "AE-6 stops ARTIM");
}

#[test]
fn associate_and_reject() {
    let mut p = Pair::new();
    p.req.request_association(rq(), p.now).unwrap();
    p.pump();
    p.take_acc();
    p.acc.reject(rj(), p.now).unwrap();
    assert_eq!(p.acc.state(), State::Sta13);
    assert!(p.acc.poll_timeout().is_some(), "AE-8 starts ARTIM");
    p.pump();
    assert_eq!(
        p.take_req(),
        vec![Indication::Rejected(rj()), Indication::Closed]
    );
    assert_eq!(p.req.state(), State::Sta1);
    // The requestor closed the transport (AE-4): the acceptor gets Evt17 -> AR-5.
    assert_eq!(p.acc.state(), State::Sta1);
    assert_eq!(p.take_acc(), vec![Indication::Closed]);
    assert_eq!(p.acc.poll_timeout(), None);
}

#[test]
fn pdata_both_ways() {
    let mut p = Pair::established();
    p.req.send_pdata(pdata(b"\x01\x02"), p.now).unwrap();
    p.acc.send_pdata(pdata(b"\x03"), p.now).unwrap();
    p.pump();
    assert_eq!(p.take_acc(), vec![Indication::PData(pdata(b"\x01\x02"))]);
    assert_eq!(p.take_req(), vec![Indication::PData(pdata(b"\x03"))]);
    assert_eq!((p.req.state(), p.acc.state()), (State::Sta6, State::Sta6));
}

#[test]
fn pdata_larger_than_peer_maximum_is_refused() {
    let mut p = Pair::established();
    let big: &'static [u8] =
        Box::leak(vec![0u8; DEFAULT_MAX_PDU_RECEIVE as usize].into_boxed_slice());
    let err = p.req.send_pdata(pdata(big), p.now).unwrap_err();
    assert!(
        matches!(
            err,
            LocalError::PduTooLarge {
                max: DEFAULT_MAX_PDU_RECEIVE,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(p.req.poll_output(), None);
    assert_eq!(p.req.state(), State::Sta6);
}

#[test]
fn pdv_header_alone_then_payload_from_elsewhere() {
    // The caller writes the payload itself (sendfile): only the header is emitted,
    // and header + payload decode at the peer as one P-DATA-TF.
    let mut fresh = Association::new(Config::requestor());
    let err = fresh
        .send_pdv_header(1, false, true, 3, Instant::now())
        .unwrap_err();
    assert!(matches!(err, LocalError::InvalidState { .. }), "{err}");
    assert_eq!(fresh.poll_output(), None);

    let mut p = Pair::established();
    p.req.send_pdv_header(1, false, true, 3, p.now).unwrap();
    let header = match drain(&mut p.req).as_slice() {
        [Output::Transmit(h)] => h.clone(),
        other => panic!("expected the header alone, got {other:?}"),
    };
    assert_eq!(header.len(), 12);
    p.acc.receive_data(&header, p.now);
    p.acc.receive_data(b"\x01\x02\x03", p.now);
    let got = indications(&drain(&mut p.acc));
    let expected = PData {
        pdvs: vec![Pdv {
            context_id: 1,
            is_command: false,
            is_last: true,
            data: Bytes::from_static(b"\x01\x02\x03"),
        }],
    };
    assert_eq!(got, vec![Indication::PData(expected)]);

    let too_big = DEFAULT_MAX_PDU_RECEIVE as usize;
    let err = p
        .req
        .send_pdv_header(1, false, true, too_big, p.now)
        .unwrap_err();
    assert!(matches!(err, LocalError::PduTooLarge { .. }), "{err}");
    assert_eq!(p.req.poll_output(), None);
}

#[test]
fn normal_release() {
    let mut p = Pair::established();
    p.req.request_release(p.now).unwrap();
    assert_eq!(p.req.state(), State::Sta7);
    p.pump();
    assert_eq!(p.take_acc(), vec![Indication::ReleaseRequest]);
    assert_eq!(p.acc.state(), State::Sta8);
    // AR-7: the acceptor may still send P-DATA in Sta8; the requestor gets it in Sta7 (AR-6).
    p.acc.send_pdata(pdata(b"late"), p.now).unwrap();
    p.pump();
    assert_eq!(p.take_req(), vec![Indication::PData(pdata(b"late"))]);
    assert_eq!(p.req.state(), State::Sta7);
    p.acc.respond_release(p.now).unwrap();
    assert_eq!(p.acc.state(), State::Sta13);
    p.pump();
    assert_eq!(
        p.take_req(),
        vec![
            Indication::ReleaseConfirm {
                must_respond: false
            },
            Indication::Closed
        ]
    );
    assert_eq!(p.take_acc(), vec![Indication::Closed]);
    assert_eq!((p.req.state(), p.acc.state()), (State::Sta1, State::Sta1));
    assert_eq!(p.acc.poll_timeout(), None);
}

#[test]
fn release_requested_by_acceptor() {
    let mut p = Pair::established();
    p.acc.request_release(p.now).unwrap();
    p.pump();
    assert_eq!(p.take_req(), vec![Indication::ReleaseRequest]);
    p.req.respond_release(p.now).unwrap();
    p.pump();
    assert_eq!(
        p.take_acc(),
        vec![
            Indication::ReleaseConfirm {
                must_respond: false
            },
            Indication::Closed
        ]
    );
    assert_eq!(p.take_req(), vec![Indication::Closed]);
    assert_eq!((p.req.state(), p.acc.state()), (State::Sta1, State::Sta1));
}

#[test]
fn release_collision() {
    let mut p = Pair::established();
    // Both ask at once: each A-RELEASE-RQ crosses the other on the wire.
    p.req.request_release(p.now).unwrap();
    p.acc.request_release(p.now).unwrap();
    let req_out = drain(&mut p.req);
    let acc_out = drain(&mut p.acc);
    for o in &req_out {
        if let Output::Transmit(b) = o {
            p.acc.receive_data(b, p.now);
        }
    }
    for o in &acc_out {
        if let Output::Transmit(b) = o {
            p.req.receive_data(b, p.now);
        }
    }
    // AR-8: requestor -> Sta9, acceptor -> Sta10.
    assert_eq!(p.req.state(), State::Sta9);
    assert_eq!(p.acc.state(), State::Sta10);
    p.pump();
    assert_eq!(
        p.take_req(),
        vec![Indication::ReleaseCollision { requestor: true }]
    );
    assert_eq!(
        p.take_acc(),
        vec![Indication::ReleaseCollision { requestor: false }]
    );
    // The acceptor may not respond yet (Sta10 + Evt14 is blank).
    assert_eq!(
        p.acc.respond_release(p.now),
        Err(LocalError::InvalidState {
            state: State::Sta10,
            event: Event::Evt14
        })
    );
    // AR-9: the requestor responds first.
    p.req.respond_release(p.now).unwrap();
    assert_eq!(p.req.state(), State::Sta11);
    p.pump();
    // AR-10: the acceptor gets its confirmation and must now respond (Sta12).
    assert_eq!(
        p.take_acc(),
        vec![Indication::ReleaseConfirm { must_respond: true }]
    );
    assert_eq!(p.acc.state(), State::Sta12);
    p.acc.respond_release(p.now).unwrap();
    assert_eq!(p.acc.state(), State::Sta13);
    p.pump();
    // AR-3 on the requestor (closes), AR-5 on the acceptor.
    assert_eq!(
        p.take_req(),
        vec![
            Indication::ReleaseConfirm {
                must_respond: false
            },
            Indication::Closed
        ]
    );
    assert_eq!(p.take_acc(), vec![Indication::Closed]);
    assert_eq!((p.req.state(), p.acc.state()), (State::Sta1, State::Sta1));
}

#[test]
fn abort_by_requestor() {
    let mut p = Pair::established();
    p.req.abort(p.now).unwrap();
    assert_eq!(p.req.state(), State::Sta13);
    assert!(p.req.poll_timeout().is_some(), "AA-1 starts ARTIM");
    p.pump();
    assert_eq!(
        p.take_acc(),
        vec![
            Indication::Aborted {
                source: 0,
                reason: 0
            },
            Indication::Closed
        ]
    );
    assert_eq!(p.take_req(), vec![Indication::Closed]);
    assert_eq!((p.req.state(), p.acc.state()), (State::Sta1, State::Sta1));
}

#[test]
fn abort_by_acceptor() {
    let mut p = Pair::established();
    p.acc.abort(p.now).unwrap();
    let out = drain(&mut p.acc);
    assert_eq!(sent(&out), vec![Pdu::Abort(Abort::user())]);
    for o in &out {
        if let Output::Transmit(b) = o {
            p.req.receive_data(b, p.now);
        }
    }
    let out = drain(&mut p.req);
    assert_eq!(
        indications(&out),
        vec![
            Indication::Aborted {
                source: 0,
                reason: 0
            },
            Indication::Closed
        ]
    );
    assert!(closes(&out), "AA-3 closes the transport");
    p.acc.transport_closed(p.now).unwrap();
    assert_eq!(
        drain(&mut p.acc),
        vec![Output::Indication(Indication::Closed)]
    );
}

#[test]
fn abort_before_connection_completes() {
    let now = Instant::now();
    let mut a = Association::new(Config::requestor());
    a.request_association(rq(), now).unwrap();
    assert_eq!(drain(&mut a), vec![Output::Connect]);
    a.abort(now).unwrap();
    // AA-2: nothing is sent on a connection that does not exist yet.
    assert_eq!(
        drain(&mut a),
        vec![
            Output::CloseTransport,
            Output::Indication(Indication::Closed)
        ]
    );
    assert_eq!(a.state(), State::Sta1);
}

#[test]
fn transport_closed_unexpectedly() {
    let mut p = Pair::established();
    p.req.transport_closed(p.now).unwrap();
    let out = drain(&mut p.req);
    let ind = indications(&out);
    assert!(
        matches!(
            ind.as_slice(),
            [Indication::ProviderAborted { .. }, Indication::Closed]
        ),
        "{ind:?}"
    );
    assert!(!closes(&out));
}

// ----- peer protocol errors -----------------------------------------------------

/// An acceptor in Sta2 (transport accepted, awaiting the A-ASSOCIATE-RQ).
fn acceptor_in_sta2(now: Instant) -> Association {
    let mut a = Association::new(Config::acceptor());
    a.transport_accepted(now).unwrap();
    assert_eq!(a.state(), State::Sta2);
    a
}

#[test]
fn garbage_to_acceptor_aborts_with_unrecognized_pdu() {
    let now = Instant::now();
    let mut a = acceptor_in_sta2(now);
    a.receive_data(b"GET / HTTP/1.1\r\n\r\n", now);
    let out = drain(&mut a);
    assert_eq!(
        sent(&out),
        vec![Pdu::Abort(Abort::provider(AbortReason::UnrecognizedPdu))]
    );
    let ind = indications(&out);
    assert!(
        matches!(
            ind.as_slice(),
            [Indication::ProviderAborted {
                source: AbortSource::ServiceProvider,
                reason: AbortReason::UnrecognizedPdu,
                ..
            }]
        ),
        "{ind:?}"
    );
    assert_eq!(a.state(), State::Sta13);
    // The stream is unusable now: more bytes are dropped, nothing else is sent.
    a.receive_data(&[0x07; 64], now);
    assert_eq!(a.poll_output(), None);
    a.transport_closed(now).unwrap();
    assert_eq!(a.state(), State::Sta1);
}

#[test]
fn malformed_pdu_in_sta6_aborts_with_its_reason() {
    let mut p = Pair::established();
    // An A-RELEASE-RQ with PDU-length 3 instead of 4: invalid-PDU-parameter-value.
    p.acc.receive_data(&[0x05, 0, 0, 0, 0, 3, 0, 0, 0], p.now);
    let out = drain(&mut p.acc);
    assert_eq!(
        sent(&out),
        vec![Pdu::Abort(Abort::provider(
            AbortReason::InvalidPduParameterValue
        ))]
    );
    assert_eq!(p.acc.state(), State::Sta13);
    assert!(p.acc.poll_timeout().is_some(), "AA-8 starts ARTIM");
}

#[test]
fn oversized_pdu_is_refused_from_its_header() {
    let now = Instant::now();
    let mut a = acceptor_in_sta2(now);
    a.receive_data(&[0x04, 0, 0xff, 0xff, 0xff, 0xff], now);
    let out = drain(&mut a);
    assert_eq!(
        sent(&out),
        vec![Pdu::Abort(Abort::provider(
            AbortReason::InvalidPduParameterValue
        ))]
    );
    assert_eq!(a.state(), State::Sta13);
}

#[test]
fn pdata_in_sta2_aborts_with_unexpected_pdu() {
    let now = Instant::now();
    let mut a = acceptor_in_sta2(now);
    a.receive_data(&enc(Pdu::PData(pdata(b"x"))), now);
    let out = drain(&mut a);
    assert_eq!(
        sent(&out),
        vec![Pdu::Abort(Abort::provider(AbortReason::UnexpectedPdu))]
    );
    assert_eq!(a.state(), State::Sta13);
}

#[test]
fn unexpected_pdu_in_sta6_is_aa8() {
    let mut p = Pair::established();
    p.req.receive_data(&enc(Pdu::AssociateAc(ac())), p.now);
    let out = drain(&mut p.req);
    assert_eq!(
        sent(&out),
        vec![Pdu::Abort(Abort::provider(AbortReason::UnexpectedPdu))]
    );
    let ind = indications(&out);
    assert!(
        matches!(
            ind.as_slice(),
            [Indication::ProviderAborted {
                reason: AbortReason::UnexpectedPdu,
                ..
            }]
        ),
        "{ind:?}"
    );
    assert_eq!(p.req.state(), State::Sta13);
}

#[test]
fn unsupported_protocol_version_is_rejected_by_the_provider() {
    let now = Instant::now();
    let mut a = acceptor_in_sta2(now);
    let mut r = rq();
    r.protocol_version = 0x0002;
    a.receive_data(&enc(Pdu::AssociateRq(r)), now);
    let out = drain(&mut a);
    let expected = AssociateRj {
        result: 1,
        source: 2,
        reason: 2,
    };
    assert_eq!(sent(&out), vec![Pdu::AssociateRj(expected)]);
    assert_eq!(
        indications(&out),
        vec![Indication::ProviderRejected(expected)]
    );
    assert_eq!(a.state(), State::Sta13);
    assert!(a.poll_timeout().is_some());
    assert_eq!(a.associate_rq(), None);
}

#[test]
fn pdus_split_and_coalesced_arbitrarily() {
    let now = Instant::now();
    let mut a = acceptor_in_sta2(now);
    let mut stream = enc(Pdu::AssociateRq(rq())).to_vec();
    // Byte by byte.
    for b in &stream {
        a.receive_data(std::slice::from_ref(b), now);
    }
    assert_eq!(a.state(), State::Sta3);
    drain(&mut a);
    a.accept(ac(), now).unwrap();
    drain(&mut a);
    // Two P-DATA and an A-RELEASE-RQ in one read, through the receive buffer.
    stream.clear();
    stream.extend_from_slice(&enc(Pdu::PData(pdata(b"a"))));
    stream.extend_from_slice(&enc(Pdu::PData(pdata(b"b"))));
    stream.extend_from_slice(&enc(Pdu::ReleaseRq));
    a.receive_buffer().extend_from_slice(&stream);
    a.process(now);
    assert_eq!(
        indications(&drain(&mut a)),
        vec![
            Indication::PData(pdata(b"a")),
            Indication::PData(pdata(b"b")),
            Indication::ReleaseRequest
        ]
    );
    assert_eq!(a.state(), State::Sta8);
}

// ----- ARTIM with a fake clock --------------------------------------------------

#[test]
fn artim_expires_in_sta2_when_no_request_arrives() {
    let t0 = Instant::now();
    let mut a = acceptor_in_sta2(t0);
    assert_eq!(a.poll_timeout(), Some(t0 + DEFAULT_ARTIM_TIMEOUT));
    a.handle_timeout(t0 + Duration::from_secs(29));
    assert_eq!(a.poll_output(), None);
    assert_eq!(a.state(), State::Sta2);
    a.handle_timeout(t0 + DEFAULT_ARTIM_TIMEOUT);
    let out = drain(&mut a);
    assert!(closes(&out));
    assert!(sent(&out).is_empty(), "AA-2 sends nothing");
    assert!(matches!(indications(&out).last(), Some(Indication::Closed)));
    assert_eq!(a.state(), State::Sta1);
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn artim_expires_in_sta13_when_peer_does_not_close() {
    let t0 = Instant::now();
    let mut a = acceptor_in_sta2(t0);
    a.receive_data(&enc(Pdu::AssociateRq(rq())), t0 + Duration::from_secs(1));
    drain(&mut a);
    assert_eq!(a.poll_timeout(), None);
    let t1 = t0 + Duration::from_secs(100);
    a.reject(rj(), t1).unwrap();
    drain(&mut a);
    assert_eq!(a.state(), State::Sta13);
    assert_eq!(a.poll_timeout(), Some(t1 + DEFAULT_ARTIM_TIMEOUT));
    // PDUs in Sta13 are ignored (AA-6) and do not restart the timer.
    a.receive_data(&enc(Pdu::PData(pdata(b"x"))), t1);
    assert_eq!(a.poll_output(), None);
    a.handle_timeout(t1 + DEFAULT_ARTIM_TIMEOUT - Duration::from_millis(1));
    assert_eq!(a.state(), State::Sta13);
    a.handle_timeout(t1 + DEFAULT_ARTIM_TIMEOUT + Duration::from_secs(5));
    assert_eq!(
        drain(&mut a),
        vec![
            Output::CloseTransport,
            Output::Indication(Indication::Closed)
        ]
    );
    assert_eq!(a.state(), State::Sta1);
}

#[test]
fn artim_uses_configured_timeout() {
    let t0 = Instant::now();
    let mut a = Association::new(Config {
        artim_timeout: Duration::from_secs(2),
        ..Config::acceptor()
    });
    a.transport_accepted(t0).unwrap();
    assert_eq!(a.poll_timeout(), Some(t0 + Duration::from_secs(2)));
}

// ----- wrong state / wrong role -------------------------------------------------

#[test]
fn primitive_in_wrong_state_changes_nothing() {
    let now = Instant::now();
    let mut a = Association::new(Config::requestor());
    assert_eq!(
        a.send_pdata(pdata(b"x"), now),
        Err(LocalError::InvalidState {
            state: State::Sta1,
            event: Event::Evt9
        })
    );
    assert_eq!(
        a.transport_closed(now),
        Err(LocalError::InvalidState {
            state: State::Sta1,
            event: Event::Evt17
        })
    );
    assert_eq!(
        a.transport_accepted(now),
        Err(LocalError::WrongRole {
            role: Role::Requestor,
            event: Event::Evt5
        })
    );
    let mut b = Association::new(Config::acceptor());
    assert_eq!(
        b.request_association(rq(), now),
        Err(LocalError::WrongRole {
            role: Role::Acceptor,
            event: Event::Evt1
        })
    );
    assert_eq!(a.poll_output(), None);
    assert_eq!(b.poll_output(), None);
    assert_eq!((a.state(), b.state()), (State::Sta1, State::Sta1));
    let msg = LocalError::InvalidState {
        state: State::Sta2,
        event: Event::Evt9,
    }
    .to_string();
    assert!(msg.contains("Evt9") && msg.contains("Sta2"), "{msg}");
}

#[test]
fn encode_error_changes_nothing() {
    let now = Instant::now();
    let mut a = Association::new(Config::requestor());
    let mut r = rq();
    r.called_ae = "THIS-AE-TITLE-IS-TOO-LONG".into();
    assert!(matches!(
        a.request_association(r, now),
        Err(LocalError::Encode(_))
    ));
    assert_eq!(a.poll_output(), None);
    assert_eq!(a.state(), State::Sta1);
}

/// Drives a fresh association of `role` into `target` (every state is reachable
/// from one role or the other); `None` if this role cannot reach it.
fn in_state(role: Role, target: State, now: Instant) -> Option<Association> {
    use State::*;
    let mut a = Association::new(Config::new(role));
    let feed = |a: &mut Association, pdu: Pdu| a.receive_data(&enc(pdu), now);
    match role {
        Role::Requestor => {
            if matches!(target, Sta2 | Sta3 | Sta10 | Sta12) {
                return None;
            }
            if target != Sta1 {
                a.request_association(rq(), now).unwrap();
            }
            if !matches!(target, Sta1 | Sta4) {
                a.transport_connected(now).unwrap();
            }
            if !matches!(target, Sta1 | Sta4 | Sta5) {
                feed(&mut a, Pdu::AssociateAc(ac()));
            }
            match target {
                Sta7 => a.request_release(now).unwrap(),
                Sta8 => feed(&mut a, Pdu::ReleaseRq),
                Sta9 | Sta11 => {
                    a.request_release(now).unwrap();
                    feed(&mut a, Pdu::ReleaseRq);
                    if target == Sta11 {
                        a.respond_release(now).unwrap();
                    }
                }
                Sta13 => a.abort(now).unwrap(),
                _ => {}
            }
        }
        Role::Acceptor => {
            if matches!(target, Sta4 | Sta5 | Sta9 | Sta11) {
                return None;
            }
            if target != Sta1 {
                a.transport_accepted(now).unwrap();
            }
            if !matches!(target, Sta1 | Sta2) {
                feed(&mut a, Pdu::AssociateRq(rq()));
            }
            if !matches!(target, Sta1 | Sta2 | Sta3) {
                a.accept(ac(), now).unwrap();
            }
            match target {
                Sta7 => a.request_release(now).unwrap(),
                Sta8 => feed(&mut a, Pdu::ReleaseRq),
                Sta10 | Sta12 => {
                    a.request_release(now).unwrap();
                    feed(&mut a, Pdu::ReleaseRq);
                    if target == Sta12 {
                        feed(&mut a, Pdu::ReleaseRp);
                    }
                }
                Sta13 => a.abort(now).unwrap(),
                _ => {}
            }
        }
    }
    assert_eq!(a.state(), target, "{role:?}");
    drain(&mut a);
    Some(a)
}

/// Every local primitive, as (event, call).
#[allow(clippy::type_complexity)]
fn primitives() -> Vec<(
    Event,
    Box<dyn Fn(&mut Association, Instant) -> Result<(), LocalError>>,
)> {
    vec![
        (Event::Evt1, Box::new(|a, t| a.request_association(rq(), t))),
        (Event::Evt2, Box::new(|a, t| a.transport_connected(t))),
        (Event::Evt5, Box::new(|a, t| a.transport_accepted(t))),
        (Event::Evt7, Box::new(|a, t| a.accept(ac(), t))),
        (Event::Evt8, Box::new(|a, t| a.reject(rj(), t))),
        (Event::Evt9, Box::new(|a, t| a.send_pdata(pdata(b"x"), t))),
        (Event::Evt11, Box::new(|a, t| a.request_release(t))),
        (Event::Evt14, Box::new(|a, t| a.respond_release(t))),
        (Event::Evt15, Box::new(|a, t| a.abort(t))),
        (Event::Evt17, Box::new(|a, t| a.transport_closed(t))),
    ]
}

fn resolve(action: Action, role: Role, acceptable: bool) -> State {
    match action.next() {
        Next::To(s) => s,
        Next::AcceptableOr {
            acceptable: yes,
            otherwise,
        } => {
            if acceptable {
                yes
            } else {
                otherwise
            }
        }
        Next::RequestorOr {
            requestor,
            acceptor,
        } => match role {
            Role::Requestor => requestor,
            Role::Acceptor => acceptor,
        },
    }
}

#[test]
fn every_local_primitive_in_every_reachable_state_follows_the_table() {
    let now = Instant::now();
    let mut covered = 0;
    for role in [Role::Requestor, Role::Acceptor] {
        for state in State::ALL {
            for (event, call) in primitives() {
                let Some(mut a) = in_state(role, state, now) else {
                    continue;
                };
                let result = call(&mut a, now);
                let wrong_role = matches!(
                    (role, event),
                    (Role::Acceptor, Event::Evt1) | (Role::Requestor, Event::Evt5)
                );
                match lookup(state, event) {
                    Some(action) if !wrong_role => {
                        assert_eq!(result, Ok(()), "{role:?} {state} {event}");
                        assert_eq!(
                            a.state(),
                            resolve(action, role, true),
                            "{role:?} {state} {event}"
                        );
                        covered += 1;
                    }
                    _ => {
                        assert!(result.is_err(), "{role:?} {state} {event}");
                        assert_eq!(a.state(), state);
                        assert_eq!(a.poll_output(), None, "{role:?} {state} {event}");
                    }
                }
            }
        }
    }
    assert!(covered > 20);
}

#[test]
fn every_peer_pdu_in_every_connected_state_follows_the_table() {
    let now = Instant::now();
    let pdus: Vec<(Event, Bytes)> = vec![
        (Event::Evt3, enc(Pdu::AssociateAc(ac()))),
        (Event::Evt4, enc(Pdu::AssociateRj(rj()))),
        (Event::Evt6, enc(Pdu::AssociateRq(rq()))),
        (Event::Evt10, enc(Pdu::PData(pdata(b"x")))),
        (Event::Evt12, enc(Pdu::ReleaseRq)),
        (Event::Evt13, enc(Pdu::ReleaseRp)),
        (Event::Evt16, enc(Pdu::Abort(Abort::user()))),
        (Event::Evt19, Bytes::from_static(&[0x99, 0, 0, 0, 0, 0])),
    ];
    let mut covered = 0;
    for role in [Role::Requestor, Role::Acceptor] {
        for state in State::ALL {
            for (event, bytes) in &pdus {
                let Some(mut a) = in_state(role, state, now) else {
                    continue;
                };
                a.receive_data(bytes, now);
                let out = drain(&mut a);
                match lookup(state, *event) {
                    Some(action) => {
                        assert_eq!(
                            a.state(),
                            resolve(action, role, true),
                            "{role:?} {state} {event}"
                        );
                        let sends_abort = matches!(action, Action::Aa1 | Action::Aa7 | Action::Aa8);
                        let aborts: Vec<_> = sent(&out)
                            .into_iter()
                            .filter(|p| matches!(p, Pdu::Abort(_)))
                            .collect();
                        assert_eq!(
                            aborts.len(),
                            usize::from(sends_abort),
                            "{role:?} {state} {event}"
                        );
                        covered += 1;
                    }
                    None => {
                        // No transport connection (Sta1, Sta4): bytes are dropped.
                        assert!(matches!(state, State::Sta1 | State::Sta4));
                        assert_eq!(a.state(), state);
                        assert!(out.is_empty());
                    }
                }
            }
        }
    }
    assert!(covered > 100);
}

#[test]
fn association_can_be_reused_after_returning_to_sta1() {
    let now = Instant::now();
    let mut a = acceptor_in_sta2(now);
    a.receive_data(&[0xff], now);
    a.transport_closed(now).unwrap();
    drain(&mut a);
    a.transport_accepted(now).unwrap();
    a.receive_data(&enc(Pdu::AssociateRq(rq())), now);
    assert_eq!(a.state(), State::Sta3);
}

// ----- proptest: nothing panics --------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    RequestAssociation,
    TransportConnected,
    TransportAccepted,
    Accept,
    Reject,
    SendPData(Vec<u8>),
    RequestRelease,
    RespondRelease,
    Abort,
    TransportClosed,
    Bytes(Vec<u8>),
    Pdu(u8, bool),
    Tick(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::RequestAssociation),
        Just(Op::TransportConnected),
        Just(Op::TransportAccepted),
        Just(Op::Accept),
        Just(Op::Reject),
        proptest::collection::vec(any::<u8>(), 0..32).prop_map(Op::SendPData),
        Just(Op::RequestRelease),
        Just(Op::RespondRelease),
        Just(Op::Abort),
        Just(Op::TransportClosed),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Op::Bytes),
        (0u8..7, any::<bool>()).prop_map(|(k, split)| Op::Pdu(k, split)),
        (0u64..40).prop_map(Op::Tick),
    ]
}

fn valid_pdu(kind: u8) -> Bytes {
    enc(match kind {
        0 => Pdu::AssociateRq(rq()),
        1 => Pdu::AssociateAc(ac()),
        2 => Pdu::AssociateRj(rj()),
        3 => Pdu::PData(pdata(b"data")),
        4 => Pdu::ReleaseRq,
        5 => Pdu::ReleaseRp,
        _ => Pdu::Abort(Abort::provider(AbortReason::NotSpecified)),
    })
}

proptest! {
    #[test]
    fn arbitrary_inputs_never_panic(requestor in any::<bool>(), ops in proptest::collection::vec(op(), 0..60)) {
        let role = if requestor { Role::Requestor } else { Role::Acceptor };
        let mut a = Association::new(Config::new(role));
        let mut now = Instant::now();
        for op in ops {
            let before = a.state();
            let result = match op {
                Op::RequestAssociation => a.request_association(rq(), now),
                Op::TransportConnected => a.transport_connected(now),
                Op::TransportAccepted => a.transport_accepted(now),
                Op::Accept => a.accept(ac(), now),
                Op::Reject => a.reject(rj(), now),
                Op::SendPData(d) => a.send_pdata(
                    PData { pdvs: vec![Pdv { context_id: 1, is_command: false, is_last: true, data: d.into() }] },
                    now,
                ),
                Op::RequestRelease => a.request_release(now),
                Op::RespondRelease => a.respond_release(now),
                Op::Abort => a.abort(now),
                Op::TransportClosed => a.transport_closed(now),
                Op::Bytes(b) => { a.receive_data(&b, now); Ok(()) }
                Op::Pdu(k, split) => {
                    let b = valid_pdu(k);
                    if split {
                        let (x, y) = b.split_at(b.len() / 2);
                        a.receive_data(x, now);
                        a.receive_data(y, now);
                    } else {
                        a.receive_data(&b, now);
                    }
                    Ok(())
                }
                Op::Tick(s) => { now += Duration::from_secs(s); a.handle_timeout(now); Ok(()) }
            };
            if result.is_err() {
                prop_assert_eq!(a.state(), before);
                prop_assert_eq!(a.poll_output(), None);
            }
            // ARTIM runs exactly in Sta2 and Sta13.
            prop_assert_eq!(a.poll_timeout().is_some(), matches!(a.state(), State::Sta2 | State::Sta13));
            while let Some(o) = a.poll_output() {
                if let Output::Transmit(b) = o {
                    prop_assert!(Pdu::decode(b).is_ok());
                }
            }
        }
    }
}

#[test]
fn outputs_stay_small() {
    // Association PDUs are boxed so that the per-P-DATA outputs stay small.
    assert!(
        std::mem::size_of::<Output>() <= 48,
        "{}",
        std::mem::size_of::<Output>()
    );
}
