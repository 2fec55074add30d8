//! The command set: group 0000 elements in Implicit VR Little Endian (PS3.7 §6.3.1).
//!
//! Each element is tag (group u16 LE, element u16 LE), value length (u32 LE) and an
//! even-length value; the VR is implied by the tag (PS3.7 §E.1). A command set starts
//! with Command Group Length (0000,0000), UL, the byte count of all elements after it,
//! and lists elements in ascending tag order (PS3.5 §7.1).

use std::collections::BTreeMap;

use crate::codec::Reader;

use super::DimseError;

/// Element numbers of group 0000 used by this crate (PS3.7 Annex E).
pub mod tag {
    /// Command Group Length, UL.
    pub const COMMAND_GROUP_LENGTH: u16 = 0x0000;
    /// Affected SOP Class UID, UI.
    pub const AFFECTED_SOP_CLASS_UID: u16 = 0x0002;
    /// Requested SOP Class UID, UI.
    pub const REQUESTED_SOP_CLASS_UID: u16 = 0x0003;
    /// Command Field, US.
    pub const COMMAND_FIELD: u16 = 0x0100;
    /// Message ID, US.
    pub const MESSAGE_ID: u16 = 0x0110;
    /// Message ID Being Responded To, US.
    pub const MESSAGE_ID_BEING_RESPONDED_TO: u16 = 0x0120;
    /// Move Destination, AE.
    pub const MOVE_DESTINATION: u16 = 0x0600;
    /// Priority, US.
    pub const PRIORITY: u16 = 0x0700;
    /// Command Data Set Type, US.
    pub const COMMAND_DATA_SET_TYPE: u16 = 0x0800;
    /// Status, US.
    pub const STATUS: u16 = 0x0900;
    /// Offending Element, AT (VM 1-n).
    pub const OFFENDING_ELEMENT: u16 = 0x0901;
    /// Error Comment, LO.
    pub const ERROR_COMMENT: u16 = 0x0902;
    /// Error ID, US.
    pub const ERROR_ID: u16 = 0x0903;
    /// Affected SOP Instance UID, UI.
    pub const AFFECTED_SOP_INSTANCE_UID: u16 = 0x1000;
    /// Requested SOP Instance UID, UI.
    pub const REQUESTED_SOP_INSTANCE_UID: u16 = 0x1001;
    /// Move Originator Application Entity Title, AE.
    pub const MOVE_ORIGINATOR_AE_TITLE: u16 = 0x1030;
    /// Move Originator Message ID, US.
    pub const MOVE_ORIGINATOR_MESSAGE_ID: u16 = 0x1031;
}

/// Command Field values (PS3.7 §E.1, Command Field (0000,0100)).
pub mod command_field {
    /// C-STORE-RQ.
    pub const C_STORE_RQ: u16 = 0x0001;
    /// C-STORE-RSP.
    pub const C_STORE_RSP: u16 = 0x8001;
    /// C-GET-RQ.
    pub const C_GET_RQ: u16 = 0x0010;
    /// C-GET-RSP.
    pub const C_GET_RSP: u16 = 0x8010;
    /// C-FIND-RQ.
    pub const C_FIND_RQ: u16 = 0x0020;
    /// C-FIND-RSP.
    pub const C_FIND_RSP: u16 = 0x8020;
    /// C-MOVE-RQ.
    pub const C_MOVE_RQ: u16 = 0x0021;
    /// C-MOVE-RSP.
    pub const C_MOVE_RSP: u16 = 0x8021;
    /// C-ECHO-RQ.
    pub const C_ECHO_RQ: u16 = 0x0030;
    /// C-ECHO-RSP.
    pub const C_ECHO_RSP: u16 = 0x8030;
    /// N-EVENT-REPORT-RQ.
    pub const N_EVENT_REPORT_RQ: u16 = 0x0100;
    /// N-EVENT-REPORT-RSP.
    pub const N_EVENT_REPORT_RSP: u16 = 0x8100;
    /// N-GET-RQ.
    pub const N_GET_RQ: u16 = 0x0110;
    /// N-GET-RSP.
    pub const N_GET_RSP: u16 = 0x8110;
    /// N-SET-RQ.
    pub const N_SET_RQ: u16 = 0x0120;
    /// N-SET-RSP.
    pub const N_SET_RSP: u16 = 0x8120;
    /// N-ACTION-RQ.
    pub const N_ACTION_RQ: u16 = 0x0130;
    /// N-ACTION-RSP.
    pub const N_ACTION_RSP: u16 = 0x8130;
    /// N-CREATE-RQ.
    pub const N_CREATE_RQ: u16 = 0x0140;
    /// N-CREATE-RSP.
    pub const N_CREATE_RSP: u16 = 0x8140;
    /// N-DELETE-RQ.
    pub const N_DELETE_RQ: u16 = 0x0150;
    /// N-DELETE-RSP.
    pub const N_DELETE_RSP: u16 = 0x8150;
    /// C-CANCEL-RQ.
    pub const C_CANCEL_RQ: u16 = 0x0FFF;

