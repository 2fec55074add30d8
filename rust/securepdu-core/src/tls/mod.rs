//! TLS for DICOM associations (PS3.15 Annex B), with rustls and the `ring`
//! crypto provider.
//!
//! - [`config`]: PEM loading, the BCP 195 / TLS 1.3-only profiles, cipher suite
//!   selection by IANA name, and the ready-to-use [`TlsClient`] / [`TlsServer`].
//! - [`stream`]: [`TlsStream`], a TLS session over a `TcpStream` that implements
//!   [`crate::conn::Transport`], with an explicit handshake bounded by a deadline.
//! - [`error`]: [`TlsError`], one variant per cause a person can act on.
//!
//! The library never installs a process-wide default crypto provider: every
//! configuration is built with an explicit provider (see [`config::provider`]).

pub mod config;
pub mod error;
pub mod stream;

pub use config::{
    TlsClient, TlsClientOptions, TlsProfile, TlsServer, TlsServerOptions, ALLOWED_CIPHERS,
};
pub use error::TlsError;
pub use stream::{certificate_subject, PeerCertificate, Stream, TlsStream};
