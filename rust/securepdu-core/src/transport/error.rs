//! The one error type of the network layer, and the timeouts every association uses.

use std::io;
use std::time::Duration;

use crate::association::LocalError;
use crate::dimse::DimseError;
use crate::integrity::IntegrityError;
use crate::part10::Part10Error;
use crate::pdu::AbortReason;
use crate::tls::TlsError;

/// Why a network operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum NetError {
    /// The operating system refused a socket or file operation.
    Io(io::Error),
    /// Nothing arrived in time. The association has been aborted.
    Timeout {
        /// What we were waiting for ("A-ASSOCIATE response", "C-STORE response", ...).
        what: &'static str,
    },
    /// The peer answered our A-ASSOCIATE-RQ with an A-ASSOCIATE-RJ (raw codes of
    /// PS3.8 Table 9-21).
    Rejected {
        /// 1 permanent, 2 transient.
        result: u8,
        /// 1 service-user, 2 service-provider (ACSE), 3 service-provider (presentation).
        source: u8,
        /// Reason/diagnostic, meaning depends on `source`.
        reason: u8,
    },
    /// The peer sent an A-ABORT (raw codes of PS3.8 Table 9-26).
    Aborted {
        /// 0 service-user, 2 service-provider.
        source: u8,
        /// Reason/diagnostic (significant when `source` is 2).
        reason: u8,
    },
    /// We (the service-provider) aborted: the peer broke the protocol, or the
    /// connection closed under us.
    ProviderAborted {
        /// The reason sent in the A-ABORT (if one could be sent).
        reason: AbortReason,
        /// What happened.
        detail: String,
    },
    /// The peer did something the DICOM protocol does not allow, or the
    /// association is already over.
    Protocol(String),
    /// The local state machine refused a primitive (e.g. storing after release).
    Local(LocalError),
    /// A DIMSE message could not be decoded or fragmented.
    Dimse(DimseError),
    /// A Part 10 file could not be read.
    Part10(Part10Error),
    /// The caller passed something unusable (bad AE title, unknown context, ...).
    InvalidArgument(String),
    /// TLS could not be set up or failed (see [`TlsError`] for the causes).
    Tls(TlsError),
    /// End-to-end integrity could not be established: the peer holds another key
    /// for the key id, or integrity is required and the peer does not support it.
    /// The association has been aborted.
    Integrity(IntegrityError),
}

// Written by hand: thiserror would take the `source` fields below for error sources.
impl std::fmt::Display for NetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "I/O error: {e}"),
            Self::Timeout { what } => write!(f, "timed out waiting for {what}"),
            Self::Rejected {
                result,
                source,
                reason,
            } => write!(
                f,
                "peer rejected the association: {}",
                describe_reject(*result, *source, *reason)
            ),
            Self::Aborted { source, reason } => write!(
                f,
                "peer aborted the association: {}",
                describe_abort(*source, *reason)
            ),
            Self::ProviderAborted { detail, .. } => write!(f, "association aborted: {detail}"),
            Self::Protocol(m) => write!(f, "protocol error: {m}"),
            Self::Local(e) => write!(f, "{e}"),
            Self::Dimse(e) => write!(f, "DIMSE error: {e}"),
            Self::Part10(e) => write!(f, "not a usable DICOM file: {e}"),
            Self::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Self::Tls(e) => write!(f, "TLS: {e}"),
            Self::Integrity(e) => write!(f, "integrity: {e}"),
        }
    }
}

impl std::error::Error for NetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Local(e) => Some(e),
            Self::Dimse(e) => Some(e),
            Self::Part10(e) => Some(e),
            Self::Tls(e) => Some(e),
            Self::Integrity(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for NetError {
    /// A TLS failure met while reading or writing travels inside an
    /// `io::Error`; it comes back out as [`NetError::Tls`].
    fn from(e: io::Error) -> Self {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<TlsError>())
        {
            Some(tls) => Self::Tls(tls.clone()),
            None => Self::Io(e),
        }
    }
}

impl From<TlsError> for NetError {
    fn from(e: TlsError) -> Self {
        Self::Tls(e)
    }
}

impl From<IntegrityError> for NetError {
    fn from(e: IntegrityError) -> Self {
        Self::Integrity(e)
    }
}

impl From<LocalError> for NetError {
    fn from(e: LocalError) -> Self {
        Self::Local(e)
    }
}

impl From<DimseError> for NetError {
    fn from(e: DimseError) -> Self {
        Self::Dimse(e)
    }
}

impl From<Part10Error> for NetError {
    fn from(e: Part10Error) -> Self {
        Self::Part10(e)
    }
}

/// Timeouts of one association, close to dcmtk's and pynetdicom's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connection establishment, all resolved addresses together (30 s).
    pub connect: Duration,
    /// ARTIM, and waiting for A-ASSOCIATE-AC/RJ and A-RELEASE-RP (30 s).
    pub acse: Duration,
    /// Waiting for a DIMSE response, or for the rest of a message (60 s).
    pub dimse: Duration,
    /// SCP: how long an established association may stay silent (120 s).
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(30),
            acse: Duration::from_secs(30),
            dimse: Duration::from_secs(60),
            idle: Duration::from_secs(120),
        }
    }
}

/// A sentence for an A-ASSOCIATE-RJ (PS3.8 Table 9-21), e.g.
/// "called AE title not recognized (permanent)".
pub fn describe_reject(result: u8, source: u8, reason: u8) -> String {
    let why = match (source, reason) {
        (1, 1) => "no reason given",
        (1, 2) => "application context name not supported",
        (1, 3) => "calling AE title not recognized",
        (1, 7) => "called AE title not recognized",
        (2, 1) => "no reason given (ACSE)",
        (2, 2) => "protocol version not supported",
        (3, 1) => "temporary congestion",
        (3, 2) => "local limit exceeded (too many associations)",
        _ => "unknown reason",
    };
    let kind = match result {
        1 => "permanent",
        2 => "transient, try again later",
        _ => "unknown result",
    };
    format!("{why} ({kind}; result {result}, source {source}, reason {reason})")
}

/// A sentence for an A-ABORT (PS3.8 Table 9-26).
pub fn describe_abort(source: u8, reason: u8) -> String {
    match source {
        0 => "aborted by the peer application (A-ABORT, service-user)".to_owned(),
        2 => {
            let why = match reason {
                0 => "reason not specified",
                1 => "unrecognized PDU",
                2 => "unexpected PDU",
                4 => "unrecognized PDU parameter",
                5 => "unexpected PDU parameter",
                6 => "invalid PDU parameter value",
                _ => "unknown reason",
            };
            format!("aborted by the peer's DICOM service (A-P-ABORT): {why}")
        }
        _ => format!("A-ABORT with source {source}, reason {reason}"),
    }
}
