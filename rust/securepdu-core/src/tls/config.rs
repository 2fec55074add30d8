//! TLS configuration: profiles, cipher suites, PEM files, client and server
//! configurations.
//!
//! Profiles (PS3.15 Annex B): [`TlsProfile::Bcp195`] is the BCP 195 (RFC 8996,
//! RFC 9325) profile of B.12: TLS 1.2 and 1.3, ECDHE key exchange, AEAD suites
//! only. [`TlsProfile::Tls13Only`] narrows it to TLS 1.3. TLS 1.0/1.1, SSL, NULL,
//! RC4, CBC and export suites cannot be turned on: rustls does not implement them.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme, SupportedProtocolVersion,
};

use super::error::TlsError;

/// The cipher suites securepdu can use, by IANA name (TLS 1.3 first). All are
/// AEAD with ECDHE (TLS 1.2) or TLS 1.3 key exchange.
pub const ALLOWED_CIPHERS: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// Which protocol versions are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsProfile {
    /// PS3.15 B.12 (BCP 195): TLS 1.2 and 1.3, ECDHE, AEAD suites.
    #[default]
    Bcp195,
    /// TLS 1.3 only.
    Tls13Only,
    /// TLS 1.2 only. Meant for tests and interoperability checks only.
    Tls12Only,
}

impl TlsProfile {
    fn versions(self) -> &'static [&'static SupportedProtocolVersion] {
        static BOTH: &[&SupportedProtocolVersion] =
            &[&rustls::version::TLS13, &rustls::version::TLS12];
        static V13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
        static V12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
        match self {
            Self::Bcp195 => BOTH,
            Self::Tls13Only => V13,
            Self::Tls12Only => V12,
        }
    }
}

/// rustls names TLS 1.3 suites `TLS13_...`; IANA says `TLS_...`.
fn iana_name(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    match upper.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => upper,
    }
}

/// The one place the crypto provider is chosen: `ring`, restricted to the
/// profile's versions and the requested suites (all allowed ones when
/// `ciphers` is empty). Key exchange groups are ring's defaults (X25519, P-256,
/// P-384), all ECDHE.
pub fn provider(profile: TlsProfile, ciphers: &[String]) -> Result<Arc<CryptoProvider>, TlsError> {
    let mut wanted = Vec::with_capacity(ciphers.len());
    for name in ciphers {
        let iana = iana_name(name);
        if !ALLOWED_CIPHERS.contains(&iana.as_str()) {
            return Err(TlsError::InvalidCipherName {
                name: name.clone(),
                allowed: ALLOWED_CIPHERS.join(", "),
            });
        }
        wanted.push(iana);
    }
    let mut p = ring::default_provider();
    p.cipher_suites.retain(|s| {
        let name = s.suite().as_str().map(iana_name).unwrap_or_default();
        let version_ok = profile
            .versions()
            .iter()
            .any(|v| v.version == s.version().version);
        ALLOWED_CIPHERS.contains(&name.as_str())
            && version_ok
            && (wanted.is_empty() || wanted.contains(&name))
    });
    // Preference order: the caller's list, else ALLOWED_CIPHERS (AES-128-GCM
    // first, as Mozilla's and BCP 195's examples have it). ring lists
    // AES-256-GCM first, which costs a third more AES rounds for no security
    // the profile asks for.
    let order: Vec<&str> = if wanted.is_empty() {
        ALLOWED_CIPHERS.to_vec()
    } else {
        wanted.iter().map(String::as_str).collect()
    };
    p.cipher_suites.sort_by_key(|s| {
        let name = s.suite().as_str().map(iana_name).unwrap_or_default();
        order.iter().position(|o| *o == name).unwrap_or(usize::MAX)
    });
    if p.cipher_suites.is_empty() {
        return Err(TlsError::Other(format!(
            "none of the cipher suites {ciphers:?} can be used with the {profile:?} profile"
        )));
    }
    Ok(Arc::new(p))
}

