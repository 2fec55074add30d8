//! Unit tests for the DIMSE layer; vectors from pynetdicom 3.0.4's
//! `tests/encoded_dimse_msg.py` (each is a message control header byte followed by
//! the command set).

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::pdu::{PData, Pdv};

/// C-ECHO-RQ: MessageID 7, Verification SOP Class.
const C_ECHO_RQ: &[u8] = b"\x03\x00\x00\x00\x00\x04\x00\x00\x00\x38\
\x00\x00\x00\x00\x00\x02\x00\x12\x00\x00\
\x00\x31\x2e\x32\x2e\x38\x34\x30\x2e\x31\
\x30\x30\x30\x38\x2e\x31\x2e\x31\x00\x00\
\x00\x00\x01\x02\x00\x00\x00\x30\x00\x00\
\x00\x10\x01\x02\x00\x00\x00\x07\x00\x00\
\x00\x00\x08\x02\x00\x00\x00\x01\x01";

/// C-ECHO-RSP: MessageIDBeingRespondedTo 8, Status 0.
const C_ECHO_RSP: &[u8] = b"\x03\x00\x00\x00\x00\x04\x00\x00\x00\x42\
\x00\x00\x00\x00\x00\x02\x00\x12\x00\x00\
\x00\x31\x2e\x32\x2e\x38\x34\x30\x2e\x31\
\x30\x30\x30\x38\x2e\x31\x2e\x31\x00\x00\
\x00\x00\x01\x02\x00\x00\x00\x30\x80\x00\
\x00\x20\x01\x02\x00\x00\x00\x08\x00\x00\
\x00\x00\x08\x02\x00\x00\x00\x01\x01\x00\
\x00\x00\x09\x02\x00\x00\x00\x00\x00";

/// C-STORE-RQ: MessageID 7, class 1.1.1, instance 1.2.1, priority low,
/// move originator UNITTEST / 3.
const C_STORE_RQ: &[u8] = b"\x03\x00\x00\x00\x00\x04\x00\x00\x00\x5e\
\x00\x00\x00\x00\x00\x02\x00\x06\x00\x00\
\x00\x31\x2e\x31\x2e\x31\x00\x00\x00\x00\
\x01\x02\x00\x00\x00\x01\x00\x00\x00\x10\
\x01\x02\x00\x00\x00\x07\x00\x00\x00\x00\
\x07\x02\x00\x00\x00\x02\x00\x00\x00\x00\
\x08\x02\x00\x00\x00\x01\x00\x00\x00\x00\
\x10\x06\x00\x00\x00\x31\x2e\x32\x2e\x31\
\x00\x00\x00\x30\x10\x08\x00\x00\x00\x55\
\x4e\x49\x54\x54\x45\x53\x54\x00\x00\x31\
\x10\x02\x00\x00\x00\x03\x00";

/// C-STORE-RQ with CT Image Storage and a long instance UID, originator UNITTEST_SCP.
const C_STORE_RQ_B: &[u8] = b"\x03\x00\x00\x00\x00\x04\x00\x00\x00\xaa\
\x00\x00\x00\x00\x00\x02\x00\x1a\x00\x00\
\x00\x31\x2e\x32\x2e\x38\x34\x30\x2e\x31\
\x30\x30\x30\x38\x2e\x35\x2e\x31\x2e\x34\
\x2e\x31\x2e\x31\x2e\x32\x00\x00\x00\x00\
\x01\x02\x00\x00\x00\x01\x00\x00\x00\x10\
\x01\x02\x00\x00\x00\x07\x00\x00\x00\x00\
\x07\x02\x00\x00\x00\x02\x00\x00\x00\x00\
\x08\x02\x00\x00\x00\x01\x00\x00\x00\x00\
\x10\x3a\x00\x00\x00\x31\x2e\x32\x2e\x33\
\x39\x32\x2e\x32\x30\x30\x30\x33\x36\x2e\
\x39\x31\x31\x36\x2e\x32\x2e\x36\x2e\x31\
\x2e\x34\x38\x2e\x31\x32\x31\x35\x37\x30\
\x39\x30\x34\x34\x2e\x31\x34\x35\x39\x33\
\x31\x36\x32\x35\x34\x2e\x35\x32\x32\x34\
\x34\x31\x00\x00\x00\x30\x10\x0c\x00\x00\
\x00\x55\x4e\x49\x54\x54\x45\x53\x54\x5f\
\x53\x43\x50\x00\x00\x31\x10\x02\x00\x00\
\x00\x03\x00";

