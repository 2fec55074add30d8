//! The association-requestor (SCU): connect, negotiate, C-ECHO, C-STORE from
//! memory or streamed from a Part 10 file, release, abort. Blocking.
//!
//! With [`ScuConfig::integrity`] set (policy not off), the integrity context
//! and its 0x56 offer are proposed too (see [`crate::integrity`]); once the
//! peer confirmed the key, every C-STORE's data set is tagged as it is sent and
//! the tag follows the data set on the integrity context.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::association::{Association, Config, Indication, Role};
use crate::conn::{indication_error, validate_ae_title, Connection, TraceHook, Transport};
use crate::dimse::{
    max_pdv_data, CEchoRq, CStoreRq, DatasetFragmenter, Event, Message, Priority, Reassembler,
    VERIFICATION_SOP_CLASS,
};
use crate::integrity::{
    ct_eq, encode_tag_pdv, random_nonce, Digests, Hasher, HasherGone, IntegrityAnswer,
    IntegrityConfig, IntegrityError, IntegrityOffer, Policy, SessionKey, Tagger,
    INTEGRITY_SOP_CLASS, INTEGRITY_TRANSFER_SYNTAX, NONCE_LEN, TAG_LEN, TLS_EXPORTER_LABEL,
    TLS_EXPORTER_LEN,
};
use crate::part10::{FileMeta, IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};
use crate::pdu::{
    AssociateAc, AssociateRq, AsyncOpsWindow, PresentationContextRq, SopClassExtended,
    UserIdentityRq, UserInformation, APPLICATION_CONTEXT_NAME, PROTOCOL_VERSION,
};
use crate::store::{EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN};
use crate::tls::{PeerCertificate, Stream, TlsClient, TlsStream};
use crate::transport;

pub use crate::conn::DEFAULT_MAX_PDU;
pub use crate::transport::{NetError, Timeouts};

/// Most presentation contexts one A-ASSOCIATE-RQ can carry (odd IDs 1-255).
/// With integrity protection on, the integrity context is one of them.
pub const MAX_CONTEXTS: usize = 128;

/// Maximum length assumed for a peer that announces none (PS3.8 leaves it open;
/// 16 KiB is what every implementation accepts).
const ASSUMED_PEER_MAX: u32 = 16_384;

/// How long to look for the peer's A-ABORT after a write failed.
const ABORT_GRACE: Duration = Duration::from_secs(1);

/// How an [`ScuAssociation`] is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScuConfig {
    /// Our AE title (1-16 characters).
    pub calling_ae: String,
    /// The peer's AE title.
    pub called_ae: String,
    /// Presentation contexts to propose: (abstract syntax, transfer syntaxes), given
    /// IDs 1, 3, 5... in this order. Empty: Verification only.
    pub contexts: Vec<(String, Vec<String>)>,
    /// Largest P-DATA-TF we accept (advertised).
    pub max_pdu: u32,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// End-to-end integrity protection (`None`: off, like [`Policy::Off`]).
    pub integrity: Option<IntegrityConfig>,
    /// Called with a summary of every PDU sent and received (`None`: no trace).
    pub trace: Option<TraceHook>,
    /// Most C-STOREs we keep outstanding when the peer agrees to an
    /// asynchronous operations window (PS3.7 D.3.3.3); 1 proposes none.
    pub max_ops_invoked: u16,
    /// User identity to assert (PS3.7 D.3.3.7); the peer's answer, if any, is
    /// in [`ScuAssociation::associate_ac`].
    pub user_identity: Option<UserIdentityRq>,
}

impl Default for ScuConfig {
    fn default() -> Self {
        Self {
            calling_ae: "SECUREPDU".into(),
            called_ae: "ANY-SCP".into(),
            contexts: Vec::new(),
            max_pdu: DEFAULT_MAX_PDU,
            timeouts: Timeouts::default(),
            integrity: None,
            trace: None,
            max_ops_invoked: DEFAULT_MAX_OPS_INVOKED,
            user_identity: None,
        }
    }
}

/// Our default Maximum Number of Operations Invoked: enough C-STOREs in flight
/// to keep the link busy while the peer makes earlier ones durable.
pub const DEFAULT_MAX_OPS_INVOKED: u16 = 16;

/// A C-STORE sent and not yet answered ([`ScuAssociation::begin_store_file`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingStore {
    /// Its Message ID: pass it to [`ScuAssociation::finish_store`].
    pub message_id: u16,
    /// Data set bytes sent.
    pub size: u64,
    /// The integrity tag sent after the data set, when integrity is in force.
    pub integrity_tag: Option<[u8; TAG_LEN]>,
}

/// A presentation context the peer accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedContext {
    /// Presentation context ID.
    pub id: u8,
    /// Abstract syntax (SOP class UID).
    pub abstract_syntax: String,
    /// The transfer syntax the peer chose.
    pub transfer_syntax: String,
}

