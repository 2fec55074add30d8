//! A-ASSOCIATE-RQ, -AC and -RJ PDUs (PS3.8 §9.3.2-9.3.4) and their
//! application context and presentation context items.

use super::user_info::UserInformation;

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
