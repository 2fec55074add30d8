//! [`Association`]: the sans-IO driver of the PS3.8 §9.2 state machine.
//!
//! Inputs are service-user primitives (methods such as [`Association::accept`]),
//! transport events ([`Association::transport_connected`], ...), peer bytes
//! ([`Association::receive_data`]) and the clock ([`Association::handle_timeout`]).
//! Outputs are drained with [`Association::poll_output`]. Every input is mapped to
//! an [`Event`]; the action comes from [`table::lookup`] and the next state from
//! [`Action::next`], nothing else.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::table::{self, Action, Event, Next, State};
use crate::pdu::{
    Abort, AbortReason, AbortSource, AssociateAc, AssociateRj, AssociateRq, DecodeError,
    EncodeError, Framer, PData, Pdu, PDU_HEADER_LEN, PDV_OVERHEAD,
};

/// Default ARTIM timeout (PS3.8 §9.1.5 leaves the value to the implementation).
pub const DEFAULT_ARTIM_TIMEOUT: Duration = Duration::from_secs(30);

/// Default maximum P-DATA-TF variable field length we advertise.
pub const DEFAULT_MAX_PDU_RECEIVE: u32 = 16_384;

/// Smallest cap the framer applies to any received PDU, so that association
/// PDUs (which the maximum length does not govern) fit even when the advertised
/// P-DATA maximum is small.
pub const MIN_FRAMER_CAP: u32 = 1 << 20;

/// Which end of the association this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Association-requestor: issues A-ASSOCIATE request (Evt1) and connects.
    Requestor,
    /// Association-acceptor: accepts transport connections (Evt5).
    Acceptor,
}

/// Configuration of one [`Association`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Requestor or acceptor; fixed for the life of the value.
    pub role: Role,
    /// ARTIM timer duration.
    pub artim_timeout: Duration,
    /// Maximum P-DATA-TF variable field length we accept (0 = no limit). It is
    /// written into the maximum-length sub-item of every A-ASSOCIATE-RQ/AC we send,
    /// replacing whatever the caller put there, and sizes the receive framer:
    /// received PDUs may be up to `max(max_pdu_receive, MIN_FRAMER_CAP)` bytes
    /// (unbounded when 0).
    pub max_pdu_receive: u32,
}

impl Config {
    /// Defaults for `role`: 30 s ARTIM, 16 KiB maximum PDU.
    pub fn new(role: Role) -> Self {
        Self {
            role,
            artim_timeout: DEFAULT_ARTIM_TIMEOUT,
            max_pdu_receive: DEFAULT_MAX_PDU_RECEIVE,
        }
    }

    /// Defaults for an association-requestor.
    pub fn requestor() -> Self {
        Self::new(Role::Requestor)
    }

    /// Defaults for an association-acceptor.
    pub fn acceptor() -> Self {
        Self::new(Role::Acceptor)
    }

    fn framer_cap(&self) -> u32 {
        match self.max_pdu_receive {
            0 => u32::MAX,
            n => n.max(MIN_FRAMER_CAP),
        }
    }
}

/// Something the transport or the local service-user must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Open the transport connection (AE-1), then call
    /// [`Association::transport_connected`] or [`Association::transport_closed`].
    Connect,
    /// Write these bytes (one encoded PDU) to the transport, in order.
    Transmit(Bytes),
    /// Close the transport connection (after writing every earlier `Transmit`).
    CloseTransport,
    /// Deliver this to the local service-user.
    Indication(Indication),
}