/// The peer's answer to a C-STORE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOutcome {
    /// Status (0000,0900).
    pub status: u16,
    /// Error Comment (0000,0902), if any.
    pub error_comment: Option<String>,
    /// The integrity tag sent after the data set, when integrity protection is
    /// active. A status of [`crate::integrity::INTEGRITY_CHECK_FAILED`] means
    /// the peer computed another tag: the data set changed on the way.
    pub integrity_tag: Option<[u8; TAG_LEN]>,
}

/// Integrity protection in force on an association.
#[derive(Debug)]
struct ActiveIntegrity {
    context_id: u8,
    key_id: String,
    session: SessionKey,
}

/// An established association as requestor.
///
/// Dropping it without [`release`](Self::release) aborts the association.
#[derive(Debug)]
pub struct ScuAssociation {
    conn: Connection<Stream>,
    timeouts: Timeouts,
    proposed: Vec<PresentationContextRq>,
    accepted: Vec<AcceptedContext>,
    ac: AssociateAc,
    peer: SocketAddr,
    peer_max: u32,
    next_message_id: u16,
    reassembler: Reassembler,
    /// ID of the integrity context, when it was proposed.
    integrity_context: Option<u8>,
    integrity: Option<ActiveIntegrity>,
    /// Computes the tags off this thread while it sends; started at the first
    /// C-STORE under integrity protection.
    hasher: Option<Hasher>,
    /// C-STOREs we may have outstanding (1: synchronous).
    window: usize,
    /// Message IDs sent and not answered yet, oldest first.
    outstanding: Vec<u16>,
    /// Answers that came in while we waited for another one.
    answered: Vec<(u16, Message)>,
}

impl ScuAssociation {
    /// Connects to `host`:`port` (IPv4, IPv6 literal with or without brackets,
    /// `fe80::1%eth0`, or a host name; each resolved address is tried in turn),
    /// sends the A-ASSOCIATE-RQ and waits for the answer.
    pub fn connect(host: &str, port: u16, config: ScuConfig) -> Result<Self, NetError> {
        Self::connect_tls(host, port, config, None)
    }