    /// Whether a Command Field denotes a response (bit 15 set).
    pub fn is_response(command_field: u16) -> bool {
        command_field & 0x8000 != 0
    }
}

/// Command Data Set Type (0000,0800) value meaning "no data set" (PS3.7 §E.1); any
/// other value means a data set follows.
pub const NO_DATA_SET: u16 = 0x0101;

/// The value this crate sends when a data set follows. PS3.7 only requires "not
/// 0101H"; 0001H is what DCMTK (`DIMSE_DATASET_PRESENT`) and pynetdicom send.
pub const DATA_SET_PRESENT: u16 = 0x0001;

/// A decoded command set: every element of group 0000 with its raw value.
///
/// Keeps elements it does not interpret, so a response to an unknown command can be
/// built and logs can show what arrived. Values are held by element number, which
/// also gives the ascending order required on the wire. The group length element is
/// never stored: [`CommandSet::encode`] computes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandSet {
    elements: BTreeMap<u16, Vec<u8>>,
}

impl CommandSet {
    /// An empty command set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a complete command set (all command fragments concatenated).
    ///
    /// Every element must be in group 0000 and appear once. Command Group Length is
    /// optional (some old implementations omit it) but must be exact when present.
    /// Value lengths are checked against the buffer, never trusted for allocation.
    pub fn decode(buf: &[u8]) -> Result<Self, DimseError> {
        let mut r = Reader::new(buf);
        let mut elements = BTreeMap::new();
        while !r.is_empty() {
            let offset = r.position();
            let truncated = DimseError::Truncated { offset };
            // Element: tag group (u16 LE), tag element (u16 LE), length (u32 LE), value.
            let group = r.u16_le().ok_or(truncated.clone())?;
            let element = r.u16_le().ok_or(truncated.clone())?;
            let len = r.u32_le().ok_or(truncated.clone())?;
            let len = usize::try_from(len).map_err(|_| truncated.clone())?;
            let value = r.take(len).ok_or(truncated)?;
            if group != 0x0000 {
                return Err(DimseError::NotCommandGroup { group, element });
            }
            if element == tag::COMMAND_GROUP_LENGTH {
                let declared = u32_value(element, value)?;
                let actual = r.left();
                if offset != 0 || usize::try_from(declared) != Ok(actual) {
                    return Err(DimseError::GroupLengthMismatch { declared, actual });
                }
                continue;
            }
            if elements.insert(element, value.to_vec()).is_some() {
                return Err(DimseError::DuplicateElement { element });
            }
        }
        Ok(Self { elements })
    }

    /// Encodes the command set: Command Group Length first, then every element in
    /// ascending order, each value padded to even length (UI with NUL, text with
    /// space, as stored by the setters).
    pub fn encode(&self) -> Vec<u8> {
        let body_len: usize = self.elements.values().map(|v| 8 + v.len()).sum();
        let mut out = Vec::with_capacity(12 + body_len);
        push_element(
            &mut out,
            tag::COMMAND_GROUP_LENGTH,
            &len_u32(body_len).to_le_bytes(),
        );
        for (element, value) in &self.elements {
            push_element(&mut out, *element, value);
        }
        out
    }

    /// The raw value of an element, if present.
    pub fn get(&self, element: u16) -> Option<&[u8]> {
        self.elements.get(&element).map(Vec::as_slice)
    }

    /// Whether an element is present.
    pub fn contains(&self, element: u16) -> bool {
        self.elements.contains_key(&element)
    }