/// An indication or confirmation primitive for the local service-user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Indication {
    /// A-ASSOCIATE indication (AE-6, acceptable request): answer with
    /// [`Association::accept`] or [`Association::reject`].
    AssociateRequest(Box<AssociateRq>),
    /// A-ASSOCIATE confirmation, accepted (AE-3).
    Accepted(Box<AssociateAc>),
    /// A-ASSOCIATE confirmation, rejected by the peer (AE-4).
    Rejected(AssociateRj),
    /// We (the service-provider) rejected the peer's A-ASSOCIATE-RQ without
    /// asking the service-user (AE-6, not acceptable). Informational: the
    /// standard issues no primitive here.
    ProviderRejected(AssociateRj),
    /// P-DATA indication (DT-2, AR-6).
    PData(PData),
    /// A-RELEASE indication (AR-2): answer with [`Association::respond_release`].
    ReleaseRequest,
    /// A-RELEASE indication during a release collision (AR-8). On the requestor
    /// (`requestor == true`, Sta9) answer now with [`Association::respond_release`];
    /// on the acceptor (Sta10) wait for [`Indication::ReleaseConfirm`] first.
    ReleaseCollision {
        /// Whether this end is the association-requestor.
        requestor: bool,
    },
    /// A-RELEASE confirmation (AR-3, AR-10). `must_respond` is true after a
    /// release collision on the acceptor (AR-10, Sta12): the release is complete
    /// only once the service-user calls [`Association::respond_release`].
    ReleaseConfirm {
        /// Whether the service-user still has to respond (Sta12).
        must_respond: bool,
    },
    /// A-ABORT PDU from the peer (AA-3): an A-ABORT indication when `source` is 0
    /// (service-user), an A-P-ABORT indication when it is 2 (service-provider).
    /// Raw codes as received (PS3.8 Table 9-26).
    Aborted {
        /// Abort source as received.
        source: u8,
        /// Reason/diagnostic as received.
        reason: u8,
    },
    /// A-P-ABORT raised locally: we aborted because of a protocol error (AA-8, or
    /// AA-1 on a protocol error in Sta2; `source`/`reason` are what the A-ABORT
    /// PDU carried), the transport closed under us (AA-4), or ARTIM expired
    /// before any A-ASSOCIATE-RQ arrived (no PDU sent).
    ProviderAborted {
        /// Abort source (service-provider).
        source: AbortSource,
        /// Reason sent to the peer.
        reason: AbortReason,
        /// Human-readable cause.
        detail: String,
    },
    /// The association is over and the machine is back in Sta1.
    Closed,
}

/// A local primitive that cannot be carried out; nothing was changed or sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalError {
    /// Table 9-10 defines no action for this event in the current state.
    #[error("{event} ({}) is not valid in {state} ({})", event.description(), state.description())]
    InvalidState {
        /// Current state.
        state: State,
        /// The event the primitive maps to.
        event: Event,
    },
    /// The primitive belongs to the other role (e.g. A-ASSOCIATE request on an acceptor).
    #[error("{event} ({}) is not available to an association {role:?}", event.description())]
    WrongRole {
        /// This association's role.
        role: Role,
        /// The event the primitive maps to.
        event: Event,
    },
    /// The PDU could not be encoded.
    #[error("cannot encode PDU: {0}")]
    Encode(#[from] EncodeError),
    /// The P-DATA-TF exceeds the maximum length the peer advertised.
    #[error("P-DATA-TF variable field of {len} bytes exceeds the peer's maximum of {max}")]
    PduTooLarge {
        /// Variable field length of the P-DATA-TF.
        len: usize,
        /// The peer's maximum length received.
        max: u32,
    },
}

/// Why a peer-caused abort happens: becomes the A-ABORT reason and the detail.
#[derive(Debug)]
struct AbortCause {
    reason: AbortReason,
    detail: String,
}