    /// [`Self::connect`], over TLS when `tls` is given: the handshake runs after
    /// the TCP connection, within the ACSE timeout, before the A-ASSOCIATE-RQ.
    /// The server certificate is checked for `host` (or the configured server name).
    pub fn connect_tls(
        host: &str,
        port: u16,
        config: ScuConfig,
        tls: Option<&TlsClient>,
    ) -> Result<Self, NetError> {
        validate_ae_title(&config.calling_ae, "calling AE title")?;
        validate_ae_title(&config.called_ae, "called AE title")?;
        let proposed = proposed_contexts(&config.contexts)?;
        let timeouts = config.timeouts;
        // Everything that can fail locally is checked before connecting.
        let offer = match &config.integrity {
            Some(ic) if ic.enabled() => Some(integrity_offer(ic, proposed.len())?),
            _ => None,
        };
        let mut rq_contexts = proposed.clone();
        let mut sop_class_extended = Vec::new();
        if let Some(o) = &offer {
            rq_contexts.push(PresentationContextRq {
                id: o.context_id,
                abstract_syntax: INTEGRITY_SOP_CLASS.to_owned(),
                transfer_syntaxes: vec![INTEGRITY_TRANSFER_SYNTAX.to_owned()],
            });
            sop_class_extended.push(o.item.clone());
        }

        let stream = transport::connect(host, port, timeouts.connect)?;
        let peer = transport::normalize_addr(stream.peer_addr()?);
        let stream = match tls {
            None => Stream::Plain(stream),
            Some(client) => Stream::Tls(Box::new(TlsStream::connect(
                stream,
                client,
                host,
                timeouts.acse,
            )?)),
        };
        let assoc = Association::new(Config {
            role: Role::Requestor,
            artim_timeout: timeouts.acse,
            max_pdu_receive: config.max_pdu,
        });
        let mut conn = Connection::new(stream, assoc);
        conn.set_trace(config.trace.clone(), Some(peer));
        conn.stream_mut().set_write_timeout(Some(timeouts.dimse))?;

        let rq = AssociateRq {
            protocol_version: PROTOCOL_VERSION,
            called_ae: config.called_ae.trim().to_owned(),
            calling_ae: config.calling_ae.trim().to_owned(),
            application_context: APPLICATION_CONTEXT_NAME.to_owned(),
            presentation_contexts: rq_contexts,
            user_info: UserInformation {
                max_pdu_length: Some(config.max_pdu),
                implementation_class_uid: Some(IMPLEMENTATION_CLASS_UID.to_owned()),
                implementation_version_name: Some(IMPLEMENTATION_VERSION_NAME.to_owned()),
                sop_class_extended,
                // We perform no operations for the peer: 1.
                async_ops_window: (config.max_ops_invoked > 1).then_some(AsyncOpsWindow {
                    max_invoked: config.max_ops_invoked,
                    max_performed: 1,
                }),
                user_identity_rq: config.user_identity.clone(),
                ..UserInformation::default()
            },
        };
        let (calling_ae, called_ae) = (rq.calling_ae.clone(), rq.called_ae.clone());
        let now = Instant::now();
        conn.association_mut().request_association(rq, now)?;
        conn.flush(now)?;
        let deadline = deadline_after(now, timeouts.acse);
        let ac = loop {
            match conn.next_indication(deadline, "A-ASSOCIATE response")? {
                Indication::Accepted(ac) => break *ac,
                other => {
                    if let Some(err) = indication_error(&other) {
                        // A TLS-only port closes on a plain A-ASSOCIATE-RQ without a
                        // word; only we can say what that most likely means.
                        let silent_close =
                            matches!(other, Indication::ProviderAborted { .. }) && conn.is_closed();
                        if tls.is_none() && silent_close {
                            return Err(NetError::Protocol(format!(
                                "{err}: the peer closed the connection without answering the \
                                 A-ASSOCIATE-RQ (if that port expects TLS, connect with TLS)"
                            )));
                        }
                        return Err(err);
                    }
                }
            }
        };

        let accepted = ac
            .presentation_contexts
            .iter()
            .filter(|pc| pc.result == 0)
            .filter_map(|pc| {
                let rq = proposed.iter().find(|p| p.id == pc.id)?;
                let transfer_syntax = pc
                    .transfer_syntax
                    .clone()
                    .or_else(|| rq.transfer_syntaxes.first().cloned())?;
                Some(AcceptedContext {
                    id: pc.id,
                    abstract_syntax: rq.abstract_syntax.clone(),
                    transfer_syntax,
                })
            })
            .collect();
        let peer_max = conn
            .association()
            .peer_max_pdu_length()
            .unwrap_or(ASSUMED_PEER_MAX);
        let integrity = match &offer {
            None => None,
            Some(o) => match establish_integrity(&conn, &ac, o, &calling_ae, &called_ae) {
                Ok(active) => active,
                Err(e) => {
                    conn.abort();
                    return Err(e);
                }
            },
        };
        // No item in the answer means synchronous (PS3.7 D.3.3.3); 0 means no limit.
        let window = match ac.user_info.async_ops_window {
            Some(w) if config.max_ops_invoked > 1 => match w.max_performed {
                0 => config.max_ops_invoked,
                n => n.min(config.max_ops_invoked),
            },
            _ => 1,
        };
        Ok(Self {
            window: usize::from(window.max(1)),
            outstanding: Vec::new(),
            answered: Vec::new(),
            conn,
            timeouts,
            proposed,
            accepted,
            ac,
            peer,
            peer_max,
            next_message_id: 1,
            reassembler: Reassembler::new(),
            integrity_context: offer.map(|o| o.context_id),
            integrity,
            hasher: None,
        })
    }

    /// Whether end-to-end integrity protection is in force: the peer accepted
    /// the integrity context and confirmed holding the same key.
    pub fn integrity_active(&self) -> bool {
        self.integrity.is_some()
    }

    /// The key id in use, when integrity protection is in force.
    pub fn integrity_key_id(&self) -> Option<&str> {
        self.integrity.as_ref().map(|i| i.key_id.as_str())
    }

    /// The presentation contexts the peer accepted.
    pub fn accepted_contexts(&self) -> &[AcceptedContext] {
        &self.accepted
    }

    /// The proposed contexts the peer rejected: (ID, abstract syntax, result).
    /// The integrity context is not listed (see [`Self::integrity_active`]).
    pub fn rejected_contexts(&self) -> Vec<(u8, String, u8)> {
        self.ac
            .presentation_contexts
            .iter()
            .filter(|pc| pc.result != 0 && Some(pc.id) != self.integrity_context)
            .map(|pc| {
                let name = self
                    .proposed
                    .iter()
                    .find(|p| p.id == pc.id)
                    .map(|p| p.abstract_syntax.clone())
                    .unwrap_or_default();
                (pc.id, name, pc.result)
            })
            .collect()
    }

    /// An accepted context for `abstract_syntax`, with `transfer_syntax` if given.
    pub fn find_context(
        &self,
        abstract_syntax: &str,
        transfer_syntax: Option<&str>,
    ) -> Option<&AcceptedContext> {
        self.accepted.iter().find(|c| {
            c.abstract_syntax == abstract_syntax
                && transfer_syntax.is_none_or(|ts| c.transfer_syntax == ts)
        })
    }

    /// The peer's maximum P-DATA-TF length (0: no limit).
    pub fn peer_max_pdu(&self) -> u32 {
        self.peer_max
    }

