"""The client side: open an association, verify it with C-ECHO, store objects.

The Rust core does the network work with the GIL released; this module decides
which presentation context carries each object and, only when the peer did not
accept the object's own transfer syntax, re-encodes it with pydicom.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeGuard, Union

from securepdu import _core, uids
from securepdu.errors import NoPresentationContext
from securepdu.integrity import KeySource, resolve_integrity
from securepdu.tls import TLSConfig

# pydicom (and numpy and PIL behind it) is imported only where a data set is
# decoded or encoded: sending files or bytes in a syntax the peer accepted never
# needs it, and importing it is most of a command's start-up time.
if TYPE_CHECKING:
    from pydicom import Dataset

__all__ = [
    "DEFAULT_MAX_OPS",
    "DEFAULT_MAX_PDU",
    "AcceptedContext",
    "Association",
    "Identity",
    "StoreResult",
    "associate",
    "contexts_for",
    "iter_files",
    "send",
]

log = logging.getLogger("securepdu")

#: The largest P-DATA-TF variable field securepdu asks peers to send (PS3.8 D.1).
#: Larger PDUs mean fewer headers and system calls; dcmtk defaults to 16 KiB.
DEFAULT_MAX_PDU = 262144

#: C-STOREs kept outstanding when the peer agrees to an asynchronous operations
#: window (PS3.7 D.3.3.3), on either side: while the receiver makes one object
#: durable, the sender is already sending the next ones.
DEFAULT_MAX_OPS = 16

#: Presentation context IDs are odd numbers 1-255 (PS3.8 §9.3.2.2): 128 at most.
MAX_CONTEXTS = 128

#: The failure status a securepdu SCP answers when an object's integrity tag does
#: not match (in the 0xCxxx "cannot understand" range).
STATUS_INTEGRITY_FAILED = 0xC2A0

StoreSource = Union["Dataset", str, "os.PathLike[str]", bytes, bytearray, memoryview]
ContextSpec = tuple[str, Sequence[str]]


@dataclass(frozen=True, slots=True)
class AcceptedContext:
    """A presentation context the peer accepted: its ID, abstract syntax and the one
    transfer syntax chosen for it."""

    id: int
    abstract_syntax: str
    transfer_syntax: str


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What became of one C-STORE.

    ``status`` is the DIMSE status the peer answered (PS3.7 Annex C), or ``None``
    when the object never reached the peer; ``error`` then says why.
    """

    status: int | None
    error_comment: str | None = None
    path: Path | None = None
    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    error: str | None = None
    size: int = 0
    #: The securepdu integrity tag (HMAC-SHA256, hex) sent with the object, when
    #: integrity was active; the receiver recorded the same in its manifest.
    integrity_tag: str | None = None

    @property
    def ok(self) -> bool:
        """True for Success (0x0000) and the Warning statuses (0x0001, 0xB000-0xBFFF)."""
        return self.error is None and self.status is not None and (
            self.status in (0x0000, 0x0001) or 0xB000 <= self.status <= 0xBFFF
        )


def _is_dataset(obj: object) -> TypeGuard[Dataset]:
    """Whether ``obj`` is a pydicom ``Dataset``; one cannot exist before pydicom is
    imported, so this never imports it."""
    module = sys.modules.get("pydicom.dataset")
    return module is not None and isinstance(obj, module.Dataset)


def _read_dataset(source: Path | bytes) -> Dataset:
    """A Part 10 file or its bytes, decoded with pydicom."""
    from pydicom import dcmread
    from pydicom.filebase import DicomBytesIO

    return dcmread(DicomBytesIO(source) if isinstance(source, bytes) else source)


def _meta_of_file(path: Path) -> _core.FileMeta:
    return _core.read_file_meta(os.fspath(path))


def _meta_of_bytes(data: bytes) -> _core.FileMeta:
    return _core.parse_file_meta(data)


def _dataset_transfer_syntax(ds: Dataset) -> str | None:
    meta = getattr(ds, "file_meta", None)
    ts = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    return str(ts) if ts else None


