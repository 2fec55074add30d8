//! Throwaway certificates for `securepdu demo`: a private CA, a server
//! certificate for the loopback names and a client certificate, made in memory.

use std::collections::HashMap;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

fn failed(err: rcgen::Error) -> PyErr {
    PyRuntimeError::new_err(format!("cannot make the demo certificates: {err}"))
}

/// PEM text of a fresh demo PKI: "ca_cert", "server_cert", "server_key",
/// "client_cert", "client_key". The server certificate is valid for localhost,
/// 127.0.0.1 and ::1; the client's common name is SECUREPDU-DEMO. Nothing is
/// written to disk here.
#[pyfunction]
pub(crate) fn demo_pki(py: Python<'_>) -> PyResult<HashMap<&'static str, String>> {
    py.detach(|| {
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.distinguished_name
            .push(DnType::CommonName, "securepdu demo CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().map_err(failed)?;
        let ca_cert = ca.self_signed(&ca_key).map_err(failed)?;

        let issue = |cn: &str, sans: &[&str]| -> PyResult<(String, String)> {
            let names = sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
            let mut params = CertificateParams::new(names).map_err(failed)?;
            params.distinguished_name.push(DnType::CommonName, cn);
            let key = KeyPair::generate().map_err(failed)?;
            let cert = params.signed_by(&key, &ca_cert, &ca_key).map_err(failed)?;
            Ok((cert.pem(), key.serialize_pem()))
        };
        let (server_cert, server_key) =
            issue("SECUREPDU-DEMO-SCP", &["localhost", "127.0.0.1", "::1"])?;
        let (client_cert, client_key) = issue("SECUREPDU-DEMO", &[])?;
        Ok(HashMap::from([
            ("ca_cert", ca_cert.pem()),
            ("server_cert", server_cert),
            ("server_key", server_key),
            ("client_cert", client_cert),
            ("client_key", client_key),
        ]))
    })
}
