//! The file-touching half of integrity: reading key files, appending to the
//! storage directory's manifest, and verifying a directory against it.
//!
//! Manifest: `<storage_dir>/securepdu-manifest.jsonl`, one JSON object per
//! stored object, appended (O_APPEND) and fsynced before the C-STORE succeeds:
//!
//! ```text
//! {"v":1,"file":"<name>.dcm","sop_class_uid":"..","sop_instance_uid":"..",
//!  "transfer_syntax":"..","size":N,"sha256":"<hex>","key_id":".."|null,
//!  "tag":"<hex>"|null,"calling_ae":"..","called_ae":"..","peer":"ip:port",
//!  "peer_certificate_subject":".."|null,"stored_at":"RFC 3339 UTC",
//!  "mac":"<hex>"|null}
//! ```
//!
//! (one line, fields in this order). `mac` is always the last member:
//! HMAC-SHA256 with the pre-shared key's secret over the line's bytes with the
//! `,"mac":...` member removed, i.e. over `{"v":1,...,"stored_at":"..."}`
//! exactly as written. A line re-serialized by another tool therefore no longer
//! verifies, on purpose. `mac` is null when the SCP had no key; `key_id` and
//! `tag` are null when the object arrived without integrity protection.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use ring::digest;

use super::{ct_eq, from_hex32, hmac_sha256, to_hex, IntegrityError, IntegrityKey};

/// File name of the manifest in a storage directory.
pub const MANIFEST_FILE: &str = "securepdu-manifest.jsonl";

/// Largest key file read (a key file is one short line).
const MAX_KEY_FILE: u64 = 64 * 1024;

/// Read size while hashing files.
const HASH_CHUNK: usize = 1 << 20;

impl IntegrityKey {
    /// Reads the key text (see [`IntegrityKey::parse`]) from a file.
    pub fn from_file(path: &Path) -> Result<Self, IntegrityError> {
        let fail = |reason: String| IntegrityError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        let file = File::open(path).map_err(|e| fail(e.to_string()))?;
        let mut text = String::new();
        file.take(MAX_KEY_FILE)
            .read_to_string(&mut text)
            .map_err(|e| fail(e.to_string()))?;
        Self::parse(&text).map_err(|e| match e {
            IntegrityError::InvalidKey(m) => fail(m),
            other => other,
        })
    }

    /// Reads the key text from the environment variable `var` (usually
    /// [`super::KEY_ENV_VAR`]).
    pub fn from_env(var: &str) -> Result<Self, IntegrityError> {
        let text = std::env::var(var)
            .map_err(|e| IntegrityError::InvalidKey(format!("environment variable {var}: {e}")))?;
        Self::parse(&text).map_err(|e| match e {
            IntegrityError::InvalidKey(m) => {
                IntegrityError::InvalidKey(format!("environment variable {var}: {m}"))
            }
            other => other,
        })
    }
}

/// One manifest line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// File name in the storage directory (no directory part).
    pub file: String,
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// Transfer syntax of the data set.
    pub transfer_syntax: String,
    /// File size (Part 10 header included).
    pub size: u64,
    /// SHA-256 of the whole file as written.
    pub sha256: [u8; 32],
    /// Key id of the association's integrity protection, if it was active.
    pub key_id: Option<String>,
    /// The verified tag, if integrity protection was active.
    pub tag: Option<[u8; 32]>,
    /// The sender's AE title.
    pub calling_ae: String,
    /// The AE title it called.
    pub called_ae: String,
    /// The sender's address, `ip:port` (`[v6]:port`).
    pub peer: String,
    /// Subject of the sender's verified TLS client certificate.
    pub peer_certificate_subject: Option<String>,
    /// When the object became durable, RFC 3339 UTC.
    pub stored_at: String,
}

