//! Streamed reassembly of DIMSE messages from PDVs (PS3.7 §6.3.1, PS3.8 Annex E).
//!
//! A message is its command fragments (message control header bit 0 set), the last
//! one with bit 1 set, then, if Command Data Set Type (0000,0800) is not 0101H, its
//! data set fragments, the last with bit 1 set, all on one presentation context.
//! Messages are not interleaved. Command fragments are buffered up to a cap because
//! the command must be decoded whole; data set fragments are handed straight to the
//! caller (to be written to disk, say) and never buffered here.

use bytes::Bytes;

use crate::pdu::{PData, Pdv};

use super::{DimseError, Message};

/// Default cap on a reassembled command set. Real command sets are a few hundred
/// bytes; the cap bounds what a peer can make us buffer.
pub const DEFAULT_MAX_COMMAND_LEN: usize = 64 * 1024;

/// What the reassembler produced from a PDV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete command. If `message.has_dataset()`, data set fragments follow.
    Command {
        /// The decoded command.
        message: Message,
        /// Its presentation context.
        context_id: u8,
    },
    /// A piece of the data set, as received (a slice of the PDU buffer). Empty
    /// fragments are not reported.
    DatasetFragment {
        /// Presentation context of the message.
        context_id: u8,
        /// The bytes.
        data: Bytes,
    },
    /// The data set's last fragment has been reported; the message is complete.
    DatasetComplete {
        /// Presentation context of the message.
        context_id: u8,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Between messages; `buf` is empty.
    Idle,
    /// Some command fragments received.
    Command { context_id: u8 },
    /// A command announced a data set that is not yet complete.
    Dataset { context_id: u8 },
    /// A fatal error occurred.
    Failed,
}

/// Turns a stream of PDVs back into DIMSE messages.
///
/// Every error it returns is association-fatal (see
/// [`DimseError::is_association_fatal`]): the caller should send A-ABORT. After an
/// error the reassembler refuses further input with [`DimseError::Poisoned`] until
/// [`reset`](Self::reset).
#[derive(Debug, Clone)]
pub struct Reassembler {
    state: State,
    buf: Vec<u8>,
    max_command_len: usize,
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new()
    }
}

impl Reassembler {
    /// A reassembler with the [`DEFAULT_MAX_COMMAND_LEN`] cap.
    pub fn new() -> Self {
        Self::with_max_command_len(DEFAULT_MAX_COMMAND_LEN)
    }

    /// A reassembler refusing command sets longer than `max_command_len` bytes.
    pub fn with_max_command_len(max_command_len: usize) -> Self {
        Self {
            state: State::Idle,
            buf: Vec::new(),
            max_command_len,
        }
    }

    /// Whether no message is partly received (safe point for release or shutdown).
    pub fn is_idle(&self) -> bool {
        self.state == State::Idle
    }

    /// The presentation context of the message in progress, if any.
    pub fn current_context(&self) -> Option<u8> {
        match self.state {
            State::Command { context_id } | State::Dataset { context_id } => Some(context_id),
            State::Idle | State::Failed => None,
        }
    }

    /// Forgets any partial message and any earlier error.
    pub fn reset(&mut self) {
        self.state = State::Idle;
        self.buf = Vec::new();
    }

    /// Feeds every PDV of a P-DATA-TF, returning the events in order. Events from
    /// PDVs before a failing one are lost with the error; the association is over
    /// anyway.
    pub fn feed(&mut self, pdata: PData) -> Result<Vec<Event>, DimseError> {
        let mut events = Vec::new();
        for pdv in pdata.pdvs {
            self.push_pdv(pdv, &mut events)?;
        }
        Ok(events)
    }

    /// Feeds one PDV, appending zero, one or two events to `events`.
    pub fn push_pdv(&mut self, pdv: Pdv, events: &mut Vec<Event>) -> Result<(), DimseError> {
        let result = self.step(pdv, events);
        if result.is_err() {
            self.state = State::Failed;
            self.buf = Vec::new();
        }
        result
    }

    fn step(&mut self, pdv: Pdv, events: &mut Vec<Event>) -> Result<(), DimseError> {
        let Pdv {
            context_id,
            is_command,
            is_last,
            data,
        } = pdv;
        match (&self.state, is_command) {
            (State::Failed, _) => Err(DimseError::Poisoned),
            (State::Idle, false) => Err(DimseError::UnexpectedDataset { context_id }),
            (State::Dataset { .. }, true) => Err(DimseError::CommandDuringDataset { context_id }),
            (
                State::Command {
                    context_id: expected,
                }
                | State::Dataset {
                    context_id: expected,
                },
                _,
            ) if *expected != context_id => Err(DimseError::ContextChanged {
                expected: *expected,
                got: context_id,
            }),
            (State::Command { .. }, false) => {
                // The data set's context matches, but the command is unfinished.
                Err(DimseError::UnexpectedDataset { context_id })
            }
            (State::Idle | State::Command { .. }, true) => {
                if self.buf.len().saturating_add(data.len()) > self.max_command_len {
                    return Err(DimseError::CommandTooLong {
                        limit: self.max_command_len,
                    });
                }
                self.buf.extend_from_slice(&data);
                if !is_last {
                    self.state = State::Command { context_id };
                    return Ok(());
                }
                let buf = std::mem::take(&mut self.buf);
                let message = Message::decode(&buf)?;
                self.state = if message.has_dataset() {
                    State::Dataset { context_id }
                } else {
                    State::Idle
                };
                events.push(Event::Command {
                    message,
                    context_id,
                });
                Ok(())
            }
            (State::Dataset { .. }, false) => {
                if !data.is_empty() {
                    events.push(Event::DatasetFragment { context_id, data });
                }
                if is_last {
                    self.state = State::Idle;
                    events.push(Event::DatasetComplete { context_id });
                }
                Ok(())
            }
        }
    }
}