    /// The peer's address (IPv4-mapped addresses reported as IPv4).
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The server's certificate, over TLS.
    pub fn peer_certificate(&self) -> Option<PeerCertificate> {
        self.conn.stream().peer_certificate_info()
    }

    /// Over TLS: the negotiated protocol version and cipher suite.
    pub fn tls_session(&self) -> Option<(String, String)> {
        match self.conn.stream() {
            Stream::Plain(_) => None,
            Stream::Tls(t) => Some((t.protocol_version()?, t.cipher_suite()?)),
        }
    }

    /// The A-ASSOCIATE-AC the peer sent.
    pub fn associate_ac(&self) -> &AssociateAc {
        &self.ac
    }

    /// Whether the association is still established.
    pub fn is_established(&self) -> bool {
        !self.conn.is_closed() && self.conn.association().is_established()
    }

    /// C-ECHO on the Verification context; returns the status.
    pub fn echo(&mut self) -> Result<u16, NetError> {
        let ctx = self
            .find_context(VERIFICATION_SOP_CLASS, None)
            .ok_or_else(|| {
                NetError::InvalidArgument(
                    "the peer did not accept the Verification SOP class".into(),
                )
            })?
            .id;
        let message_id = self.message_id();
        let rq = Message::CEchoRq(CEchoRq {
            message_id,
            affected_sop_class_uid: VERIFICATION_SOP_CLASS.to_owned(),
        });
        let peer_max = self.peer_max;
        let sent = self.conn.send_command(ctx, &rq, peer_max);
        self.after_send(sent)?;
        match self.wait_response(message_id, "C-ECHO response")? {
            Message::CEchoRsp(rsp) => Ok(rsp.status),
            other => Err(unexpected_response(&other)),
        }
    }

    /// C-STORE of an in-memory data set (already encoded in the context's
    /// transfer syntax), fragmented to the peer's maximum length without copying.
    pub fn store_bytes(
        &mut self,
        context_id: u8,
        sop_class: &str,
        sop_instance: &str,
        dataset: Bytes,
    ) -> Result<StoreOutcome, NetError> {
        let transfer_syntax = self.accepted_context(context_id)?.transfer_syntax.clone();
        let message_id = self.send_store_command(context_id, sop_class, sop_instance)?;
        let tagged = self.begin_tag(message_id, sop_class, sop_instance, &transfer_syntax)?;
        let chunk = max_pdv_data(self.peer_max);
        let total = dataset.len();
        let mut start = 0usize;
        loop {
            let end = start.saturating_add(chunk).min(total);
            let is_last = end == total;
            let piece = dataset.slice(start..end);
            if tagged {
                self.tag_chunk(piece.clone())?;
            }
            let sent = self.conn.send_pdv(context_id, false, is_last, piece);
            self.after_send(sent)?;
            if is_last {
                break;
            }
            start = end;
        }
        let tag = self.send_tag(message_id, tagged)?;
        let mut outcome = self.store_response(message_id)?;
        outcome.integrity_tag = tag;
        Ok(outcome)
    }

    /// C-STORE of a Part 10 file whose header is `meta` (from
    /// [`crate::part10::read_file_meta`]): the data set is streamed from
    /// `meta.dataset_offset` in chunks sized to the peer's maximum length, never
    /// loading the whole file. The context must have been accepted with the
    /// file's SOP class and transfer syntax.
    pub fn store_file(
        &mut self,
        path: &Path,
        context_id: u8,
        meta: &FileMeta,
    ) -> Result<StoreOutcome, NetError> {
        let pending = self.begin_store_file(path, context_id, meta)?;
        self.finish_store(pending)
    }

    /// How many C-STOREs may be outstanding: the window both sides agreed to,
    /// 1 with a peer that did not negotiate one.
    pub fn async_window(&self) -> usize {
        self.window
    }

    /// Waits for the answer to a C-STORE sent with [`Self::begin_store_file`].
    pub fn finish_store(&mut self, pending: PendingStore) -> Result<StoreOutcome, NetError> {
        let mut outcome = self.store_response(pending.message_id)?;
        outcome.integrity_tag = pending.integrity_tag;
        Ok(outcome)
    }

