//! One relayed association: admission, the onward association, then DIMSE
//! messages both ways on one thread.
//!
//! Both connections are driven from this thread. It waits on both sockets at
//! once (poll(2)) and serves whichever has input, after any input TLS has
//! buffered above a socket, alternating when both do: a windowed sender's next
//! object never waits behind the answer to its last one, and an A-ABORT or an
//! early answer is never stuck behind the busy side.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::association::{Association, Config, Indication, Role};
use crate::conn::{indication_error, Connection};
use crate::dimse::{
    classify_status, command_field, fragment_command, max_pdv_data, Event, Message, Reassembler,
    StatusCategory, DEFAULT_MAX_COMMAND_LEN,
};
use crate::integrity::{
    ct_eq, encode_tag_pdv, random_nonce, IntegrityAnswer, IntegrityOffer, Policy, SessionKey,
    Tagger, INTEGRITY_SOP_CLASS, INTEGRITY_TRANSFER_SYNTAX, NONCE_LEN, TLS_EXPORTER_LABEL,
    TLS_EXPORTER_LEN,
};
use crate::part10::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};
use crate::pdu::{
    AssociateAc, AssociateRj, AssociateRq, PData, Pdv, PresentationContextAc,
    PresentationContextRq, SopClassExtended, UserInformation, PROTOCOL_VERSION,
};
use crate::scu::deadline_after;
use crate::store::IMPLICIT_VR_LITTLE_ENDIAN;
use crate::tls::{Stream, TlsStream};
use crate::transport;

use super::policy::{admit, onward_unavailable, select_route, Refusal, Route};
use super::{AssociationRecord, Inner, Outcome, POLL};

/// Longest wait for either side before the timers are looked at again.
const SLICE: Duration = Duration::from_millis(10);

/// How long a side found readable is read (it has bytes, so this is short).
const READY_WAIT: Duration = Duration::from_millis(1);

fn reject(conn: &mut Connection<Stream>, rj: AssociateRj) {
    let now = Instant::now();
    if conn.association_mut().reject(rj, now).is_ok() && conn.flush(now).is_ok() {
        conn.wait_closed();
    }
}

pub(super) fn run_association(stream: TcpStream, peer: SocketAddr, inner: &Inner, busy: bool) {
    let started = Instant::now();
    let config = &inner.config;
    let _ = stream.set_write_timeout(Some(config.timeouts.dimse));
    let stream = match &inner.tls {
        None => Stream::Plain(stream),
        Some(server) => match TlsStream::accept(stream, server, config.timeouts.acse) {
            Ok(tls) => Stream::Tls(Box::new(tls)),
            Err(e) => {
                inner.handler.on_tls_error(peer, &e);
                return;
            }
        },
    };
    let peer_subject = stream.peer_certificate_info().and_then(|c| c.subject);
    let mut inbound = Connection::new(
        stream,
        Association::new(Config {
            role: Role::Acceptor,
            artim_timeout: config.timeouts.acse,
            max_pdu_receive: config.max_pdu,
        }),
    );
    inbound.set_trace(config.trace.clone(), Some(peer));
    if inbound
        .association_mut()
        .transport_accepted(Instant::now())
        .is_err()
    {
        return;
    }
    let Some(rq) = inbound.wait_request(POLL, &inner.shutdown) else {
        return;
    };
    let mut record = AssociationRecord {
        peer,
        peer_subject,
        calling_ae: rq.calling_ae.trim().to_owned(),
        called_ae: rq.called_ae.trim().to_owned(),
        route: None,
        onward: None,
        objects: 0,
        bytes: 0,
        failed_objects: 0,
        outcome: Outcome::Released,
        duration: Duration::ZERO,
    };
    record.outcome = serve(&mut inbound, &rq, inner, busy, &mut record);
    record.duration = started.elapsed();
    inner.finish(&record);
}

