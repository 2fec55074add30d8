//! Regenerates the seed corpora in fuzz/corpus/<target>/ (run from anywhere):
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus
//!
//! Seeds are built with the securepdu-core encoders, plus pynetdicom's encoded
//! PDUs as copied into rust/securepdu-core/src/pdu/vectors.rs, so every file here
//! can be reproduced and reviewed rather than being an opaque blob.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use securepdu_core::dimse::{
    command_field, fragment_command, fragment_dataset, tag, CEchoRq, CEchoRsp, CStoreRq, CStoreRsp,
    CommandSet, Message, Priority, NO_DATA_SET,
};
use securepdu_core::part10::FileMeta;
use securepdu_core::pdu::{
    Abort, AbortReason, AssociateAc, AssociateRj, AssociateRq, AsyncOpsWindow, PData, Pdu, Pdv,
    PresentationContextAc, PresentationContextRq, RoleSelection, UserIdentityRq, UserInformation,
    APPLICATION_CONTEXT_NAME,
};

const VERIFICATION: &str = "1.2.840.10008.1.1";
const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
const INSTANCE: &str = "1.2.826.0.1.3680043.10.1361.99.1";

fn main() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let pdu = pdu_seeds(&fuzz.join("../rust/securepdu-core/src/pdu/vectors.rs"));
    write(&fuzz, "pdu", &pdu);
    write(&fuzz, "dimse", &dimse_seeds());
    write(&fuzz, "part10", &part10_seeds());
    write(&fuzz, "association", &association_seeds());
}

/// Replaces corpus/<target>/ with `seeds` (name, bytes).
fn write(fuzz: &Path, target: &str, seeds: &[(String, Vec<u8>)]) {
    let dir = fuzz.join("corpus").join(target);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create corpus dir");
    for (name, bytes) in seeds {
        fs::write(dir.join(name), bytes).expect("write seed");
    }
    println!("{target}: {} seeds", seeds.len());
}

fn enc(pdu: Pdu) -> Vec<u8> {
    pdu.encode().expect("seed PDU encodes").to_vec()
}

fn pdu_seeds(vectors: &Path) -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    // Whole PDUs from pynetdicom's test suite (consts whose first byte is a PDU type).
    let text = fs::read_to_string(vectors).expect("read pdu/vectors.rs");
    for (name, bytes) in rust_byte_consts(&text) {
        if matches!(bytes.first(), Some(1..=7)) {
            seeds.push((format!("pynetdicom_{}", name.to_lowercase()), bytes));
        }
    }
    // Our own encodings, with every kind of user information sub-item.
    let mut info = UserInformation {
        max_pdu_length: Some(16_384),
        implementation_class_uid: Some("1.2.826.0.1.3680043.10.1361.1".into()),
        implementation_version_name: Some("SECUREPDU_010".into()),
        async_ops_window: Some(AsyncOpsWindow {
            max_invoked: 5,
            max_performed: 5,
        }),
        ..UserInformation::default()
    };
    info.role_selection.push(RoleSelection {
        sop_class_uid: CT.into(),
        scu_role: 1,
        scp_role: 1,
    });
    info.user_identity_rq = Some(UserIdentityRq {
        identity_type: 2,
        positive_response_requested: true,
        primary_field: b"user".to_vec(),
        secondary_field: b"secret".to_vec(),
    });
    let rq = AssociateRq {
        protocol_version: 1,
        called_ae: "STORE-SCP".into(),
        calling_ae: "STORE-SCU".into(),
        application_context: APPLICATION_CONTEXT_NAME.into(),
        presentation_contexts: vec![
            PresentationContextRq {
                id: 1,
                abstract_syntax: VERIFICATION.into(),
                transfer_syntaxes: vec![IMPLICIT_LE.into()],
            },
            PresentationContextRq {
                id: 3,
                abstract_syntax: CT.into(),
                transfer_syntaxes: vec![EXPLICIT_LE.into(), IMPLICIT_LE.into()],
            },
        ],
        user_info: info.clone(),
    };
    info.user_identity_rq = None;
    let ac = AssociateAc {
        protocol_version: 1,
        called_ae: "STORE-SCP".into(),
        calling_ae: "STORE-SCU".into(),
        application_context: APPLICATION_CONTEXT_NAME.into(),
        presentation_contexts: vec![
            PresentationContextAc {
                id: 1,
                result: 0,
                transfer_syntax: Some(IMPLICIT_LE.into()),
            },
            PresentationContextAc {
                id: 3,
                result: 3,
                transfer_syntax: None,
            },
        ],
        user_info: info,
    };
    let rj = AssociateRj {
        result: 2,
        source: 3,
        reason: 2,
    };
    let echo = PData {
        pdvs: vec![Pdv {
            context_id: 1,
            is_command: true,
            is_last: true,
            data: Bytes::from(Message::CEchoRq(echo_rq()).encode()),
        }],
    };
    let own = [
        ("own_associate_rq", enc(Pdu::AssociateRq(rq))),
        ("own_associate_ac", enc(Pdu::AssociateAc(ac))),
        ("own_associate_rj", enc(Pdu::AssociateRj(rj))),
        ("own_p_data_echo", enc(Pdu::PData(echo))),
        ("own_release_rq", enc(Pdu::ReleaseRq)),
        ("own_release_rp", enc(Pdu::ReleaseRp)),
        (
            "own_abort",
            enc(Pdu::Abort(Abort::provider(
                AbortReason::InvalidPduParameterValue,
            ))),
        ),
    ];
    // A stream of several PDUs, for the framer.
    let stream: Vec<u8> = own.iter().flat_map(|(_, b)| b.clone()).collect();
    seeds.extend(own.into_iter().map(|(n, b)| (n.to_owned(), b)));
    seeds.push(("own_stream".into(), stream));
    seeds
}

