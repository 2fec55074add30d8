//! Bindings for end-to-end integrity: key parsing, the streaming HMAC (exposed so
//! tests can check it against Python's `hmac`), and the at-rest manifest check.

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::PyBytes;
use securepdu_core::integrity::{
    verify_dir as core_verify, HmacSha256, IntegrityConfig, IntegrityKey, Policy,
};
use securepdu_core::transport::NetError;

use crate::error::Error;

/// Parses the key text (`key_id:hex`), mapping failures to IntegrityError.
pub(crate) fn parse_key(text: &str) -> PyResult<IntegrityKey> {
    Ok(IntegrityKey::parse(text).map_err(|e| Error::from(NetError::Integrity(e)))?)
}

/// The (policy, key text) pair from `securepdu.integrity.resolve_integrity`.
pub(crate) fn config(setting: Option<(String, String)>) -> PyResult<Option<IntegrityConfig>> {
    let Some((policy, text)) = setting else {
        return Ok(None);
    };
    let policy: Policy = policy
        .parse()
        .map_err(|e| Error::from(NetError::Integrity(e)))?;
    Ok(Some(IntegrityConfig::new(parse_key(&text)?, policy)))
}

/// The key id of a key given as text; raises ValueError (without quoting the text)
/// when it is not a valid key.
#[pyfunction]
pub(crate) fn integrity_key_id(text: &str) -> PyResult<String> {
    IntegrityKey::parse(text)
        .map(|k| k.id().to_owned())
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// HMAC-SHA256 of the concatenated chunks, fed one by one to the same streaming
/// code the transfers use.
#[pyfunction]
pub(crate) fn hmac_sha256_chunks<'py>(
    py: Python<'py>,
    key: &[u8],
    chunks: Vec<PyBackedBytes>,
) -> Bound<'py, PyBytes> {
    let mut mac = HmacSha256::new(key);
    for chunk in &chunks {
        mac.update(chunk);
    }
    PyBytes::new(py, &mac.finish())
}

/// Re-checks a storage folder against its manifest: (ok, changed, missing,
/// unknown, bad lines, macs checked).
#[pyfunction]
#[pyo3(signature = (path, key_text=None))]
#[allow(clippy::type_complexity)]
pub(crate) fn verify_dir(
    py: Python<'_>,
    path: PathBuf,
    key_text: Option<String>,
) -> PyResult<(
    Vec<String>,
    Vec<String>,
    Vec<String>,
    Vec<String>,
    Vec<(usize, String)>,
    bool,
)> {
    let key = key_text.as_deref().map(parse_key).transpose()?;
    let report = py
        .detach(|| core_verify(&path, key.as_ref()))
        .map_err(|e| Error::from(NetError::Integrity(e)))?;
    Ok((
        report.ok,
        report.changed,
        report.missing,
        report.unknown,
        report.bad_lines,
        report.mac_checked,
    ))
}
