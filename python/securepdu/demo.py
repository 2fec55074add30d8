"""``securepdu demo``: the whole path in one command, with nothing to set up.

It writes a small synthetic study (CT, MR, CR) into a temporary folder, starts a
storage SCP on a free loopback port for each address family (127.0.0.1, then ::1),
sends the study with :func:`securepdu.send`, checks that every received file carries
exactly the dataset that was sent (byte for byte after the file meta when the
transfer syntax is the same, element by element otherwise) and that its file meta
names the right SOP class and instance, and prints a table per address family.

Then it does the same again over TLS 1.3 with mutual authentication, using
throwaway certificates made in memory for this run (a CA, a server certificate
for localhost, 127.0.0.1 and ::1, a client certificate), and once more over TLS
with securepdu's end-to-end integrity check required on both ends (a throwaway
key, id "demo", made with ``secrets.token_hex(32)`` and never written to disk).
The table shows plain TCP, TLS and TLS+integrity side by side with the ratios of
their rates. Last, every folder the SCPs stored into is re-checked against its
manifest with :func:`securepdu.verify`.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from securepdu import _synthetic

MB = 1_000_000
_SCP_AET = "DEMO-SCP"
_SCU_AET = "DEMO-SCU"
_DEMO_CLIENT_CN = "SECUREPDU-DEMO"
_DEMO_KEY_ID = "demo"


@dataclass
class FamilyRun:
    """What happened on one address family, over plain TCP or over TLS."""

    family: str
    host: str
    tls: bool = False
    #: End-to-end integrity required on both ends (securepdu.IntegrityKey "demo").
    integrity: bool = False
    objects: int = 0
    nbytes: int = 0
    seconds: float = 0.0
    verified: int = 0
    problems: list[str] = field(default_factory=list)
    skipped: str | None = None
    #: For TLS runs: the negotiated version and cipher suite, e.g. "TLSv1.3 TLS_AES_128_GCM_SHA256".
    negotiated: str = ""
    #: Where the SCP stored this run's objects (and its manifest).
    storage: Path | None = None

    @property
    def mode(self) -> str:
        """"plain", "TLS" or "TLS+integrity"."""
        if self.tls:
            return "TLS+integrity" if self.integrity else "TLS"
        return "plain+integrity" if self.integrity else "plain"

    @property
    def label(self) -> str:
        """"IPv4", "IPv4 TLS", "IPv4 TLS+integrity"."""
        return self.family if self.mode == "plain" else f"{self.family} {self.mode}"

    @property
    def rate(self) -> float:
        return self.nbytes / MB / self.seconds if self.seconds > 0 else 0.0


def ipv6_loopback_available() -> str | None:
    """None when ::1 can be bound; otherwise why not (for the skip message)."""
    if not socket.has_ipv6:
        return "this Python was built without IPv6"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError as exc:
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
            return f"this machine has no IPv6 loopback (::1): {exc.strerror}"
        return f"cannot bind ::1: {exc.strerror}"
    return None


def _verify(sent: Path, received: Path | None, uid: str, sop_class: str) -> str | None:
    """None when ``received`` holds what ``sent`` held; otherwise what is wrong."""
    if received is None:
        return f"{sent.name}: acknowledged but no file was reported for {uid}"
    if not received.is_file():
        return f"{sent.name}: {received} does not exist"
    meta, _ = _synthetic.split_part10(received)
    if meta.get("MediaStorageSOPInstanceUID") != uid:
        return f"{received.name}: file meta names instance {meta.get('MediaStorageSOPInstanceUID')}, not {uid}"
    if meta.get("MediaStorageSOPClassUID") != sop_class:
        return f"{received.name}: file meta names SOP class {meta.get('MediaStorageSOPClassUID')}, not {sop_class}"
    if not _synthetic.same_dataset(sent, received):
        return f"{received.name}: dataset differs from {sent}"
    return None


@dataclass(frozen=True)
class DemoTLS:
    """The TLS settings of both ends, from throwaway certificates."""

    server: Any  # TLSConfig
    client: Any  # TLSConfig


def _write_private(path: Path, text: str) -> Path:
    """Writes a key readable by its owner only (0600 from the start, not chmod after)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def make_demo_tls(work: Path) -> DemoTLS:
    """Writes throwaway PEM files (made in memory by the Rust core) into ``work`` and
    returns mutual-TLS 1.3 settings for the SCP and the SCU."""
    from securepdu import _core
    from securepdu.tls import TLSConfig

    # getattr: the stub may not list demo_pki in builds without TLS.
    pem: dict[str, str] = dict(getattr(_core, "demo_pki")())
    folder = work / "pki"
    folder.mkdir(mode=0o700)
    ca = folder / "ca.crt"
    ca.write_text(pem["ca_cert"])
    server_cert = folder / "server.crt"
    server_cert.write_text(pem["server_cert"])
    client_cert = folder / "client.crt"
    client_cert.write_text(pem["client_cert"])
    server_key = _write_private(folder / "server.key", pem["server_key"])
    client_key = _write_private(folder / "client.key", pem["client_key"])
    return DemoTLS(
        server=TLSConfig(cert=server_cert, key=server_key, ca=ca, min_version="1.3", require_client_cert=True),
        client=TLSConfig(cert=client_cert, key=client_key, ca=ca, min_version="1.3"),
    )


