//! Why a TLS connection could not be set up, in terms a person can act on.

use std::path::PathBuf;

use rustls::{AlertDescription, CertificateError, PeerIncompatible};

/// A TLS failure. Each variant names a cause; [`TlsError::Other`] keeps the
/// rustls message for the rest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The peer's certificate chain does not lead to a CA we trust.
    #[error("the peer's certificate is not issued by a trusted CA (check the CA file)")]
    UntrustedIssuer,
    /// The peer's certificate has expired.
    #[error("the peer's certificate has expired")]
    Expired,
    /// The peer's certificate is not valid yet (check the clocks).
    #[error("the peer's certificate is not valid yet (check both clocks)")]
    NotYetValid,
    /// The server's certificate is not valid for the name or address we connected to.
    #[error("the server's certificate is not valid for {expected:?} (wrong host name or IP address; see server_name / verify_hostname)")]
    WrongHostName {
        /// The host name or IP address we expected.
        expected: String,
    },
    /// The server requires a client certificate and none was sent (on the SCP:
    /// the client sent none; on the SCU: the server asked for one).
    #[error("a client certificate is required but none was presented")]
    ClientCertificateMissing,
    /// The client's certificate was refused (on the SCP: why; on the SCU: the
    /// server's alert).
    #[error("the client certificate was refused: {reason}")]
    ClientCertificateRefused {
        /// Why, as far as known.
        reason: String,
    },
    /// The peer refused our (server) certificate: it sent this alert.
    #[error("the peer refused our certificate (alert: {alert})")]
    CertificateRefusedByPeer {
        /// The TLS alert received.
        alert: String,
    },
    /// No TLS version both sides allow (e.g. TLS 1.3 only against TLS 1.2 only).
    #[error("no TLS protocol version in common with the peer (TLS 1.2/1.3 allowed here)")]
    NoCommonProtocolVersion,
    /// No cipher suite (or key exchange group) both sides allow.
    #[error("no cipher suite, key exchange group or signature scheme in common with the peer (see the cipher list)")]
    NoCommonCipherSuite,
    /// The peer spoke plain DICOM (first byte shown) to our TLS port.
    #[error("the peer sent plain (non-TLS) data to a TLS port (first byte 0x{first_byte:02X}; 0x01 is an A-ASSOCIATE-RQ): enable TLS on the peer")]
    PlainTcpToTlsPort {
        /// First byte received.
        first_byte: u8,
    },
    /// We spoke TLS and the peer answered with non-TLS data: it is not a TLS port.
    #[error("the peer answered the TLS handshake with non-TLS data (first byte 0x{first_byte:02X}; 0x07 is an A-ABORT): the port is not a TLS port")]
    TlsToPlainPort {
        /// First byte received.
        first_byte: u8,
    },
    /// The handshake did not complete in time.
    #[error("the TLS handshake did not complete in time")]
    HandshakeTimeout,
    /// The peer closed the connection during the handshake.
    #[error("the peer closed the connection during the TLS handshake (is it a TLS port? does it accept our certificate?)")]
    ClosedDuringHandshake,
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {why}")]
    BadPem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// An unknown or refused cipher suite name.
    #[error("cipher suite {name:?} is not allowed; allowed: {allowed} (CBC, NULL, RC4, export and TLS 1.0/1.1 suites are not available: rustls does not implement them)")]
    InvalidCipherName {
        /// The name given.
        name: String,
        /// The allowed names, comma separated.
        allowed: String,
    },
    /// The socket failed during the handshake.
    #[error("I/O error during the TLS handshake: {0}")]
    Io(String),
    /// Anything else (rustls' own description).
    #[error("TLS error: {0}")]
    Other(String),
}

/// Which end of the connection we are, to read an error the right way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Client,
    Server,
}

impl TlsError {
    /// Maps a rustls error. `expected_name`: the server name a client checked.
    pub(crate) fn from_rustls(e: &rustls::Error, side: Side, expected_name: Option<&str>) -> Self {
        use rustls::Error as E;
        match (e, side) {
            (E::InvalidCertificate(ce), Side::Server) => Self::ClientCertificateRefused {
                reason: Self::from_certificate_error(ce, None).to_string(),
            },
            (E::InvalidCertificate(ce), Side::Client) => {
                Self::from_certificate_error(ce, expected_name)
            }
            (E::NoCertificatesPresented, _) => Self::ClientCertificateMissing,
            (E::AlertReceived(alert), _) => Self::from_alert(*alert, side),
            (E::PeerIncompatible(p), _) => match p {
                PeerIncompatible::NoCipherSuitesInCommon | PeerIncompatible::NoKxGroupsInCommon => {
                    Self::NoCommonCipherSuite
                }
                PeerIncompatible::ServerDoesNotSupportTls12Or13
                | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
                | PeerIncompatible::SupportedVersionsExtensionRequired
                | PeerIncompatible::Tls12NotOffered
                | PeerIncompatible::Tls12NotOfferedOrEnabled => Self::NoCommonProtocolVersion,
                other => Self::Other(format!("peer incompatible: {other:?}")),
            },
            (other, _) => Self::Other(other.to_string()),
        }
    }

    fn from_certificate_error(ce: &CertificateError, expected_name: Option<&str>) -> Self {
        match ce {
            CertificateError::UnknownIssuer => Self::UntrustedIssuer,
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => Self::Expired,
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                Self::NotYetValid
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                Self::WrongHostName {
                    expected: expected_name.unwrap_or("?").to_owned(),
                }
            }
            other => Self::Other(format!("invalid certificate: {other:?}")),
        }
    }

    fn from_alert(alert: AlertDescription, side: Side) -> Self {
        match (alert, side) {
            (AlertDescription::ProtocolVersion, _) => Self::NoCommonProtocolVersion,
            (AlertDescription::InsufficientSecurity, _) => Self::NoCommonCipherSuite,
            (AlertDescription::CertificateRequired, _) => Self::ClientCertificateMissing,
            (
                AlertDescription::BadCertificate
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateRevoked
                | AlertDescription::CertificateUnknown
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::AccessDenied
                | AlertDescription::DecryptError,
                Side::Client,
            ) => Self::ClientCertificateRefused {
                reason: format!("the server sent the alert {alert:?}"),
            },
            (
                AlertDescription::BadCertificate
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateRevoked
                | AlertDescription::CertificateUnknown
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::DecryptError,
                Side::Server,
            ) => Self::CertificateRefusedByPeer {
                alert: format!("{alert:?}"),
            },
            // rustls (and most stacks) send handshake_failure when nothing
            // in the offer is acceptable: suites, groups or signature schemes.
            (AlertDescription::HandshakeFailure, _) => Self::NoCommonCipherSuite,
            (other, _) => Self::Other(format!("the peer sent the alert {other:?}")),
        }
    }
}
