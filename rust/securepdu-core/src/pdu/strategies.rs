//! Proptest strategies producing arbitrary valid PDU values (values that encode,
//! and decode back equal). Shared with the other modules' tests.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::*;

/// AE title: 0-16 Latin-1 characters without leading/trailing spaces (not significant).
pub(crate) fn ae_title() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z0-9_-]{0,16}",
        vec(0x21u8..=0xff, 0..=16).prop_map(|b| b.into_iter().map(char::from).collect()),
        "[A-Z]{1,6} [A-Z]{1,6}",
    ]
}

/// UID-like string: 1-64 characters, no trailing NUL or space.
pub(crate) fn uid() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(APPLICATION_CONTEXT_NAME.to_owned()),
        Just("1.2.840.10008.1.2".to_owned()),
        "[12]\\.[0-9]{1,3}(\\.[0-9]{1,8}){0,6}",
        "[0-9.]{1,64}",
    ]
}

/// Opaque bytes up to `max` long.
pub(crate) fn blob(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

/// Arbitrary user information with every sub-item kind.
pub(crate) fn user_info() -> impl Strategy<Value = UserInformation> {
    let role = (uid(), any::<u8>(), any::<u8>()).prop_map(|(sop_class_uid, scu_role, scp_role)| {
        RoleSelection {
            sop_class_uid,
            scu_role,
            scp_role,
        }
    });
    let ext = (uid(), blob(20)).prop_map(|(sop_class_uid, info)| SopClassExtended {
        sop_class_uid,
        service_class_application_information: info,
    });
    let common = (uid(), uid(), vec(uid(), 0..3)).prop_map(|(a, b, c)| SopClassCommonExtended {
        sop_class_uid: a,
        service_class_uid: b,
        related_general_sop_classes: c,
    });
    let id_rq =
        (any::<u8>(), any::<bool>(), blob(40), blob(20)).prop_map(|(t, p, a, b)| UserIdentityRq {
            identity_type: t,
            positive_response_requested: p,
            primary_field: a,
            secondary_field: b,
        });
    let id_ac = blob(40).prop_map(|server_response| UserIdentityAc { server_response });
    let unknown = ((0x5au8..=0xff), blob(10))
        .prop_map(|(item_type, data)| UnknownSubItem { item_type, data });
    let version = prop_oneof![
        "[A-Z0-9_]{0,16}",
        vec(any::<u8>(), 0..=16).prop_map(|b| wire::latin1(&b))
    ];
    (
        (
            option::of(any::<u32>()),
            option::of(uid()),
            option::of(version),
        ),
        option::of(
            (any::<u16>(), any::<u16>()).prop_map(|(i, p)| AsyncOpsWindow {
                max_invoked: i,
                max_performed: p,
            }),
        ),
        (vec(role, 0..3), vec(ext, 0..3), vec(common, 0..3)),
        (option::of(id_rq), option::of(id_ac), vec(unknown, 0..3)),
    )
        .prop_map(
            |((max, icu, ivn), async_ops_window, (roles, exts, commons), (rq, ac, unknown))| {
                UserInformation {
                    max_pdu_length: max,
                    implementation_class_uid: icu,
                    implementation_version_name: ivn,
                    async_ops_window,
                    role_selection: roles,
                    sop_class_extended: exts,
                    sop_class_common_extended: commons,
                    user_identity_rq: rq,
                    user_identity_ac: ac,
                    unknown,
                }
            },
        )
}

/// Presentation context, RQ form.
pub(crate) fn pc_rq() -> impl Strategy<Value = PresentationContextRq> {
    (any::<u8>(), uid(), vec(uid(), 0..4)).prop_map(|(id, abstract_syntax, transfer_syntaxes)| {
        PresentationContextRq {
            id,
            abstract_syntax,
            transfer_syntaxes,
        }
    })
}

/// Presentation context, AC form.
pub(crate) fn pc_ac() -> impl Strategy<Value = PresentationContextAc> {
    (any::<u8>(), any::<u8>(), option::of(uid())).prop_map(|(id, result, transfer_syntax)| {
        PresentationContextAc {
            id,
            result,
            transfer_syntax,
        }
    })
}

/// A-ASSOCIATE-RQ.
pub(crate) fn associate_rq() -> impl Strategy<Value = AssociateRq> {
    (
        any::<u16>(),
        ae_title(),
        ae_title(),
        uid(),
        vec(pc_rq(), 0..4),
        user_info(),
    )
        .prop_map(
            |(
                protocol_version,
                called_ae,
                calling_ae,
                application_context,
                presentation_contexts,
                user_info,
            )| {
                AssociateRq {
                    protocol_version,
                    called_ae,
                    calling_ae,
                    application_context,
                    presentation_contexts,
                    user_info,
                }
            },
        )
}

/// A-ASSOCIATE-AC.
pub(crate) fn associate_ac() -> impl Strategy<Value = AssociateAc> {
    (
        any::<u16>(),
        ae_title(),
        ae_title(),
        uid(),
        vec(pc_ac(), 0..4),
        user_info(),
    )
        .prop_map(
            |(
                protocol_version,
                called_ae,
                calling_ae,
                application_context,
                presentation_contexts,
                user_info,
            )| {
                AssociateAc {
                    protocol_version,
                    called_ae,
                    calling_ae,
                    application_context,
                    presentation_contexts,
                    user_info,
                }
            },
        )
}

/// A-ASSOCIATE-RJ (raw codes, any byte).
pub(crate) fn associate_rj() -> impl Strategy<Value = AssociateRj> {
    (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(result, source, reason)| AssociateRj {
        result,
        source,
        reason,
    })
}

/// One PDV.
pub(crate) fn pdv() -> impl Strategy<Value = Pdv> {
    (any::<u8>(), any::<bool>(), any::<bool>(), blob(64)).prop_map(
        |(context_id, is_command, is_last, data)| Pdv {
            context_id,
            is_command,
            is_last,
            data: Bytes::from(data),
        },
    )
}

/// P-DATA-TF with 0-4 PDVs.
pub(crate) fn pdata() -> impl Strategy<Value = PData> {
    vec(pdv(), 0..4).prop_map(|pdvs| PData { pdvs })
}

/// A-ABORT (raw codes).
pub(crate) fn abort() -> impl Strategy<Value = Abort> {
    (any::<u8>(), any::<u8>()).prop_map(|(source, reason)| Abort { source, reason })
}

/// Any PDU.
pub(crate) fn pdu() -> impl Strategy<Value = Pdu> {
    prop_oneof![
        associate_rq().prop_map(Pdu::AssociateRq),
        associate_ac().prop_map(Pdu::AssociateAc),
        associate_rj().prop_map(Pdu::AssociateRj),
        pdata().prop_map(Pdu::PData),
        Just(Pdu::ReleaseRq),
        Just(Pdu::ReleaseRp),
        abort().prop_map(Pdu::Abort),
    ]
}