/// Data carried by an event into its action.
#[derive(Debug)]
enum Input {
    None,
    /// Evt1: the request and its encoding.
    Request(AssociateRq, Bytes),
    /// Evt7: the accept and its encoding.
    Accept(AssociateAc, Bytes),
    /// Evt8: the reject and its encoding.
    Reject(Bytes),
    /// Evt9, Evt11, Evt14: an encoded PDU to send.
    Send(Bytes),
    /// Evt9 on the hot path: a one-PDV P-DATA-TF as header and data, sent as two
    /// [`Output::Transmit`]s so the data is never copied.
    SendParts(Bytes, Bytes),
    /// Evt3.
    PeerAc(AssociateAc),
    /// Evt4.
    PeerRj(AssociateRj),
    /// Evt6.
    PeerRq(AssociateRq),
    /// Evt10.
    PeerPData(PData),
    /// Evt16.
    PeerAbort(Abort),
    /// Evt12, Evt13 (no payload) or any PDU that is unexpected in this state.
    Unexpected(&'static str),
    /// Evt19.
    Invalid(DecodeError),
}

impl Input {
    /// The abort reason and detail when this peer input triggers an abort.
    fn abort_cause(&self, state: State) -> AbortCause {
        match self {
            Input::Invalid(e) => AbortCause {
                reason: e.abort_reason(),
                detail: e.to_string(),
            },
            other => {
                let what = match other {
                    Input::PeerAc(_) => "A-ASSOCIATE-AC",
                    Input::PeerRj(_) => "A-ASSOCIATE-RJ",
                    Input::PeerRq(_) => "A-ASSOCIATE-RQ",
                    Input::PeerPData(_) => "P-DATA-TF",
                    Input::PeerAbort(_) => "A-ABORT",
                    Input::Unexpected(name) => name,
                    _ => "local",
                };
                AbortCause {
                    reason: AbortReason::UnexpectedPdu,
                    detail: format!("unexpected {what} PDU in {state}"),
                }
            }
        }
    }
}

/// The length of a P-DATA-TF's variable field: each PDV item is a 4-byte
/// length, the context ID, the message control header and the data.
fn pdata_len(pdata: &PData) -> u64 {
    pdata
        .pdvs
        .iter()
        .map(|pdv| (PDV_OVERHEAD as u64).saturating_add(pdv.data.len() as u64))
        .fold(0, u64::saturating_add)
}

/// One DICOM Upper Layer association (one transport connection), sans-IO.
#[derive(Debug)]
pub struct Association {
    config: Config,
    state: State,
    framer: Framer,
    outputs: VecDeque<Output>,
    /// ARTIM deadline; `None` when the timer is stopped.
    artim: Option<Instant>,
    /// Encoded A-ASSOCIATE-RQ waiting for the transport connection (Sta4).
    pending_rq: Option<Bytes>,
    /// The A-ASSOCIATE-RQ sent (requestor) or received (acceptor).
    request: Option<AssociateRq>,
    /// The A-ASSOCIATE-AC received (requestor) or sent (acceptor).
    accept: Option<AssociateAc>,
    /// Set after an invalid PDU: the byte stream can no longer be framed, so
    /// further peer bytes are discarded.
    rx_poisoned: bool,
}

impl Association {
    /// A new association in Sta1.
    pub fn new(config: Config) -> Self {
        let framer = Framer::new(config.framer_cap());
        Self {
            config,
            state: State::Sta1,
            framer,
            outputs: VecDeque::new(),
            artim: None,
            pending_rq: None,
            request: None,
            accept: None,
            rx_poisoned: false,
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.config.role
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the association is established (Sta6).
    pub fn is_established(&self) -> bool {
        self.state == State::Sta6
    }

    /// The A-ASSOCIATE-RQ sent (requestor) or received and indicated (acceptor).
    pub fn associate_rq(&self) -> Option<&AssociateRq> {
        self.request.as_ref()
    }

    /// The A-ASSOCIATE-AC received (requestor) or sent (acceptor).
    pub fn associate_ac(&self) -> Option<&AssociateAc> {
        self.accept.as_ref()
    }

    /// The maximum P-DATA-TF variable field length the peer accepts, from its
    /// A-ASSOCIATE-AC (requestor) or -RQ (acceptor); `Some(0)` means no limit,
    /// `None` that it is not known (yet, or the peer sent no such sub-item).
    pub fn peer_max_pdu_length(&self) -> Option<u32> {
        let info = match self.config.role {
            Role::Requestor => &self.accept.as_ref()?.user_info,
            Role::Acceptor => &self.request.as_ref()?.user_info,
        };
        info.max_pdu_length
    }

    /// Next output for the transport or the service-user.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Association::handle_timeout`] must next be called (the ARTIM deadline).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.artim
    }

    /// Expires ARTIM (Evt18) if its deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.artim, Some(deadline) if deadline <= now) {
            self.artim = None;
            if let Some(action) = table::lookup(self.state, Event::Evt18) {
                self.perform(action, Input::None, now);
            }
        }
    }

