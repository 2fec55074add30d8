//! The DICOM Upper Layer state transition table, PS3.8 §9.2 (Tables 9-1 to 9-10).
//!
//! [`TRANSITIONS`] is the only place that decides which action a (state, event)
//! pair triggers; [`Action::next`] is the only place that decides where an action
//! leads. The driver, [`super::Association`], looks both up and never hard-codes a
//! transition. A (state, event) pair absent from the table is a blank cell of
//! Table 9-10: the standard defines no action for it.
//!
//! Blank cells fall in three groups, none of which the standard fills in:
//! - local primitives issued in the wrong state (for example P-DATA request in
//!   Sta2): a usage error, refused by the driver without any effect;
//! - PDU events in Sta1 and Sta4, where no transport connection exists, and
//!   transport events (Evt2, Evt5, Evt17 in Sta1) out of place: also refused;
//! - ARTIM expiry (Evt18) outside Sta2 and Sta13: ARTIM only runs in those two
//!   states, so the event cannot occur.
//!
//! Two actions have a conditional next state (PS3.8 Tables 9-6 and 9-8), modelled
//! by [`Next`]: AE-6 (Sta3 if the A-ASSOCIATE-RQ is acceptable to the
//! service-provider, otherwise Sta13) and AR-8 (Sta9 on the association-requestor,
//! Sta10 on the acceptor). AA-3 is conditional only in the indication it issues
//! (A-ABORT or A-P-ABORT), not in its next state (always Sta1); AA-6 and AA-7 stay
//! in Sta13.

use std::fmt;

/// A state of the Upper Layer state machine (PS3.8 Tables 9-1 to 9-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum State {
    /// Sta1: idle.
    Sta1 = 1,
    /// Sta2: transport connection open, awaiting A-ASSOCIATE-RQ PDU.
    Sta2 = 2,
    /// Sta3: awaiting local A-ASSOCIATE response primitive.
    Sta3 = 3,
    /// Sta4: awaiting transport connection opening to complete.
    Sta4 = 4,
    /// Sta5: awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU.
    Sta5 = 5,
    /// Sta6: association established, ready for data transfer.
    Sta6 = 6,
    /// Sta7: awaiting A-RELEASE-RP PDU.
    Sta7 = 7,
    /// Sta8: awaiting local A-RELEASE response primitive.
    Sta8 = 8,
    /// Sta9: release collision requestor side, awaiting A-RELEASE response.
    Sta9 = 9,
    /// Sta10: release collision acceptor side, awaiting A-RELEASE-RP PDU.
    Sta10 = 10,
    /// Sta11: release collision requestor side, awaiting A-RELEASE-RP PDU.
    Sta11 = 11,
    /// Sta12: release collision acceptor side, awaiting A-RELEASE response.
    Sta12 = 12,
    /// Sta13: awaiting transport connection close indication.
    Sta13 = 13,
}

impl State {
    /// All states, Sta1 to Sta13.
    pub const ALL: [State; 13] = [
        State::Sta1,
        State::Sta2,
        State::Sta3,
        State::Sta4,
        State::Sta5,
        State::Sta6,
        State::Sta7,
        State::Sta8,
        State::Sta9,
        State::Sta10,
        State::Sta11,
        State::Sta12,
        State::Sta13,
    ];

    /// The state number, 1 to 13.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The state with number `n` (1 to 13).
    pub fn from_number(n: u8) -> Option<State> {
        State::ALL.into_iter().find(|s| s.number() == n)
    }