/// C-STORE-RSP: MessageIDBeingRespondedTo 5, class 1.2.4.10, instance 1.2.4.5.7.8.
const C_STORE_RSP: &[u8] = b"\x03\x00\x00\x00\x00\x04\x00\x00\x00\x4c\
\x00\x00\x00\x00\x00\x02\x00\x08\x00\x00\
\x00\x31\x2e\x32\x2e\x34\x2e\x31\x30\x00\
\x00\x00\x01\x02\x00\x00\x00\x01\x80\x00\
\x00\x20\x01\x02\x00\x00\x00\x05\x00\x00\
\x00\x00\x08\x02\x00\x00\x00\x01\x01\x00\
\x00\x00\x09\x02\x00\x00\x00\x00\x00\x00\
\x00\x00\x10\x0c\x00\x00\x00\x31\x2e\x32\
\x2e\x34\x2e\x35\x2e\x37\x2e\x38\x00";

/// C-FIND-RQ (pynetdicom's `c_find_rq_cmd`) as an example of an "Other" command.
const C_FIND_RQ: &[u8] = b"\x03\x00\x00\x00\x00\x04\x00\x00\x00\x4a\
\x00\x00\x00\x00\x00\x02\x00\x1a\x00\x00\
\x00\x31\x2e\x32\x2e\x38\x34\x30\x2e\x31\
\x30\x30\x30\x38\x2e\x35\x2e\x31\x2e\x34\
\x2e\x31\x2e\x31\x2e\x32\x00\x00\x00\x00\
\x01\x02\x00\x00\x00\x20\x00\x00\x00\x10\
\x01\x02\x00\x00\x00\x07\x00\x00\x00\x00\
\x07\x02\x00\x00\x00\x02\x00\x00\x00\x00\
\x08\x02\x00\x00\x00\x01\x00";

/// Strips the message control header byte.
fn cmd(v: &[u8]) -> &[u8] {
    assert_eq!(v[0], 0x03, "vector is a last command fragment");
    &v[1..]
}

#[test]
fn c_echo_rq_vector() {
    let m = Message::decode(cmd(C_ECHO_RQ)).unwrap();
    let expected = Message::CEchoRq(CEchoRq {
        message_id: 7,
        affected_sop_class_uid: VERIFICATION_SOP_CLASS.into(),
    });
    assert_eq!(m, expected);
    assert!(!m.has_dataset());
    assert_eq!(expected.encode(), cmd(C_ECHO_RQ));
}

#[test]
fn c_echo_rsp_vector() {
    let m = Message::decode(cmd(C_ECHO_RSP)).unwrap();
    let expected = Message::CEchoRsp(CEchoRsp {
        message_id_being_responded_to: 8,
        affected_sop_class_uid: Some(VERIFICATION_SOP_CLASS.into()),
        status: status::SUCCESS,
        error_comment: None,
    });
    assert_eq!(m, expected);
    assert_eq!(expected.encode(), cmd(C_ECHO_RSP));
}

#[test]
fn c_store_rq_vectors() {
    let m = Message::decode(cmd(C_STORE_RQ)).unwrap();
    let expected = Message::CStoreRq(CStoreRq {
        message_id: 7,
        priority: Priority::Low,
        affected_sop_class_uid: "1.1.1".into(),
        affected_sop_instance_uid: "1.2.1".into(),
        move_originator_ae_title: Some("UNITTEST".into()),
        move_originator_message_id: Some(3),
    });
    assert_eq!(m, expected);
    assert!(m.has_dataset());
    assert_eq!(m.message_id(), Some(7));
    assert_eq!(expected.encode(), cmd(C_STORE_RQ));

    let m = Message::decode(cmd(C_STORE_RQ_B)).unwrap();
    let Message::CStoreRq(rq) = &m else {
        panic!("{m:?}")
    };
    assert_eq!(rq.affected_sop_class_uid, "1.2.840.10008.5.1.4.1.1.2");
    assert_eq!(
        rq.affected_sop_instance_uid,
        "1.2.392.200036.9116.2.6.1.48.1215709044.1459316254.522441"
    );
    assert_eq!(rq.move_originator_ae_title.as_deref(), Some("UNITTEST_SCP"));
    assert_eq!(m.encode(), cmd(C_STORE_RQ_B));
}