    /// Sends a C-STORE of a Part 10 file like [`Self::store_file`] without
    /// waiting for its answer; collect it with [`Self::finish_store`]. With
    /// [`Self::async_window`] C-STOREs outstanding, first waits until the peer
    /// answers one (its answer is kept for [`Self::finish_store`]).
    pub fn begin_store_file(
        &mut self,
        path: &Path,
        context_id: u8,
        meta: &FileMeta,
    ) -> Result<PendingStore, NetError> {
        let ctx = self.accepted_context(context_id)?;
        if ctx.abstract_syntax != meta.media_storage_sop_class_uid {
            return Err(NetError::InvalidArgument(format!(
                "context {context_id} is for {}, the file is {}",
                ctx.abstract_syntax, meta.media_storage_sop_class_uid
            )));
        }
        if ctx.transfer_syntax != meta.transfer_syntax_uid {
            return Err(NetError::InvalidArgument(format!(
                "context {context_id} was accepted with transfer syntax {}, the file is {}",
                ctx.transfer_syntax, meta.transfer_syntax_uid
            )));
        }
        let mut file = File::open(path)?;
        let file_len = file.metadata()?.len();
        let dataset_len = file_len.checked_sub(meta.dataset_offset).ok_or_else(|| {
            NetError::InvalidArgument(format!(
                "{} is shorter than its file meta information",
                path.display()
            ))
        })?;
        file.seek(SeekFrom::Start(meta.dataset_offset))?;

        let message_id = self.send_store_command(
            context_id,
            &meta.media_storage_sop_class_uid,
            &meta.media_storage_sop_instance_uid,
        )?;
        let tagged = self.begin_tag(
            message_id,
            &meta.media_storage_sop_class_uid,
            &meta.media_storage_sop_instance_uid,
            &meta.transfer_syntax_uid,
        )?;
        #[cfg(target_os = "linux")]
        if !tagged && dataset_len > 0 && self.conn.is_plain_tcp() {
            self.send_dataset_sendfile(&file, path, context_id, meta.dataset_offset, dataset_len)?;
            return Ok(PendingStore {
                message_id,
                size: dataset_len,
                integrity_tag: None,
            });
        }
        let mut fragmenter = DatasetFragmenter::new(context_id, dataset_len, self.peer_max);
        while let Some(n) = fragmenter.next_chunk_len() {
            // read_to_end fills the vector's spare capacity without zeroing it
            // first, and Bytes::from takes the vector without a copy.
            let mut chunk = Vec::with_capacity(n);
            let read = (&mut file).take(n as u64).read_to_end(&mut chunk);
            if let Err(e) = read {
                self.conn.abort();
                return Err(e.into());
            }
            if chunk.len() < n {
                self.conn.abort();
                return Err(NetError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("{} shrank while it was being sent", path.display()),
                )));
            }
            let chunk = Bytes::from(chunk);
            if tagged {
                // The worker hashes this buffer while it is being sent.
                self.tag_chunk(chunk.clone())?;
            }
            let pdv = match fragmenter.pdv_for(chunk) {
                Ok(pdv) => pdv,
                Err(e) => {
                    self.conn.abort();
                    return Err(e.into());
                }
            };
            let sent = self.conn.send_pdv(context_id, false, pdv.is_last, pdv.data);
            self.after_send(sent)?;
        }
        let integrity_tag = self.send_tag(message_id, tagged)?;
        Ok(PendingStore {
            message_id,
            size: dataset_len,
            integrity_tag,
        })
    }

    /// The data set of `path` (`len` bytes from `offset`) as PDVs whose payload
    /// goes from the file to the socket with sendfile(2), each after its header
    /// ([`Connection::send_pdv_header`]: the state machine still validates every
    /// PDV). The socket is corked for the whole data set so headers and payload
    /// fill whole segments; uncorking at the end sends the last partial one.
    #[cfg(target_os = "linux")]
    fn send_dataset_sendfile(
        &mut self,
        file: &File,
        path: &Path,
        context_id: u8,
        offset: u64,
        len: u64,
    ) -> Result<(), NetError> {
        let max = crate::dimse::max_pdv_data(self.peer_max);
        let corked = self.conn.set_cork(true);
        let mut pos = offset;
        let mut remaining = len;
        let mut sent = Ok(());
        while remaining > 0 && sent.is_ok() {
            let n = usize::try_from(remaining).unwrap_or(usize::MAX).min(max);
            let is_last = remaining == n as u64;
            sent = self.conn.send_pdv_header(context_id, is_last, n);
            if sent.is_ok() {
                sent = self.conn.send_file_payload(file, &mut pos, n);
            }
            remaining = remaining.saturating_sub(n as u64);
        }
        if corked {
            self.conn.set_cork(false);
        }
        match sent {
            Err(NetError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                self.conn.abort();
                Err(NetError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("{} shrank while it was being sent", path.display()),
                )))
            }
            other => self.after_send(other),
        }
    }

    /// Starts the tag of the C-STORE `message_id` on the hashing worker when
    /// integrity is in force; whether it did.
    fn begin_tag(
        &mut self,
        message_id: u16,
        sop_class: &str,
        sop_instance: &str,
        transfer_syntax: &str,
    ) -> Result<bool, NetError> {
        let Some(tagger) = self.tagger(message_id, sop_class, sop_instance, transfer_syntax) else {
            return Ok(false);
        };
        let hasher = self
            .hasher
            .get_or_insert_with(|| Hasher::new("securepdu-scu-hash"));
        hasher.begin(false, Some(tagger));
        Ok(true)
    }

    /// Hands the next data set bytes to the hashing worker (blocks while it is
    /// a few chunks behind).
    fn tag_chunk(&mut self, chunk: Bytes) -> Result<(), NetError> {
        let fed = match &mut self.hasher {
            Some(h) => h.data(chunk),
            None => Err(HasherGone),
        };
        fed.map_err(|e| self.hash_failed(e))
    }

    /// The data set was sent but its tag cannot be computed: the C-STORE cannot
    /// complete, so the association is aborted.
    fn hash_failed(&mut self, e: HasherGone) -> NetError {
        self.conn.abort();
        NetError::Io(std::io::Error::other(format!("integrity: {e}")))
    }

    /// A tagger for the C-STORE `message_id`, when integrity is in force. The
    /// UIDs are taken as the peer decodes them from the command (padding
    /// stripped).
    fn tagger(
        &self,
        message_id: u16,
        sop_class: &str,
        sop_instance: &str,
        transfer_syntax: &str,
    ) -> Option<Tagger> {
        let strip = |s: &str| s.trim_matches(|c: char| c == '\0' || c == ' ').to_owned();
        self.integrity.as_ref().map(|i| {
            i.session.tagger(
                message_id,
                &strip(sop_class),
                &strip(sop_instance),
                &strip(transfer_syntax),
            )
        })
    }

    /// Sends the tag PDV after the data set; returns the tag.
    fn send_tag(
        &mut self,
        message_id: u16,
        tagged: bool,
    ) -> Result<Option<[u8; TAG_LEN]>, NetError> {
        let Some(ctx) = self.integrity.as_ref().map(|i| i.context_id) else {
            return Ok(None);
        };
        if !tagged {
            return Ok(None);
        }
        let digests = match &mut self.hasher {
            Some(h) => h.finish(),
            None => Err(HasherGone),
        };
        let tag = match digests {
            Ok(Digests { tag: Some(tag), .. }) => tag,
            Ok(_) => return Err(self.hash_failed(HasherGone)),
            Err(e) => return Err(self.hash_failed(e)),
        };
        let data = Bytes::copy_from_slice(&encode_tag_pdv(message_id, &tag));
        let sent = self.conn.send_pdv(ctx, true, true, data);
        self.after_send(sent)?;
        Ok(Some(tag))
    }

    /// A-RELEASE: sends the request, waits for the reply (answering a release
    /// collision), closes the connection.
    pub fn release(&mut self) -> Result<(), NetError> {
        let now = Instant::now();
        self.conn.association_mut().request_release(now)?;
        let flushed = self.conn.flush(now);
        self.after_send(flushed)?;
        let deadline = deadline_after(now, self.timeouts.acse);
        loop {
            match self.conn.next_indication(deadline, "A-RELEASE response")? {
                Indication::ReleaseConfirm { .. } => return Ok(()),
                Indication::ReleaseCollision { requestor: true } => {
                    let now = Instant::now();
                    self.conn.association_mut().respond_release(now)?;
                    self.conn.flush(now)?;
                }
                other => {
                    if let Some(err) = indication_error(&other) {
                        return Err(err);
                    }
                }
            }
        }
    }

    /// A-ABORT: sends it and closes the connection at once.
    pub fn abort(&mut self) {
        self.conn.abort();
    }

    fn message_id(&mut self) -> u16 {
        let id = self.next_message_id;
        self.next_message_id = match id.wrapping_add(1) {
            0 => 1,
            n => n,
        };
        id
    }

    fn accepted_context(&self, context_id: u8) -> Result<&AcceptedContext, NetError> {
        self.accepted
            .iter()
            .find(|c| c.id == context_id)
            .ok_or_else(|| {
                NetError::InvalidArgument(format!(
                    "presentation context {context_id} was not accepted"
                ))
            })
    }

    fn send_store_command(
        &mut self,
        context_id: u8,
        sop_class: &str,
        sop_instance: &str,
    ) -> Result<u16, NetError> {
        // A full window: wait for the oldest answer (kept for finish_store).
        while self.outstanding.len() >= self.window {
            let Some(&oldest) = self.outstanding.first() else {
                break;
            };
            let message = self.wait_response(oldest, "C-STORE response")?;
            self.answered.push((oldest, message));
        }
        let message_id = self.message_id();
        self.outstanding.push(message_id);
        let rq = Message::CStoreRq(CStoreRq {
            message_id,
            priority: Priority::Medium,
            affected_sop_class_uid: sop_class.to_owned(),
            affected_sop_instance_uid: sop_instance.to_owned(),
            move_originator_ae_title: None,
            move_originator_message_id: None,
        });
        let peer_max = self.peer_max;
        let sent = self.conn.send_command(context_id, &rq, peer_max);
        self.after_send(sent)?;
        Ok(message_id)
    }

    fn store_response(&mut self, message_id: u16) -> Result<StoreOutcome, NetError> {
        match self.wait_response(message_id, "C-STORE response")? {
            Message::CStoreRsp(rsp) => Ok(StoreOutcome {
                status: rsp.status,
                error_comment: rsp.error_comment,
                integrity_tag: None,
            }),
            other => Err(unexpected_response(&other)),
        }
    }

    /// After a failed send: report the peer's A-ABORT if it sent one (the usual
    /// reason a write fails mid-store), else abort and report the error.
    fn after_send(&mut self, result: Result<(), NetError>) -> Result<(), NetError> {
        match result {
            Ok(()) => Ok(()),
            Err(NetError::Io(e)) => {
                let err = self
                    .conn
                    .collect_abort(ABORT_GRACE)
                    .unwrap_or(NetError::Io(e));
                self.conn.abort();
                Err(err)
            }
            Err(NetError::Timeout { what }) => {
                self.conn.abort();
                Err(NetError::Timeout { what })
            }
            Err(other) => Err(other),
        }
    }

    /// Waits for the response to request `message_id`.
    /// Answers to other outstanding requests that arrive meanwhile are kept.
    fn wait_response(&mut self, message_id: u16, what: &'static str) -> Result<Message, NetError> {
        if let Some(i) = self.answered.iter().position(|(id, _)| *id == message_id) {
            return Ok(self.answered.swap_remove(i).1);
        }
        self.outstanding.retain(|id| *id != message_id);
        let deadline = deadline_after(Instant::now(), self.timeouts.dimse);
        loop {
            match self.conn.next_indication(deadline, what)? {
                Indication::PData(pdata) => {
                    let events = match self.reassembler.feed(pdata) {
                        Ok(events) => events,
                        Err(e) => {
                            self.conn.abort();
                            return Err(e.into());
                        }
                    };
                    let mut found = None;
                    for event in events {
                        if let Event::Command { message, .. } = event {
                            match response_id(&message) {
                                Some(id) if id == message_id => found = Some(message),
                                Some(id) if self.outstanding.contains(&id) => {
                                    self.outstanding.retain(|o| *o != id);
                                    self.answered.push((id, message));
                                }
                                _ => {}
                            }
                        }
                    }
                    if let Some(message) = found {
                        return Ok(message);
                    }
                }
                Indication::ReleaseRequest => {
                    // An acceptor may not release (PS3.7 D.3.2), but answer politely.
                    let now = Instant::now();
                    self.conn.association_mut().respond_release(now)?;
                    self.conn.flush(now)?;
                    return Err(NetError::Protocol(format!(
                        "the peer released the association while we waited for the {what}"
                    )));
                }
                other => {
                    if let Some(err) = indication_error(&other) {
                        return Err(err);
                    }
                }
            }
        }
    }
}

