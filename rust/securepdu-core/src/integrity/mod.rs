//! End-to-end integrity of stored objects: a keyed HMAC-SHA256 per C-STORE,
//! negotiated between securepdu peers only, and a manifest kept at rest.
//!
//! This module is sans-IO (keys, negotiation items, key derivation, the
//! streaming tag); the key file reader, the manifest writer and the verifier,
//! which touch files, live in [`manifest`].
//!
//! Wire design (see `notes/INTEGRITY_API.md`):
//! - the SCU proposes a private presentation context for [`INTEGRITY_SOP_CLASS`]
//!   (Implicit VR LE) plus a SOP Class Extended Negotiation sub-item (0x56) for it
//!   carrying an [`IntegrityOffer`] (version, key id, 32-byte nonce). A standard
//!   peer rejects the abstract syntax and ignores the 0x56 item;
//! - a securepdu SCP holding the key id accepts the context and answers with an
//!   [`IntegrityAnswer`] (version, its nonce, the key confirmation value);
//! - both sides derive a [`SessionKey`] with HKDF-SHA256 from the pre-shared key,
//!   both nonces, both AE titles and (under TLS) a TLS exporter value;
//! - for each C-STORE the SCU streams the data set through a [`Tagger`] as it
//!   sends it, then sends one PDV on the integrity context holding
//!   [`encode_tag_pdv`]; the SCP computes the same tag as it writes and compares
//!   in constant time before making the object durable.
//!
//! Tag input (HMAC-SHA256 with the session key), decided here where the design
//! note was not implementable: the note put `u64be(dataset_len)` *before* the
//! data set, but a receiver learns the data set length only at its last PDV, so
//! it could not start the HMAC in the same pass. The length is therefore bound
//! *after* the data set:
//!
//! ```text
//! "C-STORE" || u16be(message_id) || lp(sop_class) || lp(sop_instance)
//!           || lp(transfer_syntax) || dataset bytes || u64be(dataset_len)
//! ```
//!
//! where `lp(x) = u16be(len(x)) || x`. Unambiguous: every field before the data
//! set is length-prefixed and the suffix has a fixed size.

pub mod manifest;
pub mod pipeline;

use std::fmt;
use std::str::FromStr;

use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hkdf, hmac};

use crate::codec::Reader;

pub use manifest::{
    format_rfc3339, verify_dir, Manifest, ManifestEntry, VerifyReport, MANIFEST_FILE,
};
pub use pipeline::{Digests, Hasher, HasherGone, PendingDigests};

/// Abstract syntax of the private integrity presentation context (securepdu UID
/// root 1.2.826.0.1.3680043.10.1361).
pub const INTEGRITY_SOP_CLASS: &str = "1.2.826.0.1.3680043.10.1361.2.1";

/// Transfer syntax proposed for the integrity context (Implicit VR Little Endian;
/// nothing is encoded with it, but a context needs one).
pub const INTEGRITY_TRANSFER_SYNTAX: &str = "1.2.840.10008.1.2";

/// Version byte of both negotiation items.
pub const WIRE_VERSION: u8 = 1;

/// Length of each side's nonce.
pub const NONCE_LEN: usize = 32;

/// Length of a tag, a confirmation value and a session key (SHA-256).
pub const TAG_LEN: usize = 32;

/// Shortest pre-shared key (256 bits).
pub const MIN_KEY_LEN: usize = 32;

/// Longest pre-shared key accepted (a sanity bound, not a security one).
pub const MAX_KEY_LEN: usize = 1024;

/// Longest key id.
pub const MAX_KEY_ID_LEN: usize = 64;

/// Label of the TLS exporter (RFC 5705 / RFC 8446 §7.5), no context.
pub const TLS_EXPORTER_LABEL: &[u8] = b"EXPORTER-securepdu-integrity";

/// Bytes taken from the TLS exporter.
pub const TLS_EXPORTER_LEN: usize = 32;

/// Environment variable that may hold the key text (`key_id:hex`).
pub const KEY_ENV_VAR: &str = "SECUREPDU_INTEGRITY_KEY";

/// C-STORE failure status sent when the tag is wrong or missing: in the
/// "Error: cannot understand" Cxxx range of PS3.4 Table B.2-1, chosen by securepdu.
pub const INTEGRITY_CHECK_FAILED: u16 = 0xC2A0;