    // ----- local service-user primitives ---------------------------------------

    /// A-ASSOCIATE request (Evt1). AE-1: asks the transport to connect
    /// ([`Output::Connect`]); the request is sent once it is connected.
    pub fn request_association(
        &mut self,
        mut rq: AssociateRq,
        now: Instant,
    ) -> Result<(), LocalError> {
        self.check_role(Role::Requestor, Event::Evt1)?;
        self.check(Event::Evt1)?;
        rq.user_info.max_pdu_length = Some(self.config.max_pdu_receive);
        let bytes = Pdu::AssociateRq(rq.clone()).encode()?;
        self.fire(Event::Evt1, Input::Request(rq, bytes), now)
    }

    /// Transport connect confirmation (Evt2). AE-2: sends the A-ASSOCIATE-RQ.
    pub fn transport_connected(&mut self, now: Instant) -> Result<(), LocalError> {
        self.check(Event::Evt2)?;
        self.fire(Event::Evt2, Input::None, now)
    }

    /// Transport connection indication (Evt5): a peer connected to us. AE-5:
    /// starts ARTIM while awaiting the A-ASSOCIATE-RQ.
    pub fn transport_accepted(&mut self, now: Instant) -> Result<(), LocalError> {
        self.check_role(Role::Acceptor, Event::Evt5)?;
        self.check(Event::Evt5)?;
        self.fire(Event::Evt5, Input::None, now)
    }

    /// A-ASSOCIATE response, accept (Evt7). AE-7: sends the A-ASSOCIATE-AC.
    pub fn accept(&mut self, mut ac: AssociateAc, now: Instant) -> Result<(), LocalError> {
        self.check(Event::Evt7)?;
        ac.user_info.max_pdu_length = Some(self.config.max_pdu_receive);
        let bytes = Pdu::AssociateAc(ac.clone()).encode()?;
        self.fire(Event::Evt7, Input::Accept(ac, bytes), now)
    }

    /// A-ASSOCIATE response, reject (Evt8). AE-8: sends the A-ASSOCIATE-RJ and
    /// starts ARTIM.
    pub fn reject(&mut self, rj: AssociateRj, now: Instant) -> Result<(), LocalError> {
        self.check(Event::Evt8)?;
        let bytes = Pdu::AssociateRj(rj).encode()?;
        self.fire(Event::Evt8, Input::Reject(bytes), now)
    }

    /// P-DATA request (Evt9). DT-1 / AR-7: sends the P-DATA-TF. Refused if it
    /// exceeds the peer's maximum length.
    pub fn send_pdata(&mut self, pdata: PData, now: Instant) -> Result<(), LocalError> {
        self.check(Event::Evt9)?;
        let bytes = Pdu::PData(pdata).encode()?;
        let len = bytes.len().saturating_sub(PDU_HEADER_LEN);
        if let Some(max) = self.peer_max_pdu_length().filter(|&m| m != 0) {
            if len > usize::try_from(max).unwrap_or(usize::MAX) {
                return Err(LocalError::PduTooLarge { len, max });
            }
        }
        self.fire(Event::Evt9, Input::Send(bytes), now)
    }

