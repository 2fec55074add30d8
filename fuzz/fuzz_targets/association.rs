//! The association state machine driven by arbitrary sequences of peer bytes,
//! local primitives, transport events and clock steps, checking after every step
//! the invariants a transport driver relies on:
//! - no bytes are transmitted unless a transport connection is open, and none
//!   after the machine asked to close it;
//! - back in Sta1 the transport is closed, ARTIM stopped and `Closed` indicated
//!   (and `Closed` only then); ARTIM runs only in Sta2 and Sta13;
//! - a refused primitive changes nothing and emits nothing;
//! - the bytes sent on a connection frame into valid PDUs the role may send, fit
//!   the peer's maximum length, and after an A-ABORT, A-ASSOCIATE-RJ or
//!   A-RELEASE-RP only A-ABORTs follow;
//! - ARTIM never fires early.
#![no_main]

use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use securepdu_core::association::{Association, Config, Indication, Output, Role, State};
use securepdu_core::pdu::{
    Abort, AbortReason, AssociateAc, AssociateRj, AssociateRq, Framer, PData, Pdu, Pdv,
    PresentationContextAc, PresentationContextRq, UserInformation, APPLICATION_CONTEXT_NAME,
};

const VERIFICATION: &str = "1.2.840.10008.1.1";
const IMPLICIT_LE: &str = "1.2.840.10008.1.2";

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let role = if u.arbitrary::<bool>()? {
        Role::Requestor
    } else {
        Role::Acceptor
    };
    let config = Config {
        role,
        artim_timeout: Duration::from_millis(u.int_in_range(0..=60_000)?),
        max_pdu_receive: *u.choose(&[0, 1, 4096, 16_384, 1 << 20, u32::MAX])?,
    };
    let mut h = Harness::new(config);
    let peer = canned_peer_pdus();
    while !u.is_empty() {
        h.step(u, &peer)?;
    }
    Ok(())
}

struct Harness {
    a: Association,
    base: Instant,
    offset: Duration,
    /// A transport connection is open (accepted, or connected after `Connect`).
    open: bool,
    /// `Connect` was emitted and not yet answered.
    connecting: bool,
    /// Parses what we transmitted on the current connection.
    tx: Framer,
    /// An A-ABORT, A-ASSOCIATE-RJ or A-RELEASE-RP went out on this connection.
    tx_final: bool,
}

impl Harness {
    fn new(config: Config) -> Self {
        Self {
            a: Association::new(config),
            base: Instant::now(),
            offset: Duration::ZERO,
            open: false,
            connecting: false,
            tx: Framer::new(u32::MAX),
            tx_final: false,
        }
    }

    fn now(&self) -> Instant {
        self.base + self.offset
    }