/// Length of the tag PDV's data: u16be(message_id) || tag.
pub const TAG_PDV_LEN: usize = 2 + TAG_LEN;

const KDF_INFO: &[u8] = b"securepdu integrity v1";
const CONFIRM_LABEL: &[u8] = b"securepdu integrity confirm v1";
const TAG_LABEL: &[u8] = b"C-STORE";

/// What went wrong with integrity protection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrityError {
    /// The key text is unusable (the message never contains key material).
    #[error("invalid integrity key: {0}")]
    InvalidKey(String),
    /// A policy name other than off, opportunistic or required.
    #[error("integrity policy {0:?}: expected off, opportunistic or required")]
    InvalidPolicy(String),
    /// The key file could not be read.
    #[error("cannot read integrity key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The peer's key confirmation value is wrong: it holds another key under
    /// the same key id.
    #[error(
        "the peer holds a different key for integrity key id {key_id:?} (key confirmation failed)"
    )]
    KeyMismatch {
        /// The key id both sides named.
        key_id: String,
    },
    /// Integrity is required but the peer did not agree to it.
    #[error("the peer does not support securepdu integrity (required): {0}")]
    Unsupported(String),
    /// A negotiation item or a tag PDV could not be decoded.
    #[error("malformed integrity data: {0}")]
    Malformed(String),
    /// The operating system's random generator or the KDF failed.
    #[error("integrity cryptography failed: {0}")]
    Crypto(&'static str),
    /// A file of the storage directory could not be read (verification).
    #[error("{0}")]
    Io(String),
}

/// When integrity protection is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Policy {
    /// Never: the SCU does not propose it; the SCP rejects the integrity context
    /// like a standard peer.
    Off,
    /// When the peer supports it (the default when a key is given).
    #[default]
    Opportunistic,
    /// Always: an association without it is refused (SCU: aborted with
    /// [`IntegrityError::Unsupported`]; SCP: A-ASSOCIATE-RJ 1/1/1).
    Required,
}

impl Policy {
    /// `"off"`, `"opportunistic"` or `"required"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Opportunistic => "opportunistic",
            Self::Required => "required",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Policy {
    type Err = IntegrityError;

    /// Parses `off`, `opportunistic` or `required` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(Self::Off),
            "opportunistic" => Ok(Self::Opportunistic),
            "required" => Ok(Self::Required),
            _ => Err(IntegrityError::InvalidPolicy(s.to_owned())),
        }
    }
}

/// A pre-shared integrity key: a key id (1-64 printable ASCII characters other
/// than space and `:`) and a secret of at least 32 bytes. `Debug` never shows the
/// secret; equality compares secrets in constant time.
#[derive(Clone)]
pub struct IntegrityKey {
    id: String,
    secret: Vec<u8>,
}

impl IntegrityKey {
    /// A key from its parts.
    pub fn new(id: &str, secret: &[u8]) -> Result<Self, IntegrityError> {
        validate_key_id(id.as_bytes()).map_err(IntegrityError::InvalidKey)?;
        if secret.len() < MIN_KEY_LEN {
            return Err(IntegrityError::InvalidKey(format!(
                "the key must be at least {MIN_KEY_LEN} bytes ({} hex digits)",
                MIN_KEY_LEN * 2
            )));
        }
        if secret.len() > MAX_KEY_LEN {
            return Err(IntegrityError::InvalidKey(format!(
                "the key must be at most {MAX_KEY_LEN} bytes"
            )));
        }
        Ok(Self {
            id: id.to_owned(),
            secret: secret.to_vec(),
        })
    }

    /// Parses the key text: one line `key_id:hex` (whitespace around the line and
    /// around the hex is ignored; blank lines are allowed, a second line is not).
    /// Error messages never quote the text.
    pub fn parse(text: &str) -> Result<Self, IntegrityError> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let line = lines.next().ok_or_else(|| {
            IntegrityError::InvalidKey("empty; expected one line key_id:hex".into())
        })?;
        if lines.next().is_some() {
            return Err(IntegrityError::InvalidKey(
                "more than one line; expected one line key_id:hex".into(),
            ));
        }
        let (id, hex) = line.split_once(':').ok_or_else(|| {
            IntegrityError::InvalidKey("no ':' found; expected key_id:hex".into())
        })?;
        let id = id.trim();
        let secret = decode_hex(hex.trim()).ok_or_else(|| {
            IntegrityError::InvalidKey(
                "the part after ':' must be an even number of hex digits".into(),
            )
        })?;
        Self::new(id, &secret)
    }

    /// The key id (not secret: it is sent in the A-ASSOCIATE-RQ).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secret. Never log it.
    pub(crate) fn secret(&self) -> &[u8] {
        &self.secret
    }
}

