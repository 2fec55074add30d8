"""Helpers and fixtures for the interoperability tests: real peers, never mocks.

pynetdicom runs in-process; dcmtk's storescu/storescp/echoscu run as subprocesses.
A missing peer FAILS the run (scripts/install-peers.sh installs dcmtk; pynetdicom
comes with the ``test`` extra): interop that silently skips proves nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset

import securepdu
from listeners import wait_listening  # noqa: F401 - re-exported to the interop tests
from securepdu import _synthetic

#: Every subprocess gets this timeout (seconds); nothing here should take a tenth of it.
SUBPROCESS_TIMEOUT = 120
SCP_AET = "SECUREPDU"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the usual bind-to-0 trick)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """Ends a process we started, by its PID: SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def ipv6_loopback_problem() -> str | None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError as exc:
        return str(exc)
    return None


@pytest.fixture(params=["127.0.0.1", "::1"], ids=["ipv4", "ipv6"])
def loopback(request: pytest.FixtureRequest) -> str:
    """Each test using it runs on 127.0.0.1 and on ::1. No IPv6 loopback is a failure."""
    host = str(request.param)
    if host == "::1":
        problem = ipv6_loopback_problem()
        if problem:
            pytest.fail(f"the IPv6 tests need a ::1 loopback, and this machine has none: {problem}")
    return host


# ----------------------------------------------------------------------- dcmtk


@dataclass(frozen=True)
class Dcmtk:
    storescu: str
    storescp: str
    echoscu: str


def _find_dcmtk_tool(name: str) -> str:
    # pip's pynetdicom installs Python scripts named storescu/echoscu that may come first
    # on PATH; only a binary whose --version names DCMTK will do.
    candidates = [os.path.join(os.environ.get("DCMTK_BIN", "/usr/bin"), name)]
    found = shutil.which(name)
    if found:
        candidates.append(found)
    for c in candidates:
        if os.access(c, os.X_OK):
            try:
                out = subprocess.run([c, "--version"], capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if "dcmtk" in (out.stdout + out.stderr).lower():
                return c
    pytest.fail(
        f"dcmtk's {name} is missing (looked at {', '.join(candidates)}): run scripts/install-peers.sh "
        "(apt-get install dcmtk). The interop tests fail rather than skip without their peers."
    )


@pytest.fixture(scope="session")
def dcmtk() -> Dcmtk:
    return Dcmtk(_find_dcmtk_tool("storescu"), _find_dcmtk_tool("storescp"), _find_dcmtk_tool("echoscu"))


def run_tool(args: list[str], *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, env={**os.environ, **(env or {})}
    )
    return done


# ----------------------------------------------------------------------- data


def write_small_study(out_dir: Path) -> list[Path]:
    """A small multi-modality study (CT x3, MR x3, CR, US RGB): about 4.5 MB, fast to move.

    Sizes are reduced from the typical ones; the US object exercises 8-bit OB pixel data.
    """
    study = None
    paths: list[Path] = []
    plan = [("CT", 512, 512, 3), ("MR", 256, 256, 3), ("CR", 1024, 1024, 1), ("US", 240, 320, 1)]
    for series_number, (modality, rows, cols, count) in enumerate(plan, start=1):
        series = securepdu_uid()
        for i in range(1, count + 1):
            ds = _synthetic.make_dataset(
                modality, rows, cols, study=study, series_uid=series, series_number=series_number,
                instance_number=i, seed=series_number * 100 + i,
            )
            if study is None:
                study = ds
            path = out_dir / modality / f"IM{i:05d}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    return paths


def securepdu_uid() -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid())


@pytest.fixture(scope="session")
def study(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_small_study(tmp_path_factory.mktemp("study"))


def by_instance(paths: list[Path]) -> dict[str, Path]:
    """SOP Instance UID -> path, read from the files' meta."""
    out: dict[str, Path] = {}
    for p in paths:
        meta, _ = _synthetic.split_part10(p)
        out[str(meta.MediaStorageSOPInstanceUID)] = p
    return out


# ----------------------------------------------------------------------- our SCP


@dataclass
class RunningSCP:
    scp: Any
    host: str
    port: int
    storage: Path
    events: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stored(self) -> dict[str, Any]:
        with self.lock:
            return {str(e.sop_instance_uid): e for e in self.events}


@pytest.fixture
def storage_scp(tmp_path: Path) -> Iterator[Any]:
    """A factory: ``storage_scp(host, **options)`` starts securepdu's StorageSCP on a free
    port; every server started is shut down at the end of the test."""
    started: list[RunningSCP] = []

    def start(host: str = "127.0.0.1", **options: Any) -> RunningSCP:
        storage = tmp_path / f"scp{len(started)}"
        holder: list[RunningSCP] = []

        def on_store(event: Any) -> None:
            with holder[0].lock:
                holder[0].events.append(event)

        options.setdefault("ae_title", SCP_AET)
        scp = securepdu.StorageSCP(storage_dir=storage, on_store=on_store, **options)
        running = RunningSCP(scp, host, 0, storage)
        holder.append(running)
        scp.start(host, 0)
        running.port = scp.port
        started.append(running)
        return running

    yield start
    for r in started:
        r.scp.shutdown()


def assert_stored_like(
    sent: Path, event: Any, *, storage: Path, calling_ae: str, transfer_syntax: str | None = None
) -> None:
    """The file our SCP wrote for ``sent`` holds the same dataset, with correct file meta."""
    received = Path(event.path)
    assert received.is_file(), f"{received} missing"
    assert received.resolve().parent == storage.resolve()
    sent_meta, _ = _synthetic.split_part10(sent)
    meta, _ = _synthetic.split_part10(received)
    uid = str(sent_meta.MediaStorageSOPInstanceUID)
    assert received.name == f"{uid}.dcm"
    assert meta.MediaStorageSOPInstanceUID == uid
    assert meta.MediaStorageSOPClassUID == sent_meta.MediaStorageSOPClassUID
    assert meta.TransferSyntaxUID == event.transfer_syntax
    if transfer_syntax:
        assert meta.TransferSyntaxUID == transfer_syntax
    assert meta.get("ImplementationClassUID"), "file meta lacks the implementation class UID"
    assert meta.get("ImplementationVersionName"), "file meta lacks the implementation version name"
    assert str(meta.get("SourceApplicationEntityTitle", "")).strip() == calling_ae
    assert event.calling_ae == calling_ae
    assert _synthetic.same_dataset(sent, received), f"{received} differs from {sent}"


def same(a: Path | Dataset, b: Path | Dataset) -> bool:
    """Same dataset, file meta ignored (see ``_synthetic.same_dataset``)."""
    return _synthetic.same_dataset(a, b)