    /// Elements in ascending order, as (element number, raw value).
    pub fn iter(&self) -> impl Iterator<Item = (u16, &[u8])> + '_ {
        self.elements.iter().map(|(e, v)| (*e, v.as_slice()))
    }

    /// Number of elements (not counting the group length).
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }

    /// Sets a raw value; an odd-length value is padded with a NUL byte. Setting the
    /// group length element is ignored, as it is always computed.
    pub fn set_raw(&mut self, element: u16, mut value: Vec<u8>) {
        if element == tag::COMMAND_GROUP_LENGTH {
            return;
        }
        if value.len() % 2 == 1 {
            value.push(0);
        }
        self.elements.insert(element, value);
    }

    /// Removes an element, returning its raw value.
    pub fn remove(&mut self, element: u16) -> Option<Vec<u8>> {
        self.elements.remove(&element)
    }

    /// Sets a US value.
    pub fn set_us(&mut self, element: u16, value: u16) {
        self.set_raw(element, value.to_le_bytes().to_vec());
    }

    /// Sets a UI value, padded with NUL to even length.
    pub fn set_ui(&mut self, element: u16, uid: &str) {
        self.set_raw(element, uid.as_bytes().to_vec());
    }

    /// Sets a text value (AE, LO, CS, SH), padded with a space to even length.
    pub fn set_text(&mut self, element: u16, text: &str) {
        let mut v = text.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(b' ');
        }
        self.set_raw(element, v);
    }

    /// Sets an AT value list: each tag as group u16 LE then element u16 LE.
    pub fn set_at(&mut self, element: u16, tags: &[u32]) {
        let mut v = Vec::with_capacity(tags.len().saturating_mul(4));
        for t in tags {
            v.extend_from_slice(&((t >> 16) as u16).to_le_bytes());
            v.extend_from_slice(&((t & 0xFFFF) as u16).to_le_bytes());
        }
        self.set_raw(element, v);
    }

    /// Reads a US value (exactly two bytes).
    pub fn us(&self, element: u16) -> Result<Option<u16>, DimseError> {
        self.get(element)
            .map(|v| {
                let mut r = Reader::new(v);
                match (r.u16_le(), r.is_empty()) {
                    (Some(x), true) => Ok(x),
                    _ => Err(DimseError::InvalidValue {
                        element,
                        reason: "US value is not 2 bytes",
                    }),
                }
            })
            .transpose()
    }

    /// Reads a UI value with its NUL (or, leniently, space) padding removed.
    pub fn ui(&self, element: u16) -> Result<Option<String>, DimseError> {
        self.get(element)
            .map(|v| {
                let s = std::str::from_utf8(v).map_err(|_| DimseError::InvalidValue {
                    element,
                    reason: "UID is not ASCII",
                })?;
                let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
                if s.is_empty() {
                    return Err(DimseError::InvalidValue {
                        element,
                        reason: "UID is empty",
                    });
                }
                Ok(s.to_owned())
            })
            .transpose()
    }

    /// Reads a text value (AE, LO, ...) with surrounding spaces and NULs removed.
    /// Bytes that are not UTF-8 are replaced rather than rejected: these fields are
    /// informative only.
    pub fn text(&self, element: u16) -> Option<String> {
        self.get(element).map(|v| {
            String::from_utf8_lossy(v)
                .trim_matches(|c: char| c == '\0' || c == ' ')
                .to_owned()
        })
    }

    /// Reads an AT value list as `(group << 16) | element` tags.
    pub fn at(&self, element: u16) -> Result<Option<Vec<u32>>, DimseError> {
        self.get(element)
            .map(|v| {
                if v.len() % 4 != 0 {
                    return Err(DimseError::InvalidValue {
                        element,
                        reason: "AT value is not a multiple of 4 bytes",
                    });
                }
                let mut r = Reader::new(v);
                let mut tags = Vec::new();
                while let (Some(g), Some(e)) = (r.u16_le(), r.u16_le()) {
                    tags.push((u32::from(g) << 16) | u32::from(e));
                }
                Ok(tags)
            })
            .transpose()
    }
}

/// Reads a UL value (exactly four bytes).
fn u32_value(element: u16, value: &[u8]) -> Result<u32, DimseError> {
    let mut r = Reader::new(value);
    match (r.u32_le(), r.is_empty()) {
        (Some(x), true) => Ok(x),
        _ => Err(DimseError::InvalidValue {
            element,
            reason: "UL value is not 4 bytes",
        }),
    }
}

/// Converts a length that this crate built (never a peer's) to the u32 of the wire
/// format. Command sets are tiny; saturating only guards against misuse.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn push_element(out: &mut Vec<u8>, element: u16, value: &[u8]) {
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(&len_u32(value.len()).to_le_bytes());
    out.extend_from_slice(value);
}
