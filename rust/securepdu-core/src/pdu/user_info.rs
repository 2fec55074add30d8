//! The user information item (0x50) and its sub-items (PS3.8 Annex D,
//! PS3.7 Annex D.3.3).

use bytes::{BufMut, BytesMut};

use super::wire::{
    self, decode_uid, expect_len, is_known_item_type, latin1, next_item, put_item, put_latin1,
    put_u16_bytes, put_u16_prefixed, put_u16_uid, put_uid, set_once, u16_field, u16_prefixed,
    u8_field,
};
use super::{DecodeError, EncodeError};
use crate::codec::Reader;

/// User information item (type 0x50) with every sub-item securepdu knows.
/// Sub-items it does not know are kept, in order, in `unknown` and otherwise ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInformation {
    /// Maximum length received (0x51): largest P-DATA-TF variable field the sender
    /// accepts; 0 means no limit.
    pub max_pdu_length: Option<u32>,
    /// Implementation class UID (0x52).
    pub implementation_class_uid: Option<String>,
    /// Implementation version name (0x55), 1-16 characters.
    pub implementation_version_name: Option<String>,
    /// Asynchronous operations window (0x53).
    pub async_ops_window: Option<AsyncOpsWindow>,
    /// SCP/SCU role selection (0x54), one per SOP class.
    pub role_selection: Vec<RoleSelection>,
    /// SOP class extended negotiation (0x56).
    pub sop_class_extended: Vec<SopClassExtended>,
    /// SOP class common extended negotiation (0x57).
    pub sop_class_common_extended: Vec<SopClassCommonExtended>,
    /// User identity negotiation, request form (0x58).
    pub user_identity_rq: Option<UserIdentityRq>,
    /// User identity negotiation, acceptance form (0x59).
    pub user_identity_ac: Option<UserIdentityAc>,
    /// Sub-items of unknown type, skipped as PS3.8 requires but kept for tools.
    pub unknown: Vec<UnknownSubItem>,
}

/// Asynchronous operations window sub-item (0x53).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AsyncOpsWindow {
    /// Maximum number of operations invoked (0 = unlimited).
    pub max_invoked: u16,
    /// Maximum number of operations performed (0 = unlimited).
    pub max_performed: u16,
}

/// SCP/SCU role selection sub-item (0x54).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSelection {
    /// SOP class UID the roles apply to.
    pub sop_class_uid: String,
    /// SCU role: 0 non-support, 1 support (raw).
    pub scu_role: u8,
    /// SCP role: 0 non-support, 1 support (raw).
    pub scp_role: u8,
}

/// SOP class extended negotiation sub-item (0x56).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SopClassExtended {
    /// SOP class UID.
    pub sop_class_uid: String,
    /// Service-class-application-information, opaque to the Upper Layer.
    pub service_class_application_information: Vec<u8>,
}

/// SOP class common extended negotiation sub-item (0x57, sub-item version 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SopClassCommonExtended {
    /// SOP class UID.
    pub sop_class_uid: String,
    /// Service class UID.
    pub service_class_uid: String,
    /// Related general SOP class UIDs.
    pub related_general_sop_classes: Vec<String>,
}

/// User identity negotiation sub-item, RQ form (0x58).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentityRq {
    /// 1 username, 2 username and passcode, 3 Kerberos ticket, 4 SAML assertion,
    /// 5 JSON web token.
    pub identity_type: u8,
    /// Whether a positive server response is requested.
    pub positive_response_requested: bool,
    /// Primary field (username, ticket, assertion or token).
    pub primary_field: Vec<u8>,
    /// Secondary field (the passcode, for type 2; empty otherwise).
    pub secondary_field: Vec<u8>,
}

/// User identity negotiation sub-item, AC form (0x59).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentityAc {
    /// Server response (Kerberos server ticket, SAML response or JWT; empty otherwise).
    pub server_response: Vec<u8>,
}

/// A user information sub-item of a type securepdu does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSubItem {
    /// Sub-item type byte.
    pub item_type: u8,
    /// Sub-item value as received.
    pub data: Vec<u8>,
}

/// Longest implementation version name (PS3.7 D.3.3.2.3: 1-16 characters).
const MAX_VERSION_NAME_LEN: usize = 16;

const WITHIN: &str = "user information item";

