//! The user information item (0x50) and its sub-items (PS3.8 Annex D,
//! PS3.7 Annex D.3.3).

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
