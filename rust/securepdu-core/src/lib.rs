//! Sans-IO core of securepdu: the DICOM Upper Layer protocol (PS3.8) and DIMSE
//! message framing (PS3.7), with no sockets, threads or clocks of its own.
//!
//! Layers, each usable and testable alone:
//! - [`codec`]: a bounds-checked byte reader shared by every decoder;
//! - [`pdu`]: the seven PDU types with their items and sub-items (bytes <-> values);
//! - [`association`]: the PS3.8 §9.2 state machine, driven by bytes, primitives and
//!   a caller-supplied clock;
//! - [`dimse`]: command sets, fragmentation into PDVs and streamed reassembly;
//! - [`part10`]: the Part 10 file meta information header;
//! - [`integrity`]: keys, negotiation items, key derivation and the streaming
//!   HMAC tag of end-to-end integrity (its manifest reads and writes files).
//!
//! The blocking network layer, the only modules doing I/O (sockets, files,
//! threads): [`transport`] (addresses, connect, listen), [`conn`] (drives an
//! association over a stream), [`scu`], [`scp`] and [`store`] (durable writing of
//! received objects), and [`tls`] (TLS sessions with rustls).
#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod association;
pub mod codec;
pub mod conn;
pub mod dimse;
pub mod gateway;
pub mod integrity;
pub mod part10;
pub mod pdu;
pub mod scp;
pub mod scu;
pub mod store;
pub mod tls;
pub mod transport;
