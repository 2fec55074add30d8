//! A-ASSOCIATE-RQ, -AC and -RJ PDUs (PS3.8 §9.3.2-9.3.4) and their
//! application context and presentation context items.

use bytes::{BufMut, BytesMut};

use super::user_info::UserInformation;
use super::wire::{
    decode_ae, decode_uid, expect_len, is_known_item_type, next_item, put_ae, put_item, put_uid,
    set_once, u8_field,
};
use super::{DecodeError, EncodeError};
use crate::codec::Reader;

/// A-ASSOCIATE-RQ PDU (PS3.8 §9.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociateRq {
    /// Protocol version bit field; [`super::PROTOCOL_VERSION`] is the only defined value.
    pub protocol_version: u16,
    /// Called AE title, without its space padding (at most 16 characters).
    pub called_ae: String,
    /// Calling AE title, without its space padding.
    pub calling_ae: String,
    /// Application context name (a UID).
    pub application_context: String,
    /// Presentation context items (RQ form), in the order sent.
    pub presentation_contexts: Vec<PresentationContextRq>,
    /// User information item.
    pub user_info: UserInformation,
}

/// A-ASSOCIATE-AC PDU (PS3.8 §9.3.3). Same fields as the RQ; the AE titles echo the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssociateAc {
    /// Protocol version bit field.
    pub protocol_version: u16,
    /// Called AE title as received in the request (not tested by the receiver).
    pub called_ae: String,
    /// Calling AE title as received in the request (not tested by the receiver).
    pub calling_ae: String,
    /// Application context name.
    pub application_context: String,
    /// Presentation context items (AC form).
    pub presentation_contexts: Vec<PresentationContextAc>,
    /// User information item.
    pub user_info: UserInformation,
}

/// A-ASSOCIATE-RJ PDU (PS3.8 §9.3.4), raw codes (see [`super::RejectResult`],
/// [`super::RejectSource`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AssociateRj {
    /// 1 rejected-permanent, 2 rejected-transient.
    pub result: u8,
    /// 1 service-user, 2 service-provider (ACSE), 3 service-provider (presentation).
    pub source: u8,
    /// Reason/diagnostic, meaning depends on `source`.
    pub reason: u8,
}

/// Presentation context item, RQ form (item type 0x20, PS3.8 §9.3.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentationContextRq {
    /// Presentation context ID: odd, 1-255.
    pub id: u8,
    /// Abstract syntax name (sub-item 0x30).
    pub abstract_syntax: String,
    /// Proposed transfer syntax names (sub-items 0x40), at least one.
    pub transfer_syntaxes: Vec<String>,
}

/// Presentation context item, AC form (item type 0x21, PS3.8 §9.3.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentationContextAc {
    /// Presentation context ID, as proposed.
    pub id: u8,
    /// Result/reason (see [`super::PresentationResult`]), raw.
    pub result: u8,
    /// The accepted transfer syntax; not significant (and may be absent) when rejected.
    pub transfer_syntax: Option<String>,
}

/// Fixed part of an A-ASSOCIATE-RQ/AC body: protocol version (2), reserved (2),
/// called AE (16), calling AE (16), reserved (32).
const FIXED_LEN: usize = 68;

/// The fields shared by A-ASSOCIATE-RQ and -AC.
struct Fixed {
    protocol_version: u16,
    called_ae: String,
    calling_ae: String,
}

/// Reads the fixed fields (PS3.8 Tables 9-11 and 9-17): protocol-version (2), reserved (2),
/// called-AE-title (16), calling-AE-title (16), reserved (32, not tested).
fn decode_fixed(r: &mut Reader<'_>, what: &'static str) -> Result<Fixed, DecodeError> {
    let available = r.left();
    let fixed = r.take(FIXED_LEN).ok_or(DecodeError::Truncated {
        what,
        needed: FIXED_LEN,
        available,
    })?;
    let mut f = Reader::new(fixed);
    let bad = || DecodeError::Truncated {
        what,
        needed: FIXED_LEN,
        available,
    };
    let protocol_version = f.u16_be().ok_or_else(bad)?;
    f.skip(2).ok_or_else(bad)?;
    let called_ae = decode_ae(f.take(16).ok_or_else(bad)?);
    let calling_ae = decode_ae(f.take(16).ok_or_else(bad)?);
    Ok(Fixed {
        protocol_version,
        called_ae,
        calling_ae,
    })
}

fn encode_fixed(
    out: &mut BytesMut,
    version: u16,
    called: &str,
    calling: &str,
) -> Result<(), EncodeError> {
    out.put_u16(version);
    out.put_u16(0);
    put_ae(out, called, "called AE title")?;
    put_ae(out, calling, "calling AE title")?;
    out.put_bytes(0, 32);
    Ok(())
}