    /// The name used by PS3.8, e.g. `"Sta6"`.
    pub fn name(self) -> &'static str {
        match self {
            State::Sta1 => "Sta1",
            State::Sta2 => "Sta2",
            State::Sta3 => "Sta3",
            State::Sta4 => "Sta4",
            State::Sta5 => "Sta5",
            State::Sta6 => "Sta6",
            State::Sta7 => "Sta7",
            State::Sta8 => "Sta8",
            State::Sta9 => "Sta9",
            State::Sta10 => "Sta10",
            State::Sta11 => "Sta11",
            State::Sta12 => "Sta12",
            State::Sta13 => "Sta13",
        }
    }

    /// The state definition from PS3.8 Tables 9-1 to 9-5.
    pub fn description(self) -> &'static str {
        match self {
            State::Sta1 => "Idle",
            State::Sta2 => "Transport connection open (Awaiting A-ASSOCIATE-RQ PDU)",
            State::Sta3 => "Awaiting local A-ASSOCIATE response primitive (from local user)",
            State::Sta4 => {
                "Awaiting transport connection opening to complete (from local transport service)"
            }
            State::Sta5 => "Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU",
            State::Sta6 => "Association established and ready for data transfer",
            State::Sta7 => "Awaiting A-RELEASE-RP PDU",
            State::Sta8 => "Awaiting local A-RELEASE response primitive (from local user)",
            State::Sta9 => {
                "Release collision requestor side; awaiting A-RELEASE response (from local user)"
            }
            State::Sta10 => "Release collision acceptor side; awaiting A-RELEASE-RP PDU",
            State::Sta11 => "Release collision requestor side; awaiting A-RELEASE-RP PDU",
            State::Sta12 => {
                "Release collision acceptor side; awaiting A-RELEASE response primitive (from local user)"
            }
            State::Sta13 => {
                "Awaiting Transport Connection Close Indication (Association no longer exists)"
            }
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An event of the state machine (the rows of PS3.8 Table 9-10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Event {
    /// Evt1: A-ASSOCIATE request (local user).
    Evt1 = 1,
    /// Evt2: transport connect confirmation (local transport service).
    Evt2 = 2,
    /// Evt3: A-ASSOCIATE-AC PDU received.
    Evt3 = 3,
    /// Evt4: A-ASSOCIATE-RJ PDU received.
    Evt4 = 4,
    /// Evt5: transport connection indication (local transport service).
    Evt5 = 5,
    /// Evt6: A-ASSOCIATE-RQ PDU received.
    Evt6 = 6,
    /// Evt7: A-ASSOCIATE response primitive (accept).
    Evt7 = 7,
    /// Evt8: A-ASSOCIATE response primitive (reject).
    Evt8 = 8,
    /// Evt9: P-DATA request primitive.
    Evt9 = 9,
    /// Evt10: P-DATA-TF PDU received.
    Evt10 = 10,
    /// Evt11: A-RELEASE request primitive.
    Evt11 = 11,
    /// Evt12: A-RELEASE-RQ PDU received.
    Evt12 = 12,
    /// Evt13: A-RELEASE-RP PDU received.
    Evt13 = 13,
    /// Evt14: A-RELEASE response primitive.
    Evt14 = 14,
    /// Evt15: A-ABORT request primitive.
    Evt15 = 15,
    /// Evt16: A-ABORT PDU received.
    Evt16 = 16,
    /// Evt17: transport connection closed indication.
    Evt17 = 17,
    /// Evt18: ARTIM timer expired.
    Evt18 = 18,
    /// Evt19: unrecognized or invalid PDU received.
    Evt19 = 19,
}

impl Event {
    /// All events, Evt1 to Evt19.
    pub const ALL: [Event; 19] = [
        Event::Evt1,
        Event::Evt2,
        Event::Evt3,
        Event::Evt4,
        Event::Evt5,
        Event::Evt6,
        Event::Evt7,
        Event::Evt8,
        Event::Evt9,
        Event::Evt10,
        Event::Evt11,
        Event::Evt12,
        Event::Evt13,
        Event::Evt14,
        Event::Evt15,
        Event::Evt16,
        Event::Evt17,
        Event::Evt18,
        Event::Evt19,
    ];

    /// The event number, 1 to 19.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The event with number `n` (1 to 19).
    pub fn from_number(n: u8) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.number() == n)
    }

    /// The name used by PS3.8, e.g. `"Evt10"`.
    pub fn name(self) -> &'static str {
        match self {
            Event::Evt1 => "Evt1",
            Event::Evt2 => "Evt2",
            Event::Evt3 => "Evt3",
            Event::Evt4 => "Evt4",
            Event::Evt5 => "Evt5",
            Event::Evt6 => "Evt6",
            Event::Evt7 => "Evt7",
            Event::Evt8 => "Evt8",
            Event::Evt9 => "Evt9",
            Event::Evt10 => "Evt10",
            Event::Evt11 => "Evt11",
            Event::Evt12 => "Evt12",
            Event::Evt13 => "Evt13",
            Event::Evt14 => "Evt14",
            Event::Evt15 => "Evt15",
            Event::Evt16 => "Evt16",
            Event::Evt17 => "Evt17",
            Event::Evt18 => "Evt18",
            Event::Evt19 => "Evt19",
        }
    }

    /// The event as named in PS3.8 Table 9-10.
    pub fn description(self) -> &'static str {
        match self {
            Event::Evt1 => "A-ASSOCIATE Request (local user)",
            Event::Evt2 => "Transport Connect Confirmation (local transport service)",
            Event::Evt3 => "A-ASSOCIATE-AC PDU (received on transport connection)",
            Event::Evt4 => "A-ASSOCIATE-RJ PDU (received on transport connection)",
            Event::Evt5 => "Transport Connection Indication (local transport service)",
            Event::Evt6 => "A-ASSOCIATE-RQ PDU (received on transport connection)",
            Event::Evt7 => "A-ASSOCIATE response primitive (accept)",
            Event::Evt8 => "A-ASSOCIATE response primitive (reject)",
            Event::Evt9 => "P-DATA request primitive",
            Event::Evt10 => "P-DATA-TF PDU",
            Event::Evt11 => "A-RELEASE Request primitive",
            Event::Evt12 => "A-RELEASE-RQ PDU (received on open transport connection)",
            Event::Evt13 => "A-RELEASE-RP PDU (received on transport connection)",
            Event::Evt14 => "A-RELEASE Response primitive",
            Event::Evt15 => "A-ABORT Request primitive",
            Event::Evt16 => "A-ABORT PDU (received on open transport connection)",
            Event::Evt17 => "Transport connection closed indication (local transport service)",
            Event::Evt18 => "ARTIM timer expired (Association reject/release timer)",
            Event::Evt19 => "Unrecognized or invalid PDU received",
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where an action leads (the "Next state is ..." part of PS3.8 Tables 9-6 to 9-9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Next {
    /// Always this state.
    To(State),
    /// AE-6: `acceptable` if the A-ASSOCIATE-RQ is acceptable by the
    /// service-provider, otherwise `otherwise` (after sending A-ASSOCIATE-RJ).
    AcceptableOr {
        /// Next state when the request is acceptable (Sta3).
        acceptable: State,
        /// Next state when the service-provider rejects it (Sta13).
        otherwise: State,
    },
    /// AR-8: `requestor` on the association-requestor, `acceptor` on the
    /// association-acceptor.
    RequestorOr {
        /// Next state on the association-requestor (Sta9).
        requestor: State,
        /// Next state on the association-acceptor (Sta10).
        acceptor: State,
    },
}

impl Next {
    /// Every state this can lead to, unconditional or first branch first.
    pub fn states(self) -> Vec<State> {
        match self {
            Next::To(s) => vec![s],
            Next::AcceptableOr {
                acceptable,
                otherwise,
            } => vec![acceptable, otherwise],
            Next::RequestorOr {
                requestor,
                acceptor,
            } => vec![requestor, acceptor],
        }
    }
}

/// An action of the state machine (PS3.8 Tables 9-6 to 9-9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// AE-1: issue TRANSPORT CONNECT request to the local transport service.
    Ae1,
    /// AE-2: send A-ASSOCIATE-RQ PDU.
    Ae2,
    /// AE-3: issue A-ASSOCIATE confirmation (accept) primitive.
    Ae3,
    /// AE-4: issue A-ASSOCIATE confirmation (reject) primitive, close transport.
    Ae4,
    /// AE-5: issue transport connection response primitive, start ARTIM.
    Ae5,
    /// AE-6: stop ARTIM; indicate A-ASSOCIATE or send A-ASSOCIATE-RJ.
    Ae6,
    /// AE-7: send A-ASSOCIATE-AC PDU.
    Ae7,
    /// AE-8: send A-ASSOCIATE-RJ PDU and start ARTIM.
    Ae8,
    /// DT-1: send P-DATA-TF PDU.
    Dt1,
    /// DT-2: send P-DATA indication primitive.
    Dt2,
    /// AR-1: send A-RELEASE-RQ PDU.
    Ar1,
    /// AR-2: issue A-RELEASE indication primitive.
    Ar2,
    /// AR-3: issue A-RELEASE confirmation primitive, close transport.
    Ar3,
    /// AR-4: issue A-RELEASE-RP PDU and start ARTIM.
    Ar4,
    /// AR-5: stop ARTIM.
    Ar5,
    /// AR-6: issue P-DATA indication.
    Ar6,
    /// AR-7: issue P-DATA-TF PDU.
    Ar7,
    /// AR-8: issue A-RELEASE indication (release collision).
    Ar8,
    /// AR-9: send A-RELEASE-RP PDU.
    Ar9,
    /// AR-10: issue A-RELEASE confirmation primitive.
    Ar10,
    /// AA-1: send A-ABORT PDU (service-user source), start or restart ARTIM.
    Aa1,
    /// AA-2: stop ARTIM if running, close transport.
    Aa2,
    /// AA-3: issue A-ABORT or A-P-ABORT indication, close transport.
    Aa3,
    /// AA-4: issue A-P-ABORT indication primitive.
    Aa4,
    /// AA-5: stop ARTIM.
    Aa5,
    /// AA-6: ignore PDU.
    Aa6,
    /// AA-7: send A-ABORT PDU.
    Aa7,
    /// AA-8: send A-ABORT PDU (service-provider source), issue A-P-ABORT
    /// indication, start ARTIM.
    Aa8,
}

impl Action {
    /// All actions, in PS3.8 order.
    pub const ALL: [Action; 28] = [
        Action::Ae1,
        Action::Ae2,
        Action::Ae3,
        Action::Ae4,
        Action::Ae5,
        Action::Ae6,
        Action::Ae7,
        Action::Ae8,
        Action::Dt1,
        Action::Dt2,
        Action::Ar1,
        Action::Ar2,
        Action::Ar3,
        Action::Ar4,
        Action::Ar5,
        Action::Ar6,
        Action::Ar7,
        Action::Ar8,
        Action::Ar9,
        Action::Ar10,
        Action::Aa1,
        Action::Aa2,
        Action::Aa3,
        Action::Aa4,
        Action::Aa5,
        Action::Aa6,
        Action::Aa7,
        Action::Aa8,
    ];

    /// The name used by PS3.8, e.g. `"AE-1"`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Ae1 => "AE-1",
            Action::Ae2 => "AE-2",
            Action::Ae3 => "AE-3",
            Action::Ae4 => "AE-4",
            Action::Ae5 => "AE-5",
            Action::Ae6 => "AE-6",
            Action::Ae7 => "AE-7",
            Action::Ae8 => "AE-8",
            Action::Dt1 => "DT-1",
            Action::Dt2 => "DT-2",
            Action::Ar1 => "AR-1",
            Action::Ar2 => "AR-2",
            Action::Ar3 => "AR-3",
            Action::Ar4 => "AR-4",
            Action::Ar5 => "AR-5",
            Action::Ar6 => "AR-6",
            Action::Ar7 => "AR-7",
            Action::Ar8 => "AR-8",
            Action::Ar9 => "AR-9",
            Action::Ar10 => "AR-10",
            Action::Aa1 => "AA-1",
            Action::Aa2 => "AA-2",
            Action::Aa3 => "AA-3",
            Action::Aa4 => "AA-4",
            Action::Aa5 => "AA-5",
            Action::Aa6 => "AA-6",
            Action::Aa7 => "AA-7",
            Action::Aa8 => "AA-8",
        }
    }

    /// The action with PS3.8 name `name` (e.g. `"AR-10"`).
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The action definition from PS3.8 Tables 9-6 to 9-9 (without its next state).
    pub fn description(self) -> &'static str {
        match self {
            Action::Ae1 => "Issue TRANSPORT CONNECT request primitive to local transport service",
            Action::Ae2 => "Send A-ASSOCIATE-RQ-PDU",
            Action::Ae3 => "Issue A-ASSOCIATE confirmation (accept) primitive",
            Action::Ae4 => {
                "Issue A-ASSOCIATE confirmation (reject) primitive and close transport connection"
            }
            Action::Ae5 => "Issue Transport connection response primitive; start ARTIM timer",
            Action::Ae6 => {
                "Stop ARTIM timer and if A-ASSOCIATE-RQ acceptable by service-provider: issue \
                 A-ASSOCIATE indication primitive; otherwise: issue A-ASSOCIATE-RJ-PDU and start \
                 ARTIM timer"
            }
            Action::Ae7 => "Send A-ASSOCIATE-AC PDU",
            Action::Ae8 => "Send A-ASSOCIATE-RJ PDU and start ARTIM timer",
            Action::Dt1 => "Send P-DATA-TF PDU",
            Action::Dt2 => "Send P-DATA indication primitive",
            Action::Ar1 => "Send A-RELEASE-RQ PDU",
            Action::Ar2 => "Issue A-RELEASE indication primitive",
            Action::Ar3 => "Issue A-RELEASE confirmation primitive, and close transport connection",
            Action::Ar4 => "Issue A-RELEASE-RP PDU and start ARTIM timer",
            Action::Ar5 => "Stop ARTIM timer",
            Action::Ar6 => "Issue P-DATA indication",
            Action::Ar7 => "Issue P-DATA-TF PDU",
            Action::Ar8 => "Issue A-RELEASE indication (release collision)",
            Action::Ar9 => "Send A-RELEASE-RP PDU",
            Action::Ar10 => "Issue A-RELEASE confirmation primitive",
            Action::Aa1 => {
                "Send A-ABORT PDU (service-user source) and start (or restart if already started) \
                 ARTIM timer"
            }
            Action::Aa2 => "Stop ARTIM timer if running. Close transport connection",
            Action::Aa3 => {
                "If (service-user initiated abort): issue A-ABORT indication and close transport \
                 connection; otherwise (service-provider initiated abort): issue A-P-ABORT \
                 indication and close transport connection"
            }
            Action::Aa4 => "Issue A-P-ABORT indication primitive",
            Action::Aa5 => "Stop ARTIM timer",
            Action::Aa6 => "Ignore PDU",
            Action::Aa7 => "Send A-ABORT PDU",
            Action::Aa8 => {
                "Send A-ABORT PDU (service-provider source), issue an A-P-ABORT indication, and \
                 start ARTIM timer"
            }
        }
    }

    /// The next state after this action (PS3.8 Tables 9-6 to 9-9).
    pub fn next(self) -> Next {
        use State::*;
        match self {
            Action::Ae1 => Next::To(Sta4),
            Action::Ae2 => Next::To(Sta5),
            Action::Ae3 => Next::To(Sta6),
            Action::Ae4 => Next::To(Sta1),
            Action::Ae5 => Next::To(Sta2),
            Action::Ae6 => Next::AcceptableOr {
                acceptable: Sta3,
                otherwise: Sta13,
            },
            Action::Ae7 => Next::To(Sta6),
            Action::Ae8 => Next::To(Sta13),
            Action::Dt1 | Action::Dt2 => Next::To(Sta6),
            Action::Ar1 => Next::To(Sta7),
            Action::Ar2 => Next::To(Sta8),
            Action::Ar3 => Next::To(Sta1),
            Action::Ar4 => Next::To(Sta13),
            Action::Ar5 => Next::To(Sta1),
            Action::Ar6 => Next::To(Sta7),
            Action::Ar7 => Next::To(Sta8),
            Action::Ar8 => Next::RequestorOr {
                requestor: Sta9,
                acceptor: Sta10,
            },
            Action::Ar9 => Next::To(Sta11),
            Action::Ar10 => Next::To(Sta12),
            Action::Aa1 => Next::To(Sta13),
            Action::Aa2 | Action::Aa3 | Action::Aa4 | Action::Aa5 => Next::To(Sta1),
            Action::Aa6 | Action::Aa7 | Action::Aa8 => Next::To(Sta13),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// Shorthands so the table below reads like Table 9-10.
use Action::*;
use Event::*;
use State::*;

/// Every defined cell of PS3.8 Table 9-10, grouped by event (table row).
/// Pairs not listed are blank cells (see the module documentation).
pub const TRANSITIONS: &[(State, Event, Action)] = &[
    // Evt1: A-ASSOCIATE request (local user).
    (Sta1, Evt1, Ae1),
    // Evt2: transport connect confirmation.
    (Sta4, Evt2, Ae2),
    // Evt3: A-ASSOCIATE-AC PDU.
    (Sta2, Evt3, Aa1),
    (Sta3, Evt3, Aa8),
    (Sta5, Evt3, Ae3),
    (Sta6, Evt3, Aa8),
    (Sta7, Evt3, Aa8),
    (Sta8, Evt3, Aa8),
    (Sta9, Evt3, Aa8),
    (Sta10, Evt3, Aa8),
    (Sta11, Evt3, Aa8),
    (Sta12, Evt3, Aa8),
    (Sta13, Evt3, Aa6),
    // Evt4: A-ASSOCIATE-RJ PDU.
    (Sta2, Evt4, Aa1),
    (Sta3, Evt4, Aa8),
    (Sta5, Evt4, Ae4),
    (Sta6, Evt4, Aa8),
    (Sta7, Evt4, Aa8),
    (Sta8, Evt4, Aa8),
    (Sta9, Evt4, Aa8),
    (Sta10, Evt4, Aa8),
    (Sta11, Evt4, Aa8),
    (Sta12, Evt4, Aa8),
    (Sta13, Evt4, Aa6),
    // Evt5: transport connection indication.
    (Sta1, Evt5, Ae5),
    // Evt6: A-ASSOCIATE-RQ PDU.
    (Sta2, Evt6, Ae6),
    (Sta3, Evt6, Aa8),
    (Sta5, Evt6, Aa8),
    (Sta6, Evt6, Aa8),
    (Sta7, Evt6, Aa8),
    (Sta8, Evt6, Aa8),
    (Sta9, Evt6, Aa8),
    (Sta10, Evt6, Aa8),
    (Sta11, Evt6, Aa8),
    (Sta12, Evt6, Aa8),
    (Sta13, Evt6, Aa7),
    // Evt7: A-ASSOCIATE response primitive (accept).
    (Sta3, Evt7, Ae7),
    // Evt8: A-ASSOCIATE response primitive (reject).
    (Sta3, Evt8, Ae8),
    // Evt9: P-DATA request primitive.
    (Sta6, Evt9, Dt1),
    (Sta8, Evt9, Ar7),
    // Evt10: P-DATA-TF PDU.
    (Sta2, Evt10, Aa1),
    (Sta3, Evt10, Aa8),
    (Sta5, Evt10, Aa8),
    (Sta6, Evt10, Dt2),
    (Sta7, Evt10, Ar6),
    (Sta8, Evt10, Aa8),
    (Sta9, Evt10, Aa8),
    (Sta10, Evt10, Aa8),
    (Sta11, Evt10, Aa8),
    (Sta12, Evt10, Aa8),
    (Sta13, Evt10, Aa6),
    // Evt11: A-RELEASE request primitive.
    (Sta6, Evt11, Ar1),
    // Evt12: A-RELEASE-RQ PDU.
    (Sta2, Evt12, Aa1),
    (Sta3, Evt12, Aa8),
    (Sta5, Evt12, Aa8),
    (Sta6, Evt12, Ar2),
    (Sta7, Evt12, Ar8),
    (Sta8, Evt12, Aa8),
    (Sta9, Evt12, Aa8),
    (Sta10, Evt12, Aa8),
    (Sta11, Evt12, Aa8),
    (Sta12, Evt12, Aa8),
    (Sta13, Evt12, Aa6),
    // Evt13: A-RELEASE-RP PDU.
    (Sta2, Evt13, Aa1),
    (Sta3, Evt13, Aa8),
    (Sta5, Evt13, Aa8),
    (Sta6, Evt13, Aa8),
    (Sta7, Evt13, Ar3),
    (Sta8, Evt13, Aa8),
    (Sta9, Evt13, Aa8),
    (Sta10, Evt13, Ar10),
    (Sta11, Evt13, Ar3),
    (Sta12, Evt13, Aa8),
    (Sta13, Evt13, Aa6),
    // Evt14: A-RELEASE response primitive.
    (Sta8, Evt14, Ar4),
    (Sta9, Evt14, Ar9),
    (Sta12, Evt14, Ar4),
    // Evt15: A-ABORT request primitive.
    (Sta3, Evt15, Aa1),
    (Sta4, Evt15, Aa2),
    (Sta5, Evt15, Aa1),
    (Sta6, Evt15, Aa1),
    (Sta7, Evt15, Aa1),
    (Sta8, Evt15, Aa1),
    (Sta9, Evt15, Aa1),
    (Sta10, Evt15, Aa1),
    (Sta11, Evt15, Aa1),
    (Sta12, Evt15, Aa1),
    // Evt16: A-ABORT PDU.
    (Sta2, Evt16, Aa2),
    (Sta3, Evt16, Aa3),
    (Sta5, Evt16, Aa3),
    (Sta6, Evt16, Aa3),
    (Sta7, Evt16, Aa3),
    (Sta8, Evt16, Aa3),
    (Sta9, Evt16, Aa3),
    (Sta10, Evt16, Aa3),
    (Sta11, Evt16, Aa3),
    (Sta12, Evt16, Aa3),
    (Sta13, Evt16, Aa2),
    // Evt17: transport connection closed indication.
    (Sta2, Evt17, Aa5),
    (Sta3, Evt17, Aa4),
    (Sta4, Evt17, Aa4),
    (Sta5, Evt17, Aa4),
    (Sta6, Evt17, Aa4),
    (Sta7, Evt17, Aa4),
    (Sta8, Evt17, Aa4),
    (Sta9, Evt17, Aa4),
    (Sta10, Evt17, Aa4),
    (Sta11, Evt17, Aa4),
    (Sta12, Evt17, Aa4),
    (Sta13, Evt17, Ar5),
    // Evt18: ARTIM timer expired.
    (Sta2, Evt18, Aa2),
    (Sta13, Evt18, Aa2),
    // Evt19: unrecognized or invalid PDU.
    (Sta2, Evt19, Aa1),
    (Sta3, Evt19, Aa8),
    (Sta5, Evt19, Aa8),
    (Sta6, Evt19, Aa8),
    (Sta7, Evt19, Aa8),
    (Sta8, Evt19, Aa8),
    (Sta9, Evt19, Aa8),
    (Sta10, Evt19, Aa8),
    (Sta11, Evt19, Aa8),
    (Sta12, Evt19, Aa8),
    (Sta13, Evt19, Aa7),
];

/// The action Table 9-10 assigns to `event` in `state`, `None` for a blank cell.
pub fn lookup(state: State, event: Event) -> Option<Action> {
    TRANSITIONS
        .iter()
        .find(|(s, e, _)| *s == state && *e == event)
        .map(|(_, _, a)| *a)
}

/// One defined cell of Table 9-10 with the states its action can lead to, for
/// export (e.g. to Python) and comparison with other implementations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRow {
    /// Current state.
    pub state: State,
    /// Event.
    pub event: Event,
    /// Action taken.
    pub action: Action,
    /// Possible next states: one, or two for AE-6 and AR-8 (see [`Next`]).
    pub next_states: Vec<State>,
}

/// Every defined cell of Table 9-10, in [`TRANSITIONS`] order.
pub fn transition_table() -> Vec<TableRow> {
    TRANSITIONS
        .iter()
        .map(|&(state, event, action)| TableRow {
            state,
            event,
            action,
            next_states: action.next().states(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Independent transcription of PS3.8 Table 9-10: one string per event row,
    /// 13 cells (Sta1..Sta13), "-" for blank.
    const TABLE_9_10: [&str; 19] = [
        /* Evt1  */ "AE-1 - - - - - - - - - - - -",
        /* Evt2  */ "- - - AE-2 - - - - - - - - -",
        /* Evt3  */ "- AA-1 AA-8 - AE-3 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-6",
        /* Evt4  */ "- AA-1 AA-8 - AE-4 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-6",
        /* Evt5  */ "AE-5 - - - - - - - - - - - -",
        /* Evt6  */ "- AE-6 AA-8 - AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-7",
        /* Evt7  */ "- - AE-7 - - - - - - - - - -",
        /* Evt8  */ "- - AE-8 - - - - - - - - - -",
        /* Evt9  */ "- - - - - DT-1 - AR-7 - - - - -",
        /* Evt10 */ "- AA-1 AA-8 - AA-8 DT-2 AR-6 AA-8 AA-8 AA-8 AA-8 AA-8 AA-6",
        /* Evt11 */ "- - - - - AR-1 - - - - - - -",
        /* Evt12 */ "- AA-1 AA-8 - AA-8 AR-2 AR-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-6",
        /* Evt13 */ "- AA-1 AA-8 - AA-8 AA-8 AR-3 AA-8 AA-8 AR-10 AR-3 AA-8 AA-6",
        /* Evt14 */ "- - - - - - - AR-4 AR-9 - - AR-4 -",
        /* Evt15 */ "- - AA-1 AA-2 AA-1 AA-1 AA-1 AA-1 AA-1 AA-1 AA-1 AA-1 -",
        /* Evt16 */ "- AA-2 AA-3 - AA-3 AA-3 AA-3 AA-3 AA-3 AA-3 AA-3 AA-3 AA-2",
        /* Evt17 */ "- AA-5 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AR-5",
        /* Evt18 */ "- AA-2 - - - - - - - - - - AA-2",
        /* Evt19 */ "- AA-1 AA-8 - AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-7",
    ];

    #[test]
    fn every_cell_matches_table_9_10() {
        let mut defined = 0;
        for (row, event) in TABLE_9_10.iter().zip(Event::ALL) {
            let cells: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(cells.len(), 13, "row {event}");
            for (cell, state) in cells.iter().zip(State::ALL) {
                let expected = if *cell == "-" { None } else { Some(*cell) };
                let got = lookup(state, event).map(Action::name);
                assert_eq!(got, expected, "{state} + {event}");
                defined += usize::from(expected.is_some());
            }
        }
        assert_eq!(defined, TRANSITIONS.len());
    }

    #[test]
    fn no_duplicate_cells() {
        for (i, (s, e, _)) in TRANSITIONS.iter().enumerate() {
            for (s2, e2, _) in TRANSITIONS.iter().skip(i + 1) {
                assert!(!(s == s2 && e == e2), "duplicate cell {s} + {e}");
            }
        }
    }

    #[test]
    fn next_states_match_tables_9_6_to_9_9() {
        let expected: [(&str, &[u8]); 28] = [
            ("AE-1", &[4]),
            ("AE-2", &[5]),
            ("AE-3", &[6]),
            ("AE-4", &[1]),
            ("AE-5", &[2]),
            ("AE-6", &[3, 13]),
            ("AE-7", &[6]),
            ("AE-8", &[13]),
            ("DT-1", &[6]),
            ("DT-2", &[6]),
            ("AR-1", &[7]),
            ("AR-2", &[8]),
            ("AR-3", &[1]),
            ("AR-4", &[13]),
            ("AR-5", &[1]),
            ("AR-6", &[7]),
            ("AR-7", &[8]),
            ("AR-8", &[9, 10]),
            ("AR-9", &[11]),
            ("AR-10", &[12]),
            ("AA-1", &[13]),
            ("AA-2", &[1]),
            ("AA-3", &[1]),
            ("AA-4", &[1]),
            ("AA-5", &[1]),
            ("AA-6", &[13]),
            ("AA-7", &[13]),
            ("AA-8", &[13]),
        ];
        for (name, states) in expected {
            let action = Action::from_name(name).unwrap();
            let got: Vec<u8> = action
                .next()
                .states()
                .into_iter()
                .map(State::number)
                .collect();
            assert_eq!(got, states, "{name}");
        }
    }

    #[test]
    fn names_and_numbers_round_trip() {
        for (i, s) in State::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(s.number()), i + 1);
            assert_eq!(State::from_number(s.number()), Some(s));
            assert_eq!(s.name(), format!("Sta{}", i + 1));
            assert!(!s.description().is_empty());
        }
        for (i, e) in Event::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(e.number()), i + 1);
            assert_eq!(Event::from_number(e.number()), Some(e));
            assert_eq!(e.name(), format!("Evt{}", i + 1));
            assert!(!e.description().is_empty());
        }
        for a in Action::ALL {
            assert_eq!(Action::from_name(a.name()), Some(a));
            assert!(!a.description().is_empty());
        }
        assert_eq!(State::from_number(0), None);
        assert_eq!(Event::from_number(20), None);
    }

    #[test]
    fn exported_table_has_every_cell() {
        let rows = transition_table();
        assert_eq!(rows.len(), TRANSITIONS.len());
        let ae6 = rows.iter().find(|r| r.action == Action::Ae6).unwrap();
        assert_eq!(ae6.next_states, vec![State::Sta3, State::Sta13]);
        let ar8 = rows.iter().find(|r| r.action == Action::Ar8).unwrap();
        assert_eq!(ar8.next_states, vec![State::Sta9, State::Sta10]);
    }
}