    /// P-DATA request (Evt9) for a P-DATA-TF holding one PDV, without copying
    /// `data`: DT-1 / AR-7 emit [`Output::Transmit`] of the 12-byte header, then
    /// [`Output::Transmit`] of `data` itself. The state is validated by the table
    /// exactly as for [`Association::send_pdata`], and the PDU is refused if it
    /// exceeds the peer's maximum length.
    pub fn send_pdv_parts(
        &mut self,
        context_id: u8,
        is_command: bool,
        is_last: bool,
        data: Bytes,
        now: Instant,
    ) -> Result<(), LocalError> {
        let header = self.pdv_header(context_id, is_command, is_last, data.len())?;
        self.fire(Event::Evt9, Input::SendParts(header, data), now)
    }

    /// P-DATA request (Evt9) for one PDV of `len` bytes that the caller writes to
    /// the transport itself (with sendfile, say): only the 12-byte header is
    /// emitted, and the caller must write exactly `len` payload bytes right
    /// after it, before anything else. Checked as [`Self::send_pdv_parts`] is.
    pub fn send_pdv_header(
        &mut self,
        context_id: u8,
        is_command: bool,
        is_last: bool,
        len: usize,
        now: Instant,
    ) -> Result<(), LocalError> {
        let header = self.pdv_header(context_id, is_command, is_last, len)?;
        self.fire(Event::Evt9, Input::Send(header), now)
    }

    /// The header of a one-PDV P-DATA-TF, once the table allows P-DATA now and
    /// the PDU fits the peer's maximum length.
    fn pdv_header(
        &self,
        context_id: u8,
        is_command: bool,
        is_last: bool,
        len: usize,
    ) -> Result<Bytes, LocalError> {
        self.check(Event::Evt9)?;
        let header = PData::header_for_single_pdv(context_id, is_command, is_last, len)?;
        let total = len.saturating_add(PDV_OVERHEAD);
        if let Some(max) = self.peer_max_pdu_length().filter(|&m| m != 0) {
            if total > usize::try_from(max).unwrap_or(usize::MAX) {
                return Err(LocalError::PduTooLarge { len: total, max });
            }
        }
        Ok(Bytes::copy_from_slice(&header))
    }

    /// A-RELEASE request (Evt11). AR-1: sends the A-RELEASE-RQ.
    pub fn request_release(&mut self, now: Instant) -> Result<(), LocalError> {
        self.check(Event::Evt11)?;
        let bytes = Pdu::ReleaseRq.encode()?;
        self.fire(Event::Evt11, Input::Send(bytes), now)
    }

    /// A-RELEASE response (Evt14). AR-4 / AR-9: sends the A-RELEASE-RP.
    pub fn respond_release(&mut self, now: Instant) -> Result<(), LocalError> {
        self.check(Event::Evt14)?;
        let bytes = Pdu::ReleaseRp.encode()?;
        self.fire(Event::Evt14, Input::Send(bytes), now)
    }

    /// A-ABORT request (Evt15), service-user source. AA-1 sends the A-ABORT and
    /// starts ARTIM; AA-2 (Sta4, not yet connected) just closes the transport.
    pub fn abort(&mut self, now: Instant) -> Result<(), LocalError> {
        self.check(Event::Evt15)?;
        let bytes = Pdu::Abort(Abort::user()).encode()?;
        self.fire(Event::Evt15, Input::Send(bytes), now)
    }

    /// The service-user found a P-DATA-TF invalid (a PDV on a context that was
    /// not accepted, message control headers out of sequence): handled as an
    /// invalid PDU (Evt19), so AA-8 sends an A-ABORT with the service-provider
    /// source and reason 6 (invalid-PDU-parameter-value) and starts ARTIM.
    /// Later peer bytes are discarded.
    pub fn invalid_pdata(&mut self, detail: String, now: Instant) -> Result<(), LocalError> {
        self.check(Event::Evt19)?;
        self.rx_poisoned = true;
        let err = DecodeError::InvalidValue {
            field: "P-DATA-TF",
            detail,
        };
        self.fire(Event::Evt19, Input::Invalid(err), now)
    }

    /// Transport connection closed indication (Evt17), whatever closed it.
    pub fn transport_closed(&mut self, now: Instant) -> Result<(), LocalError> {
        self.check(Event::Evt17)?;
        self.fire(Event::Evt17, Input::None, now)
    }

