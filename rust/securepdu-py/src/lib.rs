//! The `securepdu._core` extension module: thin bindings over securepdu-core.
//!
//! The Python package (`python/securepdu`) re-exports everything public from
//! here; the value classes and exceptions are defined in Python and this module
//! builds and reads them.

mod demo;
mod error;
mod fsm;
mod gateway;
mod integrity;
mod net;
mod pdu;
mod serve;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use securepdu_core::pdu::Pdu;

use crate::error::Error;

/// Decodes one whole PDU (bytes or bytearray) into a `securepdu.pdu` value.
///
/// Raises `securepdu.errors.PDUDecodeError` for invalid bytes.
#[pyfunction]
#[pyo3(signature = (data, /))]
fn decode_pdu<'py>(py: Python<'py>, data: PyBackedBytes) -> PyResult<Bound<'py, PyAny>> {
    let len = data.len();
    // Zero-copy: PDV payloads are slices of this buffer until turned into bytes objects.
    let buf = bytes::Bytes::from_owner(data);
    let decoded = if len >= pdu::DETACH_THRESHOLD {
        // Keep a handle so the Python buffer is released here, attached, and not
        // inside the detached closure (where dropping it would defer the decref).
        let keep = buf.clone();
        let decoded = py.detach(move || Pdu::decode(buf));
        drop(keep);
        decoded
    } else {
        Pdu::decode(buf)
    };
    let decoded = decoded.map_err(Error::from)?;
    pdu::to_py(py, &decoded)
}

/// Encodes a `securepdu.pdu` value into the bytes of one PDU.
///
/// Raises `securepdu.errors.PDUEncodeError` for values that cannot be encoded and
/// `TypeError` for objects that are not PDUs or hold fields of the wrong type.
#[pyfunction]
#[pyo3(signature = (pdu, /))]
fn encode_pdu<'py>(py: Python<'py>, pdu: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let value = pdu::from_py(pdu)?;
    let encoded = if pdu::payload_len(&value) >= pdu::DETACH_THRESHOLD {
        py.detach(|| value.encode())
    } else {
        value.encode()
    };
    let encoded = encoded.map_err(Error::from)?;
    Ok(PyBytes::new(py, &encoded))
}

/// The compiled core of securepdu.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // Benchmarks refuse to time a debug build by mistake.
    m.add(
        "BUILD_PROFILE",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    )?;
    m.add_function(wrap_pyfunction!(decode_pdu, m)?)?;
    m.add_function(wrap_pyfunction!(encode_pdu, m)?)?;
    m.add_function(wrap_pyfunction!(fsm::transition_table, m)?)?;
    m.add_function(wrap_pyfunction!(fsm::states, m)?)?;
    m.add_function(wrap_pyfunction!(fsm::events, m)?)?;
    m.add_function(wrap_pyfunction!(fsm::actions, m)?)?;
    m.add_function(wrap_pyfunction!(net::read_file_meta, m)?)?;
    m.add_function(wrap_pyfunction!(demo::demo_pki, m)?)?;
    m.add_function(wrap_pyfunction!(integrity::integrity_key_id, m)?)?;
    m.add_function(wrap_pyfunction!(integrity::hmac_sha256_chunks, m)?)?;
    m.add_function(wrap_pyfunction!(integrity::verify_dir, m)?)?;
    m.add_function(wrap_pyfunction!(net::parse_file_meta, m)?)?;
    m.add_class::<net::FileMeta>()?;
    m.add_class::<net::ScuAssociationPy>()?;
    m.add_class::<net::StorageServer>()?;
    m.add_class::<gateway::Gateway>()?;
    Ok(())
}