impl fmt::Debug for IntegrityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntegrityKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl PartialEq for IntegrityKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && ct_eq(&self.secret, &other.secret)
    }
}

impl Eq for IntegrityKey {}

impl Drop for IntegrityKey {
    fn drop(&mut self) {
        // Best effort: do not leave the secret in freed memory.
        for b in &mut self.secret {
            *b = 0;
        }
        std::hint::black_box(&self.secret);
    }
}

/// A key and the policy to use it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityConfig {
    /// The pre-shared key.
    pub key: IntegrityKey,
    /// When to use it.
    pub policy: Policy,
}

impl IntegrityConfig {
    /// `key` with `policy`.
    pub fn new(key: IntegrityKey, policy: Policy) -> Self {
        Self { key, policy }
    }

    /// Whether the policy is not [`Policy::Off`].
    pub fn enabled(&self) -> bool {
        self.policy != Policy::Off
    }
}

/// Key ids: 1-64 bytes of printable ASCII (0x21-0x7E), no `:`.
fn validate_key_id(id: &[u8]) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_KEY_ID_LEN {
        return Err(format!("the key id must be 1-{MAX_KEY_ID_LEN} characters"));
    }
    if !id.iter().all(|&b| (0x21..=0x7e).contains(&b) && b != b':') {
        return Err("the key id must be printable ASCII without spaces or ':'".into());
    }
    Ok(())
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = hex.as_bytes();
    if bytes.is_empty() || bytes.len() % 2 != 0 {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some((nibble(*hi)? << 4) | nibble(*lo)?),
            _ => None,
        })
        .collect()
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len().saturating_mul(2));
    for &b in bytes {
        for n in [b >> 4, b & 0x0f] {
            s.push(char::from(*DIGITS.get(usize::from(n)).unwrap_or(&b'0')));
        }
    }
    s
}

/// Parses 64 hex digits into 32 bytes.
pub fn from_hex32(hex: &str) -> Option<[u8; 32]> {
    let v = decode_hex(hex)?;
    (v.len() == 32).then(|| to32(&v))
}

/// Equality of two byte strings in time independent of their contents (the
/// length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    std::hint::black_box(diff) == 0
}

/// The first 32 bytes of a digest or MAC (zero-padded if shorter).
pub(crate) fn to32(b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, i) in out.iter_mut().zip(b) {
        *o = *i;
    }
    out
}

/// 32 bytes from the operating system's random generator.
pub fn random_nonce() -> Result<[u8; NONCE_LEN], IntegrityError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| IntegrityError::Crypto("the system random generator failed"))?;
    Ok(nonce)
}

/// The SCU's service-class-application-information of the 0x56 sub-item for
/// [`INTEGRITY_SOP_CLASS`]: version u8 (1) | key_id_len u8 | key_id | nonce (32).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityOffer {
    /// The key id the SCU will use.
    pub key_id: String,
    /// The SCU's nonce.
    pub nonce: [u8; NONCE_LEN],
}

impl IntegrityOffer {
    /// Encodes the item value; fails on an invalid key id.
    pub fn encode(&self) -> Result<Vec<u8>, IntegrityError> {
        validate_key_id(self.key_id.as_bytes()).map_err(IntegrityError::InvalidKey)?;
        let id = self.key_id.as_bytes();
        let mut out = Vec::with_capacity(2 + id.len() + NONCE_LEN);
        out.push(WIRE_VERSION);
        out.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(id);
        out.extend_from_slice(&self.nonce);
        Ok(out)
    }

    /// Decodes the item value (any bytes: never panics).
    pub fn decode(info: &[u8]) -> Result<Self, IntegrityError> {
        let mut r = Reader::new(info);
        expect_version(&mut r)?;
        let len = r.u8().ok_or_else(|| truncated("integrity offer"))?;
        let id = r
            .take(usize::from(len))
            .ok_or_else(|| truncated("integrity offer key id"))?;
        validate_key_id(id).map_err(IntegrityError::Malformed)?;
        let nonce = r
            .array::<NONCE_LEN>()
            .ok_or_else(|| truncated("integrity offer nonce"))?;
        expect_end(&r, "integrity offer")?;
        Ok(Self {
            // validate_key_id admits ASCII only.
            key_id: String::from_utf8_lossy(id).into_owned(),
            nonce,
        })
    }
}