    // ----- peer input -----------------------------------------------------------

    /// Bytes received from the peer: appended to the receive buffer, then every
    /// whole PDU in it is processed (see [`Association::process`]).
    pub fn receive_data(&mut self, data: &[u8], now: Instant) {
        if self.accepts_peer_bytes() {
            self.framer.feed(data);
            self.process(now);
        }
    }

    /// The receive buffer, for a transport that reads straight into it; call
    /// [`Association::process`] afterwards.
    pub fn receive_buffer(&mut self) -> &mut BytesMut {
        self.framer.buffer_mut()
    }

    /// Processes every whole PDU in the receive buffer: each becomes Evt3, 4, 6,
    /// 10, 12, 13 or 16, and bytes that are not a valid PDU become Evt19. Bytes
    /// arriving while there is no transport connection, after the association
    /// returned to Sta1 or after an invalid PDU are discarded.
    pub fn process(&mut self, now: Instant) {
        while self.accepts_peer_bytes() {
            match self.framer.next_pdu() {
                Ok(None) => return,
                Ok(Some(pdu)) => self.peer_pdu(pdu, now),
                Err(err) => {
                    self.rx_poisoned = true;
                    self.peer_event(Event::Evt19, Input::Invalid(err), now);
                }
            }
        }
        self.framer.buffer_mut().clear();
    }

    fn accepts_peer_bytes(&self) -> bool {
        !self.rx_poisoned && !matches!(self.state, State::Sta1 | State::Sta4)
    }

    fn peer_pdu(&mut self, pdu: Pdu, now: Instant) {
        let (event, input) = match pdu {
            Pdu::AssociateAc(ac) => (Event::Evt3, Input::PeerAc(ac)),
            Pdu::AssociateRj(rj) => (Event::Evt4, Input::PeerRj(rj)),
            Pdu::AssociateRq(rq) => (Event::Evt6, Input::PeerRq(rq)),
            // The maximum length we announced binds the peer (PS3.8 D.1); the
            // framer's cap is looser so that association PDUs always fit.
            Pdu::PData(p) if self.pdata_too_long(&p) => {
                self.rx_poisoned = true;
                let err = DecodeError::InvalidValue {
                    field: "P-DATA-TF length",
                    detail: format!(
                        "{} bytes, more than the {} announced",
                        pdata_len(&p),
                        self.config.max_pdu_receive
                    ),
                };
                (Event::Evt19, Input::Invalid(err))
            }
            Pdu::PData(p) => (Event::Evt10, Input::PeerPData(p)),
            Pdu::ReleaseRq => (Event::Evt12, Input::Unexpected("A-RELEASE-RQ")),
            Pdu::ReleaseRp => (Event::Evt13, Input::Unexpected("A-RELEASE-RP")),
            Pdu::Abort(a) => (Event::Evt16, Input::PeerAbort(a)),
        };
        self.peer_event(event, input, now);
    }

    fn pdata_too_long(&self, pdata: &PData) -> bool {
        let max = u64::from(self.config.max_pdu_receive);
        max > 0 && pdata_len(pdata) > max
    }

    fn peer_event(&mut self, event: Event, input: Input, now: Instant) {
        // Every PDU event has an action in every state that has a transport
        // connection; a blank cell (Sta1, Sta4) is excluded by the caller.
        if let Some(action) = table::lookup(self.state, event) {
            self.perform(action, input, now);
        }
    }

    // ----- the machine ----------------------------------------------------------

    fn check(&self, event: Event) -> Result<(), LocalError> {
        match table::lookup(self.state, event) {
            Some(_) => Ok(()),
            None => Err(LocalError::InvalidState {
                state: self.state,
                event,
            }),
        }
    }

    fn check_role(&self, role: Role, event: Event) -> Result<(), LocalError> {
        if self.config.role == role {
            Ok(())
        } else {
            Err(LocalError::WrongRole {
                role: self.config.role,
                event,
            })
        }
    }