def _proposal_for(sop_class: str, transfer_syntax: str | None) -> tuple[str, tuple[str, ...]]:
    """One context per (SOP class, transfer syntax): the object's own syntax first,
    so it goes out as it is, then the uncompressed fallbacks it can be converted to."""
    if transfer_syntax and not uids.is_uncompressed(transfer_syntax):
        return sop_class, (transfer_syntax,)
    own = (transfer_syntax,) if transfer_syntax else ()
    rest = tuple(ts for ts in uids.FALLBACK_TRANSFER_SYNTAXES if ts not in own)
    return sop_class, own + rest


def iter_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Every file named in ``paths``, walking folders recursively in sorted order.
    Hidden files (names starting with a dot) inside folders are skipped."""
    for p in paths:
        path = Path(p)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        yield Path(root) / name
        else:
            yield path


def contexts_for(objs: Iterable[StoreSource]) -> list[tuple[str, list[str]]]:
    """Presentation contexts to propose for sending ``objs`` (paths, Part 10 bytes or
    datasets), Verification first. Paths are read only up to the data set."""
    seen: dict[tuple[str, tuple[str, ...]], None] = {(uids.VERIFICATION, (uids.IMPLICIT_VR_LITTLE_ENDIAN,)): None}
    for obj in objs:
        if _is_dataset(obj):
            key = _proposal_for(str(obj.SOPClassUID), _dataset_transfer_syntax(obj))
        elif isinstance(obj, (bytes, bytearray, memoryview)):
            meta = _meta_of_bytes(bytes(obj))
            key = _proposal_for(meta.sop_class_uid, meta.transfer_syntax)
        else:
            meta = _meta_of_file(Path(obj))
            key = _proposal_for(meta.sop_class_uid, meta.transfer_syntax)
        seen.setdefault(key, None)
    return [(abstract, list(tss)) for abstract, tss in seen]


def _encode_dataset(ds: Dataset, transfer_syntax: str) -> bytes:
    """The data set (without file meta) encoded once, in ``transfer_syntax``."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset
    from pydicom.uid import UID

    ts = UID(transfer_syntax)
    fp = DicomBytesIO()
    fp.is_little_endian = ts.is_little_endian
    fp.is_implicit_VR = ts.is_implicit_VR
    write_dataset(fp, ds)
    data = fp.getvalue()
    if ts.is_deflated:
        # Deflated explicit VR LE is raw deflate (RFC 1951) of the whole data set.
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        data = comp.compress(data) + comp.flush()
    return data


