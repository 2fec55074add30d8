//! The one place where Rust errors become Python exceptions.
//!
//! The exception classes are defined in `securepdu/errors.py` (so they pickle and
//! carry docstrings) and imported here; everything the bindings can fail with is
//! an [`Error`], converted by `impl From<Error> for PyErr`.

use std::fmt;

use pyo3::exceptions::{PyAttributeError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use securepdu_core::pdu::{DecodeError, EncodeError};
use securepdu_core::tls::TlsError;
use securepdu_core::transport::NetError;

pyo3::import_exception!(securepdu.errors, PDUDecodeError);
pyo3::import_exception!(securepdu.errors, PDUEncodeError);
pyo3::import_exception!(securepdu.errors, AssociationRejected);
pyo3::import_exception!(securepdu.errors, AssociationAborted);
pyo3::import_exception!(securepdu.errors, ProtocolError);
pyo3::import_exception!(securepdu.errors, LocalProtocolError);
pyo3::import_exception!(securepdu.errors, NetworkError);
pyo3::import_exception!(securepdu.errors, TimeoutError);
pyo3::import_exception!(securepdu.errors, SecurePDUError);
pyo3::import_exception!(securepdu.errors, TLSError);
pyo3::import_exception!(securepdu.errors, IntegrityError);
pyo3::import_exception!(securepdu.errors, TLSConfigError);
pyo3::import_exception!(securepdu.errors, UntrustedCertificateError);
pyo3::import_exception!(securepdu.errors, CertificateExpiredError);
pyo3::import_exception!(securepdu.errors, HostnameMismatchError);
pyo3::import_exception!(securepdu.errors, ClientCertificateError);
pyo3::import_exception!(securepdu.errors, NoCommonTLSParametersError);
pyo3::import_exception!(securepdu.errors, PlainTCPToTLSPortError);
pyo3::import_exception!(securepdu.errors, TLSToPlainPortError);

/// Everything the bindings can fail with.
#[derive(Debug)]
pub(crate) enum Error {
    /// Bytes are not a valid PDU.
    Decode(DecodeError),
    /// A PDU value is valid Python but cannot be encoded.
    Encode(EncodeError),
    /// A field of a Python PDU value could not be read or converted; `path` names it
    /// (e.g. `presentation_contexts[0].id`).
    Field {
        /// Dotted path of the field, relative to the PDU.
        path: String,
        /// The Python error raised while reading or converting it.
        err: PyErr,
    },
    /// The network layer failed (connect, negotiate, transfer, serve).
    Net(NetError),
    /// Any other Python error, passed through unchanged.
    Python(PyErr),
}

impl Error {
    /// Wraps a conversion error of the field `name`.
    pub(crate) fn field(name: &str, err: impl Into<PyErr>) -> Self {
        Error::Field {
            path: name.to_owned(),
            err: err.into(),
        }
    }

    /// Prefixes the path of a field error with the enclosing field, e.g.
    /// `user_info` + `max_pdu_length`.
    pub(crate) fn within(self, prefix: impl fmt::Display) -> Self {
        match self {
            Error::Field { path, err } => Error::Field {
                path: format!("{prefix}.{path}"),
                err,
            },
            Error::Python(err) => Error::Field {
                path: prefix.to_string(),
                err,
            },
            other => other,
        }
    }
}

impl From<PyErr> for Error {
    fn from(err: PyErr) -> Self {
        Error::Python(err)
    }
}

impl From<DecodeError> for Error {
    fn from(err: DecodeError) -> Self {
        Error::Decode(err)
    }
}

impl From<EncodeError> for Error {
    fn from(err: EncodeError) -> Self {
        Error::Encode(err)
    }
}

impl From<NetError> for Error {
    fn from(err: NetError) -> Self {
        Error::Net(err)
    }
}

/// Each network failure becomes the exception class that names its cause, with the
/// DICOM codes as attributes and the core's sentence as the message.
fn net_error(err: NetError) -> PyErr {
    let message = err.to_string();
    match err {
        NetError::Io(e) => match e.raw_os_error() {
            Some(errno) => NetworkError::new_err((errno, message)),
            None => NetworkError::new_err(message),
        },
        NetError::Timeout { .. } => TimeoutError::new_err(message),
        NetError::Rejected {
            result,
            source,
            reason,
        } => AssociationRejected::new_err((message, result, source, reason)),
        NetError::Aborted { source, reason } => {
            AssociationAborted::new_err((message, source, reason))
        }
        NetError::ProviderAborted { .. } | NetError::Protocol(_) | NetError::Dimse(_) => {
            ProtocolError::new_err(message)
        }
        NetError::Local(_) => LocalProtocolError::new_err(message),
        NetError::Part10(_) | NetError::InvalidArgument(_) => PyValueError::new_err(message),
        NetError::Tls(e) => tls_error(&e, message),
        NetError::Integrity(_) => IntegrityError::new_err(message),
        _ => SecurePDUError::new_err(message),
    }
}

/// The `securepdu.errors.TLSError` subclass that names the cause.
fn tls_error(err: &TlsError, message: String) -> PyErr {
    match err {
        TlsError::UntrustedIssuer => UntrustedCertificateError::new_err(message),
        TlsError::Expired | TlsError::NotYetValid => CertificateExpiredError::new_err(message),
        TlsError::WrongHostName { .. } => HostnameMismatchError::new_err(message),
        TlsError::ClientCertificateMissing | TlsError::ClientCertificateRefused { .. } => {
            ClientCertificateError::new_err(message)
        }
        TlsError::NoCommonProtocolVersion | TlsError::NoCommonCipherSuite => {
            NoCommonTLSParametersError::new_err(message)
        }
        TlsError::PlainTcpToTlsPort { .. } => PlainTCPToTLSPortError::new_err(message),
        TlsError::TlsToPlainPort { .. } => TLSToPlainPortError::new_err(message),
        TlsError::HandshakeTimeout => TimeoutError::new_err(message),
        TlsError::BadPem { .. } | TlsError::InvalidCipherName { .. } => {
            TLSConfigError::new_err(message)
        }
        _ => TLSError::new_err(message),
    }
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        match err {
            Error::Decode(e) => PDUDecodeError::new_err((
                e.to_string(),
                e.abort_source() as u8,
                e.abort_reason() as u8,
            )),
            Error::Encode(e) => PDUEncodeError::new_err(e.to_string()),
            Error::Field { path, err } => Python::attach(|py| {
                let message = format!("{path}: {}", err.value(py));
                // A value out of range is an encode error; a wrong type stays a TypeError.
                let new = if err.is_instance_of::<PyOverflowError>(py)
                    || err.is_instance_of::<PyValueError>(py)
                {
                    PDUEncodeError::new_err(message)
                } else if err.is_instance_of::<PyTypeError>(py)
                    || err.is_instance_of::<PyAttributeError>(py)
                {
                    PyTypeError::new_err(message)
                } else {
                    return err;
                };
                new.set_cause(py, Some(err));
                new
            }),
            Error::Net(e) => net_error(e),
            Error::Python(err) => err,
        }
    }
}