    /// Runs the action for a local event already validated by [`Self::check`].
    fn fire(&mut self, event: Event, input: Input, now: Instant) -> Result<(), LocalError> {
        let action = table::lookup(self.state, event).ok_or(LocalError::InvalidState {
            state: self.state,
            event,
        })?;
        self.perform(action, input, now);
        Ok(())
    }

    fn start_artim(&mut self, now: Instant) {
        // A timeout too large to represent never expires.
        self.artim = now.checked_add(self.config.artim_timeout);
    }

    fn emit(&mut self, output: Output) {
        self.outputs.push_back(output);
    }

    fn indicate(&mut self, indication: Indication) {
        self.outputs.push_back(Output::Indication(indication));
    }

    /// Sends a PDU the service-provider builds itself (A-ABORT, A-ASSOCIATE-RJ).
    fn transmit_provider_pdu(&mut self, pdu: &Pdu) {
        // These fixed-size PDUs always encode; nothing sensible can be sent otherwise.
        let encoded = pdu.encode();
        debug_assert!(
            encoded.is_ok(),
            "provider PDU failed to encode: {encoded:?}"
        );
        if let Ok(bytes) = encoded {
            self.emit(Output::Transmit(bytes));
        }
    }

    fn send_provider_abort(&mut self, reason: AbortReason) {
        self.transmit_provider_pdu(&Pdu::Abort(Abort::provider(reason)));
    }

