"""The ``securepdu`` command line, with flags familiar to dcmtk users.

Commands: ``echo`` (like echoscu), ``store`` (like storescu), ``listen`` (like
storescp), ``verify`` (re-check a storage folder against its manifest), ``demo``
(a self-contained tour over 127.0.0.1 and ::1) and ``decode`` (a protocol analyser
for one PDU at a time).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import logging
import ipaddress
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from securepdu import __version__, pdu
from securepdu.errors import PDUDecodeError

_VERIFICATION = "1.2.840.10008.1.1"
_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_IMPLICIT_VR_LE = "1.2.840.10008.1.2"
_EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"


def sample_pdu() -> pdu.AssociateRQ:
    """The built-in sample: an A-ASSOCIATE-RQ proposing Verification and CT storage."""
    return pdu.AssociateRQ(
        called_ae="ANY-SCP",
        calling_ae="SECUREPDU",
        presentation_contexts=(
            pdu.PresentationContextRQ(1, _VERIFICATION, (_IMPLICIT_VR_LE,)),
            pdu.PresentationContextRQ(3, _CT_IMAGE_STORAGE, (_EXPLICIT_VR_LE, _IMPLICIT_VR_LE)),
        ),
        user_info=pdu.UserInformation(
            max_pdu_length=262144,
            implementation_class_uid="1.2.826.0.1.3680043.10.1361.1",
            implementation_version_name="SECUREPDU_010",
            role_selection=(pdu.RoleSelection(_CT_IMAGE_STORAGE, 1, 0),),
        ),
    )


def _format(value: object, indent: int = 0, out: list[str] | None = None, label: str = "") -> list[str]:
    """Renders a decoded PDU as an indented tree, one field per line."""
    out = [] if out is None else out
    pad = "  " * indent
    head = f"{pad}{label}: " if label else pad
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out.append(f"{head}{type(value).__name__}")
        for field in dataclasses.fields(value):
            _format(getattr(value, field.name), indent + 1, out, field.name)
    elif isinstance(value, tuple):
        if not value:
            out.append(f"{head}()")
        for i, item in enumerate(value):
            _format(item, indent, out, f"{label}[{i}]")
    elif isinstance(value, bytes):
        shown = value[:32].hex(" ")
        more = f" ... ({len(value)} bytes)" if len(value) > 32 else ""
        out.append(f"{head}{shown}{more}")
    elif isinstance(value, enum.Enum):
        out.append(f"{head}{value.name} ({value.value})")
    else:
        out.append(f"{head}{value!r}")
    return out


def _read_input(args: argparse.Namespace) -> bytes:
    if args.sample:
        return sample_pdu().encode()
    if args.file:
        with open(args.file, "rb") as f:
            return f.read()
    if args.hex:
        return bytes.fromhex("".join(args.hex))
    return sys.stdin.buffer.read()


def _cmd_decode(args: argparse.Namespace, stdout: TextIO) -> int:
    data = _read_input(args)
    try:
        decoded = pdu.decode(data)
    except PDUDecodeError as exc:
        print(f"securepdu: not a valid PDU: {exc} (A-ABORT source {exc.source}, reason {exc.reason})", file=sys.stderr)
        return 1
    print(f"{len(data)} bytes: {data[:24].hex(' ')}{' ...' if len(data) > 24 else ''}", file=stdout)
    print("\n".join(_format(decoded)), file=stdout)
    return 0


# --------------------------------------------------------------------------- helpers

MB = 1_000_000  # sizes and rates are in MB = 10^6 bytes, like network speeds

#: DIMSE status meanings (PS3.4 Annex B.2.3 and PS3.7 Annex C) for messages a person can act on.
STATUS_MEANINGS: dict[int, str] = {
    0x0000: "Success",
    0x0001: "Warning: requested optional attributes are not supported",
    0x0107: "Warning: attribute list error",
    0x0116: "Warning: attribute value out of range",
    0xB000: "Warning: coercion of data elements",
    0xB006: "Warning: elements discarded",
    0xB007: "Warning: data set does not match SOP class",
    0x0117: "Refused: invalid SOP Instance UID",
    0x0122: "Refused: SOP class not supported",
    0x0124: "Refused: not authorized",
    0x0210: "Refused: duplicate invocation",
    0x0211: "Refused: unrecognized operation",
    0x0212: "Refused: mistyped argument",
    0x0213: "Refused: resource limitation",
    0xA700: "Refused: out of resources",
    0xA900: "Error: data set does not match SOP class",
    0xC000: "Error: cannot understand",
    0xC001: "Error: processing failure",
    # securepdu's own, in the 0xCxxx "cannot understand" range: the object's HMAC did
    # not match what arrived, so the SCP deleted it (see README, "Integrity").
    0xC2A0: "Error: integrity check failed",
}


def status_text(status: int) -> str:
    """``0xA700 (Refused: out of resources)``; ranges for codes without a fixed meaning."""
    meaning = STATUS_MEANINGS.get(status)
    if meaning is None:
        if status & 0xFF00 == 0xA700:
            meaning = "Refused: out of resources"
        elif status & 0xFF00 == 0xA900:
            meaning = "Error: data set does not match SOP class"
        elif status & 0xF000 == 0xC000:
            meaning = "Error: cannot understand"
        else:
            meaning = "unknown status"
    return f"0x{status:04X} ({meaning})"


def _api_module() -> Any:
    # Imported lazily so that `decode` and `--help` need nothing but the codec.
    import securepdu

    return securepdu


def _err(msg: str) -> None:
    print(f"securepdu: {msg}", file=sys.stderr, flush=True)


#: The cause of each TLS error, as a short label before the library's message.
_TLS_CAUSES: dict[str, str] = {
    "TLSConfigError": "TLS settings",
    "UntrustedCertificateError": "TLS: untrusted certificate",
    "CertificateExpiredError": "TLS: certificate expired or not yet valid",
    "HostnameMismatchError": "TLS: host name mismatch",
    "ClientCertificateError": "TLS: client certificate",
    "NoCommonTLSParametersError": "TLS: nothing in common",
    "PlainTCPToTLSPortError": "TLS: plain DICOM sent to a TLS port",
    "TLSToPlainPortError": "TLS: not a TLS port",
    "TLSError": "TLS",
    "IntegrityError": "integrity",
}


def _describe_error(exc: BaseException) -> str:
    """One line for a failure: the library's own message, or the OS error with its cause."""
    for cls in type(exc).__mro__:
        label = _TLS_CAUSES.get(cls.__name__)
        if label is not None and cls.__module__.startswith("securepdu"):
            text = " ".join((str(exc) or cls.__name__).split())
            return f"{label}: {text}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: nothing is listening there (wrong host or port, or the peer is down)"
    if isinstance(exc, OSError) and not type(exc).__module__.startswith("securepdu"):
        return f"network error: {exc.strerror or exc}"
    text = str(exc) or type(exc).__name__
    return text