impl Drop for ScuAssociation {
    fn drop(&mut self) {
        if !self.conn.is_closed() {
            self.conn.abort();
        }
    }
}

fn response_id(message: &Message) -> Option<u16> {
    match message {
        Message::CEchoRsp(r) => Some(r.message_id_being_responded_to),
        Message::CStoreRsp(r) => Some(r.message_id_being_responded_to),
        Message::Other {
            message_id_being_responded_to,
            ..
        } => *message_id_being_responded_to,
        _ => None,
    }
}

fn unexpected_response(message: &Message) -> NetError {
    NetError::Protocol(format!(
        "unexpected response with command field 0x{:04X}",
        message.command_field()
    ))
}

/// What the SCU proposes for integrity.
struct Offer {
    context_id: u8,
    nonce: [u8; NONCE_LEN],
    item: SopClassExtended,
    config: IntegrityConfig,
}

/// The integrity context (the next odd ID after `n_contexts` others) and the
/// 0x56 offer.
fn integrity_offer(config: &IntegrityConfig, n_contexts: usize) -> Result<Offer, NetError> {
    let context_id = n_contexts
        .checked_mul(2)
        .and_then(|n| n.checked_add(1))
        .and_then(|id| u8::try_from(id).ok())
        .ok_or_else(|| {
            NetError::InvalidArgument(format!(
                "{n_contexts} presentation contexts proposed; with integrity protection at most \
                 {} fit (the integrity context takes one of the {MAX_CONTEXTS})",
                MAX_CONTEXTS - 1
            ))
        })?;
    let nonce = random_nonce()?;
    let info = IntegrityOffer {
        key_id: config.key.id().to_owned(),
        nonce,
    }
    .encode()?;
    Ok(Offer {
        context_id,
        nonce,
        item: SopClassExtended {
            sop_class_uid: INTEGRITY_SOP_CLASS.to_owned(),
            service_class_application_information: info,
        },
        config: config.clone(),
    })
}