    /// Performs `action` (PS3.8 Tables 9-6 to 9-9) and moves to its next state.
    fn perform(&mut self, action: Action, input: Input, now: Instant) {
        let state = self.state;
        let mut acceptable = true;
        match action {
            Action::Ae1 => {
                if let Input::Request(rq, bytes) = input {
                    self.request = Some(rq);
                    self.pending_rq = Some(bytes);
                }
                self.accept = None;
                self.reset_receiver();
                self.emit(Output::Connect);
            }
            Action::Ae2 => {
                if let Some(bytes) = self.pending_rq.take() {
                    self.emit(Output::Transmit(bytes));
                }
            }
            Action::Ae3 => {
                if let Input::PeerAc(ac) = input {
                    self.accept = Some(ac.clone());
                    self.indicate(Indication::Accepted(Box::new(ac)));
                }
            }
            Action::Ae4 => {
                if let Input::PeerRj(rj) = input {
                    self.indicate(Indication::Rejected(rj));
                }
                self.emit(Output::CloseTransport);
            }
            Action::Ae5 => {
                self.request = None;
                self.accept = None;
                self.reset_receiver();
                self.start_artim(now);
            }
            Action::Ae6 => {
                self.artim = None;
                if let Input::PeerRq(rq) = input {
                    // PS3.8 §9.3.2: a receiver implementing only version 1 shall
                    // only test that bit 0 of the protocol-version is set.
                    acceptable = rq.protocol_version & 0x0001 != 0;
                    if acceptable {
                        self.request = Some(rq.clone());
                        self.indicate(Indication::AssociateRequest(Box::new(rq)));
                    } else {
                        // Rejected-permanent, service-provider (ACSE),
                        // protocol-version-not-supported (Table 9-21).
                        let rj = AssociateRj {
                            result: 1,
                            source: 2,
                            reason: 2,
                        };
                        self.transmit_provider_pdu(&Pdu::AssociateRj(rj));
                        self.start_artim(now);
                        self.indicate(Indication::ProviderRejected(rj));
                    }
                }
            }
            Action::Ae7 => {
                if let Input::Accept(ac, bytes) = input {
                    self.accept = Some(ac);
                    self.emit(Output::Transmit(bytes));
                }
            }
            Action::Ae8 => {
                if let Input::Reject(bytes) = input {
                    self.emit(Output::Transmit(bytes));
                }
                self.start_artim(now);
            }
            Action::Dt1 | Action::Ar7 | Action::Ar1 | Action::Ar9 => match input {
                Input::Send(bytes) => self.emit(Output::Transmit(bytes)),
                Input::SendParts(header, data) => {
                    self.emit(Output::Transmit(header));
                    self.emit(Output::Transmit(data));
                }
                _ => {}
            },
            Action::Dt2 | Action::Ar6 => {
                if let Input::PeerPData(p) = input {
                    self.indicate(Indication::PData(p));
                }
            }
            Action::Ar2 => self.indicate(Indication::ReleaseRequest),
            Action::Ar3 => {
                self.indicate(Indication::ReleaseConfirm {
                    must_respond: false,
                });
                self.emit(Output::CloseTransport);
            }
            Action::Ar4 => {
                if let Input::Send(bytes) = input {
                    self.emit(Output::Transmit(bytes));
                }
                self.start_artim(now);
            }
            Action::Ar5 | Action::Aa5 => self.artim = None,
            Action::Ar8 => {
                let requestor = self.config.role == Role::Requestor;
                self.indicate(Indication::ReleaseCollision { requestor });
            }
            Action::Ar10 => self.indicate(Indication::ReleaseConfirm { must_respond: true }),
            Action::Aa1 => {
                match input {
                    // A-ABORT request from the local user: service-user source.
                    Input::Send(bytes) => self.emit(Output::Transmit(bytes)),
                    // A protocol error in Sta2. Table 9-9 says "service-user
                    // source"; we send the service-provider source with the
                    // Table 9-26 reason instead, since the provider detected it.
                    other => {
                        let cause = other.abort_cause(state);
                        self.send_provider_abort(cause.reason);
                        self.indicate(Indication::ProviderAborted {
                            source: AbortSource::ServiceProvider,
                            reason: cause.reason,
                            detail: cause.detail,
                        });
                    }
                }
                self.start_artim(now);
            }
            Action::Aa2 => {
                if state == State::Sta2 && matches!(input, Input::None) {
                    // Evt18: the peer connected but sent no A-ASSOCIATE-RQ in time.
                    self.indicate(Indication::ProviderAborted {
                        source: AbortSource::ServiceProvider,
                        reason: AbortReason::NotSpecified,
                        detail: "ARTIM timer expired before an A-ASSOCIATE-RQ arrived".into(),
                    });
                }
                self.artim = None;
                self.emit(Output::CloseTransport);
            }
            Action::Aa3 => {
                if let Input::PeerAbort(a) = input {
                    self.indicate(Indication::Aborted {
                        source: a.source,
                        reason: a.reason,
                    });
                }
                self.emit(Output::CloseTransport);
            }
            Action::Aa4 => {
                self.artim = None;
                self.indicate(Indication::ProviderAborted {
                    source: AbortSource::ServiceProvider,
                    reason: AbortReason::NotSpecified,
                    detail: format!("transport connection closed in {state}"),
                });
            }
            Action::Aa6 => {}
            Action::Aa7 => {
                let cause = input.abort_cause(state);
                self.send_provider_abort(cause.reason);
            }
            Action::Aa8 => {
                let cause = input.abort_cause(state);
                self.send_provider_abort(cause.reason);
                self.indicate(Indication::ProviderAborted {
                    source: AbortSource::ServiceProvider,
                    reason: cause.reason,
                    detail: cause.detail,
                });
                self.start_artim(now);
            }
        }

        let next = match action.next() {
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
            } => match self.config.role {
                Role::Requestor => requestor,
                Role::Acceptor => acceptor,
            },
        };
        self.state = next;
        if next == State::Sta1 && state != State::Sta1 {
            self.artim = None;
            self.pending_rq = None;
            self.framer.buffer_mut().clear();
            self.indicate(Indication::Closed);
        }
    }

    /// A fresh receive framer for a new transport connection.
    fn reset_receiver(&mut self) {
        self.framer = Framer::new(self.config.framer_cap());
        self.rx_poisoned = false;
    }
}
