//! Typed DIMSE-C messages built on [`CommandSet`] (PS3.7 §9.3).

use super::command::{command_field, tag, CommandSet, DATA_SET_PRESENT, NO_DATA_SET};
use super::DimseError;

/// C-STORE priority (PS3.7 §E.1, Priority (0000,0700)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Priority {
    /// 0000H.
    #[default]
    Medium,
    /// 0001H.
    High,
    /// 0002H.
    Low,
}

impl Priority {
    /// The wire value.
    pub fn to_u16(self) -> u16 {
        match self {
            Self::Medium => 0x0000,
            Self::High => 0x0001,
            Self::Low => 0x0002,
        }
    }

    /// Parses a wire value; `None` for values PS3.7 does not define.
    pub fn from_u16(v: u16) -> Option<Self> {
        match v {
            0x0000 => Some(Self::Medium),
            0x0001 => Some(Self::High),
            0x0002 => Some(Self::Low),
            _ => None,
        }
    }
}

/// C-ECHO-RQ (PS3.7 §9.3.5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CEchoRq {
    /// Message ID (0000,0110).
    pub message_id: u16,
    /// Affected SOP Class UID (0000,0002), normally Verification 1.2.840.10008.1.1.
    pub affected_sop_class_uid: String,
}

/// C-ECHO-RSP (PS3.7 §9.3.5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CEchoRsp {
    /// Message ID Being Responded To (0000,0120).
    pub message_id_being_responded_to: u16,
    /// Affected SOP Class UID (0000,0002); optional (U(=)) in a response.
    pub affected_sop_class_uid: Option<String>,
    /// Status (0000,0900).
    pub status: u16,
    /// Error Comment (0000,0902), LO.
    pub error_comment: Option<String>,
}

/// C-STORE-RQ (PS3.7 §9.3.1.1). A data set always follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CStoreRq {
    /// Message ID (0000,0110).
    pub message_id: u16,
    /// Priority (0000,0700).
    pub priority: Priority,
    /// Affected SOP Class UID (0000,0002).
    pub affected_sop_class_uid: String,
    /// Affected SOP Instance UID (0000,1000).
    pub affected_sop_instance_uid: String,
    /// Move Originator Application Entity Title (0000,1030), AE; set when the store is
    /// a C-MOVE sub-operation.
    pub move_originator_ae_title: Option<String>,
    /// Move Originator Message ID (0000,1031), US.
    pub move_originator_message_id: Option<u16>,
}

/// C-STORE-RSP (PS3.7 §9.3.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CStoreRsp {
    /// Message ID Being Responded To (0000,0120).
    pub message_id_being_responded_to: u16,
    /// Affected SOP Class UID (0000,0002); optional (U(=)) in a response.
    pub affected_sop_class_uid: Option<String>,
    /// Affected SOP Instance UID (0000,1000); optional (U(=)) in a response.
    pub affected_sop_instance_uid: Option<String>,
    /// Status (0000,0900).
    pub status: u16,
    /// Offending Element (0000,0901), AT 1-n, as `(group << 16) | element`.
    pub offending_element: Option<Vec<u32>>,
    /// Error Comment (0000,0902), LO.
    pub error_comment: Option<String>,
}

impl CEchoRsp {
    /// The response to `rq` with the given status.
    pub fn to_request(rq: &CEchoRq, status: u16) -> Self {
        Self {
            message_id_being_responded_to: rq.message_id,
            affected_sop_class_uid: Some(rq.affected_sop_class_uid.clone()),
            status,
            error_comment: None,
        }
    }
}

impl CStoreRsp {
    /// The response to `rq` with the given status, echoing its SOP class and instance.
    pub fn to_request(rq: &CStoreRq, status: u16) -> Self {
        Self {
            message_id_being_responded_to: rq.message_id,
            affected_sop_class_uid: Some(rq.affected_sop_class_uid.clone()),
            affected_sop_instance_uid: Some(rq.affected_sop_instance_uid.clone()),
            status,
            offending_element: None,
            error_comment: None,
        }
    }
}