impl ManifestEntry {
    /// The line (without its newline), with a `mac` when `key` is given.
    pub fn to_line(&self, key: Option<&IntegrityKey>) -> String {
        let mut body = String::with_capacity(512);
        body.push_str("{\"v\":1");
        push_field(&mut body, "file", Some(&self.file));
        push_field(&mut body, "sop_class_uid", Some(&self.sop_class_uid));
        push_field(&mut body, "sop_instance_uid", Some(&self.sop_instance_uid));
        push_field(&mut body, "transfer_syntax", Some(&self.transfer_syntax));
        body.push_str(&format!(",\"size\":{}", self.size));
        push_field(&mut body, "sha256", Some(&to_hex(&self.sha256)));
        push_field(&mut body, "key_id", self.key_id.as_deref());
        push_field(&mut body, "tag", self.tag.map(|t| to_hex(&t)).as_deref());
        push_field(&mut body, "calling_ae", Some(&self.calling_ae));
        push_field(&mut body, "called_ae", Some(&self.called_ae));
        push_field(&mut body, "peer", Some(&self.peer));
        push_field(
            &mut body,
            "peer_certificate_subject",
            self.peer_certificate_subject.as_deref(),
        );
        push_field(&mut body, "stored_at", Some(&self.stored_at));
        body.push('}');
        let mac = key.map(|k| to_hex(&hmac_sha256(k.secret(), body.as_bytes())));
        body.pop();
        body.push_str(",\"mac\":");
        match mac {
            Some(m) => {
                body.push('"');
                body.push_str(&m);
                body.push('"');
            }
            None => body.push_str("null"),
        }
        body.push('}');
        body
    }

    /// Parses a line. With `key`, the line's `mac` must be present and correct.
    /// The error says what is wrong (never panics, whatever the text).
    pub fn parse(line: &str, key: Option<&IntegrityKey>) -> Result<Self, String> {
        let fields = parse_object(line.trim_end_matches(['\r', '\n']))?;
        let mut map: BTreeMap<String, Json> = BTreeMap::new();
        for (k, v) in fields {
            if map.insert(k.clone(), v).is_some() {
                return Err(format!("duplicate member {k:?}"));
            }
        }
        match map.get("v") {
            Some(Json::Num(1)) => {}
            Some(_) => return Err("unsupported manifest version".into()),
            None => return Err("missing member \"v\"".into()),
        }
        let text = |name: &str| -> Result<String, String> {
            match map.get(name) {
                Some(Json::Str(s)) => Ok(s.clone()),
                Some(_) => Err(format!("member {name:?} must be a string")),
                None => Err(format!("missing member {name:?}")),
            }
        };
        let opt_text = |name: &str| -> Result<Option<String>, String> {
            match map.get(name) {
                Some(Json::Str(s)) => Ok(Some(s.clone())),
                Some(Json::Null) => Ok(None),
                Some(_) => Err(format!("member {name:?} must be a string or null")),
                None => Err(format!("missing member {name:?}")),
            }
        };
        let hash = |s: &str, name: &str| {
            from_hex32(s).ok_or_else(|| format!("member {name:?} must be 64 hex digits"))
        };
        let file = text("file")?;
        if !is_plain_file_name(&file) {
            return Err(format!("file {file:?} is not a plain file name"));
        }
        let size = match map.get("size") {
            Some(Json::Num(n)) => *n,
            _ => return Err("member \"size\" must be a non-negative integer".into()),
        };
        let tag = match opt_text("tag")? {
            Some(t) => Some(hash(&t, "tag")?),
            None => None,
        };
        let entry = Self {
            sha256: hash(&text("sha256")?, "sha256")?,
            sop_class_uid: text("sop_class_uid")?,
            sop_instance_uid: text("sop_instance_uid")?,
            transfer_syntax: text("transfer_syntax")?,
            size,
            key_id: opt_text("key_id")?,
            tag,
            calling_ae: text("calling_ae")?,
            called_ae: text("called_ae")?,
            peer: text("peer")?,
            peer_certificate_subject: opt_text("peer_certificate_subject")?,
            stored_at: text("stored_at")?,
            file,
        };
        let mac = opt_text("mac")?;
        if let Some(key) = key {
            let Some(mac_hex) = mac else {
                return Err("no mac (written without an integrity key)".into());
            };
            let Some(body) = mac_body(line.trim_end_matches(['\r', '\n'])) else {
                return Err("the mac is not the line's last member".into());
            };
            let want = hmac_sha256(key.secret(), body.as_bytes());
            let got = from_hex32(&mac_hex).ok_or("member \"mac\" must be 64 hex digits")?;
            if !ct_eq(&want, &got) {
                return Err("mac mismatch (line changed, or another key)".into());
            }
        }
        Ok(entry)
    }
}

