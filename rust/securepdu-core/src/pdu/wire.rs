//! Shared encoding helpers: item headers with back-patched lengths, AE titles,
//! UIDs and Latin-1 text, and the item-walking loop every variable field uses.

use bytes::{BufMut, BytesMut};

use super::{DecodeError, EncodeError};
use crate::codec::Reader;

/// Longest AE title (PS3.5 AE VR and the 16-byte PDU fields).
pub(crate) const AE_TITLE_LEN: usize = 16;
/// Longest UID (PS3.5 UI VR; the application context name item allows the same).
pub(crate) const MAX_UID_LEN: usize = 64;

/// Item types this codec knows at some level; one of them at the wrong level is
/// an unexpected item, any other type is unrecognized and skipped (§9.3.1).
pub(crate) fn is_known_item_type(t: u8) -> bool {
    matches!(t, 0x10 | 0x20 | 0x21 | 0x30 | 0x40 | 0x50 | 0x51..=0x59)
}

/// Decodes bytes as ISO 8859-1: every byte maps to one char, so any bytes round-trip.
pub(crate) fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Decodes an AE title field; leading and trailing spaces are not significant (PS3.8 Table 9-11).
pub(crate) fn decode_ae(bytes: &[u8]) -> String {
    latin1(bytes).trim_matches(' ').to_owned()
}

/// Decodes a UID value; a trailing NUL (UI padding some peers send) and trailing spaces are dropped.
pub(crate) fn decode_uid(bytes: &[u8]) -> String {
    latin1(bytes).trim_end_matches(['\0', ' ']).to_owned()
}

/// Appends `s` as Latin-1, refusing characters above U+00FF.
pub(crate) fn put_latin1(
    out: &mut BytesMut,
    s: &str,
    field: &'static str,
) -> Result<(), EncodeError> {
    for c in s.chars() {
        let b = u8::try_from(u32::from(c)).map_err(|_| EncodeError::InvalidField {
            field,
            why: format!("character {c:?} is not ISO 8859-1"),
        })?;
        out.put_u8(b);
    }
    Ok(())
}

/// Appends an AE title space-padded to 16 bytes.
pub(crate) fn put_ae(out: &mut BytesMut, ae: &str, field: &'static str) -> Result<(), EncodeError> {
    let n = ae.chars().count();
    if n > AE_TITLE_LEN {
        return Err(EncodeError::TooLong {
            field,
            len: n,
            max: AE_TITLE_LEN,
        });
    }
    put_latin1(out, ae, field)?;
    out.put_bytes(b' ', AE_TITLE_LEN - n);
    Ok(())
}

/// Checks a UID's length (unpadded on the wire) before it is written.
pub(crate) fn check_uid(uid: &str, field: &'static str) -> Result<(), EncodeError> {
    let n = uid.chars().count();
    if n > MAX_UID_LEN {
        return Err(EncodeError::TooLong {
            field,
            len: n,
            max: MAX_UID_LEN,
        });
    }
    Ok(())
}

/// Appends a UID unpadded.
pub(crate) fn put_uid(
    out: &mut BytesMut,
    uid: &str,
    field: &'static str,
) -> Result<(), EncodeError> {
    check_uid(uid, field)?;
    put_latin1(out, uid, field)
}

/// Appends a 2-byte length followed by a UID (the form used inside 0x54, 0x56, 0x57).
pub(crate) fn put_u16_uid(
    out: &mut BytesMut,
    uid: &str,
    field: &'static str,
) -> Result<(), EncodeError> {
    check_uid(uid, field)?;
    let len = u16::try_from(uid.chars().count()).map_err(|_| EncodeError::TooLong {
        field,
        len: uid.len(),
        max: usize::from(u16::MAX),
    })?;
    out.put_u16(len);
    put_latin1(out, uid, field)
}

/// Appends a 2-byte length followed by opaque bytes.
pub(crate) fn put_u16_bytes(
    out: &mut BytesMut,
    data: &[u8],
    field: &'static str,
) -> Result<(), EncodeError> {
    let len = u16::try_from(data.len()).map_err(|_| EncodeError::TooLong {
        field,
        len: data.len(),
        max: usize::from(u16::MAX),
    })?;
    out.put_u16(len);
    out.put_slice(data);
    Ok(())
}

/// Writes an item header `type, reserved(byte1), length(u16)` with the length
/// back-patched after `body` has written the value.
pub(crate) fn put_item(
    out: &mut BytesMut,
    item_type: u8,
    byte1: u8,
    field: &'static str,
    body: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    out.put_u8(item_type);
    out.put_u8(byte1);
    put_u16_prefixed(out, field, body)
}