def _host_port(addr: object, port: int | None = None) -> str:
    """``127.0.0.1:104`` or ``[::1]:104`` from a host, an (host, port) tuple or a string."""
    if isinstance(addr, tuple):
        host, port = str(addr[0]), int(addr[1])
    else:
        host = str(addr)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return host if port is None else f"{host}:{port}"


def _fmt_mb(nbytes: int) -> str:
    return f"{nbytes / MB:.1f}"


def _rate(nbytes: int, seconds: float) -> float:
    return nbytes / MB / seconds if seconds > 0 else 0.0


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if getattr(args, "debug", False) else logging.INFO if getattr(args, "verbose", False) else None
    if level is None:
        return
    logger = logging.getLogger("securepdu")
    logger.setLevel(level)
    if not any(getattr(h, "_securepdu_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        handler._securepdu_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


class _UsageError(Exception):
    """A command line that cannot work as given (reported like argparse does, exit 2)."""


#: TLS flags that mean nothing without --tls: (attribute, flag as typed).
_TLS_ONLY_FLAGS = (
    ("cert", "--cert"),
    ("key", "--key"),
    ("ca", "--ca"),
    ("tls13_only", "--tls13-only"),
    ("cipher", "--cipher"),
    ("no_client_auth", "--no-client-auth"),
    ("no_verify_hostname", "--no-verify-hostname"),
    ("server_name", "--server-name"),
    ("system_roots", "--system-roots"),
)


def _tls_config(args: argparse.Namespace, *, server: bool) -> Any:
    """The ``TLSConfig`` the flags ask for, or None without ``--tls``.

    Raises ``_UsageError`` for TLS flags given without ``--tls`` and
    ``TLSConfigError`` for settings that cannot work (a missing file, ...).
    """
    if not getattr(args, "tls", False):
        given = [flag for attr, flag in _TLS_ONLY_FLAGS if getattr(args, attr, None)]
        if given:
            raise _UsageError(f"{', '.join(given)} {'is a TLS option' if len(given) == 1 else 'are TLS options'}: add --tls")
        return None
    if (args.cert is None) != (args.key is None):
        raise _UsageError("--cert and --key go together: give both (our certificate chain and its private key)")
    from securepdu.tls import TLSConfig

    common: dict[str, Any] = {
        "cert": args.cert,
        "key": args.key,
        "ca": args.ca,
        "min_version": "1.3" if args.tls13_only else "1.2",
        "ciphers": tuple(args.cipher or ()),
    }
    if server:
        if args.cert is None or args.key is None:
            raise _UsageError("a TLS server needs its certificate and key: add --cert FILE --key FILE")
        return TLSConfig(**common, require_client_cert=False if args.no_client_auth else None)
    if args.ca is None and not args.system_roots:
        raise _UsageError("a TLS client needs --ca FILE (the CA that issued the server's certificate) or --system-roots")
    if args.no_verify_hostname:
        _err(
            "WARNING: TLS host name verification is OFF (--no-verify-hostname): any server holding a "
            "certificate from the trusted CA is accepted, whatever its name. Do not use this in production."
        )
    return TLSConfig(
        **common,
        server_name=args.server_name,
        verify_hostname=not args.no_verify_hostname,
        use_system_roots=args.system_roots,
    )


def _assoc_options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {"called_ae": args.aec, "calling_ae": args.aet, "timeout": args.timeout}
    if getattr(args, "max_pdu", None) is not None:
        opts["max_pdu"] = args.max_pdu
    tls = _tls_config(args, server=False)
    if tls is not None:
        # Only passed when asked for, so plain TCP needs nothing from the TLS layer.
        opts["tls"] = tls
    return opts


#: Where the key comes from when --integrity-key is not given.
INTEGRITY_KEY_ENV = "SECUREPDU_INTEGRITY_KEY"
INTEGRITY_MODES = ("off", "opportunistic", "required")


class _KeyError(Exception):
    """The integrity key cannot be read (reported without the key's text, exit 2)."""


def _integrity_key(args: argparse.Namespace) -> Any:
    """The ``IntegrityKey`` from --integrity-key FILE, else from $SECUREPDU_INTEGRITY_KEY,
    else None. The key's text never appears in a message."""
    path = getattr(args, "integrity_key", None)
    from_env = path is None and bool(os.environ.get(INTEGRITY_KEY_ENV, "").strip())
    if path is None and not from_env:
        return None
    api = _api_module()
    where = f"${INTEGRITY_KEY_ENV}" if from_env else str(path)
    try:
        if from_env:
            return api.IntegrityKey.from_env(INTEGRITY_KEY_ENV)
        return api.IntegrityKey.from_file(path)
    except OSError as exc:
        raise _KeyError(f"cannot read the integrity key file {where}: {exc.strerror or exc}") from None
    except (api.errors.SecurePDUError, ValueError) as exc:
        raise _KeyError(
            f"the integrity key in {where} is not usable: {exc} "
            "(expected one line KEY_ID:HEX with at least 64 hex digits)"
        ) from None


def _integrity_options(args: argparse.Namespace) -> dict[str, Any]:
    """``integrity=``/``integrity_key=`` for the API, from --integrity and the key.

    Default: opportunistic when a key is given (file or environment), else off. ``off``
    passes nothing, so the key is not even read. Raises ``_UsageError`` for a mode that
    needs a key without one, ``_KeyError`` for a key that cannot be read.
    """
    mode = getattr(args, "integrity", None)
    if mode == "off":
        return {}
    key = _integrity_key(args)
    if key is None:
        if mode is not None:
            raise _UsageError(
                f"--integrity {mode} needs a key: add --integrity-key FILE or set {INTEGRITY_KEY_ENV}"
            )
        return {}
    return {"integrity": mode or "opportunistic", "integrity_key": key}


def _integrity_summary(options: dict[str, Any]) -> str:
    """``integrity opportunistic, key id site-a`` or ``""`` when off."""
    key = options.get("integrity_key")
    if key is None:
        return ""
    return f"integrity {options['integrity']}, key id {getattr(key, 'key_id', '?')}"


def _tls_summary(assoc: Any) -> str:
    """`` over TLSv1.3 (TLS_AES_128_GCM_SHA256)`` for a TLS association, else ``""``."""
    version = getattr(assoc, "tls_version", None)
    if not version:
        return ""
    suite = getattr(assoc, "cipher_suite", None)
    return f" over {version}" + (f" ({suite})" if suite else "")


def _client_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The associate() options of echo and store (TLS and integrity included), or
    None after saying on stderr why they are unusable."""
    api = _api_module()
    try:
        options = _assoc_options(args)
        options.update(_integrity_options(args))
    except api.errors.TLSError as exc:
        _err(_describe_error(exc))
        return None
    except _KeyError as exc:
        _err(str(exc))
        return None
    return options


# --------------------------------------------------------------------------- echo


def _cmd_echo(args: argparse.Namespace, stdout: TextIO) -> int:
    api = _api_module()
    target = f"{args.aec}@{_host_port(args.host, args.port)}"
    options = _client_options(args)
    if options is None:
        return 2
    t0 = time.perf_counter()
    try:
        with api.associate(args.host, args.port, **options) as assoc:
            status = int(assoc.echo())
            over = _tls_summary(assoc) + _integrity_note(assoc, options)
    except (api.errors.SecurePDUError, OSError) as exc:
        _err(f"echo to {target} failed: {_describe_error(exc)}")
        return 1
    ms = (time.perf_counter() - t0) * 1000
    print(f"echo {target}: {status_text(status)} in {ms:.1f} ms{over}", file=stdout, flush=True)
    return 0 if status == 0 else 1


def _integrity_note(assoc: Any, options: dict[str, Any]) -> str:
    """`` with integrity (key id site-a)``; what happened when it was asked for and the
    peer did not take it; ``""`` when it was not asked for."""
    key = options.get("integrity_key")
    if key is None:
        return ""
    if getattr(assoc, "integrity_active", False):
        return f" with integrity (key id {getattr(key, 'key_id', '?')})"
    return " without integrity (the peer does not support it)"


# --------------------------------------------------------------------------- store


def collect_files(paths: Sequence[str], *, recursive: bool = True) -> tuple[list[Path], list[str]]:
    """Files to send and warnings: named files as given; folders walked (if ``recursive``).

    In folders only Part 10 files ("DICM" at offset 128) are taken, and DICOMDIR is
    skipped, as storescu's ``+sd`` does; a named file is always taken, so that a file
    that is not DICOM is reported as a failure rather than silently dropped.
    """
    files: list[Path] = []
    warnings: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            walk = p.rglob("*") if recursive else p.glob("*")
            for f in sorted(walk):
                if not f.is_file() or f.name.upper() == "DICOMDIR":
                    continue
                try:
                    with open(f, "rb") as fh:
                        fh.seek(128)
                        is_part10 = fh.read(4) == b"DICM"
                except OSError as exc:
                    warnings.append(f"skipping {f}: {exc.strerror}")
                    continue
                if is_part10:
                    files.append(f)
                else:
                    warnings.append(f"skipping {f}: not a DICOM Part 10 file")
        elif p.exists():
            files.append(p)
        else:
            warnings.append(f"{p}: no such file or folder")
    return files, warnings


def _result_reason(result: Any) -> str:
    error = getattr(result, "error", None)
    if error:
        return str(error)
    if result.status is None:
        return "not sent"
    text = status_text(int(result.status))
    comment = getattr(result, "error_comment", None)
    return f"{text}: {comment}" if comment else text


class _Reporter:
    """Progress of a ``store``: a rich progress bar on a terminal, plain lines otherwise.

    The bar counts bytes (so rich can show MB and MB/s); the object count rides along
    as a task field.
    """

    def __init__(self, total_objects: int, total_bytes: int, stdout: TextIO, fancy: bool) -> None:
        self.total_objects = total_objects
        self.stdout = stdout
        self.done_bytes = 0
        self._progress: Any = None
        self._task: Any = None
        if fancy:
            try:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    DownloadColumn,
                    Progress,
                    TextColumn,
                    TimeElapsedColumn,
                    TransferSpeedColumn,
                )
            except ImportError:  # rich is a dependency, but a broken install should still send
                pass
            else:
                self._progress = Progress(
                    TextColumn("[bold]sending"),
                    BarColumn(),
                    TextColumn("{task.fields[objects]}/{task.fields[total_objects]} objects"),
                    DownloadColumn(binary_units=False),
                    TransferSpeedColumn(),
                    TimeElapsedColumn(),
                    console=Console(file=stdout),
                )
                self._task = self._progress.add_task(
                    "store", total=max(total_bytes, 1), objects=0, total_objects=total_objects
                )

    def __enter__(self) -> _Reporter:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def line(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stdout, flush=True)

    def __call__(self, done: int, total: int, result: Any) -> None:
        path = getattr(result, "path", None)
        size = _file_size(path) if path is not None else 0
        self.done_bytes += size
        where = path if path is not None else result.sop_instance_uid
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done_bytes, objects=done, total_objects=total)
            if not result.ok:
                self.line(f"FAILED {where}: {_result_reason(result)}")
            return
        mark = "ok" if result.ok else "FAILED"
        tail = "" if result.ok and result.status == 0 else f": {_result_reason(result)}"
        self.line(f"[{done}/{total}] {mark} {where} ({_fmt_mb(size)} MB){tail}")


def _file_size(path: object) -> int:
    try:
        return os.stat(str(path)).st_size
    except OSError:
        return 0


def _cmd_store(args: argparse.Namespace, stdout: TextIO) -> int:
    api = _api_module()
    files, warnings = collect_files(args.paths, recursive=args.recursive)
    for w in warnings:
        _err(w)
    if not files:
        _err("nothing to send: no DICOM files found in " + ", ".join(args.paths))
        return 1
    options = _client_options(args)
    if options is None:
        return 2
    total_bytes = sum(_file_size(f) for f in files)
    target = f"{args.aec}@{_host_port(args.host, args.port)}"
    fancy = stdout.isatty() and not args.quiet
    results: list[Any] = []
    t0 = time.perf_counter()
    try:
        with _Reporter(len(files), total_bytes, stdout, fancy) as reporter:
            progress: Callable[[int, int, Any], None] | None = None if args.quiet else reporter
            results = list(api.send(args.host, args.port, [str(f) for f in files], progress=progress, **options))
    except (api.errors.SecurePDUError, OSError) as exc:
        _err(f"store to {target} failed: {_describe_error(exc)}")
        return 1
    elapsed = time.perf_counter() - t0
    sent = [r for r in results if r.ok]
    failed = [r for r in results if not r.ok]
    sent_bytes = sum(_file_size(r.path) for r in sent if getattr(r, "path", None) is not None)
    print(
        f"sent {len(sent)} objects ({_fmt_mb(sent_bytes)} MB) in {elapsed:.2f} s "
        f"({_rate(sent_bytes, elapsed):.1f} MB/s) to {target}{' over TLS' if 'tls' in options else ''}",
        file=stdout,
        flush=True,
    )
    if options.get("integrity_key") is not None:
        tagged = sum(1 for r in sent if getattr(r, "integrity_tag", None))
        how = f"key id {getattr(options['integrity_key'], 'key_id', '?')}"
        if tagged:
            print(f"integrity: {tagged} of {len(sent)} objects checked by the peer ({how})", file=stdout, flush=True)
        else:
            print(f"integrity: not used, the peer does not support it ({how})", file=stdout, flush=True)
    missing = len(files) - len(results)
    if failed or missing > 0:
        _err(f"{len(failed) + max(missing, 0)} of {len(files)} objects failed:")
        for r in failed:
            where = r.path if getattr(r, "path", None) is not None else r.sop_instance_uid
            _err(f"  {where}: {_result_reason(r)}")
        if missing > 0:
            _err(f"  {missing} objects have no result")
        return 1
    return 0


# --------------------------------------------------------------------------- listen


def _cmd_listen(args: argparse.Namespace, stdout: TextIO) -> int:
    api = _api_module()
    out_dir = Path(args.output_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _err(f"cannot use output directory {out_dir}: {exc.strerror}")
        return 1
    lock = threading.Lock()
    # The names of SOP classes come from pydicom: import it now, not while the
    # first object waits for its answer (numpy behind it takes 0.15 s and starts
    # threads).
    api_uid_name(_VERIFICATION)

    def on_store(event: Any) -> None:
        # Never event.dataset() here: that would load the whole object into memory.
        path = Path(event.path)
        try:
            name = api_uid_name(event.sop_class_uid)
        except Exception:  # noqa: BLE001 - a name is cosmetic
            name = event.sop_class_uid
        checked = " [integrity ok]" if getattr(event, "integrity_tag", None) else ""
        with lock:
            print(
                f"stored {path} ({name}, {_fmt_mb(getattr(event, 'size', 0) or _file_size(path))} MB) from "
                f"{event.calling_ae}@{_host_port(event.peer_address)}{_subject_note(event)}{checked}",
                file=stdout,
                flush=True,
            )

    options: dict[str, Any] = {
        "require_called_ae": args.require_called_aet,
        "max_associations": args.max_associations,
        "calling_aes": args.allow_aet,
        "networks": args.allow_net,
        "max_associations_per_peer": args.max_per_peer,
        "max_object_size": args.max_object_size,
        "min_free_space": args.min_free,
    }
    if args.max_pdu is not None:
        options["max_pdu"] = args.max_pdu
    try:
        tls = _tls_config(args, server=True)
    except api.errors.TLSError as exc:
        _err(_describe_error(exc))
        return 2
    if tls is not None:
        options["tls"] = tls
    try:
        integrity = _integrity_options(args)
    except _KeyError as exc:
        _err(str(exc))
        return 2
    options.update(integrity)
    try:
        scp = api.StorageSCP(ae_title=args.aet, storage_dir=str(out_dir), on_store=on_store, **options)
        scp.start(args.bind, args.port)
    except (api.errors.SecurePDUError, OSError, ValueError) as exc:
        _err(f"cannot listen on {_host_port(args.bind, args.port)}: {_describe_error(exc)}")
        return 1

    # serve() runs in the SCP's own thread; the main thread only waits for Ctrl-C or
    # SIGTERM, so both stop the server the same clean way: no new associations,
    # objects in transfer get --shutdown-grace seconds, then the rest is aborted.
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _on_signal)
    if tls is None:
        mode = ""
    elif args.no_client_auth or args.ca is None:
        mode = "TLS, client certificates not required, "
    else:
        mode = "TLS, client certificates required, "
    if integrity:
        mode += _integrity_summary(integrity) + ", "
    print(
        f"listening on {_host_port(args.bind, scp.port)} as {args.aet}, storing into {out_dir} "
        f"({mode}Ctrl-C to stop)",
        file=stdout,
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        try:
            print("shutting down", file=stdout, flush=True)
        except OSError:  # stdout may be a closed pipe by now; stopping matters more
            pass
        scp.shutdown(grace=args.shutdown_grace)
    return 0


# --------------------------------------------------------------------------- gateway


def _gateway_tls(args: argparse.Namespace, side: str, *, server: bool) -> Any:
    """The TLSConfig of one side of the gateway (``in`` or ``out``), or None."""
    cert, key, ca = (getattr(args, f"{side}_{name}") for name in ("cert", "key", "ca"))
    if not getattr(args, f"{side}_tls"):
        if cert or key or ca:
            raise _UsageError(f"--{side}-cert, --{side}-key and --{side}-ca are TLS options: add --{side}-tls")
        return None
    if (cert is None) != (key is None):
        raise _UsageError(f"--{side}-cert and --{side}-key go together: give both")
    from securepdu.tls import TLSConfig

    if server:
        if cert is None:
            raise _UsageError("--in-tls needs the gateway's certificate and key: add --in-cert FILE --in-key FILE")
        return TLSConfig(cert=cert, key=key, ca=ca)
    if ca is None:
        raise _UsageError("--out-tls needs --out-ca FILE (the CA that issued the onward peer's certificate)")
    return TLSConfig(cert=cert, key=key, ca=ca, server_name=args.out_server_name)


def _cmd_gateway(args: argparse.Namespace, stdout: TextIO) -> int:
    api = _api_module()
    from securepdu.gateway import Gateway, GatewayRecord, Route, load_config, parse_address

    route_flags = [f for f, v in (("--to", args.to), ("--to-aet", args.to_aet), ("--called-aet", args.called_aet),
                                  ("--allow-aet", args.allow_aet), ("--allow-net", args.allow_net),
                                  ("--allow-cert-cn", args.allow_cert_cn), ("--out-tls", args.out_tls),
                                  ("--integrity-key", args.integrity_key)) if v]
    try:
        in_tls = _gateway_tls(args, "in", server=True)
        options: dict[str, Any] = {}
        listen = args.listen
        if args.config is not None:
            if route_flags:
                raise _UsageError(f"{', '.join(route_flags)}: route settings go in the --config file")
            try:
                config = load_config(args.config)
            except (OSError, ValueError) as exc:  # tomllib.TOMLDecodeError is a ValueError
                _err(f"cannot use {args.config}: {exc}")
                return 2
            routes = config.routes
            in_tls = in_tls or config.tls
            listen = listen or config.listen
            options.update(config.options)
        else:
            if args.to is None:
                raise _UsageError("give --to HOST:PORT (one route) or --config FILE (several)")
            integrity = _integrity_options(args)
            routes = [
                Route(
                    to=args.to,
                    called_ae=args.called_aet,
                    to_ae=args.to_aet,
                    allowed_calling_aes=args.allow_aet or (),
                    allowed_networks=args.allow_net or (),
                    allowed_cert_cns=args.allow_cert_cn or (),
                    tls=_gateway_tls(args, "out", server=False),
                    integrity=integrity.get("integrity"),
                    integrity_key=integrity.get("integrity_key"),
                )
            ]
        if listen is None:
            raise _UsageError("give --listen ADDR:PORT (e.g. 0.0.0.0:104 or [::]:2762)")
        host, port = parse_address(listen)
    except _KeyError as exc:
        _err(str(exc))
        return 2
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    if args.max_pdu is not None:
        options["max_pdu"] = args.max_pdu
    lock = threading.Lock()

    def on_association(record: GatewayRecord) -> None:
        with lock:
            print(record.log_line(), file=stdout, flush=True)

    try:
        gateway = Gateway(routes, tls=in_tls, on_association=on_association, **options)
        gateway.start(host, port)
    except (api.errors.SecurePDUError, OSError, ValueError) as exc:
        _err(f"cannot run the gateway on {_host_port(host, port)}: {_describe_error(exc)}")
        return 1
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _on_signal)
    mode = "TLS" + (", client certificates required" if in_tls.ca is not None else "") if in_tls else "plain"
    print(f"gateway listening on {_host_port(host, gateway.port)} ({mode}, Ctrl-C to stop)", file=stdout, flush=True)
    for r in routes:
        onward = ("TLS" if r.tls is not None else "plain") + (f", integrity {r.integrity or 'opportunistic'}" if r.integrity_key else "")
        print(f"  route {r.route_name}: {r.called_ae or '*'} -> {r.to}{' as ' + r.to_ae if r.to_ae else ''} ({onward})",
              file=stdout, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        gateway.shutdown()
        try:
            for c in gateway_counters(gateway):
                print(c, file=stdout, flush=True)
        except OSError:
            pass
    return 0


def gateway_counters(gateway: Any) -> list[str]:
    """One line per route: associations, objects, MB, failures."""
    return [
        f"route {c.route}: {c.associations} associations, {c.objects} objects, {_fmt_mb(c.bytes)} MB, {c.failures} failures"
        for c in gateway.counters().values()
    ]


# --------------------------------------------------------------------------- verify


def _cmd_verify(args: argparse.Namespace, stdout: TextIO) -> int:
    api = _api_module()
    folder = Path(args.dir)
    try:
        key = _integrity_key(args)
    except _KeyError as exc:
        _err(str(exc))
        return 2
    try:
        report = api.verify(folder, key=key)
    except (api.errors.SecurePDUError, OSError, ValueError) as exc:
        _err(f"cannot verify {folder}: {_describe_error(exc)}")
        return 1
    for name in report.changed:
        print(f"changed  {name}: its SHA-256 differs from the manifest", file=stdout)
    for name in report.missing:
        print(f"missing  {name}: listed in the manifest but not on disk", file=stdout)
    for name in report.unknown:
        print(f"unknown  {name}: not in the manifest", file=stdout)
    for line_no, why in report.bad_lines:
        print(f"bad line {line_no}: {why}", file=stdout)
    for note in getattr(report, "notes", ()) or ():
        print(f"note: {note}", file=stdout)
    problems = len(report.changed) + len(report.missing) + len(report.unknown) + len(report.bad_lines)
    clean = problems == 0 and bool(report.clean)
    if report.mac_checked:
        macs = f"manifest MACs checked with key id {getattr(key, 'key_id', '?')}"
    else:
        macs = "manifest MACs not checked (no key: --integrity-key FILE)"
    print(
        f"{folder}: {len(report.ok)} ok, {len(report.changed)} changed, {len(report.missing)} missing, "
        f"{len(report.unknown)} unknown, {len(report.bad_lines)} bad manifest line(s); {macs}",
        file=stdout,
    )
    print("verify OK" if clean else f"verify FAILED: {max(problems, 1)} problem(s)", file=stdout, flush=True)
    return 0 if clean else 1


def _subject_note(event: Any) -> str:
    subject = getattr(event, "peer_certificate_subject", None)
    return f" [TLS client {subject}]" if subject else ""


def api_uid_name(uid: str) -> str:
    """The registered name of a UID (``CT Image Storage``), or the UID itself."""
    from pydicom.uid import UID

    name = UID(uid).name
    return name or uid


# --------------------------------------------------------------------------- demo


def _cmd_demo(args: argparse.Namespace, stdout: TextIO) -> int:
    from securepdu import demo

    return demo.run(total_mb=args.mb, keep=args.keep, stdout=stdout, modalities=tuple(args.modalities))


# --------------------------------------------------------------------------- parser

_EPILOG = """examples:
  securepdu demo                                   send a synthetic study over 127.0.0.1 and ::1, verify it
  securepdu echo 127.0.0.1 104 --aec PACS          C-ECHO (like echoscu)
  securepdu store pacs.example 104 --aec PACS study/   send a folder (recursive; like storescu +sd +r)
  securepdu listen 11112 --output-dir incoming     receive (like storescp -od incoming 11112)
  securepdu store pacs.example 2762 --tls --ca ca.pem --cert me.pem --key me.key study/   over TLS
  securepdu store pacs.example 104 --integrity-key site-a.key study/   with an end-to-end HMAC per object
  securepdu verify incoming --integrity-key site-a.key   re-check received files against the manifest
  securepdu decode --sample                        decode a built-in A-ASSOCIATE-RQ

IPv6 works everywhere: `securepdu echo ::1 11112`, `securepdu listen 11112 --bind ::1`.
Sizes and rates are in MB (10^6 bytes). Exit status: 0 on success, 1 when anything failed.
"""


def _network(text: str) -> str:
    """A network in CIDR notation (IPv4 or IPv6; a bare address is one host)."""
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a network in CIDR notation: {exc}") from None
    return text


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _byte_size(text: str) -> int:
    """A size in bytes, with an optional K, M, G or T suffix (powers of 1024)."""
    t = text.strip().upper().removesuffix("B")
    unit = t[-1:] if t[-1:] in _SIZE_UNITS and not t[-1:].isdigit() else ""
    try:
        value = int(float(t[: len(t) - len(unit)]) * _SIZE_UNITS[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500M, 2G)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {value}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return value


def _max_pdu(text: str) -> int:
    value = int(text)
    if value != 0 and not 4096 <= value <= 0xFFFFFFFF:
        raise argparse.ArgumentTypeError("the maximum PDU length is 0 (unlimited) or 4096 .. 4294967295 bytes")
    return value


def _ae_title(text: str) -> str:
    if not 1 <= len(text.strip()) <= 16 or not text.isascii() or "\\" in text:
        raise argparse.ArgumentTypeError(f"an AE title is 1 to 16 ASCII characters without backslash: {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``securepdu`` command."""
    # -v/-d are accepted before and after the command; SUPPRESS keeps a subcommand's
    # absent flag from overwriting the top-level one.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log associations and objects (INFO)")
    common.add_argument("-d", "--debug", action="store_true", default=argparse.SUPPRESS, help="log PDU summaries too (DEBUG)")

    parser = argparse.ArgumentParser(
        prog="securepdu",
        description="Fast, secure DICOM networking over IPv4 and IPv6: echo, store, listen.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"securepdu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_: str, epilog: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_,
            description=help_[0].upper() + help_[1:] + ".",
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common],
        )

    def peer_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("host", metavar="HOST", help="peer: IPv4 address, IPv6 address (::1, [::1], fe80::1%%eth0) or name")
        p.add_argument("port", metavar="PORT", type=_port, help="peer's TCP port (often 104 or 11112)")
        p.add_argument("-aet", "--aet", default="SECUREPDU", type=_ae_title, metavar="AET", help="our (calling) AE title (default: %(default)s)")
        p.add_argument("-aec", "--aec", default="ANY-SCP", type=_ae_title, metavar="AEC", help="the peer's (called) AE title (default: %(default)s)")
        p.add_argument("-to", "--timeout", type=float, default=30.0, metavar="S", help="connect timeout in seconds (default: %(default)s)")

    def tls_args(p: argparse.ArgumentParser, *, server: bool) -> None:
        g = p.add_argument_group(
            "TLS (PS3.15 Annex B: BCP 195 profile, TLS 1.2 and 1.3, AEAD suites only)",
            "Clients must present a certificate issued by --ca when --ca is given, as with dcmtk."
            if server
            else "The server's certificate is checked against --ca, then its host name or IP address.",
        )
        g.add_argument("--tls", action="store_true", help="use TLS" + (" on this port" if server else ""))
        g.add_argument("--cert", metavar="FILE", help="our certificate chain (PEM)" + ("" if server else ", for mutual TLS"))
        g.add_argument("--key", metavar="FILE", help="our private key (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC)")
        g.add_argument("--ca", metavar="FILE", help="CA bundle (PEM) trusted for the peer's certificate")
        g.add_argument("--tls13-only", action="store_true", help="TLS 1.3 only (default: TLS 1.2 and 1.3)")
        g.add_argument("--cipher", action="append", metavar="NAME", help="allow this cipher suite (IANA name; repeatable; default: all AEAD suites of the profile)")
        if server:
            g.add_argument("--no-client-auth", action="store_true", help="do not require client certificates (default: required when --ca is given)")
        else:
            g.add_argument("--server-name", metavar="NAME", help="check the server's certificate against NAME (and send it as SNI) instead of HOST")
            g.add_argument("--no-verify-hostname", action="store_true", help="INSECURE: accept a server certificate for any name (the chain is still checked)")
            g.add_argument("--system-roots", action="store_true", help="also trust the system's public CAs")

    def integrity_args(p: argparse.ArgumentParser) -> None:
        g = p.add_argument_group(
            "integrity (end-to-end HMAC-SHA256 per object, between securepdu peers)",
            "The key file holds one line KEY_ID:HEX (at least 64 hex digits); without --integrity-key\n"
            f"the same text is taken from ${INTEGRITY_KEY_ENV} when set. Standard DICOM peers are unaffected.",
        )
        g.add_argument("--integrity-key", metavar="FILE", help="pre-shared integrity key file (never logged)")
        g.add_argument(
            "--integrity",
            choices=INTEGRITY_MODES,
            default=None,
            help="off, opportunistic (use it when the peer has the key; the default with a key) or "
            "required (refuse peers without it); default: off without a key",
        )

    echo = add("echo", "send a C-ECHO (verification) to a peer, like echoscu",
               "examples:\n  securepdu echo 127.0.0.1 104 --aec PACS\n"
               "  securepdu echo pacs.example 2762 --tls --ca ca.pem --cert me.pem --key me.key")
    peer_args(echo)
    tls_args(echo, server=False)
    integrity_args(echo)
    echo.set_defaults(func=_cmd_echo)

    store = add(
        "store",
        "send DICOM files and folders to a peer on one association, like storescu",
        "examples:\n  securepdu store 10.0.0.5 104 --aec PACS CT/*.dcm\n"
        "  securepdu store ::1 11112 study/          (folders are walked recursively)\n\n"
        "Files whose transfer syntax the peer accepts go from disk to socket without being decoded.\n"
        "Exits 1 when any object failed, naming each and the reason.",
    )
    peer_args(store)
    tls_args(store, server=False)
    integrity_args(store)
    store.add_argument("paths", nargs="+", metavar="PATH", help="Part 10 files or folders")
    store.add_argument("-pdu", "--max-pdu", type=_max_pdu, default=None, metavar="N", help="largest PDU we accept, in bytes (default: 262144)")
    rec = store.add_mutually_exclusive_group()
    rec.add_argument("-r", "--recursive", dest="recursive", action="store_true", default=True, help="walk folders recursively (default)")
    rec.add_argument("--no-recursive", dest="recursive", action="store_false", help="take only the files directly in each folder")
    store.add_argument("-q", "--quiet", action="store_true", help="no progress, only the closing line and failures")
    store.set_defaults(func=_cmd_store)

    listen = add(
        "listen",
        "receive objects as a storage SCP, like storescp",
        "examples:\n  securepdu listen 11112 --output-dir incoming\n"
        "  securepdu listen 104 --bind 0.0.0.0 --aet ARCHIVE --require-called-aet\n"
        "  securepdu listen 2762 --tls --cert scp.pem --key scp.key --ca ca.pem   (mutual TLS)\n\n"
        "Each object is written to DIR/<SOP Instance UID>.dcm, fsynced, and only then acknowledged.\n"
        "Port 0 picks a free port (printed). Ctrl-C or SIGTERM stops cleanly.",
    )
    listen.add_argument("port", metavar="PORT", type=_port, help="TCP port to listen on (0: any free port)")
    listen.add_argument("-b", "--bind", default="::", metavar="ADDR", help="address to listen on (default: :: = every IPv6 and IPv4 address)")
    listen.add_argument("-aet", "--aet", default="SECUREPDU", type=_ae_title, metavar="AET", help="our AE title (default: %(default)s)")
    listen.add_argument("-od", "--output-dir", default=".", metavar="DIR", help="where received objects go (default: current folder)")
    listen.add_argument("--max-associations", type=_positive_int, default=32, metavar="N", help="concurrent associations; one more is rejected (default: %(default)s)")
    listen.add_argument("--require-called-aet", action="store_true", help="reject associations not addressed to our AE title")
    listen.add_argument("-pdu", "--max-pdu", type=_max_pdu, default=None, metavar="N", help="largest PDU we accept, in bytes (default: 262144)")
    limits = listen.add_argument_group("access and limits")
    limits.add_argument("--allow-aet", action="append", type=_ae_title, metavar="AET", help="accept only this calling AE title (repeatable; default: any)")
    limits.add_argument("--allow-net", action="append", type=_network, metavar="CIDR", help="accept only peers in this network, e.g. 10.0.0.0/8 or 2001:db8::/32 (repeatable; default: any)")
    limits.add_argument("--max-per-peer", type=_positive_int, default=None, metavar="N", help="concurrent associations from one address (default: no limit but --max-associations)")
    limits.add_argument("--max-object-size", type=_byte_size, default=None, metavar="SIZE", help="refuse larger objects (0xA700), e.g. 2G (default: no limit)")
    limits.add_argument("--min-free", type=_byte_size, default=64 << 20, metavar="SIZE", help="free space kept on the storage volume; objects that would use it are refused (0xA701) (default: 64M)")
    limits.add_argument("--shutdown-grace", type=float, default=30.0, metavar="SECONDS", help="on Ctrl-C or SIGTERM, time given to objects in transfer before their associations are aborted (default: %(default)s)")
    tls_args(listen, server=True)
    integrity_args(listen)
    listen.set_defaults(func=_cmd_listen)

    gateway = add(
        "gateway",
        "relay associations between sites as a DICOM-aware peer security gateway",
        "examples:\n  securepdu gateway --listen 0.0.0.0:104 --to [2001:db8::b]:2762 --out-tls --out-ca ca.pem \\\n"
        "      --out-cert gw-a.pem --out-key gw-a.key\n"
        "  securepdu gateway --listen [::]:2762 --in-tls --in-cert gw-b.pem --in-key gw-b.key --in-ca ca.pem \\\n"
        "      --allow-cert-cn gw-a --to 10.0.0.5:104\n"
        "  securepdu gateway --config gateway.toml      (several [[route]] tables; see securepdu.gateway.load_config)\n\n"
        "Routes by called AE title; refuses with the A-ASSOCIATE-RJ that fits (no route 1/1/7, calling AE 1/1/3,\n"
        "address or certificate 1/1/1, onward peer unreachable 2/1/1). Prints one line per association and the\n"
        "counters per route when stopped (Ctrl-C or SIGTERM).",
    )
    gateway.add_argument("--listen", metavar="ADDR:PORT", help="where to listen, e.g. 0.0.0.0:104 or [::]:2762")
    gateway.add_argument("--to", metavar="HOST:PORT", help="the onward peer (one route for every called AE title)")
    gateway.add_argument("--to-aet", type=_ae_title, metavar="AET", help="called AE title onward (default: the one called)")
    gateway.add_argument("--called-aet", type=_ae_title, metavar="AET", help="serve only this called AE title (others: 1/1/7)")
    gateway.add_argument("--config", metavar="FILE", help="TOML file with listen, [tls] and [[route]] tables")
    gateway.add_argument("-pdu", "--max-pdu", type=_max_pdu, default=None, metavar="N", help="largest PDU we accept on either side (default: 262144)")
    gpol = gateway.add_argument_group("policy")
    gpol.add_argument("--allow-aet", action="append", type=_ae_title, metavar="AET", help="accept only this calling AE title (repeatable)")
    gpol.add_argument("--allow-net", action="append", type=_network, metavar="CIDR", help="accept only peers in this network (repeatable)")
    gpol.add_argument("--allow-cert-cn", action="append", metavar="CN", help="accept only client certificates with this common name (repeatable)")
    gin = gateway.add_argument_group("TLS on the listening side")
    gin.add_argument("--in-tls", action="store_true", help="accept TLS only")
    gin.add_argument("--in-cert", metavar="FILE", help="the gateway's certificate chain (PEM)")
    gin.add_argument("--in-key", metavar="FILE", help="its private key (PEM)")
    gin.add_argument("--in-ca", metavar="FILE", help="CA for client certificates (then required)")
    gout = gateway.add_argument_group("TLS on the onward side")
    gout.add_argument("--out-tls", action="store_true", help="connect onward with TLS")
    gout.add_argument("--out-cert", metavar="FILE", help="our client certificate chain (PEM), for mutual TLS")
    gout.add_argument("--out-key", metavar="FILE", help="its private key (PEM)")
    gout.add_argument("--out-ca", metavar="FILE", help="CA that issued the onward peer's certificate")
    gout.add_argument("--out-server-name", metavar="NAME", help="check the onward certificate against NAME instead of HOST")
    integrity_args(gateway)
    gateway.set_defaults(func=_cmd_gateway)

    verify = add(
        "verify",
        "re-check a storage folder against its manifest (securepdu-manifest.jsonl)",
        "examples:\n  securepdu verify incoming\n  securepdu verify incoming --integrity-key site-a.key\n\n"
        "Prints each changed, missing and unknown file and each bad manifest line, then a summary.\n"
        f"With the key (--integrity-key FILE, or ${INTEGRITY_KEY_ENV}) every manifest line's MAC is checked too.\n"
        "Exit status: 0 when everything matches, 1 on any problem, 2 when the key cannot be read.",
    )
    verify.add_argument("dir", metavar="DIR", help="the folder a securepdu SCP stored into")
    verify.add_argument("--integrity-key", metavar="FILE", help="key file, to check the manifest lines' MACs")
    verify.set_defaults(func=_cmd_verify)

    demo = add(
        "demo",
        "send a synthetic CT/MR/CR study to a local SCP over IPv4 and IPv6 and verify it",
        "Needs nothing but this package: the SCP listens on loopback only, in a temporary folder.",
    )
    demo.add_argument("--mb", type=float, default=30.0, metavar="MB", help="size of the study (default: %(default)s)")
    demo.add_argument("--modalities", nargs="+", default=["CT", "MR", "CR"], choices=["CT", "MR", "CR", "US", "MG"], metavar="M", help="CT MR CR US MG (default: CT MR CR)")
    demo.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    demo.set_defaults(func=_cmd_demo)

    dec = add("decode", "decode one PDU and print its fields", "examples:\n  securepdu decode --sample\n  securepdu decode 05 00 00000004 00000000")
    src = dec.add_mutually_exclusive_group()
    src.add_argument("--sample", action="store_true", help="decode a built-in sample A-ASSOCIATE-RQ")
    src.add_argument("-f", "--file", help="read the PDU's bytes from FILE")
    src.add_argument("hex", nargs="*", default=[], help="the PDU as hex digits (spaces allowed); stdin if omitted")
    dec.set_defaults(func=_cmd_decode)
    return parser


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None) -> int:
    """Entry point of the ``securepdu`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _setup_logging(args)
    try:
        result: int = args.func(args, stdout or sys.stdout)
    except _UsageError as exc:
        parser.exit(2, f"securepdu {args.command}: error: {exc}\n")
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