class Association:
    """An open association with a peer, as the requestor (SCU).

    Use it as a context manager: it releases on normal exit and aborts when an
    exception leaves the block. Not for use from several threads at once.
    """

    def __init__(self, inner: _core.ScuAssociation, calling_ae: str, called_ae: str) -> None:
        self._inner = inner
        self.calling_ae = calling_ae
        self.called_ae = called_ae
        self.accepted_contexts: list[AcceptedContext] = [AcceptedContext(*c) for c in inner.accepted_contexts]
        #: Contexts the peer refused: (id, abstract syntax, result code of PS3.8 Table 9-18).
        self.rejected_contexts: list[tuple[int, str, int]] = list(inner.rejected_contexts)

    # -- state -------------------------------------------------------------
    @property
    def peer_address(self) -> tuple[str, int]:
        """The peer's (address, port); IPv4 peers appear as IPv4."""
        return self._inner.peer_address

    @property
    def peer_max_pdu(self) -> int:
        """The largest P-DATA-TF the peer accepts (0: no limit)."""
        return self._inner.peer_max_pdu

    @property
    def integrity_active(self) -> bool:
        """Whether each store on this association carries a securepdu integrity tag."""
        return self._inner.integrity_active

    @property
    def tls_version(self) -> str | None:
        """The TLS version in use ("TLSv1.3", "TLSv1.2"), or None on plain TCP."""
        return self._inner.tls_version

    @property
    def cipher_suite(self) -> str | None:
        """The TLS cipher suite in use (IANA name), or None on plain TCP."""
        return self._inner.cipher_suite

    @property
    def user_identity_response(self) -> bytes | None:
        """The peer's answer to our user identity (a server ticket, SAML response
        or token; empty bytes for a username), or None if it gave none."""
        return self._inner.user_identity_response

    @property
    def async_window(self) -> int:
        """How many C-STOREs :func:`send` keeps outstanding: the asynchronous
        operations window both sides agreed to, 1 when the peer negotiated none."""
        return self._inner.async_window

    @property
    def is_established(self) -> bool:
        """Whether the association is open (not yet released or aborted)."""
        return self._inner.is_established

    def context_for(self, sop_class_uid: str, transfer_syntax: str | None = None) -> AcceptedContext | None:
        """The accepted context for this SOP class, with this transfer syntax if given."""
        for ctx in self.accepted_contexts:
            if ctx.abstract_syntax == sop_class_uid and transfer_syntax in (None, ctx.transfer_syntax):
                return ctx
        return None

    # -- services ----------------------------------------------------------
    def echo(self) -> int:
        """Sends a C-ECHO (Verification) and returns the peer's status (0 is Success)."""
        return self._inner.echo()

    def store(self, obj: StoreSource) -> StoreResult:
        """Sends one object with C-STORE and returns the peer's answer.

        ``obj`` is a pydicom ``Dataset``, the path of a Part 10 file, or the bytes of
        one. A file or bytes whose transfer syntax the peer accepted go out as they
        are, streamed from disk by the Rust core without decoding; otherwise the
        object is decoded with pydicom and encoded once in an accepted syntax.
        Raises :class:`~securepdu.errors.NoPresentationContext` if nothing accepted
        can carry it, and network errors as they happen.
        """
        if _is_dataset(obj):
            return self._store_dataset(obj, None)
        if isinstance(obj, (bytes, bytearray, memoryview)):
            data = bytes(obj)
            meta = _meta_of_bytes(data)
            ctx = self.context_for(meta.sop_class_uid, meta.transfer_syntax)
            if ctx is None:
                return self._store_dataset(_read_dataset(data), None)
            payload = data[meta.dataset_offset :]
            return self._send_bytes(ctx, meta.sop_class_uid, meta.sop_instance_uid, payload, None)
        path = Path(obj)
        return self._store_file(path, _meta_of_file(path))

    def _store_file(self, path: Path, meta: _core.FileMeta) -> StoreResult:
        """Stores the Part 10 file at ``path`` whose header ``meta`` was read already."""
        ctx = self.context_for(meta.sop_class_uid, meta.transfer_syntax)
        if ctx is None:
            return self._store_dataset(_read_dataset(path), path)
        started = time.perf_counter()
        status, comment, size, tag = self._inner.store_file(os.fspath(path), ctx.id, meta)
        result = StoreResult(
            status, comment, path, meta.sop_class_uid, meta.sop_instance_uid, size=size, integrity_tag=tag
        )
        self._log_store(result, time.perf_counter() - started)
        return result

    def _begin_store_file(self, path: Path, meta: _core.FileMeta) -> Callable[[], StoreResult]:
        """Sends the file at ``path`` without waiting for the answer; returns a
        function that waits for it. Files needing re-encoding go synchronously."""
        ctx = self.context_for(meta.sop_class_uid, meta.transfer_syntax)
        if ctx is None:
            done = self._store_dataset(_read_dataset(path), path)
            return lambda: done
        started = time.perf_counter()
        message_id, size, tag = self._inner.store_file_begin(os.fspath(path), ctx.id, meta)

        def finish() -> StoreResult:
            status, comment = self._inner.store_wait(message_id)
            result = StoreResult(
                status, comment, path, meta.sop_class_uid, meta.sop_instance_uid, size=size, integrity_tag=tag
            )
            self._log_store(result, time.perf_counter() - started)
            return result

        return finish

    def _store_dataset(self, ds: Dataset, path: Path | None) -> StoreResult:
        sop_class, sop_instance = str(ds.SOPClassUID), str(ds.SOPInstanceUID)
        own = _dataset_transfer_syntax(ds)
        ctx = self.context_for(sop_class, own) if own else None
        if ctx is None and (own is None or uids.is_uncompressed(own)):
            for ts in (*uids.FALLBACK_TRANSFER_SYNTAXES, *uids.UNCOMPRESSED):
                ctx = self.context_for(sop_class, ts)
                if ctx is not None:
                    break
        if ctx is None:
            raise NoPresentationContext(
                f"the peer accepted no presentation context for SOP class {sop_class} "
                f"in transfer syntax {own or 'any uncompressed'}; propose one with contexts_for()"
            )
        payload = _encode_dataset(ds, ctx.transfer_syntax)
        return self._send_bytes(ctx, sop_class, sop_instance, payload, path)

    def _send_bytes(
        self, ctx: AcceptedContext, sop_class: str, sop_instance: str, payload: bytes, path: Path | None
    ) -> StoreResult:
        started = time.perf_counter()
        status, comment, tag = self._inner.store_bytes(ctx.id, sop_class, sop_instance, payload)
        result = StoreResult(status, comment, path, sop_class, sop_instance, size=len(payload), integrity_tag=tag)
        self._log_store(result, time.perf_counter() - started)
        return result

    def _log_store(self, result: StoreResult, seconds: float) -> None:
        if result.status == STATUS_INTEGRITY_FAILED:
            log.warning(
                "C-STORE %s refused by the peer: %s", result.sop_instance_uid, result.error_comment or "integrity check failed"
            )
        log.info(
            "C-STORE %s %s -> status 0x%04X%s (%d bytes, %.1f ms)",
            result.sop_instance_uid,
            result.path or "",
            result.status or 0,
            f" ({result.error_comment})" if result.error_comment else "",
            result.size,
            seconds * 1000,
        )

    # -- ending ------------------------------------------------------------
    def release(self) -> None:
        """Ends the association in order (A-RELEASE) and closes the connection."""
        self._inner.release()
        log.info("released association with %s at %s", self.called_ae, _fmt_addr(self.peer_address))

    def abort(self) -> None:
        """Ends the association at once (A-ABORT); objects in flight are lost."""
        self._inner.abort()
        log.info("aborted association with %s at %s", self.called_ae, _fmt_addr(self.peer_address))

    def __enter__(self) -> Association:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.is_established:
            return
        if exc_type is None:
            self.release()
        else:
            self.abort()

    def __repr__(self) -> str:
        state = "established" if self.is_established else "closed"
        return f"<Association {self.calling_ae} -> {self.called_ae}@{_fmt_addr(self.peer_address)} {state}>"