/// The text a mac covers: the line with its trailing `,"mac":"<64 hex>"` member
/// removed. `None` if the line does not end that way.
fn mac_body(line: &str) -> Option<String> {
    const HEAD: &str = ",\"mac\":\"";
    const TAIL: &str = "\"}";
    let tail_len = HEAD.len() + 64 + TAIL.len();
    let (body, tail) = line.split_at_checked(line.len().checked_sub(tail_len)?)?;
    let hex = tail.strip_prefix(HEAD)?.strip_suffix(TAIL)?;
    from_hex32(hex)?;
    Some(format!("{body}}}"))
}

/// A file name without directory parts that is not hidden.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && name != MANIFEST_FILE
}

/// Appends `,"name":value` (a string, or null).
fn push_field(body: &mut String, name: &str, value: Option<&str>) {
    body.push_str(",\"");
    body.push_str(name);
    body.push_str("\":");
    match value {
        Some(v) => push_json_string(body, v),
        None => body.push_str("null"),
    }
}

/// Appends `s` as a JSON string (RFC 8259 §7): quote, backslash and control
/// characters escaped; everything else as UTF-8.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// JSON values the manifest uses.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Json {
    Str(String),
    Num(u64),
    Bool(bool),
    Null,
}

/// A cursor over the bytes of one line.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i = self.i.saturating_add(1);
        Some(c)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i = self.i.saturating_add(1);
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        match self.bump() {
            Some(got) if got == c => Ok(()),
            Some(got) => Err(format!(
                "expected {:?} at byte {}, found {:?}",
                char::from(c),
                self.i,
                char::from(got)
            )),
            None => Err(format!("expected {:?}, found the end", char::from(c))),
        }
    }

    fn literal(&mut self, word: &str) -> Result<(), String> {
        for &c in word.as_bytes() {
            self.expect(c)?;
        }
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let mut v = 0u32;
        for _ in 0..4 {
            let c = self.bump().ok_or("truncated \\u escape")?;
            let d = char::from(c).to_digit(16).ok_or("bad \\u escape")?;
            v = (v << 4) | d;
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = self.bump().ok_or("unterminated string")?;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = self.bump().ok_or("unterminated escape")?;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                self.literal("\\u")?;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err("unpaired surrogate".into());
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code).ok_or("invalid \\u escape")?
                        }
                        _ => return Err("unknown escape".into()),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c if c < 0x20 => return Err("control character in a string".into()),
                c => out.push(c),
            }
        }
        // The input is a &str, and escapes add whole characters.
        String::from_utf8(out).map_err(|_| "invalid UTF-8 in a string".to_owned())
    }

    fn value(&mut self) -> Result<Json, String> {
        match self.peek() {
            Some(b'"') => self.string().map(Json::Str),
            Some(b'n') => self.literal("null").map(|()| Json::Null),
            Some(b't') => self.literal("true").map(|()| Json::Bool(true)),
            Some(b'f') => self.literal("false").map(|()| Json::Bool(false)),
            Some(b'0'..=b'9') => {
                let mut n = 0u64;
                while let Some(c @ b'0'..=b'9') = self.peek() {
                    self.i = self.i.saturating_add(1);
                    n = n
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(u64::from(c - b'0')))
                        .ok_or("number too large")?;
                }
                if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
                    return Err("only integers are expected".into());
                }
                Ok(Json::Num(n))
            }
            Some(_) => Err(format!("unexpected value at byte {}", self.i)),
            None => Err("unexpected end".into()),
        }
    }
}