/// Walks the variable items of an A-ASSOCIATE-RQ or -AC (PS3.8 §9.3.2/9.3.3):
/// one application context item, presentation context items of type `pc_type`,
/// one user information item. Unknown item types are skipped (§9.3.1).
///
/// Deliberately lenient about absent items: a missing application context decodes
/// as "" (the acceptor rejects it as application-context-name-not-supported), no
/// presentation contexts as an empty list (the acceptor rejects or accepts
/// nothing), a missing user information item as its default (no maximum length).
fn walk_items<'a>(
    r: &mut Reader<'a>,
    within: &'static str,
    pc_type: u8,
    mut on_pc: impl FnMut(Reader<'a>) -> Result<(), DecodeError>,
) -> Result<(String, UserInformation), DecodeError> {
    let mut app_ctx: Option<String> = None;
    let mut user_info: Option<UserInformation> = None;
    while let Some(item) = next_item(r, within)? {
        let t = item.item_type;
        match t {
            // 0x10: application-context-name (PS3.8 §9.3.2.1), one only.
            0x10 => {
                set_once(&mut app_ctx, decode_uid(item.value.rest()), within, t)?;
            }
            0x50 => {
                set_once(
                    &mut user_info,
                    UserInformation::decode_value(item.value)?,
                    within,
                    t,
                )?;
            }
            _ if t == pc_type => on_pc(item.value)?,
            _ if is_known_item_type(t) => {
                return Err(DecodeError::UnexpectedItem {
                    within,
                    item_type: t,
                })
            }
            _ => {}
        }
    }
    Ok((app_ctx.unwrap_or_default(), user_info.unwrap_or_default()))
}

/// Presentation context RQ value (PS3.8 Table 9-13): presentation-context-ID (1),
/// reserved (3), one abstract syntax sub-item (0x30), one or more transfer syntax
/// sub-items (0x40). The ID is not checked for oddness here (negotiation rejects it).
fn decode_pc_rq(mut v: Reader<'_>) -> Result<PresentationContextRq, DecodeError> {
    const WITHIN: &str = "presentation context item (RQ)";
    let id = u8_field(&mut v, WITHIN)?;
    let available = v.left();
    v.skip(3).ok_or(DecodeError::Truncated {
        what: WITHIN,
        needed: 3,
        available,
    })?;
    let mut abstract_syntax: Option<String> = None;
    let mut transfer_syntaxes = Vec::new();
    while let Some(sub) = next_item(&mut v, WITHIN)? {
        let t = sub.item_type;
        match t {
            0x30 => {
                set_once(
                    &mut abstract_syntax,
                    decode_uid(sub.value.rest()),
                    WITHIN,
                    t,
                )?;
            }
            0x40 => transfer_syntaxes.push(decode_uid(sub.value.rest())),
            _ if is_known_item_type(t) => {
                return Err(DecodeError::UnexpectedItem {
                    within: WITHIN,
                    item_type: t,
                })
            }
            _ => {}
        }
    }
    // A missing abstract syntax decodes as "": negotiation rejects it as not supported.
    Ok(PresentationContextRq {
        id,
        abstract_syntax: abstract_syntax.unwrap_or_default(),
        transfer_syntaxes,
    })
}

/// Presentation context AC value (PS3.8 Table 9-18): presentation-context-ID (1),
/// reserved (1), result/reason (1), reserved (1), one transfer syntax sub-item
/// (not significant, and sometimes absent, when the context is rejected).
fn decode_pc_ac(mut v: Reader<'_>) -> Result<PresentationContextAc, DecodeError> {
    const WITHIN: &str = "presentation context item (AC)";
    let id = u8_field(&mut v, WITHIN)?;
    let _reserved = u8_field(&mut v, WITHIN)?;
    let result = u8_field(&mut v, WITHIN)?;
    let _reserved = u8_field(&mut v, WITHIN)?;
    let mut transfer_syntax: Option<String> = None;
    while let Some(sub) = next_item(&mut v, WITHIN)? {
        let t = sub.item_type;
        match t {
            0x40 => {
                set_once(
                    &mut transfer_syntax,
                    decode_uid(sub.value.rest()),
                    WITHIN,
                    t,
                )?;
            }
            _ if is_known_item_type(t) => {
                return Err(DecodeError::UnexpectedItem {
                    within: WITHIN,
                    item_type: t,
                })
            }
            _ => {}
        }
    }
    Ok(PresentationContextAc {
        id,
        result,
        transfer_syntax,
    })
}