def make_demo_key() -> Any:
    """A throwaway integrity key, id "demo": 32 random bytes held in memory only."""
    import securepdu

    return securepdu.IntegrityKey.parse(f"{_DEMO_KEY_ID}:{secrets.token_hex(32)}")


def integrity_unavailable() -> str | None:
    """None when this build has securepdu's integrity check; otherwise why not."""
    import securepdu

    if not hasattr(securepdu, "IntegrityKey") or not hasattr(securepdu, "verify"):
        return "this build of securepdu has no integrity check"
    return None


def tls_unavailable() -> str | None:
    """None when this build can do TLS; otherwise why not (for the skip message)."""
    import inspect

    import securepdu
    from securepdu import _core

    if not hasattr(_core, "demo_pki") or "tls" not in inspect.signature(securepdu.associate).parameters:
        return "this build of securepdu has no TLS support"
    return None


def _send_one_family(
    api: Any, run: FamilyRun, files: list[Path], work: Path, tls: DemoTLS | None = None, key: Any = None
) -> None:
    received: dict[str, Path] = {}
    tags: dict[str, str | None] = {}
    subjects: set[str | None] = set()
    lock = threading.Lock()

    def on_store(event: Any) -> None:
        with lock:
            received[str(event.sop_instance_uid)] = Path(event.path)
            tags[str(event.sop_instance_uid)] = getattr(event, "integrity_tag", None)
            subjects.add(getattr(event, "peer_certificate_subject", None))

    storage = work / f"received-{run.label.replace(' ', '-').replace('+', '-')}"
    storage.mkdir()
    run.storage = storage
    scp_opts: dict[str, Any] = {"tls": tls.server} if tls is not None else {}
    scu_opts: dict[str, Any] = {"tls": tls.client} if tls is not None else {}
    if run.integrity:
        # Required on both ends: the run fails rather than quietly going without it.
        scp_opts.update(integrity="required", integrity_key=key)
        scu_opts.update(integrity="required", integrity_key=key)
    scp = api.StorageSCP(ae_title=_SCP_AET, storage_dir=str(storage), on_store=on_store, **scp_opts)
    scp.start(run.host, 0)
    try:
        if tls is not None or run.integrity:
            # One echo first, to show what was negotiated (send() does not say).
            with api.associate(run.host, scp.port, called_ae=_SCP_AET, calling_ae=_SCU_AET, **scu_opts) as assoc:
                assoc.echo()
                parts = [f"{assoc.tls_version} {assoc.cipher_suite}"] if tls is not None else []
                if run.integrity:
                    if assoc.integrity_active:
                        parts.append(f"integrity HMAC-SHA256 (key id {key.key_id})")
                    else:
                        run.problems.append(f"{run.label}: integrity was required but is not active")
                run.negotiated = ", ".join(parts)
        t0 = time.perf_counter()
        results = list(
            api.send(run.host, scp.port, [str(f) for f in files], called_ae=_SCP_AET, calling_ae=_SCU_AET, **scu_opts)
        )
        run.seconds = time.perf_counter() - t0
    finally:
        scp.shutdown()
    if tls is not None:
        bad = [s for s in subjects if not s or f"CN={_DEMO_CLIENT_CN}" not in s]
        if bad:
            run.problems.append(f"{run.family} TLS: the SCP saw client certificate subject(s) {bad!r}, not CN={_DEMO_CLIENT_CN}")
    for r in results:
        if not r.ok:
            reason = r.error or f"status 0x{int(r.status or 0):04X} {r.error_comment or ''}".strip()
            run.problems.append(f"{r.path}: not stored: {reason}")
            continue
        run.objects += 1
        run.nbytes += Path(r.path).stat().st_size
        with lock:
            got = received.get(str(r.sop_instance_uid))
        problem = _verify(Path(r.path), got, str(r.sop_instance_uid), str(r.sop_class_uid))
        if problem is None and run.integrity:
            with lock:
                theirs = tags.get(str(r.sop_instance_uid))
            ours = getattr(r, "integrity_tag", None)
            if not ours or ours != theirs:
                problem = f"{r.path}: integrity tags differ: sent {ours}, the SCP checked {theirs}"
        if problem:
            run.problems.append(problem)
        else:
            run.verified += 1
    if len(results) != len(files):
        run.problems.append(f"{len(files)} objects to send but {len(results)} results")


