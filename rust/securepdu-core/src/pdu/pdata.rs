//! P-DATA-TF PDU (PS3.8 §9.3.5) and its presentation data value items.

use bytes::Bytes;

/// P-DATA-TF PDU: one or more presentation data values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PData {
    /// The PDV items, in order.
    pub pdvs: Vec<Pdv>,
}

/// Presentation data value item (PS3.8 §9.3.5.1 and Annex E).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdv {
    /// Presentation context ID (odd, 1-255).
    pub context_id: u8,
    /// Message control header bit 0: command (true) or data set (false) fragment.
    pub is_command: bool,
    /// Message control header bit 1: last fragment of the command or data set.
    pub is_last: bool,
    /// The fragment; a slice of the received PDU buffer, not a copy.
    pub data: Bytes,
}