/// The SCP's service-class-application-information of the 0x56 sub-item for
/// [`INTEGRITY_SOP_CLASS`]: version u8 (1) | nonce_ac (32) | confirm (32).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityAnswer {
    /// The SCP's nonce.
    pub nonce: [u8; NONCE_LEN],
    /// `HMAC(k_session, "securepdu integrity confirm v1")`.
    pub confirm: [u8; TAG_LEN],
}

impl IntegrityAnswer {
    /// Encodes the item value.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + NONCE_LEN + TAG_LEN);
        out.push(WIRE_VERSION);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.confirm);
        out
    }

    /// Decodes the item value (any bytes: never panics).
    pub fn decode(info: &[u8]) -> Result<Self, IntegrityError> {
        let mut r = Reader::new(info);
        expect_version(&mut r)?;
        let nonce = r
            .array::<NONCE_LEN>()
            .ok_or_else(|| truncated("integrity answer nonce"))?;
        let confirm = r
            .array::<TAG_LEN>()
            .ok_or_else(|| truncated("integrity answer confirmation"))?;
        expect_end(&r, "integrity answer")?;
        Ok(Self { nonce, confirm })
    }
}

fn expect_version(r: &mut Reader<'_>) -> Result<(), IntegrityError> {
    match r.u8() {
        Some(WIRE_VERSION) => Ok(()),
        Some(v) => Err(IntegrityError::Malformed(format!(
            "unsupported integrity version {v}"
        ))),
        None => Err(truncated("integrity item")),
    }
}

fn expect_end(r: &Reader<'_>, what: &str) -> Result<(), IntegrityError> {
    if r.is_empty() {
        Ok(())
    } else {
        Err(IntegrityError::Malformed(format!(
            "{} unexpected bytes after the {what}",
            r.left()
        )))
    }
}

fn truncated(what: &str) -> IntegrityError {
    IntegrityError::Malformed(format!("{what} is truncated"))
}

/// `u16be(len) || bytes`, the length saturated (UIDs are at most 64 characters
/// and AE titles 16, so saturation never happens for valid values).
fn lp(s: &str) -> ([u8; 2], &[u8]) {
    let b = s.as_bytes();
    (u16::try_from(b.len()).unwrap_or(u16::MAX).to_be_bytes(), b)
}

/// The session key of one association: HKDF-SHA256 with salt = nonce_rq ||
/// nonce_ac, ikm = the pre-shared key, info = "securepdu integrity v1" ||
/// lp(calling AE) || lp(called AE) || tls_exporter (empty without TLS); 32 bytes.
/// AE titles are taken with leading and trailing spaces removed.
pub fn derive_session_key(
    psk: &IntegrityKey,
    nonce_rq: &[u8; NONCE_LEN],
    nonce_ac: &[u8; NONCE_LEN],
    calling_ae: &str,
    called_ae: &str,
    tls_exporter: &[u8],
) -> Result<[u8; TAG_LEN], IntegrityError> {
    let mut salt = [0u8; 2 * NONCE_LEN];
    for (dst, src) in salt.iter_mut().zip(nonce_rq.iter().chain(nonce_ac)) {
        *dst = *src;
    }
    let (calling_len, calling) = lp(calling_ae.trim());
    let (called_len, called) = lp(called_ae.trim());
    let info: [&[u8]; 6] = [
        KDF_INFO,
        &calling_len,
        calling,
        &called_len,
        called,
        tls_exporter,
    ];
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &salt).extract(psk.secret());
    let mut out = [0u8; TAG_LEN];
    prk.expand(&info, hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(&mut out))
        .map_err(|_| IntegrityError::Crypto("HKDF expansion failed"))?;
    Ok(out)
}

/// The HMAC key of one association, from [`derive_session_key`]. `Debug` is
/// redacted.
#[derive(Clone)]
pub struct SessionKey {
    key: hmac::Key,
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

impl SessionKey {
    /// A session key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; TAG_LEN]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        }
    }

