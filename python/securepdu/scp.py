"""The server side: a storage SCP that writes every object durably before it
answers Success.

Sockets, association threads and disk writes are in the Rust core with the GIL
released; Python is entered only to run ``on_store`` after an object is on disk.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from securepdu import _core
from securepdu.association import DEFAULT_MAX_OPS, DEFAULT_MAX_PDU, _fmt_addr, _pdu_trace
from securepdu.integrity import KeySource, resolve_integrity
from securepdu.tls import TLSConfig

if TYPE_CHECKING:  # imported when first needed: see securepdu.association
    from pydicom import Dataset

__all__ = [
    "DEFAULT_MIN_FREE_SPACE",
    "STATUS_HANDLER_FAILED",
    "STATUS_OUT_OF_SPACE",
    "StorageSCP",
    "StoreEvent",
    "UserIdentity",
]

log = logging.getLogger("securepdu")

#: Status answered when ``on_store`` raises: a failure in the 0xC000 "cannot
#: understand" range, with the exception text as the error comment.
STATUS_HANDLER_FAILED = 0xC001

#: Status answered when storing an object would leave less than
#: ``min_free_space`` on the storage volume ("Refused: Out of Resources", A7xx).
STATUS_OUT_OF_SPACE = 0xA701

#: Free space a StorageSCP keeps on its storage volume unless told otherwise.
DEFAULT_MIN_FREE_SPACE = 64 << 20

#: Kinds of user identity (PS3.7 D.3.3.7.1).
USER_IDENTITY_KINDS = {1: "username", 2: "username and passcode", 3: "Kerberos", 4: "SAML", 5: "JWT"}


@dataclass(frozen=True)
class UserIdentity:
    """The identity a peer asserted in its A-ASSOCIATE-RQ (PS3.7 D.3.3.7), as
    given to ``on_user_identity``."""

    peer_address: tuple[str, int]
    #: 1 username, 2 username and passcode, 3 Kerberos service ticket, 4 SAML
    #: assertion, 5 JSON Web Token.
    kind: int
    #: The username, ticket, assertion or token.
    primary: bytes
    #: The passcode (kind 2); empty otherwise.
    secondary: bytes
    #: Whether the peer asked for a positive response.
    response_requested: bool

    @property
    def kind_name(self) -> str:
        """The kind in words ("username and passcode", "JWT", ...)."""
        return USER_IDENTITY_KINDS.get(self.kind, f"type {self.kind}")


#: ``on_user_identity(identity)`` returns True to accept, bytes to accept with that
#: server response (a Kerberos server ticket, SAML response or JWT), or False/None
#: to refuse; raising refuses too.
OnUserIdentity = Callable[[UserIdentity], "bool | bytes | None"]


@dataclass(frozen=True)
class StoreEvent:
    """An object that has just been stored durably (fsynced and renamed into place).

    ``dataset()`` reads it back with pydicom when you need its contents.
    """

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    calling_ae: str
    called_ae: str
    peer_address: tuple[str, int]
    size: int
    #: Subject of the client's verified TLS certificate (e.g. "O=Hospital,CN=CT1"),
    #: or None without mutual TLS.
    peer_certificate_subject: str | None = None
    #: SHA-256 (hex) of the stored file, computed while it was written; also in
    #: the manifest.
    sha256: str = ""
    #: The sender's integrity tag (hex) and its key id, when integrity was active.
    integrity_tag: str | None = None
    integrity_key_id: str | None = None
    _cache: dict[str, Dataset] = field(default_factory=dict, repr=False, compare=False)

    def dataset(self) -> Dataset:
        """The stored object, read with pydicom (once; later calls reuse it)."""
        if "ds" not in self._cache:
            from pydicom import dcmread

            self._cache["ds"] = dcmread(self.path)
        return self._cache["ds"]


OnStore = Callable[[StoreEvent], "int | None"]


class StorageSCP:
    """A C-STORE and C-ECHO server (the storescp equivalent).

    Every storage SOP class of PS3.4 Annex B is accepted in the uncompressed
    transfer syntaxes (implicit and explicit VR little endian, explicit big
    endian, deflated) and the compressed ones are taken as received. Objects are
    written to ``storage_dir`` as ``<SOP Instance UID>.dcm``.

    ``on_store(event)`` runs after each object is durable and before the answer
    is sent; returning an int sends that status, raising sends a failure status
    (0xC001) with the error as comment. It runs in the association's thread, or
    in one of its storage threads, so several may run at once.

    A peer that proposes an asynchronous operations window (PS3.7 D.3.3.3), as a
    securepdu SCU does, may have up to ``max_ops`` (at most 16) C-STOREs
    outstanding: each object is still answered only once it is durable, but the
    next ones arrive meanwhile and several are made durable in parallel. Other
    peers get one answer per C-STORE before they send the next, as usual.

    With ``tls`` (a :class:`~securepdu.TLSConfig` with ``cert`` and ``key``)
    every connection must speak TLS; given ``ca`` too, clients must present a
    certificate from it (mutual TLS). The handshake runs in the association's
    own thread, so a slow or plain-TCP client holds up no one else; TLS
    failures are logged with their cause and the peer's address.

    With ``integrity_key`` every object sent by a securepdu peer holding the same
    key carries a tag, checked in constant time before the object is made durable
    and Success is sent; a mismatch deletes the object and answers 0xC2A0.
    ``integrity="required"`` refuses associations without it. Whatever the
    setting, each stored object gets a line in ``securepdu-manifest.jsonl`` in
    the storage folder (its SHA-256, the tag and the sender); see
    :func:`securepdu.verify`.

    Who may associate: ``calling_aes`` (allowed calling AE titles),
    ``networks`` (allowed peer networks in CIDR notation, IPv4 and IPv6, e.g.
    ``["10.0.0.0/8", "2001:db8::/32"]``), ``require_called_ae`` and, with TLS,
    the certificate binding of :class:`~securepdu.TLSConfig`. A peer's user
    identity (username, username and passcode, Kerberos, SAML or JWT; PS3.7
    D.3.3.7) goes to ``on_user_identity``, whose answer is returned to the peer
    when it asks for one; ``require_user_identity`` refuses peers without one.
    Each refusal is an A-ASSOCIATE-RJ with the result, source and reason that
    fit, logged with the peer's address.

    Limits: ``max_associations`` in all and ``max_associations_per_peer`` from
    one address (one more is rejected as transient, local limit exceeded),
    ``max_pdu``, ``max_object_size`` (bytes; a larger object is refused with
    0xA700) and ``min_free_space`` (bytes kept free on the storage volume; an
    object that would eat into them is refused with 0xA701). A refused object
    leaves no file behind. Temporary files left by a server that died are
    removed when the next one starts on the same folder.
    """

    def __init__(
        self,
        ae_title: str = "SECUREPDU",
        storage_dir: str | os.PathLike[str] = ".",
        on_store: OnStore | None = None,
        *,
        require_called_ae: bool = False,
        max_associations: int = 32,
        max_pdu: int = DEFAULT_MAX_PDU,
        acse_timeout: float = 30.0,
        dimse_timeout: float = 60.0,
        idle_timeout: float = 120.0,
        tls: TLSConfig | None = None,
        integrity: str | None = None,
        integrity_key: KeySource = None,
        max_ops: int = DEFAULT_MAX_OPS,
        calling_aes: Iterable[str] | None = None,
        networks: Iterable[str] | None = None,
        on_user_identity: OnUserIdentity | None = None,
        require_user_identity: bool = False,
        max_associations_per_peer: int | None = None,
        max_object_size: int | None = None,
        min_free_space: int = DEFAULT_MIN_FREE_SPACE,
    ) -> None:
        self.ae_title = ae_title
        self.storage_dir = Path(storage_dir)
        self.on_store = on_store
        self.require_called_ae = require_called_ae
        self.max_associations = max_associations
        self.max_pdu = max_pdu
        self.acse_timeout = acse_timeout
        self.dimse_timeout = dimse_timeout
        self.idle_timeout = idle_timeout
        self.tls = tls
        self.max_ops = max_ops
        self.calling_aes = list(calling_aes) if calling_aes is not None else None
        self.networks = list(networks) if networks is not None else None
        self.on_user_identity = on_user_identity
        self.require_user_identity = require_user_identity
        self.max_associations_per_peer = max_associations_per_peer
        self.max_object_size = max_object_size
        self.min_free_space = min_free_space
        # Checked now, so a bad key or policy fails here rather than at serve().
        self._integrity = resolve_integrity(integrity, integrity_key)
        self._server: _core.StorageServer | None = None

    # -- running -----------------------------------------------------------
    def _bind(self, host: str, port: int) -> _core.StorageServer:
        if self._server is not None:
            raise RuntimeError("this StorageSCP is already running; shut it down first")
        self.storage_dir.mkdir(parents=True, exist_ok=True)
        server = _core.StorageServer(
            host,
            int(port),
            self.ae_title,
            os.fspath(self.storage_dir),
            self.require_called_ae,
            int(self.max_associations),
            int(self.max_pdu),
            float(self.acse_timeout),
            float(self.dimse_timeout),
            float(self.idle_timeout),
            self._dispatch,
            self._on_association,
            self._on_tls_error,
            self._on_event,
            self.tls._server_options() if self.tls is not None else None,
            {k: list(v) for k, v in self.tls.allowed_calling_aes.items()} if self.tls is not None else None,
            self._integrity,
            _pdu_trace(),
            max(1, min(int(self.max_ops), DEFAULT_MAX_OPS)),
            self.calling_aes,
            self.networks,
            self.require_user_identity,
            self._verify_user if self.on_user_identity is not None else None,
            int(self.max_associations_per_peer or 0),
            int(self.max_object_size or 0),
            int(self.min_free_space),
        )
        self._server = server
        log.info("listening on %s as %s, storing into %s", _fmt_addr(server.address), self.ae_title, self.storage_dir)
        return server

    def serve(self, host: str = "::", port: int = 11112) -> None:
        """Listens on ``host``:``port`` and serves until :meth:`shutdown` or Ctrl-C.

        ``"::"`` takes IPv6 and IPv4 on one socket (IPv4 only where IPv6 is off).
        """
        server = self._bind(host, port)
        try:
            server.serve()
        finally:
            self._server = None

    def start(self, host: str = "::", port: int = 0) -> StorageSCP:
        """Starts serving in the background and returns ``self``; port 0 picks a free
        port (see :attr:`port`)."""
        self._bind(host, port).start()
        return self

    def shutdown(self, grace: float | None = None) -> None:
        """Stops accepting and returns once every association has ended.

        Associations between messages are aborted at once; one in the middle of
        an object may finish it within ``grace`` seconds (default: the ACSE
        timeout) and is aborted after that, so its peer gets no Success for an
        object that was not stored.
        """
        server, self._server = self._server, None
        if server is not None:
            server.shutdown(grace)
            log.info("stopped listening on %s", _fmt_addr(server.address))

    @property
    def address(self) -> tuple[str, int]:
        """The (address, port) the server listens on."""
        if self._server is None:
            raise RuntimeError("the StorageSCP is not running")
        return self._server.address

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return self.address[1]

    @property
    def active_associations(self) -> int:
        """Associations being served right now."""
        return self._server.active_associations if self._server is not None else 0

    def __enter__(self) -> StorageSCP:
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()

    # -- called from the Rust core ----------------------------------------
    def _dispatch(self, info: tuple[Any, ...]) -> tuple[int, str | None] | None:
        path, sop_class, sop_instance, ts, calling, called, peer, size, subject, sha256, integrity = info
        key_id, tag = integrity if integrity is not None else (None, None)
        event = StoreEvent(
            Path(path), sop_class, sop_instance, ts, calling, called, tuple(peer), size, subject, sha256, tag, key_id
        )
        log.info(
            "stored %s from %s (%s) as %s, %d bytes", sop_instance, calling, _fmt_addr(event.peer_address), path, size
        )
        if self.on_store is None:
            return None
        try:
            status = self.on_store(event)
        except Exception as exc:  # the handler's failure is the peer's failure status, not ours
            log.exception("on_store failed for %s", sop_instance)
            return (STATUS_HANDLER_FAILED, f"storage handler failed: {exc}"[:64])
        if status is None:
            return None
        return (int(status), None)

    def _verify_user(self, info: tuple[Any, ...]) -> bool | bytes | None:
        peer, kind, primary, secondary, requested = info
        identity = UserIdentity(tuple(peer), kind, primary, secondary, requested)
        assert self.on_user_identity is not None  # only handed to the core when set
        try:
            return self.on_user_identity(identity)
        except Exception:
            log.exception("on_user_identity failed for %s from %s", identity.kind_name, _fmt_addr(identity.peer_address))
            raise

    def _on_event(self, info: tuple[Any, ...]) -> None:
        kind, peer, first, second, detail = info
        if kind == "refused":
            log.warning("association from %s at %s to %s refused: %s", first, _fmt_addr(tuple(peer)), second, detail)
        elif kind == "error":
            where = f" ({_fmt_addr(tuple(peer))})" if peer[0] else ""
            log.error("storage SCP%s: %s", where, detail)
        else:
            log.warning("integrity check failed for %s from %s: %s", first, _fmt_addr(tuple(peer)), detail)

    def _on_tls_error(self, info: tuple[Any, ...]) -> None:
        peer, message = info
        log.warning("TLS with %s failed: %s", _fmt_addr(tuple(peer)), message)

    def _on_association(self, info: tuple[Any, ...]) -> None:
        peer, calling, called, accepted, _detail = info
        # Refusals are logged by _on_event, which carries the reason.
        if accepted:
            log.info("association from %s at %s to %s accepted", calling, _fmt_addr(tuple(peer)), called)