/// Everything after the A-ASSOCIATE-RQ; the outcome.
fn serve(
    inbound: &mut Connection<Stream>,
    rq: &AssociateRq,
    inner: &Inner,
    busy: bool,
    record: &mut AssociationRecord,
) -> Outcome {
    if busy {
        // Rejected-transient, service-provider (presentation), local-limit-exceeded.
        let refusal = Refusal {
            rj: AssociateRj {
                result: 2,
                source: 3,
                reason: 2,
            },
            reason: format!(
                "too many associations at once (limit {})",
                inner.config.max_associations
            ),
        };
        reject(inbound, refusal.rj);
        return Outcome::Refused(refusal);
    }
    let route = match select_route(&inner.config.routes, &rq.called_ae) {
        Ok(route) => route,
        Err(refusal) => {
            reject(inbound, refusal.rj);
            return Outcome::Refused(refusal);
        }
    };
    record.route = Some(route.name.clone());
    record.onward = Some(route.destination());
    if let Err(refusal) = admit(
        route,
        record.peer.ip(),
        record.peer_subject.as_deref(),
        &rq.calling_ae,
    ) {
        reject(inbound, refusal.rj);
        return Outcome::Refused(refusal);
    }
    let onward = match open_onward(route, rq, inner) {
        Ok(onward) => onward,
        Err(failure) => {
            let outcome = match failure {
                OnwardFailure::Unavailable(why) => {
                    reject(inbound, onward_unavailable(why.clone()).rj);
                    Outcome::OnwardUnavailable(why)
                }
                OnwardFailure::Rejected(rj) => {
                    reject(inbound, rj);
                    Outcome::OnwardRejected(rj)
                }
                OnwardFailure::Policy(refusal) => {
                    reject(inbound, refusal.rj);
                    Outcome::Refused(refusal)
                }
            };
            return outcome;
        }
    };
    let Onward {
        conn: mut onward_conn,
        ac,
        integrity,
        offered_context,
    } = onward;
    let (ac_in, accepted) = inbound_answer(rq, &ac, offered_context, inner.config.max_pdu);
    let now = Instant::now();
    if inbound.association_mut().accept(ac_in, now).is_err() || inbound.flush(now).is_err() {
        inbound.abort();
        onward_conn.abort();
        return Outcome::Aborted("the A-ASSOCIATE-AC could not be sent to the caller".into());
    }
    let in_max = inbound
        .association()
        .peer_max_pdu_length()
        .unwrap_or(16_384);
    let out_max = onward_conn
        .association()
        .peer_max_pdu_length()
        .unwrap_or(16_384);
    let mut relay = Relay {
        inner,
        inbound,
        onward: onward_conn,
        in_max,
        out_max,
        up: Direction::default(),
        down: Direction::default(),
        accepted,
        integrity,
        outstanding: 0,
        releasing: false,
        record,
    };
    relay.run()
}

/// Why the onward association did not come about.
enum OnwardFailure {
    /// Not reachable, TLS failed, no answer: 2/1/1 to the caller.
    Unavailable(String),
    /// The onward peer's own A-ASSOCIATE-RJ, passed back as is.
    Rejected(AssociateRj),
    /// Integrity required but impossible with this peer.
    Policy(Refusal),
}

struct Onward {
    conn: Connection<Stream>,
    ac: AssociateAc,
    integrity: Option<(u8, SessionKey)>,
    offered_context: Option<u8>,
}

/// Our integrity offer onward: its context ID and our nonce.
type Offered = (u8, [u8; NONCE_LEN]);