    /// Derives the session key (see [`derive_session_key`]).
    pub fn derive(
        psk: &IntegrityKey,
        nonce_rq: &[u8; NONCE_LEN],
        nonce_ac: &[u8; NONCE_LEN],
        calling_ae: &str,
        called_ae: &str,
        tls_exporter: &[u8],
    ) -> Result<Self, IntegrityError> {
        let mut bytes =
            derive_session_key(psk, nonce_rq, nonce_ac, calling_ae, called_ae, tls_exporter)?;
        let key = Self::from_bytes(&bytes);
        bytes.fill(0);
        std::hint::black_box(&bytes);
        Ok(key)
    }

    /// The key confirmation value the SCP sends: HMAC(k, "securepdu integrity
    /// confirm v1").
    pub fn confirm(&self) -> [u8; TAG_LEN] {
        to32(hmac::sign(&self.key, CONFIRM_LABEL).as_ref())
    }

    /// A [`Tagger`] for one C-STORE, with the prefix already absorbed.
    pub fn tagger(
        &self,
        message_id: u16,
        sop_class: &str,
        sop_instance: &str,
        transfer_syntax: &str,
    ) -> Tagger {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(TAG_LABEL);
        ctx.update(&message_id.to_be_bytes());
        for s in [sop_class, sop_instance, transfer_syntax] {
            let (len, bytes) = lp(s);
            ctx.update(&len);
            ctx.update(bytes);
        }
        Tagger {
            mac: HmacSha256 { ctx },
            len: 0,
        }
    }
}

/// A streaming HMAC-SHA256.
#[derive(Clone)]
pub struct HmacSha256 {
    ctx: hmac::Context,
}

impl fmt::Debug for HmacSha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSha256(<redacted>)")
    }
}

impl HmacSha256 {
    /// Starts an HMAC-SHA256 with `key` (any length, RFC 2104).
    pub fn new(key: &[u8]) -> Self {
        Self {
            ctx: hmac::Context::with_key(&hmac::Key::new(hmac::HMAC_SHA256, key)),
        }
    }

    /// Absorbs `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.ctx.update(data);
    }

    /// The MAC.
    pub fn finish(self) -> [u8; TAG_LEN] {
        to32(self.ctx.sign().as_ref())
    }
}

/// One-shot HMAC-SHA256.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; TAG_LEN] {
    to32(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data).as_ref())
}

/// One-shot SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    to32(digest::digest(&digest::SHA256, data).as_ref())
}

/// The tag of one C-STORE, computed while the data set streams: feed each chunk
/// to [`update`](Self::update) as it is sent or written, then
/// [`finish`](Self::finish) appends u64be(total length) and returns the tag.
/// Created by [`SessionKey::tagger`].
#[derive(Debug, Clone)]
pub struct Tagger {
    mac: HmacSha256,
    len: u64,
}

impl Tagger {
    /// Absorbs the next data set bytes.
    pub fn update(&mut self, chunk: &[u8]) {
        self.mac.update(chunk);
        self.len = self.len.saturating_add(chunk.len() as u64);
    }

    /// Data set bytes absorbed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no data set bytes were absorbed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The tag.
    pub fn finish(mut self) -> [u8; TAG_LEN] {
        let len = self.len;
        self.mac.update(&len.to_be_bytes());
        self.mac.finish()
    }
}

/// Data of the tag PDV (integrity context, command bit set, last bit set):
/// u16be(message_id) || tag.
pub fn encode_tag_pdv(message_id: u16, tag: &[u8; TAG_LEN]) -> [u8; TAG_PDV_LEN] {
    let mut out = [0u8; TAG_PDV_LEN];
    for (dst, src) in out
        .iter_mut()
        .zip(message_id.to_be_bytes().iter().chain(tag))
    {
        *dst = *src;
    }
    out
}

/// Decodes the tag PDV's data into (message id, tag); any bytes, never panics.
pub fn decode_tag_pdv(data: &[u8]) -> Result<(u16, [u8; TAG_LEN]), IntegrityError> {
    let mut r = Reader::new(data);
    let id = r.u16_be().ok_or_else(|| truncated("tag PDV"))?;
    let tag = r.array::<TAG_LEN>().ok_or_else(|| truncated("tag PDV"))?;
    expect_end(&r, "tag PDV")?;
    Ok((id, tag))
}

#[cfg(test)]
mod tests;