/// Reads the peer's integrity answer from the A-ASSOCIATE-AC. `Ok(None)`: the
/// peer does not do integrity and the policy allows that. An error means the
/// association must be aborted.
fn establish_integrity(
    conn: &Connection<Stream>,
    ac: &AssociateAc,
    offer: &Offer,
    calling_ae: &str,
    called_ae: &str,
) -> Result<Option<ActiveIntegrity>, NetError> {
    let accepted = ac
        .presentation_contexts
        .iter()
        .any(|pc| pc.id == offer.context_id && pc.result == 0);
    let answer = ac
        .user_info
        .sop_class_extended
        .iter()
        .find(|x| x.sop_class_uid == INTEGRITY_SOP_CLASS);
    let Some(answer) = answer.filter(|_| accepted) else {
        if offer.config.policy != Policy::Required {
            return Ok(None);
        }
        // A standard peer rejects the private context; a promiscuous one may
        // accept it without understanding the 0x56 item.
        let why = if accepted {
            "it accepted the integrity context without answering the key negotiation"
        } else {
            "it rejected the integrity presentation context"
        };
        return Err(IntegrityError::Unsupported(why.into()).into());
    };
    let answer = IntegrityAnswer::decode(&answer.service_class_application_information)?;
    let exporter = conn
        .stream()
        .export_keying_material(TLS_EXPORTER_LABEL, TLS_EXPORTER_LEN)?
        .unwrap_or_default();
    let session = SessionKey::derive(
        &offer.config.key,
        &offer.nonce,
        &answer.nonce,
        calling_ae,
        called_ae,
        &exporter,
    )?;
    if !ct_eq(&session.confirm(), &answer.confirm) {
        return Err(IntegrityError::KeyMismatch {
            key_id: offer.config.key.id().to_owned(),
        }
        .into());
    }
    Ok(Some(ActiveIntegrity {
        context_id: offer.context_id,
        key_id: offer.config.key.id().to_owned(),
        session,
    }))
}