impl UserInformation {
    /// Decodes the value of a user information item (its sub-items).
    pub(crate) fn decode_value(mut r: Reader<'_>) -> Result<Self, DecodeError> {
        let mut ui = UserInformation::default();
        while let Some(item) = next_item(&mut r, WITHIN)? {
            let t = item.item_type;
            let name = wire::item_name(t);
            let mut v = item.value;
            match t {
                // 0x51: maximum-length-received, 4-byte unsigned (PS3.8 D.1).
                0x51 => {
                    expect_len(&v, 4, name)?;
                    let n = v.u32_be().ok_or(DecodeError::Truncated {
                        what: name,
                        needed: 4,
                        available: 0,
                    })?;
                    set_once(&mut ui.max_pdu_length, n, WITHIN, t)?;
                }
                // 0x52: implementation-class-uid (PS3.7 D.3.3.2.1).
                0x52 => {
                    set_once(
                        &mut ui.implementation_class_uid,
                        decode_uid(v.rest()),
                        WITHIN,
                        t,
                    )?;
                }
                // 0x55: implementation-version-name, 1-16 characters (PS3.7 D.3.3.2.3).
                0x55 => {
                    set_once(
                        &mut ui.implementation_version_name,
                        latin1(v.rest()),
                        WITHIN,
                        t,
                    )?;
                }
                // 0x53: maximum-number-operations-invoked (2), -performed (2) (PS3.7 D.3.3.3.1).
                0x53 => {
                    expect_len(&v, 4, name)?;
                    let max_invoked = u16_field(&mut v, name)?;
                    let max_performed = u16_field(&mut v, name)?;
                    set_once(
                        &mut ui.async_ops_window,
                        AsyncOpsWindow {
                            max_invoked,
                            max_performed,
                        },
                        WITHIN,
                        t,
                    )?;
                }
                // 0x54: UID-length (2), SOP-class-uid, SCU-role (1), SCP-role (1) (PS3.7 D.3.3.4.1).
                0x54 => {
                    let sop_class_uid = decode_uid(u16_prefixed(&mut v, name)?);
                    let scu_role = u8_field(&mut v, name)?;
                    let scp_role = u8_field(&mut v, name)?;
                    expect_len(&v, 0, name)?;
                    ui.role_selection.push(RoleSelection {
                        sop_class_uid,
                        scu_role,
                        scp_role,
                    });
                }
                // 0x56: SOP-class-uid-length (2), SOP-class-uid, service-class-application-information
                // (the rest) (PS3.7 D.3.3.5.1).
                0x56 => {
                    let sop_class_uid = decode_uid(u16_prefixed(&mut v, name)?);
                    let info = v.rest().to_vec();
                    ui.sop_class_extended.push(SopClassExtended {
                        sop_class_uid,
                        service_class_application_information: info,
                    });
                }
                // 0x57 (byte 2 is the sub-item version, 0): SOP-class-uid-length (2) + UID,
                // service-class-uid-length (2) + UID, related-general-sop-class-identification-length (2)
                // + that many bytes of (UID-length (2) + UID) entries (PS3.7 D.3.3.6.1).
                0x57 => {
                    let sop_class_uid = decode_uid(u16_prefixed(&mut v, name)?);
                    let service_class_uid = decode_uid(u16_prefixed(&mut v, name)?);
                    let mut related = Vec::new();
                    // Old peers omit the related list entirely; treat that as empty.
                    if !v.is_empty() {
                        let mut list = Reader::new(u16_prefixed(&mut v, name)?);
                        while !list.is_empty() {
                            related.push(decode_uid(u16_prefixed(&mut list, name)?));
                        }
                    }
                    expect_len(&v, 0, name)?;
                    ui.sop_class_common_extended.push(SopClassCommonExtended {
                        sop_class_uid,
                        service_class_uid,
                        related_general_sop_classes: related,
                    });
                }
                // 0x58: user-identity-type (1), positive-response-requested (1), primary-field-length (2),
                // primary-field, secondary-field-length (2), secondary-field (PS3.7 D.3.3.7.1).
                0x58 => {
                    let identity_type = u8_field(&mut v, name)?;
                    let positive_response_requested = u8_field(&mut v, name)? != 0;
                    let primary_field = u16_prefixed(&mut v, name)?.to_vec();
                    let secondary_field = u16_prefixed(&mut v, name)?.to_vec();
                    expect_len(&v, 0, name)?;
                    let rq = UserIdentityRq {
                        identity_type,
                        positive_response_requested,
                        primary_field,
                        secondary_field,
                    };
                    set_once(&mut ui.user_identity_rq, rq, WITHIN, t)?;
                }
                // 0x59: server-response-length (2), server-response (PS3.7 D.3.3.7.2).
                0x59 => {
                    let server_response = u16_prefixed(&mut v, name)?.to_vec();
                    expect_len(&v, 0, name)?;
                    set_once(
                        &mut ui.user_identity_ac,
                        UserIdentityAc { server_response },
                        WITHIN,
                        t,
                    )?;
                }
                // An item type of another level (presentation context, ...) cannot be a sub-item.
                _ if is_known_item_type(t) => {
                    return Err(DecodeError::UnexpectedItem {
                        within: WITHIN,
                        item_type: t,
                    })
                }
                // Unknown sub-items must be ignored (PS3.8 D.2 note 2); kept for tools.
                _ => ui.unknown.push(UnknownSubItem {
                    item_type: t,
                    data: v.rest().to_vec(),
                }),
            }
        }
        Ok(ui)
    }