/// Parses one flat JSON object (string, non-negative integer, boolean and null
/// members only), keeping member order.
fn parse_object(line: &str) -> Result<Vec<(String, Json)>, String> {
    let mut c = Cursor {
        b: line.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    c.ws();
    c.expect(b'{')?;
    c.ws();
    if c.peek() == Some(b'}') {
        c.bump();
    } else {
        loop {
            c.ws();
            let key = c.string()?;
            c.ws();
            c.expect(b':')?;
            c.ws();
            let value = c.value()?;
            out.push((key, value));
            c.ws();
            match c.bump() {
                Some(b',') => {}
                Some(b'}') => break,
                _ => return Err("expected ',' or '}'".into()),
            }
        }
    }
    c.ws();
    if c.peek().is_some() {
        return Err("text after the object".into());
    }
    Ok(out)
}

/// Appends manifest lines; one per storage directory, shared by the
/// association threads (appends are serialized by a mutex).
#[derive(Debug)]
pub struct Manifest {
    dir: PathBuf,
    path: PathBuf,
    key: Option<IntegrityKey>,
    lock: Mutex<()>,
}

impl Manifest {
    /// The manifest of `dir`; lines get a mac when `key` is given. Nothing is
    /// created until the first append.
    pub fn new(dir: &Path, key: Option<IntegrityKey>) -> Self {
        Self {
            dir: dir.to_owned(),
            path: dir.join(MANIFEST_FILE),
            key,
            lock: Mutex::new(()),
        }
    }

    /// The manifest file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entry` as one line and fsyncs the file (and the directory when
    /// the file is new). A failed write is truncated away, so the manifest
    /// never keeps half a line from us.
    pub fn append(&self, entry: &ManifestEntry) -> io::Result<()> {
        self.append_all([entry])
    }

    /// [`Self::append`] for several entries with one write and one fsync (a
    /// group commit of objects stored at about the same time).
    pub fn append_all<'a>(
        &self,
        entries: impl IntoIterator<Item = &'a ManifestEntry>,
    ) -> io::Result<()> {
        let mut text = String::new();
        for entry in entries {
            text.push_str(&entry.to_line(self.key.as_ref()));
            text.push('\n');
        }
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let existed = fs::symlink_metadata(&self.path).is_ok();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)?;
        let before = file.metadata()?.len();
        if before > 0 {
            // A crash may have left a line without its newline: start a new one.
            let mut last = [0u8; 1];
            file.seek(SeekFrom::End(-1))?;
            file.read_exact(&mut last)?;
            if last != *b"\n" {
                text.insert(0, '\n');
            }
        }
        let written = file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = file.set_len(before).and_then(|()| file.sync_all());
            return Err(e);
        }
        if !existed {
            crate::store::sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

/// What [`verify_dir`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Files whose size and SHA-256 match their (latest) manifest line.
    pub ok: Vec<String>,
    /// Files whose size or SHA-256 differ (or that could not be read; see `notes`).
    pub changed: Vec<String>,
    /// Files listed in the manifest but absent.
    pub missing: Vec<String>,
    /// `*.dcm` files present but not listed (hidden files are ignored).
    pub unknown: Vec<String>,
    /// Manifest lines that could not be used: (1-based line number, why).
    pub bad_lines: Vec<(usize, String)>,
    /// Whether line macs were checked (a key was given).
    pub mac_checked: bool,
    /// Remarks that are not problems by themselves (e.g. macs present but not
    /// checked for lack of a key; unreadable files).
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// No changed, missing or unknown file and no bad line.
    pub fn is_clean(&self) -> bool {
        self.changed.is_empty()
            && self.missing.is_empty()
            && self.unknown.is_empty()
            && self.bad_lines.is_empty()
    }
}

