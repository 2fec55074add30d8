//! Splitting commands and data sets into P-DATA-TF PDUs (PS3.8 §9.3.5, PS3.7 §6.3.1).
//!
//! The peer's Maximum Length Received (PS3.8 §D.1) bounds the variable field of each
//! P-DATA-TF it receives. We send one PDV per PDU, and a PDV item costs 6 bytes of
//! header (item length u32, presentation context ID, message control header), so
//! each fragment carries at most `max - 6` bytes. Fragments are `Bytes::slice`s of
//! the caller's buffer: nothing is copied.

use bytes::Bytes;

use crate::pdu::{PData, Pdv};

use super::DimseError;

/// Bytes of PDV item header counted against the peer's maximum: item length (4),
/// presentation context ID (1), message control header (1).
pub const PDV_HEADER_LEN: usize = 6;

/// Fragment size used when the peer announces no limit (maximum length 0).
pub const DEFAULT_CHUNK: usize = 1 << 20;

/// Largest fragment we ever send, whatever the peer allows, so a transport never
/// needs a huge read buffer. Sending less than the peer's maximum is always allowed.
pub const MAX_CHUNK: usize = 1 << 24;

/// The most data bytes one PDV may carry when the peer's maximum P-DATA-TF variable
/// field length is `peer_max_pdu_length`.
///
/// 0 means "no limit" (PS3.8 §D.1) and gives [`DEFAULT_CHUNK`]; large values are
/// capped at [`MAX_CHUNK`]. A maximum too small to hold even one data byte (1 to 6)
/// gives 1, which the peer cannot accept: association negotiation should refuse such
/// a value, but fragmenting must still make progress rather than loop.
pub fn max_pdv_data(peer_max_pdu_length: u32) -> usize {
    if peer_max_pdu_length == 0 {
        return DEFAULT_CHUNK;
    }
    let max = usize::try_from(peer_max_pdu_length).unwrap_or(usize::MAX);
    max.saturating_sub(PDV_HEADER_LEN).clamp(1, MAX_CHUNK)
}

fn single_pdv(pdv: Pdv) -> PData {
    PData { pdvs: vec![pdv] }
}

/// Splits an encoded command set into P-DATA-TF PDUs of one command PDV each, the
/// last one flagged last. An empty command still yields one (empty, last) PDV.
pub fn fragment_command(context_id: u8, command: impl Into<Bytes>, peer_max: u32) -> Vec<PData> {
    fragment(context_id, true, command.into(), peer_max)
}

/// Splits an in-memory data set into P-DATA-TF PDUs of one data set PDV each, the
/// last one flagged last. An empty data set yields one empty, last PDV.
pub fn fragment_dataset(context_id: u8, data: impl Into<Bytes>, peer_max: u32) -> Vec<PData> {
    fragment(context_id, false, data.into(), peer_max)
}

fn fragment(context_id: u8, is_command: bool, data: Bytes, peer_max: u32) -> Vec<PData> {
    let chunk = max_pdv_data(peer_max);
    let total = data.len();
    let mut out = Vec::with_capacity(total.div_ceil(chunk).max(1));
    let mut start: usize = 0;
    loop {
        let end = start.saturating_add(chunk).min(total);
        let is_last = end == total;
        out.push(single_pdv(Pdv {
            context_id,
            is_command,
            is_last,
            data: data.slice(start..end),
        }));
        if is_last {
            return out;
        }
        start = end;
    }
}

/// Fragments a data set that the caller reads piece by piece (from a file, say),
/// without knowing the bytes in advance, only their total length.
///
/// Drive it as: while `next_chunk_len()` is `Some(n)`, read up to `n` bytes and pass
/// them to [`pdv_for`](Self::pdv_for) (or [`pdata_for`](Self::pdata_for)), then send
/// the result. Short reads are fine: a chunk may be shorter than `n`; the PDV that
/// reaches `total_len` is marked last. A zero-length data set takes one empty chunk.
#[derive(Debug, Clone)]
pub struct DatasetFragmenter {
    context_id: u8,
    total: u64,
    sent: u64,
    max: usize,
    finished: bool,
}

impl DatasetFragmenter {
    /// A fragmenter for `total_len` bytes on `context_id`, for a peer whose maximum
    /// P-DATA-TF length is `peer_max`.
    pub fn new(context_id: u8, total_len: u64, peer_max: u32) -> Self {
        Self {
            context_id,
            total: total_len,
            sent: 0,
            max: max_pdv_data(peer_max),
            finished: false,
        }
    }

    /// How many bytes to read for the next PDV, or `None` once the last PDV was made.
    /// `Some(0)` only for a zero-length data set.
    pub fn next_chunk_len(&self) -> Option<usize> {
        if self.finished {
            return None;
        }
        let remaining = usize::try_from(self.remaining()).unwrap_or(usize::MAX);
        Some(remaining.min(self.max))
    }

    /// Bytes not yet handed over.
    pub fn remaining(&self) -> u64 {
        self.total.saturating_sub(self.sent)
    }

    /// Whether the last PDV has been produced.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Wraps the next chunk in a data set PDV, marking it last if it completes the
    /// data set.
    ///
    /// Fails (changing nothing) if the chunk is longer than
    /// [`next_chunk_len`](Self::next_chunk_len), empty while bytes remain, or offered
    /// after the last PDV.
    pub fn pdv_for(&mut self, data: Bytes) -> Result<Pdv, DimseError> {
        let max = self.next_chunk_len().unwrap_or(0);
        let len = data.len();
        let empty_but_not_done = len == 0 && self.remaining() > 0;
        if self.finished || len > max || empty_but_not_done {
            return Err(DimseError::InvalidChunk { len, max });
        }
        // len <= remaining, so this cannot overflow or pass `total`.
        self.sent = self.sent.saturating_add(len as u64);
        let is_last = self.sent == self.total;
        self.finished = is_last;
        Ok(Pdv {
            context_id: self.context_id,
            is_command: false,
            is_last,
            data,
        })
    }

    /// [`pdv_for`](Self::pdv_for), wrapped in a P-DATA-TF of its own.
    pub fn pdata_for(&mut self, data: Bytes) -> Result<PData, DimseError> {
        self.pdv_for(data).map(single_pdv)
    }
}