impl AssociateRq {
    /// Decodes an A-ASSOCIATE-RQ body (everything after the 6-byte PDU header).
    pub(crate) fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        const WHAT: &str = "A-ASSOCIATE-RQ";
        let mut r = Reader::new(body);
        let fixed = decode_fixed(&mut r, WHAT)?;
        let mut pcs = Vec::new();
        let (application_context, user_info) = walk_items(&mut r, WHAT, 0x20, |v| {
            pcs.push(decode_pc_rq(v)?);
            Ok(())
        })?;
        Ok(AssociateRq {
            protocol_version: fixed.protocol_version,
            called_ae: fixed.called_ae,
            calling_ae: fixed.calling_ae,
            application_context,
            presentation_contexts: pcs,
            user_info,
        })
    }

    /// Appends the body (after the PDU header).
    pub(crate) fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        encode_fixed(
            out,
            self.protocol_version,
            &self.called_ae,
            &self.calling_ae,
        )?;
        encode_app_ctx(out, &self.application_context)?;
        for pc in &self.presentation_contexts {
            put_item(out, 0x20, 0, "presentation context item (RQ)", |out| {
                out.put_u8(pc.id);
                out.put_bytes(0, 3);
                put_item(out, 0x30, 0, "abstract syntax sub-item", |out| {
                    put_uid(out, &pc.abstract_syntax, "abstract syntax name")
                })?;
                for ts in &pc.transfer_syntaxes {
                    put_item(out, 0x40, 0, "transfer syntax sub-item", |out| {
                        put_uid(out, ts, "transfer syntax name")
                    })?;
                }
                Ok(())
            })?;
        }
        self.user_info.encode_item(out)
    }
}

impl AssociateAc {
    /// Decodes an A-ASSOCIATE-AC body (everything after the 6-byte PDU header).
    pub(crate) fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        const WHAT: &str = "A-ASSOCIATE-AC";
        let mut r = Reader::new(body);
        let fixed = decode_fixed(&mut r, WHAT)?;
        let mut pcs = Vec::new();
        let (application_context, user_info) = walk_items(&mut r, WHAT, 0x21, |v| {
            pcs.push(decode_pc_ac(v)?);
            Ok(())
        })?;
        Ok(AssociateAc {
            protocol_version: fixed.protocol_version,
            called_ae: fixed.called_ae,
            calling_ae: fixed.calling_ae,
            application_context,
            presentation_contexts: pcs,
            user_info,
        })
    }

    /// Appends the body (after the PDU header).
    pub(crate) fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        encode_fixed(
            out,
            self.protocol_version,
            &self.called_ae,
            &self.calling_ae,
        )?;
        encode_app_ctx(out, &self.application_context)?;
        for pc in &self.presentation_contexts {
            put_item(out, 0x21, 0, "presentation context item (AC)", |out| {
                out.put_u8(pc.id);
                out.put_u8(0);
                out.put_u8(pc.result);
                out.put_u8(0);
                if let Some(ts) = &pc.transfer_syntax {
                    put_item(out, 0x40, 0, "transfer syntax sub-item", |out| {
                        put_uid(out, ts, "transfer syntax name")
                    })?;
                }
                Ok(())
            })?;
        }
        self.user_info.encode_item(out)
    }
}

fn encode_app_ctx(out: &mut BytesMut, name: &str) -> Result<(), EncodeError> {
    put_item(out, 0x10, 0, "application context item", |out| {
        put_uid(out, name, "application context name")
    })
}

impl AssociateRj {
    /// Decodes an A-ASSOCIATE-RJ body (PS3.8 Table 9-21): reserved (1), result (1),
    /// source (1), reason/diag. (1).
    pub(crate) fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        const WHAT: &str = "A-ASSOCIATE-RJ";
        let mut r = Reader::new(body);
        expect_len(&r, 4, WHAT)?;
        let _reserved = u8_field(&mut r, WHAT)?;
        Ok(AssociateRj {
            result: u8_field(&mut r, WHAT)?,
            source: u8_field(&mut r, WHAT)?,
            reason: u8_field(&mut r, WHAT)?,
        })
    }

    /// Appends the 4-byte body.
    pub(crate) fn encode_body(&self, out: &mut BytesMut) {
        out.put_slice(&[0, self.result, self.source, self.reason]);
    }
}

/// Decodes a single presentation context RQ item (type, reserved, length, value),
/// for tests against item-level vectors.
#[cfg(test)]
pub(crate) fn decode_pc_rq_item(bytes: &[u8]) -> Result<PresentationContextRq, DecodeError> {
    let mut r = Reader::new(bytes);
    let item = next_item(&mut r, "test")?.ok_or(DecodeError::Truncated {
        what: "test",
        needed: 4,
        available: 0,
    })?;
    assert_eq!(item.item_type, 0x20);
    assert!(r.is_empty());
    decode_pc_rq(item.value)
}

/// Decodes a single presentation context AC item, for tests.
#[cfg(test)]
pub(crate) fn decode_pc_ac_item(bytes: &[u8]) -> Result<PresentationContextAc, DecodeError> {
    let mut r = Reader::new(bytes);
    let item = next_item(&mut r, "test")?.ok_or(DecodeError::Truncated {
        what: "test",
        needed: 4,
        available: 0,
    })?;
    assert_eq!(item.item_type, 0x21);
    assert!(r.is_empty());
    decode_pc_ac(item.value)
}