/// The onward A-ASSOCIATE-RQ: the caller's, with its securepdu integrity offer
/// (if any) left out, our own offer added when the route has a key, our
/// maximum PDU length and implementation identity.
fn onward_request(
    route: &Route,
    rq: &AssociateRq,
    max_pdu: u32,
) -> Result<(AssociateRq, Option<Offered>), String> {
    let mut contexts: Vec<PresentationContextRq> = rq
        .presentation_contexts
        .iter()
        .filter(|pc| pc.abstract_syntax != INTEGRITY_SOP_CLASS)
        .cloned()
        .collect();
    let mut user_info = UserInformation {
        max_pdu_length: Some(max_pdu),
        implementation_class_uid: Some(IMPLEMENTATION_CLASS_UID.to_owned()),
        implementation_version_name: Some(IMPLEMENTATION_VERSION_NAME.to_owned()),
        ..rq.user_info.clone()
    };
    user_info
        .sop_class_extended
        .retain(|x| x.sop_class_uid != INTEGRITY_SOP_CLASS);
    let mut offer = None;
    if let Some(ic) = route.integrity.as_ref().filter(|c| c.enabled()) {
        // The first odd context ID the caller did not use.
        let free = (1u8..=255)
            .step_by(2)
            .find(|id| !rq.presentation_contexts.iter().any(|pc| pc.id == *id));
        match free {
            Some(id) => {
                let nonce = random_nonce().map_err(|e| e.to_string())?;
                let info = IntegrityOffer {
                    key_id: ic.key.id().to_owned(),
                    nonce,
                }
                .encode()
                .map_err(|e| e.to_string())?;
                contexts.push(PresentationContextRq {
                    id,
                    abstract_syntax: INTEGRITY_SOP_CLASS.to_owned(),
                    transfer_syntaxes: vec![INTEGRITY_TRANSFER_SYNTAX.to_owned()],
                });
                user_info.sop_class_extended.push(SopClassExtended {
                    sop_class_uid: INTEGRITY_SOP_CLASS.to_owned(),
                    service_class_application_information: info,
                });
                offer = Some((id, nonce));
            }
            None if ic.policy == Policy::Required => {
                return Err("no presentation context ID is left for the integrity context".into())
            }
            None => {}
        }
    }
    let onward = AssociateRq {
        protocol_version: PROTOCOL_VERSION,
        called_ae: route
            .to_called_ae
            .clone()
            .unwrap_or_else(|| rq.called_ae.clone())
            .trim()
            .to_owned(),
        calling_ae: rq.calling_ae.trim().to_owned(),
        application_context: rq.application_context.clone(),
        presentation_contexts: contexts,
        user_info,
    };
    Ok((onward, offer))
}

fn open_onward(route: &Route, rq: &AssociateRq, inner: &Inner) -> Result<Onward, OnwardFailure> {
    let config = &inner.config;
    let timeouts = config.timeouts;
    let dest = route.destination();
    let (onward_rq, offer) = onward_request(route, rq, config.max_pdu).map_err(|why| {
        OnwardFailure::Policy(Refusal {
            rj: AssociateRj {
                result: 1,
                source: 1,
                reason: 1,
            },
            reason: format!("integrity required on route {}: {why}", route.name),
        })
    })?;
    let tcp = transport::connect(&route.to_host, route.to_port, timeouts.connect)
        .map_err(|e| OnwardFailure::Unavailable(format!("cannot connect to {dest}: {e}")))?;
    let _ = tcp.set_write_timeout(Some(timeouts.dimse));
    let peer = transport::normalize_addr(
        tcp.peer_addr()
            .map_err(|e| OnwardFailure::Unavailable(format!("cannot connect to {dest}: {e}")))?,
    );
    let stream = match &route.tls {
        None => Stream::Plain(tcp),
        Some(client) => TlsStream::connect(tcp, client, &route.to_host, timeouts.acse)
            .map(|t| Stream::Tls(Box::new(t)))
            .map_err(|e| OnwardFailure::Unavailable(format!("TLS with {dest} failed: {e}")))?,
    };
    let mut conn = Connection::new(
        stream,
        Association::new(Config {
            role: Role::Requestor,
            artim_timeout: timeouts.acse,
            max_pdu_receive: config.max_pdu,
        }),
    );
    conn.set_trace(config.trace.clone(), Some(peer));
    let (calling, called) = (onward_rq.calling_ae.clone(), onward_rq.called_ae.clone());
    let now = Instant::now();
    let sent = conn
        .association_mut()
        .request_association(onward_rq, now)
        .map_err(|e| e.to_string())
        .and_then(|()| conn.flush(now).map_err(|e| e.to_string()));
    if let Err(e) = sent {
        conn.abort();
        return Err(OnwardFailure::Unavailable(format!(
            "cannot send the A-ASSOCIATE-RQ to {dest}: {e}"
        )));
    }
    let deadline = deadline_after(now, timeouts.acse);
    let ac = loop {
        match conn.next_indication(deadline, "A-ASSOCIATE response") {
            Ok(Indication::Accepted(ac)) => break *ac,
            Ok(Indication::Rejected(rj)) => return Err(OnwardFailure::Rejected(rj)),
            Ok(other) => {
                if let Some(err) = indication_error(&other) {
                    return Err(OnwardFailure::Unavailable(format!(
                        "{dest} did not answer the A-ASSOCIATE-RQ: {err}"
                    )));
                }
            }
            Err(e) => {
                return Err(OnwardFailure::Unavailable(format!(
                    "{dest} did not answer the A-ASSOCIATE-RQ: {e}"
                )))
            }
        }
    };
    let integrity = match offer {
        None => None,
        Some((context_id, nonce)) => {
            match establish_integrity(route, &conn, &ac, context_id, &nonce, &calling, &called) {
                Ok(active) => active.map(|s| (context_id, s)),
                Err(why) => {
                    conn.abort();
                    return Err(OnwardFailure::Policy(Refusal {
                        rj: AssociateRj {
                            result: 1,
                            source: 1,
                            reason: 1,
                        },
                        reason: format!("integrity with {dest}: {why}"),
                    }));
                }
            }
        }
    };
    Ok(Onward {
        conn,
        ac,
        integrity,
        offered_context: offer.map(|(id, _)| id),
    })
}