/// Re-checks the files of storage directory `dir` against its manifest: each
/// listed file is hashed again (its latest line counts when an instance was
/// stored more than once). With `key`, every line's mac is checked too (a line
/// without a mac is then bad).
pub fn verify_dir(dir: &Path, key: Option<&IntegrityKey>) -> Result<VerifyReport, IntegrityError> {
    let io_err = |what: &Path, e: io::Error| {
        IntegrityError::Io(format!("cannot read {}: {e}", what.display()))
    };
    if !dir.is_dir() {
        return Err(IntegrityError::Io(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let mut report = VerifyReport {
        mac_checked: key.is_some(),
        ..VerifyReport::default()
    };
    // File name -> latest entry, in order of first appearance.
    let mut order: Vec<String> = Vec::new();
    let mut latest: BTreeMap<String, ManifestEntry> = BTreeMap::new();
    let mut unchecked_macs = 0usize;
    let manifest_path = dir.join(MANIFEST_FILE);
    match File::open(&manifest_path) {
        Ok(file) => {
            let mut reader = BufReader::new(file);
            let mut raw = Vec::new();
            let mut number = 0usize;
            loop {
                raw.clear();
                let n = reader
                    .read_until(b'\n', &mut raw)
                    .map_err(|e| io_err(&manifest_path, e))?;
                if n == 0 {
                    break;
                }
                number = number.saturating_add(1);
                let Ok(line) = std::str::from_utf8(&raw) else {
                    report.bad_lines.push((number, "not UTF-8".into()));
                    continue;
                };
                if line.trim().is_empty() {
                    continue;
                }
                match ManifestEntry::parse(line, key) {
                    Ok(entry) => {
                        if key.is_none() && !line.trim_end().ends_with(",\"mac\":null}") {
                            unchecked_macs = unchecked_macs.saturating_add(1);
                        }
                        if !latest.contains_key(&entry.file) {
                            order.push(entry.file.clone());
                        }
                        latest.insert(entry.file.clone(), entry);
                    }
                    Err(why) => report.bad_lines.push((number, why)),
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&manifest_path, e)),
    }
    if unchecked_macs > 0 {
        report.notes.push(format!(
            "{unchecked_macs} manifest line(s) carry a mac that was not checked (no key given)"
        ));
    }
    for name in order {
        let Some(entry) = latest.get(&name) else {
            continue;
        };
        match hash_file(&dir.join(&name)) {
            Ok((size, sha)) if size == entry.size && ct_eq(&sha, &entry.sha256) => {
                report.ok.push(name)
            }
            Ok(_) => report.changed.push(name),
            Err(e) if e.kind() == io::ErrorKind::NotFound => report.missing.push(name),
            Err(e) => {
                report.notes.push(format!("cannot read {name}: {e}"));
                report.changed.push(name);
            }
        }
    }
    let entries = fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let is_dcm = name
            .rsplit_once('.')
            .is_some_and(|(_, ext)| ext.eq_ignore_ascii_case("dcm"));
        if !is_dcm || name.starts_with('.') || latest.contains_key(&name) {
            continue;
        }
        if entry.file_type().is_ok_and(|t| !t.is_dir()) {
            report.unknown.push(name);
        }
    }
    report.unknown.sort();
    Ok(report)
}

/// (size, SHA-256) of a file, read in 1 MiB chunks.
fn hash_file(path: &Path) -> io::Result<(u64, [u8; 32])> {
    let mut file = File::open(path)?;
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut buf = vec![0u8; HASH_CHUNK];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        ctx.update(buf.get(..n).unwrap_or_default());
        size = size.saturating_add(n as u64);
    }
    let mut out = [0u8; 32];
    for (o, i) in out.iter_mut().zip(ctx.finish().as_ref()) {
        *o = *i;
    }
    Ok((size, out))
}

/// `t` as RFC 3339 UTC with milliseconds, e.g. `2025-01-02T03:04:05.678Z`.
pub fn format_rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key() -> IntegrityKey {
        IntegrityKey::new("k1", &[0x42; 32]).unwrap()
    }

    fn entry(file: &str) -> ManifestEntry {
        ManifestEntry {
            file: file.into(),
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            sop_instance_uid: "1.2.3".into(),
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            size: 1234,
            sha256: [0xab; 32],
            key_id: Some("k1".into()),
            tag: Some([0xcd; 32]),
            calling_ae: "SCU \"q\" \\ é\u{1}".into(),
            called_ae: "STORE".into(),
            peer: "[::1]:4242".into(),
            peer_certificate_subject: None,
            stored_at: "2025-01-02T03:04:05.678Z".into(),
        }
    }

    #[test]
    fn lines_round_trip_and_macs_bind_them() {
        let e = entry("1.2.3.dcm");
        let line = e.to_line(Some(&key()));
        assert!(!line.contains('\n'));
        assert!(
            line.starts_with("{\"v\":1,\"file\":\"1.2.3.dcm\""),
            "{line}"
        );
        assert!(
            line.contains(r#""calling_ae":"SCU \"q\" \\ é\u0001""#),
            "{line}"
        );
        assert_eq!(ManifestEntry::parse(&line, Some(&key())).unwrap(), e);
        assert_eq!(ManifestEntry::parse(&line, None).unwrap(), e);
        let other = IntegrityKey::new("k1", &[0x43; 32]).unwrap();
        assert!(ManifestEntry::parse(&line, Some(&other)).is_err());
        let edited = line.replace("\"size\":1234", "\"size\":1235");
        let why = ManifestEntry::parse(&edited, Some(&key())).unwrap_err();
        assert!(why.contains("mac mismatch"), "{why}");
        assert!(ManifestEntry::parse(&edited, None).is_ok());

        let plain = e.to_line(None);
        assert!(plain.ends_with(",\"mac\":null}"));
        assert_eq!(ManifestEntry::parse(&plain, None).unwrap(), e);
        assert!(ManifestEntry::parse(&plain, Some(&key())).is_err());

        for bad in [
            "",
            "{}",
            "[1]",
            "{\"v\":2}",
            &line[..line.len() - 1],
            &line.replace("1.2.3.dcm", "../x.dcm"),
            &format!("{line} x"),
        ] {
            assert!(ManifestEntry::parse(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_strings() {
        let mut s = String::new();
        push_json_string(&mut s, "a\"b\\c\n\u{0}\u{7f}日本\u{1F600}");
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\u0000\\u007f日本\u{1F600}\"");
        let mut c = Cursor {
            b: s.as_bytes(),
            i: 0,
        };
        assert_eq!(c.string().unwrap(), "a\"b\\c\n\u{0}\u{7f}日本\u{1F600}");
        let mut c = Cursor {
            b: br#""\ud83d\ude00\u00e9\/""#,
            i: 0,
        };
        assert_eq!(c.string().unwrap(), "\u{1F600}é/");
        for bad in [r#""\ud83d""#, r#""\x""#, "\"abc", "\"\u{1}\""] {
            let mut c = Cursor {
                b: bad.as_bytes(),
                i: 0,
            };
            assert!(c.string().is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(format_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789);
        assert_eq!(format_rfc3339(t), "2024-02-29T12:34:56.789Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(format_rfc3339(t), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn append_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let m = Manifest::new(dir.path(), Some(key()));
        let data_a = b"object a".to_vec();
        let data_b = b"object b".to_vec();
        for (name, data) in [("a.dcm", &data_a), ("b.dcm", &data_b)] {
            fs::write(dir.path().join(name), data).unwrap();
            let mut e = entry(name);
            e.size = data.len() as u64;
            e.sha256 = crate::integrity::sha256(data);
            m.append(&e).unwrap();
        }
        fs::write(dir.path().join(".x.partial"), b"ignored").unwrap();
        let r = verify_dir(dir.path(), Some(&key())).unwrap();
        assert!(r.is_clean(), "{r:?}");
        assert_eq!(r.ok, vec!["a.dcm", "b.dcm"]);
        assert!(r.mac_checked);
        let r = verify_dir(dir.path(), None).unwrap();
        assert!(
            r.is_clean() && !r.mac_checked && r.notes.len() == 1,
            "{r:?}"
        );

        // A torn last line: the next append starts a new line.
        let mut f = OpenOptions::new().append(true).open(m.path()).unwrap();
        f.write_all(b"{\"v\":1,\"fi").unwrap();
        drop(f);
        fs::write(dir.path().join("c.dcm"), b"c").unwrap();
        let mut e = entry("c.dcm");
        e.size = 1;
        e.sha256 = crate::integrity::sha256(b"c");
        m.append(&e).unwrap();
        fs::write(dir.path().join("a.dcm"), b"object A").unwrap();
        fs::remove_file(dir.path().join("b.dcm")).unwrap();
        fs::write(dir.path().join("d.DCM"), b"d").unwrap();
        let r = verify_dir(dir.path(), Some(&key())).unwrap();
        assert_eq!(r.ok, vec!["c.dcm"]);
        assert_eq!(r.changed, vec!["a.dcm"]);
        assert_eq!(r.missing, vec!["b.dcm"]);
        assert_eq!(r.unknown, vec!["d.DCM"]);
        assert_eq!(r.bad_lines.len(), 1);
        assert_eq!(r.bad_lines[0].0, 3);
        assert!(!r.is_clean());
        assert!(verify_dir(&dir.path().join("nope"), None).is_err());
    }

    #[test]
    fn key_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        fs::write(&p, format!("site:{}\n", "ab".repeat(32))).unwrap();
        assert_eq!(IntegrityKey::from_file(&p).unwrap().id(), "site");
        fs::write(&p, "site:abcd\n").unwrap();
        let e = IntegrityKey::from_file(&p).unwrap_err();
        assert!(matches!(e, IntegrityError::KeyFile { .. }), "{e}");
        assert!(!e.to_string().contains("abcd"));
        assert!(IntegrityKey::from_file(&dir.path().join("none")).is_err());
    }
}