#[test]
fn c_store_rsp_vector() {
    let m = Message::decode(cmd(C_STORE_RSP)).unwrap();
    let expected = Message::CStoreRsp(CStoreRsp {
        message_id_being_responded_to: 5,
        affected_sop_class_uid: Some("1.2.4.10".into()),
        affected_sop_instance_uid: Some("1.2.4.5.7.8".into()),
        status: 0x0000,
        offending_element: None,
        error_comment: None,
    });
    assert_eq!(m, expected);
    assert_eq!(expected.encode(), cmd(C_STORE_RSP));
}

#[test]
fn other_command_is_kept_and_reencoded() {
    let m = Message::decode(cmd(C_FIND_RQ)).unwrap();
    let Message::Other {
        command_field,
        message_id,
        message_id_being_responded_to,
        has_dataset,
        command,
    } = &m
    else {
        panic!("{m:?}")
    };
    assert_eq!(*command_field, command_field::C_FIND_RQ);
    assert_eq!(*message_id, Some(7));
    assert_eq!(*message_id_being_responded_to, None);
    assert!(*has_dataset);
    assert_eq!(command.len(), 5);
    assert_eq!(m.encode(), cmd(C_FIND_RQ));
}

#[test]
fn responses_to_requests() {
    let Message::CStoreRq(rq) = Message::decode(cmd(C_STORE_RQ)).unwrap() else {
        panic!()
    };
    let rsp = CStoreRsp::to_request(&rq, status::SUCCESS);
    assert_eq!(rsp.message_id_being_responded_to, 7);
    assert_eq!(rsp.affected_sop_instance_uid.as_deref(), Some("1.2.1"));
    let Message::CEchoRq(rq) = Message::decode(cmd(C_ECHO_RQ)).unwrap() else {
        panic!()
    };
    let rsp = Message::CEchoRsp(CEchoRsp::to_request(&rq, status::SUCCESS));
    assert_eq!(Message::decode(&rsp.encode()).unwrap(), rsp);
    assert_eq!(rsp.unrecognized_operation_response(), None);

    let find = Message::decode(cmd(C_FIND_RQ)).unwrap();
    let rsp = find.unrecognized_operation_response().unwrap();
    let Message::Other {
        command_field,
        message_id_being_responded_to,
        has_dataset,
        command,
        ..
    } = Message::decode(&rsp.encode()).unwrap()
    else {
        panic!()
    };
    assert_eq!(command_field, command_field::C_FIND_RSP);
    assert_eq!(message_id_being_responded_to, Some(7));
    assert!(!has_dataset);
    assert_eq!(
        command.us(tag::STATUS).unwrap(),
        Some(status::UNRECOGNIZED_OPERATION)
    );
    assert_eq!(
        command.ui(tag::AFFECTED_SOP_CLASS_UID).unwrap().as_deref(),
        Some("1.2.840.10008.5.1.4.1.1.2")
    );
}

#[test]
fn other_built_from_scratch() {
    let m = Message::Other {
        command_field: command_field::C_CANCEL_RQ,
        message_id: None,
        message_id_being_responded_to: Some(9),
        has_dataset: false,
        command: CommandSet::new(),
    };
    let cs = CommandSet::decode(&m.encode()).unwrap();
    assert_eq!(cs.us(tag::COMMAND_FIELD).unwrap(), Some(0x0FFF));
    assert_eq!(cs.us(tag::MESSAGE_ID_BEING_RESPONDED_TO).unwrap(), Some(9));
    assert_eq!(
        cs.us(tag::COMMAND_DATA_SET_TYPE).unwrap(),
        Some(NO_DATA_SET)
    );
    assert_eq!(cs.len(), 3);
    let back = Message::from_command_set(cs.clone()).unwrap();
    assert_eq!(
        back,
        Message::Other {
            command_field: 0x0FFF,
            message_id: None,
            message_id_being_responded_to: Some(9),
            has_dataset: false,
            command: cs,
        }
    );
}