fn bad_pem(path: &Path, why: impl std::fmt::Display) -> TlsError {
    TlsError::BadPem {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

/// Reads every certificate of a PEM file (a chain or a CA bundle).
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad_pem(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_pem(path, e))?;
    if certs.is_empty() {
        return Err(bad_pem(path, "no CERTIFICATE block found"));
    }
    Ok(certs)
}

/// Reads the first private key of a PEM file: PKCS#8, PKCS#1 RSA or SEC1 EC.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        bad_pem(
            path,
            format!("no usable private key (PKCS#8, PKCS#1 RSA or SEC1 EC PEM expected): {e}"),
        )
    })
}

fn load_roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    add_roots(&mut roots, path)?;
    Ok(Arc::new(roots))
}

fn add_roots(roots: &mut RootCertStore, path: &Path) -> Result<(), TlsError> {
    for cert in load_certificates(path)? {
        roots
            .add(cert)
            .map_err(|e| bad_pem(path, format!("unusable CA certificate: {e}")))?;
    }
    Ok(())
}

/// The client's trust anchors: the CA file, and the operating system's store only
/// when asked (DICOM sites mostly run private CAs, so public CAs are not trusted by
/// default).
fn client_roots(ca: Option<&Path>, system: bool) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    if let Some(ca) = ca {
        add_roots(&mut roots, ca)?;
    }
    if system {
        let found = rustls_native_certs::load_native_certs();
        // Unusable entries in the system store are skipped, as browsers do.
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let why = found
                .errors
                .first()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "it is empty".into());
            return Err(TlsError::Other(format!(
                "no usable CA certificate in the system store ({why})"
            )));
        }
    }
    if roots.is_empty() {
        return Err(TlsError::Other(
            "a CA file (or the system store, on request) is required to verify the server".into(),
        ));
    }
    Ok(Arc::new(roots))
}

/// How an SCU sets up TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsClientOptions {
    /// PEM bundle of the CAs trusted to issue server certificates.
    pub ca_file: Option<PathBuf>,
    /// Trust the operating system's CA store too (public CAs; off by default).
    pub use_system_roots: bool,
    /// Our certificate chain (PEM), for mutual TLS.
    pub cert_chain_file: Option<PathBuf>,
    /// Our private key (PEM), with `cert_chain_file`.
    pub key_file: Option<PathBuf>,
    /// Allowed protocol versions.
    pub profile: TlsProfile,
    /// Cipher suites by IANA name; empty: all of [`ALLOWED_CIPHERS`].
    pub ciphers: Vec<String>,
    /// The name to send (SNI) and verify instead of the host connected to.
    pub server_name: Option<String>,
    /// Verify that the server certificate names the host (default true).
    ///
    /// **Turning this off lets anyone holding a certificate from a trusted CA
    /// impersonate the server.** The chain is still verified against the CA.
    pub verify_hostname: bool,
}

impl Default for TlsClientOptions {
    fn default() -> Self {
        Self {
            ca_file: None,
            use_system_roots: false,
            cert_chain_file: None,
            key_file: None,
            profile: TlsProfile::default(),
            ciphers: Vec::new(),
            server_name: None,
            verify_hostname: true,
        }
    }
}

/// A ready client configuration, cheap to clone.
#[derive(Debug, Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: Option<String>,
}

impl PartialEq for TlsClient {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config) && self.server_name == other.server_name
    }
}

impl Eq for TlsClient {}

impl TlsClient {
    /// Loads the files and builds the configuration.
    pub fn new(options: &TlsClientOptions) -> Result<Self, TlsError> {
        let provider = provider(options.profile, &options.ciphers)?;
        let roots = client_roots(options.ca_file.as_deref(), options.use_system_roots)?;
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
            .build()
            .map_err(|e| TlsError::Other(e.to_string()))?;
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(options.profile.versions())
            .map_err(|e| TlsError::Other(e.to_string()))?;
        let builder = if options.verify_hostname {
            builder.with_webpki_verifier(webpki)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(IgnoreHostName(webpki)))
        };
        let config = match (&options.cert_chain_file, &options.key_file) {
            (Some(chain), Some(key)) => builder
                .with_client_auth_cert(load_certificates(chain)?, load_private_key(key)?)
                .map_err(|e| bad_pem(key, format!("key does not fit the certificate: {e}")))?,
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(TlsError::Other(
                    "a client certificate needs both a certificate chain file and a key file"
                        .into(),
                ))
            }
        };
        Ok(Self {
            config: Arc::new(config),
            server_name: options.server_name.clone(),
        })
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// The name to send and verify when connecting to `host`: the configured
    /// server name, else `host`; IP literals (brackets and `%zone` allowed) are
    /// verified against the certificate's IP SANs.
    pub fn server_name(&self, host: &str) -> Result<ServerName<'static>, TlsError> {
        let name = self.server_name.as_deref().unwrap_or(host).trim();
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        let bare = bare.split('%').next().unwrap_or(bare);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(ServerName::IpAddress(ip.into()));
        }
        ServerName::try_from(name.to_owned())
            .map_err(|e| TlsError::Other(format!("{name:?} is not a valid server name: {e}")))
    }
}