/// A DIMSE message's command, as decoded from (or encoded to) a command set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// C-ECHO-RQ.
    CEchoRq(CEchoRq),
    /// C-ECHO-RSP.
    CEchoRsp(CEchoRsp),
    /// C-STORE-RQ.
    CStoreRq(CStoreRq),
    /// C-STORE-RSP.
    CStoreRsp(CStoreRsp),
    /// Any other command (C-FIND, N-GET, C-CANCEL, unknown values...). Enough is
    /// decoded to answer a request with status 0211H (unrecognized operation) and to
    /// know whether a data set follows; the full command set is kept.
    Other {
        /// Command Field (0000,0100).
        command_field: u16,
        /// Message ID (0000,0110), present in requests.
        message_id: Option<u16>,
        /// Message ID Being Responded To (0000,0120), present in responses and C-CANCEL.
        message_id_being_responded_to: Option<u16>,
        /// Whether Command Data Set Type (0000,0800) announces a data set.
        has_dataset: bool,
        /// Every element received.
        command: CommandSet,
    },
}

impl Message {
    /// The Command Field (0000,0100).
    pub fn command_field(&self) -> u16 {
        match self {
            Self::CEchoRq(_) => command_field::C_ECHO_RQ,
            Self::CEchoRsp(_) => command_field::C_ECHO_RSP,
            Self::CStoreRq(_) => command_field::C_STORE_RQ,
            Self::CStoreRsp(_) => command_field::C_STORE_RSP,
            Self::Other { command_field, .. } => *command_field,
        }
    }

    /// Whether a data set follows the command (Command Data Set Type != 0101H).
    pub fn has_dataset(&self) -> bool {
        match self {
            Self::CStoreRq(_) => true,
            Self::CEchoRq(_) | Self::CEchoRsp(_) | Self::CStoreRsp(_) => false,
            Self::Other { has_dataset, .. } => *has_dataset,
        }
    }

    /// The Message ID of a request, if this is one.
    pub fn message_id(&self) -> Option<u16> {
        match self {
            Self::CEchoRq(m) => Some(m.message_id),
            Self::CStoreRq(m) => Some(m.message_id),
            Self::CEchoRsp(_) | Self::CStoreRsp(_) => None,
            Self::Other { message_id, .. } => *message_id,
        }
    }

    /// For a request of a kind this crate does not handle, the response with status
    /// 0211H (unrecognized operation, PS3.7 Annex C): same command field with bit 15
    /// set, Message ID Being Responded To, Affected SOP Class UID if the request had
    /// one, no data set. `None` for responses, C-CANCEL-RQ (which has no response) and
    /// requests without a Message ID.
    pub fn unrecognized_operation_response(&self) -> Option<Message> {
        let Self::Other {
            command_field,
            message_id: Some(id),
            command,
            ..
        } = self
        else {
            return None;
        };
        if command_field::is_response(*command_field)
            || *command_field == command_field::C_CANCEL_RQ
        {
            return None;
        }
        let mut cs = CommandSet::new();
        cs.set_us(tag::STATUS, super::status::UNRECOGNIZED_OPERATION);
        if let Some(uid) = command.get(tag::AFFECTED_SOP_CLASS_UID) {
            cs.set_raw(tag::AFFECTED_SOP_CLASS_UID, uid.to_vec());
        }
        Some(Self::Other {
            command_field: *command_field | 0x8000,
            message_id: None,
            message_id_being_responded_to: Some(*id),
            has_dataset: false,
            command: cs,
        })
    }