/// The onward peer's integrity answer, as [`crate::scu`] reads it.
/// `Ok(None)`: not in force, which the policy allows.
fn establish_integrity(
    route: &Route,
    conn: &Connection<Stream>,
    ac: &AssociateAc,
    context_id: u8,
    nonce: &[u8; NONCE_LEN],
    calling: &str,
    called: &str,
) -> Result<Option<SessionKey>, String> {
    let Some(ic) = route.integrity.as_ref() else {
        return Ok(None);
    };
    let accepted = ac
        .presentation_contexts
        .iter()
        .any(|pc| pc.id == context_id && pc.result == 0);
    let answer = ac
        .user_info
        .sop_class_extended
        .iter()
        .find(|x| x.sop_class_uid == INTEGRITY_SOP_CLASS)
        .filter(|_| accepted);
    let Some(answer) = answer else {
        if ic.policy == Policy::Required {
            return Err("the onward peer does not do securepdu integrity (required)".into());
        }
        return Ok(None);
    };
    let answer = IntegrityAnswer::decode(&answer.service_class_application_information)
        .map_err(|e| e.to_string())?;
    let exporter = conn
        .stream()
        .export_keying_material(TLS_EXPORTER_LABEL, TLS_EXPORTER_LEN)
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let session = SessionKey::derive(&ic.key, nonce, &answer.nonce, calling, called, &exporter)
        .map_err(|e| e.to_string())?;
    if !ct_eq(&session.confirm(), &answer.confirm) {
        return Err(format!(
            "the onward peer holds a different key for key id {:?}",
            ic.key.id()
        ));
    }
    Ok(Some(session))
}

/// The A-ASSOCIATE-AC for the caller, from the onward peer's: its answers to
/// the caller's contexts (the caller's own integrity context, which the
/// gateway does not terminate, rejected as an unsupported abstract syntax),
/// our maximum PDU length. Also the accepted contexts: (ID, transfer syntax).
fn inbound_answer(
    rq: &AssociateRq,
    ac: &AssociateAc,
    offered: Option<u8>,
    max_pdu: u32,
) -> (AssociateAc, Vec<(u8, String)>) {
    let mut items: Vec<PresentationContextAc> = ac
        .presentation_contexts
        .iter()
        .filter(|pc| Some(pc.id) != offered)
        .filter(|pc| rq.presentation_contexts.iter().any(|p| p.id == pc.id))
        .cloned()
        .collect();
    for pc in &rq.presentation_contexts {
        if !items.iter().any(|i| i.id == pc.id) {
            // Our own integrity context stays unanswered onward; so does a
            // context a careless peer forgot: 3 (abstract syntax not supported).
            items.push(PresentationContextAc {
                id: pc.id,
                result: 3,
                transfer_syntax: Some(IMPLICIT_VR_LITTLE_ENDIAN.to_owned()),
            });
        }
    }
    items.sort_by_key(|i| i.id);
    let accepted = items
        .iter()
        .filter(|i| i.result == 0)
        .filter_map(|i| {
            let ts = i.transfer_syntax.clone().or_else(|| {
                rq.presentation_contexts
                    .iter()
                    .find(|p| p.id == i.id)
                    .and_then(|p| p.transfer_syntaxes.first().cloned())
            })?;
            Some((i.id, ts))
        })
        .collect();
    let answer = AssociateAc {
        protocol_version: PROTOCOL_VERSION,
        called_ae: rq.called_ae.clone(),
        calling_ae: rq.calling_ae.clone(),
        application_context: ac.application_context.clone(),
        presentation_contexts: items,
        user_info: UserInformation {
            max_pdu_length: Some(max_pdu),
            implementation_class_uid: Some(IMPLEMENTATION_CLASS_UID.to_owned()),
            implementation_version_name: Some(IMPLEMENTATION_VERSION_NAME.to_owned()),
            async_ops_window: ac.user_info.async_ops_window,
            role_selection: ac.user_info.role_selection.clone(),
            sop_class_extended: ac
                .user_info
                .sop_class_extended
                .iter()
                .filter(|x| x.sop_class_uid != INTEGRITY_SOP_CLASS)
                .cloned()
                .collect(),
            sop_class_common_extended: Vec::new(),
            user_identity_rq: None,
            user_identity_ac: ac.user_info.user_identity_ac.clone(),
            unknown: Vec::new(),
        },
    };
    (answer, accepted)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The caller.
    In,
    /// The onward peer.
    Out,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Self::In => "the calling peer",
            Self::Out => "the onward peer",
        }
    }

    fn other(self) -> Self {
        match self {
            Self::In => Self::Out,
            Self::Out => Self::In,
        }
    }
}

