//! The association state machine of PS3.8 §9.2, sans-IO.
//!
//! - [`table`]: states, events, actions and the one transition table
//!   (PS3.8 Table 9-10) that decides every transition;
//! - [`Association`]: the driver. Feed it primitives, transport events, peer bytes
//!   and the time; drain [`Output`]s (connect, bytes to send, close, indications).
//!
//! A typical acceptor loop: on a new connection call
//! [`Association::transport_accepted`]; whenever bytes arrive call
//! [`Association::receive_data`]; sleep no later than
//! [`Association::poll_timeout`] and then call [`Association::handle_timeout`];
//! after each call drain [`Association::poll_output`], writing
//! [`Output::Transmit`] bytes, closing on [`Output::CloseTransport`] and handing
//! [`Output::Indication`]s to the application; report a closed socket with
//! [`Association::transport_closed`].

mod machine;
pub mod table;

pub use machine::{
    Association, Config, Indication, LocalError, Output, Role, DEFAULT_ARTIM_TIMEOUT,
    DEFAULT_MAX_PDU_RECEIVE, MIN_FRAMER_CAP,
};
pub use table::{lookup, transition_table, Action, Event, Next, State, TableRow, TRANSITIONS};

#[cfg(test)]
mod tests;