    /// Appends the whole user information item (0x50).
    ///
    /// Sub-item order: 0x51, 0x52, 0x55, 0x54*, 0x58, 0x59, 0x53, 0x56*, 0x57*, unknown*.
    /// The standard does not make the order significant; this one reproduces the
    /// byte layout of every pynetdicom test vector (pynetdicom 3 itself sends 0x53
    /// before 0x58, older releases after it).
    pub(crate) fn encode_item(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        put_item(out, 0x50, 0, "user information item", |out| {
            self.encode_sub_items(out)
        })
    }

    fn encode_sub_items(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        if let Some(n) = self.max_pdu_length {
            put_item(out, 0x51, 0, "maximum length sub-item", |out| {
                out.put_u32(n);
                Ok(())
            })?;
        }
        if let Some(uid) = &self.implementation_class_uid {
            put_item(out, 0x52, 0, "implementation class UID sub-item", |out| {
                put_uid(out, uid, "implementation class UID")
            })?;
        }
        if let Some(name) = &self.implementation_version_name {
            let n = name.chars().count();
            if n > MAX_VERSION_NAME_LEN {
                return Err(EncodeError::TooLong {
                    field: "implementation version name",
                    len: n,
                    max: MAX_VERSION_NAME_LEN,
                });
            }
            put_item(
                out,
                0x55,
                0,
                "implementation version name sub-item",
                |out| put_latin1(out, name, "implementation version name"),
            )?;
        }
        for rs in &self.role_selection {
            put_item(out, 0x54, 0, "SCP/SCU role selection sub-item", |out| {
                put_u16_uid(out, &rs.sop_class_uid, "role selection SOP class UID")?;
                out.put_u8(rs.scu_role);
                out.put_u8(rs.scp_role);
                Ok(())
            })?;
        }
        if let Some(id) = &self.user_identity_rq {
            put_item(out, 0x58, 0, "user identity sub-item (RQ)", |out| {
                out.put_u8(id.identity_type);
                out.put_u8(u8::from(id.positive_response_requested));
                put_u16_bytes(out, &id.primary_field, "user identity primary field")?;
                put_u16_bytes(out, &id.secondary_field, "user identity secondary field")
            })?;
        }
        if let Some(id) = &self.user_identity_ac {
            put_item(out, 0x59, 0, "user identity sub-item (AC)", |out| {
                put_u16_bytes(out, &id.server_response, "user identity server response")
            })?;
        }
        if let Some(w) = self.async_ops_window {
            put_item(
                out,
                0x53,
                0,
                "asynchronous operations window sub-item",
                |out| {
                    out.put_u16(w.max_invoked);
                    out.put_u16(w.max_performed);
                    Ok(())
                },
            )?;
        }
        for ext in &self.sop_class_extended {
            put_item(
                out,
                0x56,
                0,
                "SOP class extended negotiation sub-item",
                |out| {
                    put_u16_uid(
                        out,
                        &ext.sop_class_uid,
                        "extended negotiation SOP class UID",
                    )?;
                    out.put_slice(&ext.service_class_application_information);
                    Ok(())
                },
            )?;
        }
        for ext in &self.sop_class_common_extended {
            // Byte 2 is the sub-item version, 0.
            put_item(
                out,
                0x57,
                0,
                "SOP class common extended negotiation sub-item",
                |out| {
                    put_u16_uid(
                        out,
                        &ext.sop_class_uid,
                        "common extended negotiation SOP class UID",
                    )?;
                    put_u16_uid(
                        out,
                        &ext.service_class_uid,
                        "common extended negotiation service class UID",
                    )?;
                    put_u16_prefixed(out, "related general SOP class identification", |out| {
                        for uid in &ext.related_general_sop_classes {
                            put_u16_uid(out, uid, "related general SOP class UID")?;
                        }
                        Ok(())
                    })
                },
            )?;
        }
        for item in &self.unknown {
            if is_known_item_type(item.item_type) {
                return Err(EncodeError::InvalidField {
                    field: "unknown user information sub-item",
                    why: format!("type 0x{:02x} is a known item type", item.item_type),
                });
            }
            put_item(
                out,
                item.item_type,
                0,
                "unknown user information sub-item",
                |out| {
                    out.put_slice(&item.data);
                    Ok(())
                },
            )?;
        }
        Ok(())
    }
}