#[test]
fn store_rsp_optional_fields_round_trip_with_padding() {
    let rsp = Message::CStoreRsp(CStoreRsp {
        message_id_being_responded_to: 1,
        affected_sop_class_uid: Some("1.2.3".into()),
        affected_sop_instance_uid: None,
        status: 0xA900,
        offending_element: Some(vec![0x0010_0010, 0x7FE0_0010]),
        error_comment: Some("bad".into()),
    });
    let bytes = rsp.encode();
    assert!(bytes.len() % 2 == 0);
    // "1.2.3" is padded with NUL, "bad" with a space.
    assert!(bytes.windows(6).any(|w| w == b"1.2.3\0"));
    assert!(bytes.windows(4).any(|w| w == b"bad "));
    // Offending element: (0010,0010) then (7FE0,0010), each group LE then element LE.
    assert!(bytes
        .windows(8)
        .any(|w| w == [0x10, 0, 0x10, 0, 0xE0, 0x7F, 0x10, 0]));
    assert_eq!(Message::decode(&bytes).unwrap(), rsp);
}

#[test]
fn elements_ascending_and_group_length_exact() {
    let rq = Message::CStoreRq(CStoreRq {
        message_id: 1,
        priority: Priority::High,
        affected_sop_class_uid: "1.2".into(),
        affected_sop_instance_uid: "1.2.3".into(),
        move_originator_ae_title: Some("AE".into()),
        move_originator_message_id: Some(2),
    });
    let b = rq.encode();
    let cs = CommandSet::decode(&b).unwrap();
    let tags: Vec<u16> = cs.iter().map(|(t, _)| t).collect();
    let mut sorted = tags.clone();
    sorted.sort_unstable();
    assert_eq!(tags, sorted);
    assert_eq!(
        u32::from_le_bytes(b[8..12].try_into().unwrap()) as usize,
        b.len() - 12
    );
    assert_eq!(
        cs.us(tag::COMMAND_DATA_SET_TYPE).unwrap(),
        Some(DATA_SET_PRESENT)
    );
}

#[test]
fn decode_errors() {
    let good = cmd(C_ECHO_RQ);
    // Non-zero group.
    let mut b = good.to_vec();
    b.extend_from_slice(&[0x08, 0x00, 0x18, 0x00, 0, 0, 0, 0]);
    assert!(matches!(
        CommandSet::decode(&b),
        Err(DimseError::NotCommandGroup { .. } | DimseError::GroupLengthMismatch { .. })
    ));
    // The same, without the group length, reaches the group check.
    let no_len = &good[12..];
    let mut b = no_len.to_vec();
    b.extend_from_slice(&[0x08, 0x00, 0x18, 0x00, 0, 0, 0, 0]);
    assert_eq!(
        CommandSet::decode(&b),
        Err(DimseError::NotCommandGroup {
            group: 0x0008,
            element: 0x0018
        })
    );
    // Group length absent is accepted.
    assert!(Message::decode(no_len).is_ok());
    // Wrong group length.
    let mut b = good.to_vec();
    b[8] += 2;
    assert!(matches!(
        CommandSet::decode(&b),
        Err(DimseError::GroupLengthMismatch { .. })
    ));
    // Truncated value.
    assert!(matches!(
        CommandSet::decode(&no_len[..no_len.len() - 1]),
        Err(DimseError::Truncated { .. })
    ));
    // With the group length present, a truncated set disagrees with it first.
    assert!(matches!(
        CommandSet::decode(&good[..good.len() - 1]),
        Err(DimseError::GroupLengthMismatch { .. })
    ));
    // Missing Message ID.
    let mut cs = CommandSet::decode(good).unwrap();
    cs.remove(tag::MESSAGE_ID);
    assert_eq!(
        Message::from_command_set(cs),
        Err(DimseError::MissingElement {
            element: tag::MESSAGE_ID,
            name: "MessageID"
        })
    );
    // C-ECHO-RQ announcing a data set.
    let mut cs = CommandSet::decode(good).unwrap();
    cs.set_us(tag::COMMAND_DATA_SET_TYPE, 0x0001);
    assert!(matches!(
        Message::from_command_set(cs),
        Err(DimseError::UnexpectedDataSetType { .. })
    ));
    // US of the wrong size.
    let mut cs = CommandSet::decode(good).unwrap();
    cs.set_raw(tag::MESSAGE_ID, vec![1, 2, 3, 4]);
    assert!(matches!(
        Message::from_command_set(cs),
        Err(DimseError::InvalidValue { .. })
    ));
    // Duplicate element.
    let mut b = no_len.to_vec();
    b.extend_from_slice(&no_len[no_len.len() - 10..]);
    assert_eq!(
        CommandSet::decode(&b),
        Err(DimseError::DuplicateElement {
            element: tag::COMMAND_DATA_SET_TYPE
        })
    );
    // Unknown group 0000 elements are kept, not errors.
    let mut cs = CommandSet::decode(good).unwrap();
    cs.set_us(0x4000, 1);
    assert!(Message::from_command_set(cs).is_ok());
}

