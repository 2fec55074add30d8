"""Waiting for a peer we started to listen, without connecting to it (a bare probe
connection makes dcmtk's storescp log an error, and is a silent client to a TLS
server)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any


def listening_inodes(port: int) -> set[int]:
    """Socket inodes in LISTEN state on ``port``, any address, from /proc/net/tcp and tcp6."""
    inodes: set[int] = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:  # TCP_LISTEN
                inodes.add(int(parts[9]))
    return inodes


def _socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets process ``pid`` holds open."""
    inodes: set[int] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        fds = list(fd_dir.iterdir())
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed since the listing
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def wait_listening(port: int, proc: subprocess.Popen[Any] | None = None, timeout: float = 20.0) -> None:
    """Waits until something listens on ``port``; with ``proc``, until ``proc`` itself
    does. The owner matters: a free port of one family (127.0.0.1) can carry the same
    number as another process's listener in the other (::1), and a test that took
    that listener for its own peer once connected before its peer was up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listeners = listening_inodes(port)
        if listeners and (proc is None or listeners & _socket_inodes(proc.pid)):
            return
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"{proc.args!r} exited with {proc.returncode} before listening: {out}")
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")