    fn step(&mut self, u: &mut Unstructured<'_>, peer: &[Bytes]) -> Result<()> {
        let before = self.a.state();
        let now = self.now();
        // `Some(result)` for a local primitive, whose refusal must change nothing.
        let mut local = None;
        let mut new_connection = false;
        let mut payload_len = 0usize;
        let mut transport_gone = false;
        match u.int_in_range(0..=16u8)? {
            0 => {
                let bytes: &[u8] = u.arbitrary()?;
                self.a.receive_data(bytes, now);
            }
            1 | 2 => {
                // A well-formed PDU, split once, so deep states are reachable.
                let pdu = u.choose(peer)?;
                let cut = u.int_in_range(0..=pdu.len())?;
                self.a.receive_data(&pdu[..cut], now);
                self.a.receive_data(&pdu[cut..], now);
            }
            3 => {
                let bytes: &[u8] = u.arbitrary()?;
                self.a.receive_buffer().extend_from_slice(bytes);
                self.a.process(now);
            }
            4 => local = Some(self.a.request_association(request(u)?, now)),
            5 => {
                let r = self.a.transport_connected(now);
                if r.is_ok() {
                    assert!(self.connecting, "connected without a Connect output");
                    new_connection = true;
                }
                local = Some(r);
            }
            6 => {
                let r = self.a.transport_accepted(now);
                new_connection = r.is_ok();
                local = Some(r);
            }
            7 => local = Some(self.a.accept(accept(u)?, now)),
            8 => {
                let rj = AssociateRj {
                    result: u.int_in_range(1..=2)?,
                    source: u.int_in_range(1..=3)?,
                    reason: u.int_in_range(0..=7)?,
                };
                local = Some(self.a.reject(rj, now));
            }
            9 => local = Some(self.a.send_pdata(pdata(u)?, now)),
            10 => {
                let data: &[u8] = u.arbitrary()?;
                let (ctx, cmd, last) = (u.arbitrary()?, u.arbitrary()?, u.arbitrary()?);
                let data = Bytes::copy_from_slice(data);
                local = Some(self.a.send_pdv_parts(ctx, cmd, last, data, now));
            }
            11 => {
                // The caller writes the payload itself after the header.
                let len = u.int_in_range(0..=70_000usize)?;
                let (ctx, cmd, last) = (u.arbitrary()?, u.arbitrary()?, u.arbitrary()?);
                let r = self.a.send_pdv_header(ctx, cmd, last, len, now);
                if r.is_ok() {
                    payload_len = len;
                }
                local = Some(r);
            }
            12 => local = Some(self.a.request_release(now)),
            13 => local = Some(self.a.respond_release(now)),
            14 => local = Some(self.a.abort(now)),
            15 => {
                let r = self.a.transport_closed(now);
                transport_gone = r.is_ok();
                local = Some(r);
            }
            _ => {
                // Clock: jump to the ARTIM deadline, just short of it, or anywhere.
                let deadline = self.a.poll_timeout();
                let target = match (u.int_in_range(0..=2u8)?, deadline) {
                    (0, Some(d)) => d,
                    (1, Some(d)) => d.checked_sub(Duration::from_nanos(1)).unwrap_or(d),
                    _ => now + Duration::from_millis(u.int_in_range(0..=120_000)?),
                };
                if target > now {
                    self.offset = target - self.base;
                }
                let now = self.now();
                self.a.handle_timeout(now);
                if deadline.is_some_and(|d| now < d) {
                    assert_eq!(self.a.state(), before, "ARTIM fired early");
                    assert_eq!(self.a.poll_timeout(), deadline);
                }
            }
        }

        let outputs: Vec<Output> = std::iter::from_fn(|| self.a.poll_output()).collect();
        if let Some(Err(e)) = &local {
            assert_eq!(
                self.a.state(),
                before,
                "refused primitive changed state: {e}"
            );
            assert!(outputs.is_empty(), "refused primitive emitted {outputs:?}");
        }
        if new_connection {
            self.open = true;
            self.connecting = false;
            self.tx = Framer::new(u32::MAX);
            self.tx_final = false;
        }
        if transport_gone {
            self.open = false;
            self.connecting = false;
        }

        let role = self.a.role();
        let mut closed = false;
        for out in &outputs {
            match out {
                Output::Connect => {
                    assert_eq!(role, Role::Requestor);
                    assert!(!self.open && !self.connecting, "Connect while connected");
                    self.connecting = true;
                }
                Output::Transmit(bytes) => {
                    assert!(self.open, "transmit without an open transport");
                    self.tx.feed(bytes);
                }
                Output::CloseTransport => {
                    assert!(self.open || self.connecting, "close without a transport");
                    self.open = false;
                    self.connecting = false;
                }
                Output::Indication(ind) => match ind {
                    Indication::AssociateRequest(_) | Indication::ProviderRejected(_) => {
                        assert_eq!(role, Role::Acceptor)
                    }
                    Indication::Accepted(_) | Indication::Rejected(_) => {
                        assert_eq!(role, Role::Requestor)
                    }
                    Indication::Closed => closed = true,
                    _ => {}
                },
            }
        }
        if payload_len > 0 {
            self.tx.feed(&vec![0u8; payload_len]);
        }
        self.check_sent();

        let state = self.a.state();
        assert_eq!(
            closed,
            before != State::Sta1 && state == State::Sta1,
            "Closed indication and return to Sta1 disagree ({before} -> {state})"
        );
        assert_eq!(self.a.is_established(), state == State::Sta6);
        match state {
            State::Sta1 => {
                assert!(!self.open && !self.connecting, "idle with a transport open");
                assert_eq!(self.a.poll_timeout(), None, "ARTIM running in Sta1");
            }
            State::Sta4 => assert!(self.connecting && !self.open),
            _ => assert!(self.open, "{state} without a transport"),
        }
        if self.a.poll_timeout().is_some() {
            assert!(
                matches!(state, State::Sta2 | State::Sta13),
                "ARTIM in {state}"
            );
        }
        Ok(())
    }

    /// Everything sent on this connection so far is a sequence of valid PDUs.
    fn check_sent(&mut self) {
        loop {
            let pdu = match self.tx.next_pdu() {
                Ok(Some(pdu)) => pdu,
                Ok(None) => return,
                Err(e) => panic!("we sent bytes that are not a PDU: {e}"),
            };
            match (&pdu, self.a.role()) {
                (Pdu::AssociateRq(_), Role::Acceptor)
                | (Pdu::AssociateAc(_) | Pdu::AssociateRj(_), Role::Requestor) => {
                    panic!("{:?} sent {}", self.a.role(), pdu.name())
                }
                _ => {}
            }
            if self.tx_final {
                assert!(matches!(pdu, Pdu::Abort(_)), "{} after the end", pdu.name());
            }
            if let Pdu::PData(p) = &pdu {
                if let Some(max) = self.a.peer_max_pdu_length().filter(|&m| m != 0) {
                    assert!(
                        p.body_len() <= max as usize,
                        "P-DATA-TF over the peer's maximum"
                    );
                }
            }
            if matches!(pdu, Pdu::Abort(_) | Pdu::AssociateRj(_) | Pdu::ReleaseRp) {
                self.tx_final = true;
            }
        }
    }
}