/// One direction's message in progress.
#[derive(Default)]
struct Direction {
    reassembler: Reassembler,
    /// The raw bytes of the command being received, forwarded unchanged.
    command: Vec<u8>,
    /// The C-STORE whose data set is streaming onward, and its tag so far.
    tagger: Option<(u16, Tagger)>,
}

struct Relay<'a> {
    inner: &'a Inner,
    inbound: &'a mut Connection<Stream>,
    onward: Connection<Stream>,
    in_max: u32,
    out_max: u32,
    /// Caller -> onward peer.
    up: Direction,
    /// Onward peer -> caller.
    down: Direction,
    /// Contexts in use: (ID, transfer syntax).
    accepted: Vec<(u8, String)>,
    /// Integrity in force onward: (context ID, session key).
    integrity: Option<(u8, SessionKey)>,
    /// Requests passed onward and not answered yet.
    outstanding: usize,
    /// The caller asked to release; waiting for the onward A-RELEASE-RP.
    releasing: bool,
    record: &'a mut AssociationRecord,
}

/// Strips the padding a UID may carry in a command.
fn strip(s: &str) -> &str {
    s.trim_matches(|c: char| c == '\0' || c == ' ')
}

impl Relay<'_> {
    fn conn(&mut self, side: Side) -> &mut Connection<Stream> {
        match side {
            Side::In => self.inbound,
            Side::Out => &mut self.onward,
        }
    }

    fn abort_both(&mut self, why: String) -> Outcome {
        self.onward.abort();
        self.inbound.abort();
        Outcome::Aborted(why)
    }

    fn busy(&self) -> bool {
        self.outstanding > 0
            || self.releasing
            || !self.up.reassembler.is_idle()
            || !self.down.reassembler.is_idle()
    }

    fn run(&mut self) -> Outcome {
        let timeouts = self.inner.config.timeouts;
        let mut last_rx = Instant::now();
        let mut shutdown_at: Option<Instant> = None;
        let mut flip = false;
        loop {
            for side in [Side::In, Side::Out] {
                while let Some(ind) = self.conn(side).pop_indication() {
                    last_rx = Instant::now();
                    if let Some(outcome) = self.on_indication(side, ind) {
                        return outcome;
                    }
                }
            }
            let now = Instant::now();
            let busy = self.busy();
            let limit = match (busy, self.releasing) {
                (_, true) => timeouts.acse,
                (true, false) => timeouts.dimse,
                (false, false) => timeouts.idle,
            };
            if now >= deadline_after(last_rx, limit) {
                let what = if busy { "a message or answer" } else { "idle" };
                return self.abort_both(format!("timed out ({what})"));
            }
            if self.inner.shutdown.load(Ordering::SeqCst) {
                let at = *shutdown_at.get_or_insert(now);
                if !busy || now >= deadline_after(at, timeouts.acse) {
                    return self.abort_both("the gateway is shutting down".into());
                }
            }
            // Serve whichever side has something to say: a windowed sender's
            // next object must not wait behind the answer to its last one.
            let side = match self.ready_side(flip) {
                Ok(Some(side)) => side,
                // Nothing within the slice: look at the timers again.
                Ok(None) => continue,
                Err(e) => return self.abort_both(format!("cannot wait for the peers: {e}")),
            };
            // Alternate when both have input, so neither direction starves.
            flip = !flip;
            match self
                .conn(side)
                .wait_indication(Some(deadline_after(now, READY_WAIT)))
            {
                Ok(Some(ind)) => {
                    last_rx = Instant::now();
                    if let Some(outcome) = self.on_indication(side, ind) {
                        return outcome;
                    }
                }
                // Part of a PDU so far; the rest comes with the next wake-up.
                Ok(None) => {}
                Err(e) => {
                    return self.abort_both(format!("{} is gone: {e}", side.name()));
                }
            }
        }
    }

    /// The side with input: first what TLS buffered above a socket (a poll
    /// would not see it), then whichever socket becomes readable within
    /// [`SLICE`]. `first_out` says which side goes first when both have input.
    fn ready_side(&mut self, first_out: bool) -> std::io::Result<Option<Side>> {
        let order = if first_out {
            [Side::Out, Side::In]
        } else {
            [Side::In, Side::Out]
        };
        for side in order {
            if self.conn(side).stream_mut().has_buffered_input() {
                return Ok(Some(side));
            }
        }
        let (inbound, onward) = wait_readable(
            self.inbound.stream().tcp(),
            self.onward.stream().tcp(),
            SLICE,
        )?;
        Ok(match (inbound, onward) {
            (true, true) => Some(order[0]),
            (true, false) => Some(Side::In),
            (false, true) => Some(Side::Out),
            (false, false) => None,
        })
    }

    /// Handles one indication; `Some` when the association is over.
    fn on_indication(&mut self, from: Side, ind: Indication) -> Option<Outcome> {
        match ind {
            Indication::PData(pdata) => match self.on_pdata(from, pdata) {
                Ok(()) => None,
                Err(why) => Some(self.abort_both(why)),
            },
            Indication::ReleaseRequest if from == Side::In => {
                let now = Instant::now();
                let asked = self
                    .onward
                    .association_mut()
                    .request_release(now)
                    .map_err(|e| e.to_string())
                    .and_then(|()| self.onward.flush(now).map_err(|e| e.to_string()));
                match asked {
                    Ok(()) => {
                        self.releasing = true;
                        None
                    }
                    Err(e) => Some(self.abort_both(format!("cannot release onward: {e}"))),
                }
            }
            Indication::ReleaseConfirm { .. } if from == Side::Out => {
                let now = Instant::now();
                let answered = self.inbound.association_mut().respond_release(now).is_ok()
                    && self.inbound.flush(now).is_ok();
                if !answered {
                    self.inbound.abort();
                    return Some(Outcome::Aborted(
                        "the A-RELEASE-RP could not be sent to the caller".into(),
                    ));
                }
                self.inbound.wait_closed();
                Some(Outcome::Released)
            }
            Indication::ReleaseRequest | Indication::ReleaseCollision { .. } => {
                // The acceptor does not release (PS3.7 D.3.2); answer it and
                // end the caller's side, which cannot go on alone.
                let now = Instant::now();
                if from == Side::Out {
                    let _ = self.onward.association_mut().respond_release(now);
                    let _ = self.onward.flush(now);
                }
                Some(self.abort_both(format!("{} released unexpectedly", from.name())))
            }
            Indication::Aborted { source, reason } => {
                self.conn(from.other()).abort();
                Some(Outcome::Aborted(format!(
                    "{} sent A-ABORT (source {source}, reason {reason})",
                    from.name()
                )))
            }
            Indication::ProviderAborted { .. } | Indication::Closed => {
                self.conn(from.other()).abort();
                Some(Outcome::Aborted(format!(
                    "{} closed the connection",
                    from.name()
                )))
            }
            _ => None,
        }
    }

    fn on_pdata(&mut self, from: Side, pdata: PData) -> Result<(), String> {
        pdata
            .pdvs
            .into_iter()
            .try_for_each(|pdv| self.on_pdv(from, pdv))
    }

    /// Passes one PDV on: a command once whole (its bytes unchanged), data set
    /// bytes at once, cut to the other side's maximum length.
    fn on_pdv(&mut self, from: Side, pdv: Pdv) -> Result<(), String> {
        let ctx = pdv.context_id;
        let transfer_syntax = self
            .accepted
            .iter()
            .find(|(id, _)| *id == ctx)
            .map(|(_, ts)| ts.clone())
            .ok_or_else(|| {
                format!(
                    "{} sent a PDV on presentation context {ctx}, which is not in use",
                    from.name()
                )
            })?;
        let (is_command, is_last, data) = (pdv.is_command, pdv.is_last, pdv.data.clone());
        let (dir, to, to_max) = match from {
            Side::In => (&mut self.up, &mut self.onward, self.out_max),
            Side::Out => (&mut self.down, &mut *self.inbound, self.in_max),
        };
        if is_command {
            if dir.command.len().saturating_add(data.len()) > DEFAULT_MAX_COMMAND_LEN {
                return Err(format!("{} sent an over-long command", from.name()));
            }
            dir.command.extend_from_slice(&data);
        }
        let mut events = Vec::new();
        dir.reassembler
            .push_pdv(pdv, &mut events)
            .map_err(|e| format!("{}: {e}", from.name()))?;
        let gone = |e: crate::transport::NetError| format!("{} is gone: {e}", from.other().name());
        for event in events {
            let Event::Command { message, .. } = event else {
                continue;
            };
            let raw = std::mem::take(&mut dir.command);
            for pdata in fragment_command(ctx, raw, to_max) {
                to.send_pdata(pdata).map_err(gone)?;
            }
            let cf = message.command_field();
            if command_field::is_response(cf) {
                self.outstanding = self.outstanding.saturating_sub(1);
                if let Message::CStoreRsp(rsp) = &message {
                    match classify_status(rsp.status) {
                        StatusCategory::Success | StatusCategory::Warning => {
                            self.record.objects = self.record.objects.saturating_add(1);
                        }
                        _ => {
                            self.record.failed_objects =
                                self.record.failed_objects.saturating_add(1);
                        }
                    }
                }
            } else if from == Side::In {
                if !message.has_dataset() {
                    self.outstanding = self.outstanding.saturating_add(1);
                }
                if let (Message::CStoreRq(rq), Some((_, session))) = (&message, &self.integrity) {
                    let tagger = session.tagger(
                        rq.message_id,
                        strip(&rq.affected_sop_class_uid),
                        strip(&rq.affected_sop_instance_uid),
                        strip(&transfer_syntax),
                    );
                    dir.tagger = Some((rq.message_id, tagger));
                }
            }
        }
        if is_command {
            return Ok(());
        }
        if let Some((_, tagger)) = &mut dir.tagger {
            tagger.update(&data);
        }
        self.record.bytes = self.record.bytes.saturating_add(data.len() as u64);
        send_data(to, ctx, data, is_last, to_max).map_err(gone)?;
        if is_last {
            if from == Side::In {
                self.outstanding = self.outstanding.saturating_add(1);
            }
            if let (Some((message_id, tagger)), Some((ictx, _))) =
                (dir.tagger.take(), &self.integrity)
            {
                let tag = encode_tag_pdv(message_id, &tagger.finish());
                to.send_pdv(*ictx, true, true, Bytes::copy_from_slice(&tag))
                    .map_err(gone)?;
            }
        }
        Ok(())
    }
}