    /// The command set for this message.
    pub fn to_command_set(&self) -> CommandSet {
        let mut cs = CommandSet::new();
        cs.set_us(tag::COMMAND_FIELD, self.command_field());
        match self {
            Self::CEchoRq(m) => {
                cs.set_ui(tag::AFFECTED_SOP_CLASS_UID, &m.affected_sop_class_uid);
                cs.set_us(tag::MESSAGE_ID, m.message_id);
                cs.set_us(tag::COMMAND_DATA_SET_TYPE, NO_DATA_SET);
            }
            Self::CEchoRsp(m) => {
                if let Some(uid) = &m.affected_sop_class_uid {
                    cs.set_ui(tag::AFFECTED_SOP_CLASS_UID, uid);
                }
                cs.set_us(
                    tag::MESSAGE_ID_BEING_RESPONDED_TO,
                    m.message_id_being_responded_to,
                );
                cs.set_us(tag::COMMAND_DATA_SET_TYPE, NO_DATA_SET);
                cs.set_us(tag::STATUS, m.status);
                if let Some(c) = &m.error_comment {
                    cs.set_text(tag::ERROR_COMMENT, c);
                }
            }
            Self::CStoreRq(m) => {
                cs.set_ui(tag::AFFECTED_SOP_CLASS_UID, &m.affected_sop_class_uid);
                cs.set_us(tag::MESSAGE_ID, m.message_id);
                cs.set_us(tag::PRIORITY, m.priority.to_u16());
                cs.set_us(tag::COMMAND_DATA_SET_TYPE, DATA_SET_PRESENT);
                cs.set_ui(tag::AFFECTED_SOP_INSTANCE_UID, &m.affected_sop_instance_uid);
                if let Some(ae) = &m.move_originator_ae_title {
                    cs.set_text(tag::MOVE_ORIGINATOR_AE_TITLE, ae);
                }
                if let Some(id) = m.move_originator_message_id {
                    cs.set_us(tag::MOVE_ORIGINATOR_MESSAGE_ID, id);
                }
            }
            Self::CStoreRsp(m) => {
                if let Some(uid) = &m.affected_sop_class_uid {
                    cs.set_ui(tag::AFFECTED_SOP_CLASS_UID, uid);
                }
                cs.set_us(
                    tag::MESSAGE_ID_BEING_RESPONDED_TO,
                    m.message_id_being_responded_to,
                );
                cs.set_us(tag::COMMAND_DATA_SET_TYPE, NO_DATA_SET);
                cs.set_us(tag::STATUS, m.status);
                if let Some(tags) = &m.offending_element {
                    cs.set_at(tag::OFFENDING_ELEMENT, tags);
                }
                if let Some(c) = &m.error_comment {
                    cs.set_text(tag::ERROR_COMMENT, c);
                }
                if let Some(uid) = &m.affected_sop_instance_uid {
                    cs.set_ui(tag::AFFECTED_SOP_INSTANCE_UID, uid);
                }
            }
            Self::Other {
                command_field,
                message_id,
                message_id_being_responded_to,
                has_dataset,
                command,
            } => {
                // The stored set is kept as is, except where the typed fields say
                // otherwise, so an Other can also be built from scratch.
                cs = command.clone();
                cs.set_us(tag::COMMAND_FIELD, *command_field);
                if let Some(id) = message_id {
                    cs.set_us(tag::MESSAGE_ID, *id);
                }
                if let Some(id) = message_id_being_responded_to {
                    cs.set_us(tag::MESSAGE_ID_BEING_RESPONDED_TO, *id);
                }
                let stored = command.us(tag::COMMAND_DATA_SET_TYPE).ok().flatten();
                if stored.map(|v| v != NO_DATA_SET) != Some(*has_dataset) {
                    cs.set_us(
                        tag::COMMAND_DATA_SET_TYPE,
                        if *has_dataset {
                            DATA_SET_PRESENT
                        } else {
                            NO_DATA_SET
                        },
                    );
                }
            }
        }
        cs
    }

    /// Encodes the command set (Implicit VR Little Endian, group length first).
    pub fn encode(&self) -> Vec<u8> {
        self.to_command_set().encode()
    }

    /// Decodes a complete command set (all command fragments concatenated).
    pub fn decode(buf: &[u8]) -> Result<Self, DimseError> {
        Self::from_command_set(CommandSet::decode(buf)?)
    }