/// `const NAME: &[u8] = &[0x01, ...];` items of a Rust source file.
fn rust_byte_consts(text: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for chunk in text.split("const ").skip(1) {
        let Some((name, rest)) = chunk.split_once(": &[u8] = &[") else {
            continue;
        };
        let Some((list, _)) = rest.split_once("];") else {
            continue;
        };
        let bytes = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| u8::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex byte"))
            .collect();
        out.push((name.trim().to_owned(), bytes));
    }
    out
}

fn echo_rq() -> CEchoRq {
    CEchoRq {
        message_id: 1,
        affected_sop_class_uid: VERIFICATION.into(),
    }
}

fn store_rq() -> CStoreRq {
    CStoreRq {
        message_id: 7,
        priority: Priority::Medium,
        affected_sop_class_uid: CT.into(),
        affected_sop_instance_uid: INSTANCE.into(),
        move_originator_ae_title: Some("MOVE-SCU".into()),
        move_originator_message_id: Some(3),
    }
}

fn dimse_seeds() -> Vec<(String, Vec<u8>)> {
    let mut store_rsp = CStoreRsp::to_request(&store_rq(), 0xA700);
    store_rsp.offending_element = Some(vec![0x0008_0018]);
    store_rsp.error_comment = Some("out of resources".into());
    let mut find = CommandSet::new();
    find.set_us(tag::COMMAND_FIELD, command_field::C_FIND_RQ);
    find.set_us(tag::MESSAGE_ID, 9);
    find.set_us(tag::PRIORITY, 0);
    find.set_ui(tag::AFFECTED_SOP_CLASS_UID, "1.2.840.10008.5.1.4.1.2.1.1");
    find.set_us(tag::COMMAND_DATA_SET_TYPE, 0x0001);
    let mut cancel = CommandSet::new();
    cancel.set_us(tag::COMMAND_FIELD, command_field::C_CANCEL_RQ);
    cancel.set_us(tag::MESSAGE_ID_BEING_RESPONDED_TO, 9);
    cancel.set_us(tag::COMMAND_DATA_SET_TYPE, NO_DATA_SET);

    let commands = [
        ("c_echo_rq", Message::CEchoRq(echo_rq()).encode()),
        (
            "c_echo_rsp",
            Message::CEchoRsp(CEchoRsp::to_request(&echo_rq(), 0)).encode(),
        ),
        ("c_store_rq", Message::CStoreRq(store_rq()).encode()),
        ("c_store_rsp", Message::CStoreRsp(store_rsp).encode()),
        ("c_find_rq", find.encode()),
        ("c_cancel_rq", cancel.encode()),
    ];
    let mut seeds: Vec<(String, Vec<u8>)> = commands
        .iter()
        .map(|(n, b)| (format!("command_{n}"), b.clone()))
        .collect();

    // P-DATA-TF streams: commands (and a data set) fragmented for a small peer
    // maximum, so reassembly sees several fragments of each.
    let pdus = |parts: Vec<PData>| -> Vec<u8> {
        parts.into_iter().flat_map(|p| enc(Pdu::PData(p))).collect()
    };
    let echo = Bytes::from(Message::CEchoRq(echo_rq()).encode());
    seeds.push((
        "stream_c_echo_rq".into(),
        pdus(fragment_command(1, echo, 0)),
    ));
    let store = Bytes::from(Message::CStoreRq(store_rq()).encode());
    let dataset: Vec<u8> = (0..200u8).collect();
    let mut stream = pdus(fragment_command(3, store, 64));
    stream.extend(pdus(fragment_dataset(3, dataset, 64)));
    stream.extend(pdus(fragment_command(1, Bytes::from(find.encode()), 0)));
    stream.extend(pdus(fragment_dataset(
        1,
        Bytes::from_static(b"\x08\x00\x52\x00\x00\x00\x00\x00"),
        0,
    )));
    seeds.push(("stream_c_store_rq_then_c_find".into(), stream));
    seeds
}