def _ran(r: FamilyRun | None) -> bool:
    return r is not None and not r.skipped and r.seconds > 0


def _table(runs: Sequence[FamilyRun], stdout: TextIO) -> None:
    """One row per address family: plain TCP, TLS and TLS+integrity side by side, then
    TLS/plain (the TLS rate as a fraction of the plain one; 1.00 means no cost) and
    +int/TLS (the cost of the integrity check on top of TLS)."""
    headers = (
        "family", "address", "objects", "MB", "plain MB/s", "TLS MB/s", "TLS+int MB/s",
        "TLS/plain", "+int/TLS", "identical",
    )
    modes = ("plain", "TLS", "TLS+integrity")
    rows: list[tuple[str, ...]] = []
    families: dict[str, dict[str, FamilyRun]] = {}
    for r in runs:
        families.setdefault(r.family, {})[r.mode] = r
    for family, by_mode in families.items():
        sides = [by_mode.get(m) for m in modes]
        present = [side for side in sides if side is not None]
        if not present:
            continue
        first = present[0]
        ran = [side for side in present if _ran(side)]
        if not ran:
            rows.append((family, first.host, "-", "-", "-", "-", "-", "-", "-", "skipped"))
            continue
        shown = ran[0]
        cells = [family, first.host, str(shown.objects), f"{shown.nbytes / MB:.1f}"]
        for side in sides:
            cells.append(f"{side.rate:.1f}" if side is not None and _ran(side) else "-")
        for num, den in ((sides[1], sides[0]), (sides[2], sides[1])):
            ok = num is not None and den is not None and _ran(num) and _ran(den) and den.rate > 0
            cells.append(f"{num.rate / den.rate:.2f}" if ok and num is not None and den is not None else "-")
        checks = [f"{side.verified}/{side.objects}" for side in ran]
        cells.append(" + ".join(checks))
        rows.append(tuple(cells))
    if stdout.isatty():
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            pass
        else:
            table = Table(title="securepdu demo: C-STORE over loopback, plain TCP, TLS and TLS+integrity")
            for i, h in enumerate(headers):
                table.add_column(h, justify="right" if i >= 2 else "left")
            for row in rows:
                table.add_row(*row)
            Console(file=stdout).print(table)
            return
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:{'<' if i < 2 else '>'}{w}}}" for i, w in enumerate(widths))
    print(fmt.format(*headers), file=stdout)
    for row in rows:
        print(fmt.format(*row), file=stdout)


def _verify_manifests(api: Any, runs: Sequence[FamilyRun], key: Any, out: TextIO) -> None:
    """Re-checks every folder an SCP stored into against its manifest (the integrity
    runs' with the key, so each line's MAC is checked too); problems go to the run."""
    checked = 0
    before = sum(len(r.problems) for r in runs)
    folders = 0
    for r in runs:
        if r.skipped or r.storage is None:
            continue
        folders += 1
        try:
            report = api.verify(r.storage, key=key if r.integrity else None)
        except (api.errors.SecurePDUError, OSError, ValueError) as exc:
            r.problems.append(f"{r.label}: verify {r.storage.name}: {exc}")
            continue
        for what in ("changed", "missing", "unknown"):
            for name in getattr(report, what):
                r.problems.append(f"{r.label}: verify: {what} {name}")
        for line_no, why in report.bad_lines:
            r.problems.append(f"{r.label}: verify: bad manifest line {line_no}: {why}")
        if r.integrity and not report.mac_checked:
            r.problems.append(f"{r.label}: verify: the manifest MACs were not checked")
        if len(report.ok) != r.objects:
            r.problems.append(f"{r.label}: verify: {len(report.ok)} objects in the manifest, {r.objects} stored")
        checked += len(report.ok)
    found = sum(len(r.problems) for r in runs) - before
    if found:
        print(f"manifest check FAILED: {found} problem(s) in {folders} folder(s)", file=out, flush=True)
    else:
        print(f"manifest verified: {checked} objects ({folders} folders)", file=out, flush=True)