/// Writes a big-endian u16 length, back-patched after `body` has written the
/// value it counts.
pub(crate) fn put_u16_prefixed(
    out: &mut BytesMut,
    field: &'static str,
    body: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let len_at = out.len();
    out.put_u16(0);
    body(out)?;
    let len = out.len() - len_at - 2;
    let len16 = u16::try_from(len).map_err(|_| EncodeError::TooLong {
        field,
        len,
        max: usize::from(u16::MAX),
    })?;
    if let Some(slot) = out.get_mut(len_at..len_at + 2) {
        slot.copy_from_slice(&len16.to_be_bytes());
    }
    Ok(())
}

/// One item read from a variable field: its type and a reader over exactly its value
/// (byte 2, reserved or the 0x57 sub-item version, is not tested).
pub(crate) struct Item<'a> {
    pub(crate) item_type: u8,
    pub(crate) value: Reader<'a>,
}

/// Reads the next `type(1) reserved(1) length(2) value` item, `Ok(None)` at the end.
pub(crate) fn next_item<'a>(
    r: &mut Reader<'a>,
    within: &'static str,
) -> Result<Option<Item<'a>>, DecodeError> {
    if r.is_empty() {
        return Ok(None);
    }
    let available = r.left();
    let truncated = || DecodeError::Truncated {
        what: within,
        needed: 4,
        available,
    };
    let item_type = r.u8().ok_or_else(truncated)?;
    let _reserved = r.u8().ok_or_else(truncated)?;
    let len = usize::from(r.u16_be().ok_or_else(truncated)?);
    let left = r.left();
    let value = r.sub(len).ok_or(DecodeError::Truncated {
        what: item_name(item_type),
        needed: len,
        available: left,
    })?;
    Ok(Some(Item { item_type, value }))
}

/// Human name of an item type, for errors.
pub(crate) fn item_name(t: u8) -> &'static str {
    match t {
        0x10 => "application context item",
        0x20 => "presentation context item (RQ)",
        0x21 => "presentation context item (AC)",
        0x30 => "abstract syntax sub-item",
        0x40 => "transfer syntax sub-item",
        0x50 => "user information item",
        0x51 => "maximum length sub-item",
        0x52 => "implementation class UID sub-item",
        0x53 => "asynchronous operations window sub-item",
        0x54 => "SCP/SCU role selection sub-item",
        0x55 => "implementation version name sub-item",
        0x56 => "SOP class extended negotiation sub-item",
        0x57 => "SOP class common extended negotiation sub-item",
        0x58 => "user identity sub-item (RQ)",
        0x59 => "user identity sub-item (AC)",
        _ => "unrecognized item",
    }
}

/// Reads a `u16` length then that many bytes, inside a sub-item.
pub(crate) fn u16_prefixed<'a>(
    r: &mut Reader<'a>,
    what: &'static str,
) -> Result<&'a [u8], DecodeError> {
    let available = r.left();
    let len = usize::from(r.u16_be().ok_or(DecodeError::Truncated {
        what,
        needed: 2,
        available,
    })?);
    let left = r.left();
    r.take(len).ok_or(DecodeError::Truncated {
        what,
        needed: len,
        available: left,
    })
}

/// Reads one byte of a fixed field.
pub(crate) fn u8_field(r: &mut Reader<'_>, what: &'static str) -> Result<u8, DecodeError> {
    let available = r.left();
    r.u8().ok_or(DecodeError::Truncated {
        what,
        needed: 1,
        available,
    })
}

/// Reads a big-endian u16 of a fixed field.
pub(crate) fn u16_field(r: &mut Reader<'_>, what: &'static str) -> Result<u16, DecodeError> {
    let available = r.left();
    r.u16_be().ok_or(DecodeError::Truncated {
        what,
        needed: 2,
        available,
    })
}

/// Requires a fixed-length value to be exactly `expected` bytes.
pub(crate) fn expect_len(
    r: &Reader<'_>,
    expected: usize,
    what: &'static str,
) -> Result<(), DecodeError> {
    if r.left() == expected {
        Ok(())
    } else {
        Err(DecodeError::LengthMismatch {
            what,
            declared: r.left(),
            expected,
        })
    }
}

/// Stores an item that may appear once; a second one is an unexpected item.
pub(crate) fn set_once<T>(
    slot: &mut Option<T>,
    value: T,
    within: &'static str,
    item_type: u8,
) -> Result<(), DecodeError> {
    match slot.replace(value) {
        None => Ok(()),
        Some(_) => Err(DecodeError::UnexpectedItem { within, item_type }),
    }
}