#[test]
fn max_pdv_data_limits() {
    assert_eq!(max_pdv_data(16_384), 16_378);
    assert_eq!(max_pdv_data(0), DEFAULT_CHUNK);
    assert_eq!(max_pdv_data(u32::MAX), MAX_CHUNK);
    assert_eq!(max_pdv_data(7), 1);
    assert_eq!(max_pdv_data(3), 1);
}

fn join(pdus: &[PData]) -> Vec<u8> {
    pdus.iter()
        .flat_map(|p| p.pdvs.iter().flat_map(|v| v.data.iter().copied()))
        .collect()
}

#[test]
fn fragment_command_splits_and_flags_last() {
    let c = Bytes::from_static(cmd(C_STORE_RQ));
    let pdus = fragment_command(3, c.clone(), 6 + 40);
    assert_eq!(pdus.len(), c.len().div_ceil(40));
    for (i, p) in pdus.iter().enumerate() {
        assert_eq!(p.pdvs.len(), 1);
        let v = &p.pdvs[0];
        assert!(v.is_command && v.context_id == 3 && v.data.len() <= 40);
        assert_eq!(v.is_last, i == pdus.len() - 1);
    }
    assert_eq!(join(&pdus), c);
    // Slices share the original buffer.
    assert_eq!(pdus[0].pdvs[0].data.as_ptr(), c.as_ptr());

    let empty = fragment_dataset(5, Bytes::new(), 100);
    assert_eq!(
        empty,
        vec![PData {
            pdvs: vec![Pdv {
                context_id: 5,
                is_command: false,
                is_last: true,
                data: Bytes::new()
            }]
        }]
    );
    let exact = fragment_dataset(5, vec![0u8; 20], 26);
    assert_eq!(exact.len(), 1);
    assert!(exact[0].pdvs[0].is_last);
}

#[test]
fn dataset_fragmenter_streams() {
    let data: Vec<u8> = (0..=255).cycle().take(1000).collect::<Vec<u8>>();
    let mut f = DatasetFragmenter::new(1, 1000, 6 + 300);
    let mut out = Vec::new();
    let mut pos = 0;
    let mut short = true;
    while let Some(n) = f.next_chunk_len() {
        assert!(n > 0 && n <= 300);
        // Alternate short reads and full reads.
        let take = if short { n.min(7) } else { n };
        short = !short;
        out.push(
            f.pdata_for(Bytes::copy_from_slice(&data[pos..pos + take]))
                .unwrap(),
        );
        pos += take;
    }
    assert!(f.is_finished());
    assert_eq!(join(&out), data);
    assert!(out.iter().rev().skip(1).all(|p| !p.pdvs[0].is_last));
    assert!(out.last().unwrap().pdvs[0].is_last);
    assert!(f.pdv_for(Bytes::new()).is_err());

    let mut f = DatasetFragmenter::new(1, 10, 100);
    assert!(matches!(
        f.pdv_for(Bytes::from_static(&[0; 11])),
        Err(DimseError::InvalidChunk { len: 11, max: 10 })
    ));
    assert!(f.pdv_for(Bytes::new()).is_err());
    assert!(!f.pdv_for(Bytes::from_static(&[0; 4])).unwrap().is_last);
    assert!(f.pdv_for(Bytes::from_static(&[0; 6])).unwrap().is_last);
    assert_eq!(f.next_chunk_len(), None);

    let mut f = DatasetFragmenter::new(1, 0, 100);
    assert_eq!(f.next_chunk_len(), Some(0));
    let v = f.pdv_for(Bytes::new()).unwrap();
    assert!(v.is_last && !v.is_command && v.data.is_empty());
    assert_eq!(f.next_chunk_len(), None);
}