fn part10_seeds() -> Vec<(String, Vec<u8>)> {
    // A data set element (0008,0016) after the header, as in a real file.
    let dataset = b"\x08\x00\x16\x00UI\x1a\x001.2.840.10008.5.1.4.1.1.2\x00";
    let mut meta = FileMeta::new(CT, INSTANCE, EXPLICIT_LE);
    let plain = [meta.encode(), dataset.to_vec()].concat();
    meta.source_application_entity_title = Some("STORE-SCU".into());
    let with_ae = [meta.encode(), dataset.to_vec()].concat();
    // No group length (0002,0000): the reader must stop at the first other group.
    let mut no_group_length = plain.clone();
    no_group_length.drain(132..144);
    vec![
        ("header_explicit_le".into(), plain),
        ("header_with_source_ae".into(), with_ae),
        (
            "header_only".into(),
            FileMeta::new(VERIFICATION, INSTANCE, IMPLICIT_LE).encode(),
        ),
        ("header_without_group_length".into(), no_group_length),
    ]
}

/// Scripts for the association target, in the byte encoding its `Unstructured`
/// reads (arbitrary 1.x: a u8 in a small range is one byte taken modulo the range,
/// a bool is the low bit, a zero text byte picks the valid text).
fn association_seeds() -> Vec<(String, Vec<u8>)> {
    // Canned peer PDU indices in association.rs `canned_peer_pdus`.
    const RQ: u8 = 0;
    const RQ_V2: u8 = 1;
    const AC: u8 = 2;
    const AC_SMALL: u8 = 3;
    const RJ: u8 = 5;
    const PDATA: u8 = 6;
    const REL_RQ: u8 = 7;
    const REL_RP: u8 = 8;
    const ABORT: u8 = 9;
    // Ops: peer PDU (1, index, split), request (4 + 3 text bytes), connected (5),
    // accepted (6), accept (7 + 3 text bytes), reject (8 + 3), P-DATA (9 + count 0),
    // release (12), respond (13), abort (14), closed (15), clock to ARTIM (16, 0).
    let peer = |i: u8| vec![1, i, 7];
    let header = |requestor: bool| vec![u8::from(requestor), 0x75, 0x30, 3];
    let script = |requestor: bool, ops: &[Vec<u8>]| -> Vec<u8> {
        let mut s = header(requestor);
        for op in ops {
            s.extend_from_slice(op);
        }
        s
    };
    let (request, accept) = (vec![4, 0, 0, 0], vec![7, 0, 0, 0]);
    let (connected, accepted) = (vec![5], vec![6]);
    let (release, respond, abort, closed) = (vec![12], vec![13], vec![14], vec![15]);
    let artim = vec![16, 0];
    let send = vec![9, 0];
    vec![
        (
            "acceptor_full".into(),
            script(
                false,
                &[
                    accepted.clone(),
                    peer(RQ),
                    accept.clone(),
                    peer(PDATA),
                    send.clone(),
                    peer(REL_RQ),
                    respond.clone(),
                    closed.clone(),
                ],
            ),
        ),
        (
            "acceptor_reject".into(),
            script(
                false,
                &[
                    accepted.clone(),
                    peer(RQ),
                    vec![8, 0, 0, 0],
                    peer(PDATA),
                    artim.clone(),
                ],
            ),
        ),
        (
            "acceptor_bad_version".into(),
            script(
                false,
                &[accepted.clone(), peer(RQ_V2), peer(ABORT), closed.clone()],
            ),
        ),
        (
            "acceptor_artim".into(),
            script(false, &[accepted.clone(), artim.clone()]),
        ),
        (
            "acceptor_collision".into(),
            script(
                false,
                &[
                    accepted.clone(),
                    peer(RQ),
                    accept.clone(),
                    release.clone(),
                    peer(REL_RQ),
                    peer(REL_RP),
                    respond.clone(),
                    closed.clone(),
                ],
            ),
        ),
        (
            "requestor_full".into(),
            script(
                true,
                &[
                    request.clone(),
                    connected.clone(),
                    peer(AC),
                    send.clone(),
                    peer(PDATA),
                    release.clone(),
                    peer(REL_RP),
                ],
            ),
        ),
        (
            "requestor_small_max".into(),
            script(
                true,
                &[
                    request.clone(),
                    connected.clone(),
                    peer(AC_SMALL),
                    vec![10, 0, 1, 1, 1],
                ],
            ),
        ),
        (
            "requestor_rejected".into(),
            script(true, &[request.clone(), connected.clone(), peer(RJ)]),
        ),
        (
            "requestor_collision".into(),
            script(
                true,
                &[
                    request.clone(),
                    connected.clone(),
                    peer(AC),
                    release.clone(),
                    peer(REL_RQ),
                    respond.clone(),
                    peer(REL_RP),
                ],
            ),
        ),
        (
            "requestor_abort".into(),
            script(
                true,
                &[
                    request.clone(),
                    abort.clone(),
                    request,
                    connected,
                    abort,
                    peer(PDATA),
                    artim,
                ],
            ),
        ),
    ]
}