def _fmt_addr(addr: tuple[str, int]) -> str:
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _log_pdu(peer: str, line: str) -> None:
    """Logs one PDU summary from the core's trace, prefixed with the peer address."""
    log.debug("%s %s", peer, line)


def _pdu_trace() -> Callable[[str, str], None] | None:
    """The PDU trace to hand the core: on when "securepdu" logs at DEBUG, else None
    (the core then builds no summaries at all)."""
    return _log_pdu if log.isEnabledFor(logging.DEBUG) else None


def associate(
    host: str,
    port: int,
    *,
    called_ae: str = "ANY-SCP",
    calling_ae: str = "SECUREPDU",
    contexts: Iterable[ContextSpec] | None = None,
    max_pdu: int = DEFAULT_MAX_PDU,
    timeout: float = 30.0,
    acse_timeout: float = 30.0,
    dimse_timeout: float = 60.0,
    tls: TLSConfig | None = None,
    integrity: str | None = None,
    integrity_key: KeySource = None,
    max_ops: int = DEFAULT_MAX_OPS,
    user_identity: Identity | None = None,
) -> Association:
    """Opens an association with the peer at ``host`` (IPv4, IPv6 literal with or
    without brackets, ``fe80::1%eth0``, or a host name) and ``port``.

    ``contexts`` are (abstract syntax, [transfer syntaxes]) pairs; Verification is
    always proposed as well. ``timeout`` bounds the TCP connect, ``acse_timeout``
    the wait for the peer's answer to the request and to the release, and
    ``dimse_timeout`` each wait for a response. With ``tls`` the connection is
    TLS (see :class:`~securepdu.TLSConfig`): the server's certificate and host
    name are checked, and TLS failures raise a
    :class:`~securepdu.errors.TLSError` subclass naming the cause. With
    ``integrity_key`` (an :class:`~securepdu.IntegrityKey` or a key file) each
    object carries an HMAC-SHA256 tag the receiver checks before it answers;
    ``integrity`` is "opportunistic" (the default with a key: used when the peer
    is a securepdu peer with the same key), "required" (raise
    :class:`~securepdu.errors.IntegrityError` otherwise) or "off". ``max_ops``
    proposes an asynchronous operations window (PS3.7 D.3.3.3): :func:`send`
    keeps up to that many C-STOREs outstanding when the peer agrees, so it
    need not wait for each object to reach the peer's disk; 1 proposes none.
    Peers that do not negotiate one are served one C-STORE at a time.
    ``user_identity`` (an :class:`Identity`) is sent for the peer to check. Raises
    :class:`~securepdu.errors.AssociationRejected` with the peer's reason when it
    refuses.
    """
    proposed: list[tuple[str, list[str]]] = [(uids.VERIFICATION, [uids.IMPLICIT_VR_LITTLE_ENDIAN])]
    for abstract, tss in contexts or ():
        if isinstance(tss, str):
            raise TypeError("transfer syntaxes must be a list of UIDs, not one string")
        entry = (str(abstract), [str(t) for t in tss])
        if entry not in proposed:
            proposed.append(entry)
    integrity_setting = resolve_integrity(integrity, integrity_key)
    # securepdu integrity proposes one private context of its own.
    limit = MAX_CONTEXTS - (1 if integrity_setting else 0)
    if len(proposed) > limit:
        raise ValueError(f"{len(proposed)} presentation contexts proposed; this association carries at most {limit}")
    started = time.perf_counter()
    inner = _core.ScuAssociation.connect(
        host,
        int(port),
        calling_ae,
        called_ae,
        proposed,
        int(max_pdu),
        float(timeout),
        float(acse_timeout),
        float(dimse_timeout),
        tls._client_options() if tls is not None else None,
        integrity_setting,
        _pdu_trace(),
        max(1, int(max_ops)),
        (
            (user_identity.kind, user_identity.primary, user_identity.secondary, user_identity.response_requested)
            if user_identity is not None
            else None
        ),
    )
    assoc = Association(inner, calling_ae, called_ae)
    log.info(
        "association %s -> %s at %s accepted in %.1f ms: %d of %d contexts%s",
        calling_ae,
        called_ae,
        _fmt_addr(assoc.peer_address),
        (time.perf_counter() - started) * 1000,
        len(assoc.accepted_contexts),
        len(proposed),
        (f", {assoc.tls_version} {assoc.cipher_suite}" if assoc.tls_version else "")
        + (", integrity on" if assoc.integrity_active else ""),
    )
    return assoc


