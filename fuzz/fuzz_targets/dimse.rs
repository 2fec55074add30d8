//! DIMSE: the command set decoder on arbitrary bytes (with encode -> decode round
//! trips), and streamed reassembly of the same bytes read as a stream of
//! P-DATA-TF PDUs, checked against decoding the concatenated command fragments
//! directly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use securepdu_core::dimse::{
    CommandSet, DimseError, Event, Message, Reassembler, DEFAULT_MAX_COMMAND_LEN,
};
use securepdu_core::pdu::{Framer, Pdu};

fuzz_target!(|data: &[u8]| {
    if let Ok(cs) = CommandSet::decode(data) {
        assert_eq!(
            CommandSet::decode(&cs.encode()).as_ref(),
            Ok(&cs),
            "command set round trip"
        );
    }
    if let Ok(msg) = Message::decode(data) {
        let again = Message::decode(&msg.encode());
        assert_eq!(again.as_ref(), Ok(&msg), "message round trip");
    }
    reassemble(data);
});

fn reassemble(data: &[u8]) {
    let cap = [64, 256, DEFAULT_MAX_COMMAND_LEN][data.len() % 3];
    let mut r = Reassembler::with_max_command_len(cap);
    // What the reassembler should be buffering: this message's command fragments.
    let mut command = Vec::new();
    let mut in_dataset: Option<u8> = None;
    let mut framer = Framer::new(1 << 20);
    framer.feed(data);
    while let Ok(Some(pdu)) = framer.next_pdu() {
        let Pdu::PData(pdata) = pdu else { continue };
        for pdv in pdata.pdvs {
            let (ctx, is_command, data) = (pdv.context_id, pdv.is_command, pdv.data.clone());
            let mut events = Vec::new();
            if let Err(e) = r.push_pdv(pdv, &mut events) {
                if let DimseError::CommandTooLong { limit } = e {
                    assert!(command.len() + data.len() > limit);
                }
                // Poisoned until reset, then usable again.
                let mut more = Vec::new();
                let probe = securepdu_core::pdu::Pdv {
                    context_id: 1,
                    is_command: true,
                    is_last: false,
                    data: bytes::Bytes::new(),
                };
                assert_eq!(
                    r.push_pdv(probe.clone(), &mut more),
                    Err(DimseError::Poisoned)
                );
                r.reset();
                assert!(r.is_idle());
                assert_eq!(r.push_pdv(probe, &mut more), Ok(()));
                return;
            }
            if is_command {
                assert_eq!(in_dataset, None, "command accepted inside a data set");
                command.extend_from_slice(&data);
                assert!(command.len() <= cap, "command buffered past the cap");
            }
            for event in events {
                match event {
                    Event::Command {
                        message,
                        context_id,
                    } => {
                        assert_eq!(context_id, ctx);
                        assert_eq!(Message::decode(&command).as_ref(), Ok(&message));
                        command.clear();
                        if message.has_dataset() {
                            in_dataset = Some(ctx);
                        }
                    }
                    Event::DatasetFragment {
                        context_id,
                        data: got,
                    } => {
                        assert!(!is_command && !got.is_empty());
                        assert_eq!((Some(context_id), &got), (in_dataset, &data));
                    }
                    Event::DatasetComplete { context_id } => {
                        assert_eq!(in_dataset, Some(context_id));
                        in_dataset = None;
                    }
                }
            }
            let idle = command.is_empty() && in_dataset.is_none();
            assert_eq!(r.is_idle(), idle && r.current_context().is_none());
            if let Some(c) = in_dataset {
                assert_eq!(r.current_context(), Some(c));
            }
        }
    }
}