/// Verifies the chain against the CA like webpki, but accepts a certificate
/// issued for another name. Used only when `verify_hostname` is false.
#[derive(Debug)]
struct IgnoreHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for IgnoreHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain (issuer, validity) before the name, so a
        // name error means everything else passed.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// How an SCP sets up TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsServerOptions {
    /// Our certificate chain (PEM).
    pub cert_chain_file: PathBuf,
    /// Our private key (PEM).
    pub key_file: PathBuf,
    /// PEM bundle of the CAs trusted to issue client certificates; `None`: no
    /// client authentication.
    pub ca_file: Option<PathBuf>,
    /// With a CA: refuse clients without a certificate (default true, as dcmtk).
    pub require_client_cert: bool,
    /// Allowed protocol versions.
    pub profile: TlsProfile,
    /// Cipher suites by IANA name; empty: all of [`ALLOWED_CIPHERS`].
    pub ciphers: Vec<String>,
}

impl TlsServerOptions {
    /// Options with a certificate and key, defaults for the rest.
    pub fn new(cert_chain_file: impl Into<PathBuf>, key_file: impl Into<PathBuf>) -> Self {
        Self {
            cert_chain_file: cert_chain_file.into(),
            key_file: key_file.into(),
            ca_file: None,
            require_client_cert: true,
            profile: TlsProfile::default(),
            ciphers: Vec::new(),
        }
    }
}

/// A ready server configuration, cheap to clone.
#[derive(Debug, Clone)]
pub struct TlsServer {
    config: Arc<ServerConfig>,
}

impl PartialEq for TlsServer {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config)
    }
}

impl Eq for TlsServer {}

impl TlsServer {
    /// Loads the files and builds the configuration.
    pub fn new(options: &TlsServerOptions) -> Result<Self, TlsError> {
        let provider = provider(options.profile, &options.ciphers)?;
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(options.profile.versions())
            .map_err(|e| TlsError::Other(e.to_string()))?;
        let builder = match &options.ca_file {
            Some(ca) => {
                let roots = load_roots(ca)?;
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
                let verifier = if options.require_client_cert {
                    verifier
                } else {
                    verifier.allow_unauthenticated()
                };
                builder.with_client_cert_verifier(
                    verifier
                        .build()
                        .map_err(|e| TlsError::Other(e.to_string()))?,
                )
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder
            .with_single_cert(
                load_certificates(&options.cert_chain_file)?,
                load_private_key(&options.key_file)?,
            )
            .map_err(|e| {
                bad_pem(
                    &options.key_file,
                    format!("key does not fit the certificate: {e}"),
                )
            })?;
        Ok(Self {
            config: Arc::new(config),
        })
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &CryptoProvider) -> Vec<String> {
        p.cipher_suites
            .iter()
            .map(|s| iana_name(s.suite().as_str().unwrap_or_default()))
            .collect()
    }

    /// Our preference is ALLOWED_CIPHERS' order; a caller's list is taken in
    /// its own order.
    #[test]
    fn suites_in_preference_order() {
        let all = provider(TlsProfile::Bcp195, &[]).unwrap();
        assert_eq!(names(&all), ALLOWED_CIPHERS);
        let asked = ["TLS_CHACHA20_POLY1305_SHA256", "tls13_aes_256_gcm_sha384"].map(String::from);
        let some = provider(TlsProfile::Tls13Only, &asked).unwrap();
        assert_eq!(
            names(&some),
            ["TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_256_GCM_SHA384"]
        );
    }
}