ProgressCallback = Callable[[int, int, StoreResult], Any]


@dataclass(frozen=True)
class Identity:
    """A user identity to assert when associating (PS3.7 D.3.3.7): build one with
    :meth:`username`, :meth:`kerberos`, :meth:`saml` or :meth:`jwt`. With
    ``response_requested`` the peer is asked to confirm it; its answer is
    :attr:`Association.user_identity_response`."""

    kind: int
    primary: bytes
    secondary: bytes = b""
    response_requested: bool = False

    @classmethod
    def username(cls, name: str, passcode: str | None = None, *, response_requested: bool = False) -> Identity:
        """A username (kind 1), or a username and passcode (kind 2)."""
        if passcode is None:
            return cls(1, name.encode(), b"", response_requested)
        return cls(2, name.encode(), passcode.encode(), response_requested)

    @classmethod
    def kerberos(cls, ticket: bytes, *, response_requested: bool = True) -> Identity:
        """A Kerberos service ticket (kind 3)."""
        return cls(3, bytes(ticket), b"", response_requested)

    @classmethod
    def saml(cls, assertion: str | bytes, *, response_requested: bool = True) -> Identity:
        """A SAML assertion (kind 4)."""
        return cls(4, assertion.encode() if isinstance(assertion, str) else bytes(assertion), b"", response_requested)

    @classmethod
    def jwt(cls, token: str | bytes, *, response_requested: bool = True) -> Identity:
        """A JSON Web Token (kind 5)."""
        return cls(5, token.encode() if isinstance(token, str) else bytes(token), b"", response_requested)