    /// Interprets a decoded command set. Elements not defined for the command are
    /// ignored; missing required ones are errors.
    pub fn from_command_set(cs: CommandSet) -> Result<Self, DimseError> {
        let field = req(
            cs.us(tag::COMMAND_FIELD)?,
            tag::COMMAND_FIELD,
            "CommandField",
        )?;
        let data_set_type = req(
            cs.us(tag::COMMAND_DATA_SET_TYPE)?,
            tag::COMMAND_DATA_SET_TYPE,
            "CommandDataSetType",
        )?;
        let has_dataset = data_set_type != NO_DATA_SET;
        let expect_dataset = |wanted: bool| {
            if has_dataset == wanted {
                Ok(())
            } else {
                Err(DimseError::UnexpectedDataSetType {
                    command_field: field,
                    value: data_set_type,
                })
            }
        };
        let sop_class = || cs.ui(tag::AFFECTED_SOP_CLASS_UID);
        let msg = match field {
            command_field::C_ECHO_RQ => {
                expect_dataset(false)?;
                Self::CEchoRq(CEchoRq {
                    message_id: req(cs.us(tag::MESSAGE_ID)?, tag::MESSAGE_ID, "MessageID")?,
                    affected_sop_class_uid: req(
                        sop_class()?,
                        tag::AFFECTED_SOP_CLASS_UID,
                        "AffectedSOPClassUID",
                    )?,
                })
            }
            command_field::C_ECHO_RSP => {
                expect_dataset(false)?;
                Self::CEchoRsp(CEchoRsp {
                    message_id_being_responded_to: responded_to(&cs)?,
                    affected_sop_class_uid: sop_class()?,
                    status: req(cs.us(tag::STATUS)?, tag::STATUS, "Status")?,
                    error_comment: cs.text(tag::ERROR_COMMENT),
                })
            }
            command_field::C_STORE_RQ => {
                expect_dataset(true)?;
                let priority = req(cs.us(tag::PRIORITY)?, tag::PRIORITY, "Priority")?;
                Self::CStoreRq(CStoreRq {
                    message_id: req(cs.us(tag::MESSAGE_ID)?, tag::MESSAGE_ID, "MessageID")?,
                    priority: Priority::from_u16(priority).ok_or(DimseError::InvalidValue {
                        element: tag::PRIORITY,
                        reason: "unknown priority",
                    })?,
                    affected_sop_class_uid: req(
                        sop_class()?,
                        tag::AFFECTED_SOP_CLASS_UID,
                        "AffectedSOPClassUID",
                    )?,
                    affected_sop_instance_uid: req(
                        cs.ui(tag::AFFECTED_SOP_INSTANCE_UID)?,
                        tag::AFFECTED_SOP_INSTANCE_UID,
                        "AffectedSOPInstanceUID",
                    )?,
                    move_originator_ae_title: cs
                        .text(tag::MOVE_ORIGINATOR_AE_TITLE)
                        .filter(|s| !s.is_empty()),
                    move_originator_message_id: cs.us(tag::MOVE_ORIGINATOR_MESSAGE_ID)?,
                })
            }
            command_field::C_STORE_RSP => {
                expect_dataset(false)?;
                Self::CStoreRsp(CStoreRsp {
                    message_id_being_responded_to: responded_to(&cs)?,
                    affected_sop_class_uid: sop_class()?,
                    affected_sop_instance_uid: cs.ui(tag::AFFECTED_SOP_INSTANCE_UID)?,
                    status: req(cs.us(tag::STATUS)?, tag::STATUS, "Status")?,
                    offending_element: cs.at(tag::OFFENDING_ELEMENT)?,
                    error_comment: cs.text(tag::ERROR_COMMENT),
                })
            }
            _ => Self::Other {
                command_field: field,
                message_id: cs.us(tag::MESSAGE_ID)?,
                message_id_being_responded_to: cs.us(tag::MESSAGE_ID_BEING_RESPONDED_TO)?,
                has_dataset,
                command: cs,
            },
        };
        Ok(msg)
    }
}

fn req<T>(v: Option<T>, element: u16, name: &'static str) -> Result<T, DimseError> {
    v.ok_or(DimseError::MissingElement { element, name })
}

fn responded_to(cs: &CommandSet) -> Result<u16, DimseError> {
    req(
        cs.us(tag::MESSAGE_ID_BEING_RESPONDED_TO)?,
        tag::MESSAGE_ID_BEING_RESPONDED_TO,
        "MessageIDBeingRespondedTo",
    )
}