/// Local text from fuzz bytes: usually valid, sometimes too long or not
/// ISO 8859-1, so encoding refusals are exercised too.
fn text(u: &mut Unstructured<'_>, valid: &str) -> Result<String> {
    // A zero byte (what seeds use) picks the valid text.
    Ok(if u.ratio(7, 8)? {
        valid.to_owned()
    } else {
        u.arbitrary::<String>()?
    })
}

fn request(u: &mut Unstructured<'_>) -> Result<AssociateRq> {
    let (called, calling) = (text(u, "ANY-SCP")?, text(u, "FUZZ-SCU")?);
    Ok(make_rq(called, calling, text(u, VERIFICATION)?))
}

fn make_rq(called_ae: String, calling_ae: String, abstract_syntax: String) -> AssociateRq {
    AssociateRq {
        protocol_version: 1,
        called_ae,
        calling_ae,
        application_context: APPLICATION_CONTEXT_NAME.to_owned(),
        presentation_contexts: vec![PresentationContextRq {
            id: 1,
            abstract_syntax,
            transfer_syntaxes: vec![IMPLICIT_LE.to_owned()],
        }],
        user_info: UserInformation::default(),
    }
}

fn accept(u: &mut Unstructured<'_>) -> Result<AssociateAc> {
    let (called, calling) = (text(u, "ANY-SCP")?, text(u, "FUZZ-SCU")?);
    Ok(make_ac(called, calling, text(u, IMPLICIT_LE)?))
}

fn make_ac(called_ae: String, calling_ae: String, transfer_syntax: String) -> AssociateAc {
    AssociateAc {
        protocol_version: 1,
        called_ae,
        calling_ae,
        application_context: APPLICATION_CONTEXT_NAME.to_owned(),
        presentation_contexts: vec![PresentationContextAc {
            id: 1,
            result: 0,
            transfer_syntax: Some(transfer_syntax),
        }],
        user_info: UserInformation::default(),
    }
}

fn pdata(u: &mut Unstructured<'_>) -> Result<PData> {
    let mut pdvs = Vec::new();
    for _ in 0..u.int_in_range(0..=3)? {
        let data: &[u8] = u.arbitrary()?;
        pdvs.push(Pdv {
            context_id: u.arbitrary()?,
            is_command: u.arbitrary()?,
            is_last: u.arbitrary()?,
            data: Bytes::copy_from_slice(data),
        });
    }
    Ok(PData { pdvs })
}

/// Valid PDUs a peer might send, encoded once per run.
fn canned_peer_pdus() -> Vec<Bytes> {
    let s = |v: &str| v.to_owned();
    let rq = make_rq(s("ANY-SCP"), s("FUZZ-SCU"), s(VERIFICATION));
    let mut rq_v2 = rq.clone();
    rq_v2.protocol_version = 2;
    let ac = make_ac(s("ANY-SCP"), s("FUZZ-SCU"), s(IMPLICIT_LE));
    let mut ac_small = ac.clone();
    ac_small.user_info.max_pdu_length = Some(64);
    let mut ac_unlimited = ac.clone();
    ac_unlimited.user_info.max_pdu_length = Some(0);
    let echo = PData {
        pdvs: vec![Pdv {
            context_id: 1,
            is_command: true,
            is_last: true,
            data: Bytes::from_static(b"\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00"),
        }],
    };
    [
        Pdu::AssociateRq(rq),
        Pdu::AssociateRq(rq_v2),
        Pdu::AssociateAc(ac),
        Pdu::AssociateAc(ac_small),
        Pdu::AssociateAc(ac_unlimited),
        Pdu::AssociateRj(AssociateRj {
            result: 1,
            source: 1,
            reason: 1,
        }),
        Pdu::PData(echo),
        Pdu::ReleaseRq,
        Pdu::ReleaseRp,
        Pdu::Abort(Abort::user()),
        Pdu::Abort(Abort::provider(AbortReason::UnexpectedPdu)),
    ]
    .iter()
    .map(|p| p.encode().unwrap_or_else(|e| panic!("canned PDU: {e}")))
    .collect()
}