def _collect(entry: tuple[int, Callable[[], StoreResult]]) -> tuple[int, StoreResult]:
    """(index, result) of a C-STORE in flight, waiting for its answer."""
    i, finish = entry
    return i, finish()


def _failed(result: StoreResult) -> Callable[[], StoreResult]:
    """A C-STORE that failed before it was sent, queued with those in flight."""
    return lambda: result


def send(
    host: str,
    port: int,
    paths: Iterable[str | os.PathLike[str]],
    *,
    progress: ProgressCallback | None = None,
    **options: Any,
) -> list[StoreResult]:
    """Sends every file in ``paths`` (folders recursively) to the peer.

    Objects go on one association, or several when their presentation contexts do
    not fit in the 128 one association carries. ``options`` are those of
    :func:`associate`. ``progress(done, total, result)`` is called after each
    object. Returns one :class:`StoreResult` per file, in order; a file that is
    not DICOM or that the peer cannot take gets a result with ``error`` set.
    Association-level failures (rejection, network errors) raise.
    """
    files = list(iter_files(paths))
    # Room for the object contexts: 128 less Verification and, when integrity is
    # on, its private context.
    integrity_on = resolve_integrity(options.get("integrity"), options.get("integrity_key")) is not None
    room = MAX_CONTEXTS - 1 - (1 if integrity_on else 0)
    results: dict[int, StoreResult] = {}
    # Headers are read once, here, and reused when each file is sent.
    metas: dict[int, _core.FileMeta] = {}
    batches: list[tuple[list[tuple[str, list[str]]], list[int]]] = []
    contexts: dict[tuple[str, tuple[str, ...]], None] = {}
    members: list[int] = []
    for i, path in enumerate(files):
        try:
            meta = metas[i] = _meta_of_file(path)
        except (OSError, ValueError) as exc:
            results[i] = StoreResult(None, path=path, error=f"not a DICOM Part 10 file: {exc}")
            continue
        key = _proposal_for(meta.sop_class_uid, meta.transfer_syntax)
        if key not in contexts and len(contexts) >= room:
            batches.append(([(a, list(t)) for a, t in contexts], members))
            contexts, members = {}, []
        contexts.setdefault(key, None)
        members.append(i)
    if members:
        batches.append(([(a, list(t)) for a, t in contexts], members))

    done = 0

    def report(i: int, result: StoreResult) -> None:
        nonlocal done
        results[i] = result
        done += 1
        if progress is not None:
            progress(done, len(files), result)

    for i in sorted(results):
        report(i, results[i])
    for batch_contexts, batch in batches:
        with associate(host, port, contexts=batch_contexts, **options) as assoc:
            # Up to the agreed window of C-STOREs in flight; answers are
            # collected oldest first, so results and progress stay in order.
            pending: deque[tuple[int, Callable[[], StoreResult]]] = deque()
            for i in batch:
                while len(pending) >= assoc.async_window:
                    report(*_collect(pending.popleft()))
                try:
                    pending.append((i, assoc._begin_store_file(files[i], metas[i])))
                except (NoPresentationContext, ValueError, OSError) as exc:
                    if not assoc.is_established:
                        raise
                    pending.append((i, _failed(StoreResult(None, path=files[i], error=str(exc)))))
            while pending:
                report(*_collect(pending.popleft()))
    return [results[i] for i in range(len(files))]