/// `now + d`; a timeout too large to represent is a year, "forever" for a
/// socket wait.
pub(crate) fn deadline_after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(now)
}

/// Presentation context items for `contexts`, IDs 1, 3, 5...
fn proposed_contexts(
    contexts: &[(String, Vec<String>)],
) -> Result<Vec<PresentationContextRq>, NetError> {
    let default;
    let contexts = if contexts.is_empty() {
        default = [(
            VERIFICATION_SOP_CLASS.to_owned(),
            vec![
                EXPLICIT_VR_LITTLE_ENDIAN.to_owned(),
                IMPLICIT_VR_LITTLE_ENDIAN.to_owned(),
            ],
        )];
        &default[..]
    } else {
        contexts
    };
    if contexts.len() > MAX_CONTEXTS {
        return Err(NetError::InvalidArgument(format!(
            "{} presentation contexts proposed; at most {MAX_CONTEXTS} fit in one association",
            contexts.len()
        )));
    }
    contexts
        .iter()
        .zip((1u8..=255).step_by(2))
        .map(|((abstract_syntax, ts), id)| {
            if abstract_syntax.trim().is_empty() || ts.is_empty() {
                return Err(NetError::InvalidArgument(format!(
                    "presentation context {id}: an abstract syntax and at least one transfer syntax are needed"
                )));
            }
            Ok(PresentationContextRq {
                id,
                abstract_syntax: abstract_syntax.trim().to_owned(),
                transfer_syntaxes: ts.iter().map(|t| t.trim().to_owned()).collect(),
            })
        })
        .collect()
}

/// Reads the Part 10 header of the file at `path`, reading only as far as the
/// header goes (a few hundred bytes, usually), never the data set.
pub fn read_file_meta_at(path: &Path) -> Result<FileMeta, NetError> {
    let file = File::open(path)?;
    let mut buf = Vec::new();
    let mut want = 1024usize;
    loop {
        let have = buf.len();
        // take() bounds the read; the Part 10 reader caps how far `want` can grow.
        (&file)
            .take(want.saturating_sub(have) as u64)
            .read_to_end(&mut buf)?;
        match crate::part10::read_file_meta(&buf) {
            Err(crate::part10::Part10Error::NeedMore { at_least }) if buf.len() > have => {
                want = at_least.max(want.saturating_mul(2));
            }
            other => return other.map_err(NetError::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_ids_are_odd() {
        let ctx = vec![("1.2".to_string(), vec!["1.2.840.10008.1.2".to_string()]); 128];
        let pcs = proposed_contexts(&ctx).unwrap();
        assert_eq!(pcs.first().unwrap().id, 1);
        assert_eq!(pcs.last().unwrap().id, 255);
        let too_many = vec![("1.2".to_string(), vec!["1.2.840.10008.1.2".to_string()]); 129];
        assert!(proposed_contexts(&too_many).is_err());
        let default = proposed_contexts(&[]).unwrap();
        assert_eq!(default.len(), 1);
        assert_eq!(default[0].abstract_syntax, VERIFICATION_SOP_CLASS);
    }
}