fn pdv(ctx: u8, is_command: bool, is_last: bool, data: &[u8]) -> Pdv {
    Pdv {
        context_id: ctx,
        is_command,
        is_last,
        data: Bytes::copy_from_slice(data),
    }
}

#[test]
fn reassembles_store_with_streamed_dataset() {
    let mut r = Reassembler::new();
    let c = cmd(C_STORE_RQ);
    let mut events = Vec::new();
    for p in fragment_command(1, Bytes::copy_from_slice(c), 6 + 16) {
        events.extend(r.feed(p).unwrap());
    }
    assert_eq!(events.len(), 1);
    assert!(matches!(
        &events[0],
        Event::Command {
            message: Message::CStoreRq(_),
            context_id: 1
        }
    ));
    assert_eq!(r.current_context(), Some(1));

    // Two dataset PDVs in one PDU, then an empty last one.
    let ev = r
        .feed(PData {
            pdvs: vec![pdv(1, false, false, b"ab"), pdv(1, false, false, b"cd")],
        })
        .unwrap();
    assert_eq!(ev.len(), 2);
    let ev = r
        .feed(PData {
            pdvs: vec![pdv(1, false, true, b"")],
        })
        .unwrap();
    assert_eq!(ev, vec![Event::DatasetComplete { context_id: 1 }]);
    assert!(r.is_idle());

    // Echo: no dataset; then a last dataset fragment in the same PDU as the command.
    let echo = pdv(3, true, true, cmd(C_ECHO_RQ));
    let ev = r.feed(PData { pdvs: vec![echo] }).unwrap();
    assert!(matches!(
        &ev[..],
        [Event::Command {
            message: Message::CEchoRq(_),
            context_id: 3
        }]
    ));
    let ev = r
        .feed(PData {
            pdvs: vec![pdv(1, true, true, c), pdv(1, false, true, b"xy")],
        })
        .unwrap();
    assert_eq!(ev.len(), 3);
    assert_eq!(
        ev[1],
        Event::DatasetFragment {
            context_id: 1,
            data: Bytes::from_static(b"xy")
        }
    );
    assert_eq!(ev[2], Event::DatasetComplete { context_id: 1 });
}