/// Sends data set bytes as PDVs no larger than the peer takes.
fn send_data(
    to: &mut Connection<Stream>,
    ctx: u8,
    data: Bytes,
    is_last: bool,
    to_max: u32,
) -> Result<(), crate::transport::NetError> {
    if data.is_empty() {
        return if is_last {
            to.send_pdv(ctx, false, true, data)
        } else {
            Ok(())
        };
    }
    let chunk = max_pdv_data(to_max);
    let mut start = 0usize;
    while start < data.len() {
        let end = start.saturating_add(chunk).min(data.len());
        to.send_pdv(
            ctx,
            false,
            is_last && end == data.len(),
            data.slice(start..end),
        )?;
        start = end;
    }
    Ok(())
}

/// Waits up to `timeout` until either socket has bytes (or EOF, or an error)
/// to read; which ones do.
#[cfg(unix)]
fn wait_readable(a: &TcpStream, b: &TcpStream, timeout: Duration) -> std::io::Result<(bool, bool)> {
    use std::os::fd::AsFd;
    let [a, b] = crate::conn::poll_readable([a.as_fd(), b.as_fd()], Some(timeout))?;
    Ok((a, b))
}

/// Without poll(2) here: a non-blocking peek at each socket, and a short
/// sleep when neither has anything.
#[cfg(not(unix))]
fn wait_readable(a: &TcpStream, b: &TcpStream, timeout: Duration) -> std::io::Result<(bool, bool)> {
    let ready = (peek_readable(a), peek_readable(b));
    if ready == (false, false) {
        std::thread::sleep(timeout.min(Duration::from_millis(1)));
    }
    Ok(ready)
}