def run(
    *,
    total_mb: float = 30.0,
    modalities: Sequence[str] = ("CT", "MR", "CR"),
    keep: bool = False,
    stdout: TextIO | None = None,
) -> int:
    """Runs the demo; returns 0 when every object arrived intact on every family tried."""
    import securepdu as api

    out = stdout or sys.stdout
    work = Path(tempfile.mkdtemp(prefix="securepdu-demo-"))
    try:
        t0 = time.perf_counter()
        files = _synthetic.make_study(work / "sent", total_mb=total_mb, modalities=modalities)
        size = sum(f.stat().st_size for f in files)
        counts = ", ".join(f"{m} {sum(1 for f in files if f.parent.name == m)}" for m in modalities)
        print(
            f"generated a synthetic study: {len(files)} objects ({counts}), {size / MB:.1f} MB "
            f"in {time.perf_counter() - t0:.1f} s",
            file=out,
            flush=True,
        )
        runs = [
            FamilyRun("IPv4", "127.0.0.1"),
            FamilyRun("IPv6", "::1"),
            FamilyRun("IPv4", "127.0.0.1", tls=True),
            FamilyRun("IPv6", "::1", tls=True),
            FamilyRun("IPv4", "127.0.0.1", tls=True, integrity=True),
            FamilyRun("IPv6", "::1", tls=True, integrity=True),
        ]
        why = ipv6_loopback_available()
        no_tls = tls_unavailable()
        no_integrity = integrity_unavailable()
        for r in runs:
            if r.family == "IPv6" and why:
                r.skipped = why
            elif r.tls and no_tls:
                r.skipped = no_tls
            elif r.integrity and no_integrity:
                r.skipped = no_integrity
        tls: DemoTLS | None = None
        if not no_tls:
            tls = make_demo_tls(work)
            print(
                f"made throwaway certificates: a CA, a server certificate (localhost, 127.0.0.1, ::1), "
                f"a client certificate (CN={_DEMO_CLIENT_CN})",
                file=out,
                flush=True,
            )
        key: Any = None
        if not no_integrity and any(r.integrity and not r.skipped for r in runs):
            key = make_demo_key()
            print(
                f'made a throwaway integrity key (id "{key.key_id}", 32 random bytes, kept in memory only)',
                file=out,
                flush=True,
            )
        for r in runs:
            how = "TLS 1.3, mutual authentication" if r.tls else "plain TCP"
            if r.integrity:
                how += ", integrity required"
            if r.skipped:
                print(f"skipping {r.family} ({how}): {r.skipped}", file=out, flush=True)
                continue
            print(f"sending over {r.family} ({r.host}), {how} ...", file=out, flush=True)
            try:
                _send_one_family(api, r, files, work, tls if r.tls else None, key if r.integrity else None)
            except (api.errors.SecurePDUError, OSError) as exc:
                r.problems.append(f"{r.label}: {exc}")
            if r.negotiated:
                print(f"  negotiated {r.negotiated}", file=out, flush=True)
        _table(runs, out)
        if not no_integrity:
            _verify_manifests(api, runs, key, out)
        problems = [p for r in runs for p in r.problems]
        for p in problems:
            print(f"MISMATCH {p}", file=sys.stderr, flush=True)
        tried = [r for r in runs if not r.skipped]
        if problems or not tried:
            print(f"demo FAILED: {len(problems)} problem(s)", file=out, flush=True)
            return 1
        total = sum(r.verified for r in tried)
        over = ", ".join(r.label for r in tried)
        print(f"demo OK: {total} objects received intact over {over}", file=out, flush=True)
        return 0
    finally:
        if keep:
            print(f"kept {work}", file=out, flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