#[test]
fn reassembly_protocol_errors_are_fatal_and_poison() {
    let store = cmd(C_STORE_RQ);
    let echo = cmd(C_ECHO_RQ);
    let cases: Vec<(Vec<Pdv>, DimseError)> = vec![
        (
            vec![pdv(1, false, true, b"x")],
            DimseError::UnexpectedDataset { context_id: 1 },
        ),
        (
            vec![pdv(1, true, true, echo), pdv(1, false, true, b"x")],
            DimseError::UnexpectedDataset { context_id: 1 },
        ),
        (
            vec![pdv(1, true, true, store), pdv(1, true, true, echo)],
            DimseError::CommandDuringDataset { context_id: 1 },
        ),
        (
            vec![
                pdv(1, true, false, &store[..10]),
                pdv(3, true, true, &store[10..]),
            ],
            DimseError::ContextChanged {
                expected: 1,
                got: 3,
            },
        ),
        (
            vec![pdv(1, true, true, store), pdv(3, false, true, b"x")],
            DimseError::ContextChanged {
                expected: 1,
                got: 3,
            },
        ),
        (
            vec![pdv(1, true, false, &store[..10]), pdv(1, false, true, b"x")],
            DimseError::UnexpectedDataset { context_id: 1 },
        ),
    ];
    for (pdvs, want) in cases {
        let mut r = Reassembler::new();
        let mut events = Vec::new();
        let mut got = None;
        for p in pdvs {
            if let Err(e) = r.push_pdv(p, &mut events) {
                got = Some(e);
                break;
            }
        }
        let got = got.unwrap();
        assert!(got.is_association_fatal());
        assert_eq!(got, want);
        assert_eq!(
            r.push_pdv(pdv(1, true, true, echo), &mut events),
            Err(DimseError::Poisoned)
        );
        r.reset();
        assert!(r.push_pdv(pdv(1, true, true, echo), &mut events).is_ok());
    }

    let mut r = Reassembler::with_max_command_len(100);
    assert!(r
        .feed(PData {
            pdvs: vec![pdv(1, true, false, &[0; 60])]
        })
        .is_ok());
    assert_eq!(
        r.feed(PData {
            pdvs: vec![pdv(1, true, false, &[0; 60])]
        }),
        Err(DimseError::CommandTooLong { limit: 100 })
    );
    let mut r = Reassembler::new();
    assert!(matches!(
        r.feed(PData {
            pdvs: vec![pdv(1, true, true, &[1, 2, 3])]
        }),
        Err(DimseError::Truncated { .. })
    ));
    assert!(!DimseError::InvalidChunk { len: 1, max: 0 }.is_association_fatal());
}

proptest! {
    #[test]
    fn command_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Message::decode(&bytes);
    }

    #[test]
    fn mutated_vectors_never_panic(idx in 0usize..200, val in any::<u8>(), cut in 0usize..200) {
        for v in [C_ECHO_RQ, C_ECHO_RSP, C_STORE_RQ, C_STORE_RQ_B, C_STORE_RSP, C_FIND_RQ] {
            let mut b = cmd(v).to_vec();
            if let Some(x) = b.get_mut(idx) { *x = val; }
            b.truncate(cut.max(1));
            let _ = Message::decode(&b);
        }
    }

    #[test]
    fn reassembler_never_panics(pdvs in proptest::collection::vec(
        (1u8..4, any::<bool>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..20)
    ) {
        let mut r = Reassembler::with_max_command_len(128);
        let mut events = Vec::new();
        for (ctx, c, l, d) in pdvs {
            let _ = r.push_pdv(pdv(ctx, c, l, &d), &mut events);
        }
    }

    #[test]
    fn fragment_then_reassemble(len in 0usize..3000, max in 7u32..600, ctx in 0u8..128) {
        let ctx = ctx * 2 + 1;
        let data: Bytes = (0..len).map(|i| i as u8).collect::<Vec<u8>>().into();
        let msg = Message::CStoreRq(CStoreRq {
            message_id: 2,
            priority: Priority::Medium,
            affected_sop_class_uid: "1.2.840.10008.5.1.4.1.1.7".into(),
            affected_sop_instance_uid: "1.2.3.4.5".into(),
            move_originator_ae_title: None,
            move_originator_message_id: None,
        });
        let mut pdus = fragment_command(ctx, msg.encode(), max);
        pdus.extend(fragment_dataset(ctx, data.clone(), max));
        let mut r = Reassembler::new();
        let mut got = Vec::new();
        let mut events = Vec::new();
        for p in pdus {
            prop_assert!(p.pdvs.iter().all(|v| v.data.len() + 6 <= max as usize));
            events.extend(r.feed(p).unwrap());
        }
        prop_assert_eq!(&events[0], &Event::Command { message: msg, context_id: ctx });
        prop_assert_eq!(events.last(), Some(&Event::DatasetComplete { context_id: ctx }));
        for e in &events[1..events.len() - 1] {
            match e {
                Event::DatasetFragment { data, .. } => got.extend_from_slice(data),
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        prop_assert_eq!(got, data.to_vec());
        prop_assert!(r.is_idle());
    }
}
