"""``securepdu demo``: the whole path in one command, with nothing to set up.

It writes a small synthetic study (CT, MR, CR) into a temporary folder, starts a
storage SCP on a free loopback port for each address family (127.0.0.1, then ::1),
sends the study with :func:`securepdu.send`, checks that every received file carries
exactly the dataset that was sent (byte for byte after the file meta when the
transfer syntax is the same, element by element otherwise) and that its file meta
names the right SOP class and instance, and prints a table per address family.
"""

from __future__ import annotations

import errno
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


@dataclass
class FamilyRun:
    """What happened on one address family."""

    family: str
    host: str
    objects: int = 0
    nbytes: int = 0
    seconds: float = 0.0
    verified: int = 0
    problems: list[str] = field(default_factory=list)
    skipped: str | None = None

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


def _send_one_family(api: Any, run: FamilyRun, files: list[Path], work: Path) -> None:
    received: dict[str, Path] = {}
    lock = threading.Lock()

    def on_store(event: Any) -> None:
        with lock:
            received[str(event.sop_instance_uid)] = Path(event.path)

    storage = work / f"received-{run.family}"
    storage.mkdir()
    scp = api.StorageSCP(ae_title=_SCP_AET, storage_dir=str(storage), on_store=on_store)
    scp.start(run.host, 0)
    try:
        t0 = time.perf_counter()
        results = list(api.send(run.host, scp.port, [str(f) for f in files], called_ae=_SCP_AET, calling_ae=_SCU_AET))
        run.seconds = time.perf_counter() - t0
    finally:
        scp.shutdown()
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
        if problem:
            run.problems.append(problem)
        else:
            run.verified += 1
    if len(results) != len(files):
        run.problems.append(f"{len(files)} objects to send but {len(results)} results")


def _table(runs: Sequence[FamilyRun], stdout: TextIO) -> None:
    headers = ("family", "address", "objects", "MB", "seconds", "MB/s", "identical")
    rows = []
    for r in runs:
        if r.skipped:
            rows.append((r.family, r.host, "-", "-", "-", "-", "skipped"))
        else:
            rows.append(
                (
                    r.family,
                    r.host,
                    str(r.objects),
                    f"{r.nbytes / MB:.1f}",
                    f"{r.seconds:.2f}",
                    f"{r.rate:.1f}",
                    f"{r.verified}/{r.objects}",
                )
            )
    if stdout.isatty():
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            pass
        else:
            table = Table(title="securepdu demo: C-STORE over loopback")
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
        runs = [FamilyRun("IPv4", "127.0.0.1"), FamilyRun("IPv6", "::1")]
        why = ipv6_loopback_available()
        if why:
            runs[1].skipped = why
        for r in runs:
            if r.skipped:
                print(f"skipping IPv6: {r.skipped}", file=out, flush=True)
                continue
            print(f"sending over {r.family} ({r.host}) ...", file=out, flush=True)
            try:
                _send_one_family(api, r, files, work)
            except (api.errors.SecurePDUError, OSError) as exc:
                r.problems.append(f"{r.family}: {exc}")
        _table(runs, out)
        problems = [p for r in runs for p in r.problems]
        for p in problems:
            print(f"MISMATCH {p}", file=sys.stderr, flush=True)
        tried = [r for r in runs if not r.skipped]
        if problems or not tried:
            print(f"demo FAILED: {len(problems)} problem(s)", file=out, flush=True)
            return 1
        total = sum(r.verified for r in tried)
        print(f"demo OK: {total} objects received intact over {', '.join(r.family for r in tried)}", file=out, flush=True)
        return 0
    finally:
        if keep:
            print(f"kept {work}", file=out, flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