#[cfg(not(unix))]
fn peek_readable(tcp: &TcpStream) -> bool {
    if tcp.set_nonblocking(true).is_err() {
        return true;
    }
    let mut byte = [0u8; 1];
    let peeked = tcp.peek(&mut byte);
    let _ = tcp.set_nonblocking(false);
    match peeked {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::{IntegrityConfig, IntegrityKey};

    fn rq() -> AssociateRq {
        AssociateRq {
            protocol_version: 1,
            called_ae: "PACS".into(),
            calling_ae: "CT1".into(),
            application_context: crate::pdu::APPLICATION_CONTEXT_NAME.into(),
            presentation_contexts: vec![
                PresentationContextRq {
                    id: 1,
                    abstract_syntax: "1.2.840.10008.5.1.4.1.1.2".into(),
                    transfer_syntaxes: vec!["1.2.840.10008.1.2".into()],
                },
                PresentationContextRq {
                    id: 5,
                    abstract_syntax: INTEGRITY_SOP_CLASS.into(),
                    transfer_syntaxes: vec![INTEGRITY_TRANSFER_SYNTAX.into()],
                },
            ],
            user_info: UserInformation {
                max_pdu_length: Some(16_384),
                sop_class_extended: vec![SopClassExtended {
                    sop_class_uid: INTEGRITY_SOP_CLASS.into(),
                    service_class_application_information: vec![1, 2, 3],
                }],
                ..UserInformation::default()
            },
        }
    }

    #[test]
    fn onward_request_replaces_the_integrity_offer() {
        let mut route = Route::to("r", "::1", 104);
        route.to_called_ae = Some("STORE".into());
        let (onward, offer) = onward_request(&route, &rq(), 65_536).unwrap();
        assert_eq!(onward.called_ae, "STORE");
        assert_eq!(onward.calling_ae, "CT1");
        assert_eq!(onward.presentation_contexts.len(), 1);
        assert!(onward.user_info.sop_class_extended.is_empty());
        assert_eq!(onward.user_info.max_pdu_length, Some(65_536));
        assert!(offer.is_none());

        let key = IntegrityKey::new("k", &[7; 32]).unwrap();
        route.integrity = Some(IntegrityConfig::new(key, Policy::Required));
        let (onward, offer) = onward_request(&route, &rq(), 65_536).unwrap();
        let (id, _) = offer.unwrap();
        assert_eq!(id, 3, "the first odd ID the caller left free");
        assert_eq!(onward.presentation_contexts.len(), 2);
        assert_eq!(onward.user_info.sop_class_extended.len(), 1);
    }

    #[test]
    fn inbound_answer_covers_every_proposed_context() {
        let ac = AssociateAc {
            protocol_version: 1,
            called_ae: "STORE".into(),
            calling_ae: "CT1".into(),
            application_context: crate::pdu::APPLICATION_CONTEXT_NAME.into(),
            presentation_contexts: vec![
                PresentationContextAc {
                    id: 1,
                    result: 0,
                    transfer_syntax: Some("1.2.840.10008.1.2".into()),
                },
                PresentationContextAc {
                    id: 3,
                    result: 0,
                    transfer_syntax: Some(INTEGRITY_TRANSFER_SYNTAX.into()),
                },
            ],
            user_info: UserInformation {
                max_pdu_length: Some(4096),
                ..UserInformation::default()
            },
        };
        let (answer, accepted) = inbound_answer(&rq(), &ac, Some(3), 65_536);
        let results: Vec<(u8, u8)> = answer
            .presentation_contexts
            .iter()
            .map(|p| (p.id, p.result))
            .collect();
        assert_eq!(results, vec![(1, 0), (5, 3)]);
        assert_eq!(accepted, vec![(1, "1.2.840.10008.1.2".to_owned())]);
        assert_eq!(answer.called_ae, "PACS");
        assert_eq!(answer.user_info.max_pdu_length, Some(65_536));
    }
}
