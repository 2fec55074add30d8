"""The test network: four network namespaces joined by veth pairs, every address from
the benchmarking ranges 198.18.0.0/15 and 2001:2::/48 (RFC 2544, RFC 5180), the
daemons started inside them, and the teardown that removes all of it.

    a --ab-- b            the two hosts, dual stack (direct, IPsec, WireGuard)
    a --agw-- ga --wan-- gb --bgw-- b      the gateway pair (site A, WAN, site B)

Namespaces are named ``spdu-<our pid>-<role>`` so that concurrent runs never collide;
veths are created directly inside them (never in the host's namespace) and vanish with
them. Nothing else of the host's network is touched.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benches.peers import Scp, child_env, netns_prefix, proc_cpu, proc_mem

#: Namespace prefix of this run; the pid makes it unique on the machine.
PREFIX = f"spdu-{os.getpid()}"
ROLES = ("a", "b", "ga", "gb")
#: How long one `ip`, `ping` or tool call may take.
CMD_TIMEOUT = 30.0


@dataclass(frozen=True)
class Link:
    """A veth pair between two namespaces with one /24 and one /64; the left end is
    .1 / ::1, the right end .2 / ::2."""

    name: str
    left: str
    right: str
    v4: str  # first three octets, e.g. "198.18.0"
    v6: str  # the /64 prefix without "::", e.g. "2001:2:0:1"

    def addr(self, role: str, family: str) -> str:
        """The address of ``role``'s end of this link in ``family`` ("4" or "6")."""
        host = 1 if role == self.left else 2
        return f"{self.v4}.{host}" if family == "4" else f"{self.v6}::{host}"


LINKS = {
    "ab": Link("ab", "a", "b", "198.18.0", "2001:2:0:1"),
    "agw": Link("agw", "a", "ga", "198.18.3", "2001:2:0:3"),
    "wan": Link("wan", "ga", "gb", "198.18.4", "2001:2:0:4"),
    "bgw": Link("bgw", "gb", "b", "198.18.5", "2001:2:0:5"),
}
#: Inner (protected) addresses of the tunnels: host routes through the tunnel only, so
#: nothing reaches them in the clear when a tunnel is down.
IPSEC_INNER = {"4": ("198.18.1.1", "198.18.1.2"), "6": ("2001:2:0:11::1", "2001:2:0:11::2")}
WG_INNER = {"4": ("198.18.2.1", "198.18.2.2"), "6": ("2001:2:0:12::1", "2001:2:0:12::2")}


def ns(role: str) -> str:
    """The namespace name of ``role`` in this run."""
    return f"{PREFIX}-{role}"


def every_address() -> list[str]:
    """Every address of the network (for the server certificate's names)."""
    out = [link.addr(r, f) for link in LINKS.values() for r in (link.left, link.right) for f in "46"]
    return out + [a for pair in (*IPSEC_INNER.values(), *WG_INNER.values()) for a in pair]


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """One `ip` command; raises with its stderr when it fails and ``check``."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=CMD_TIMEOUT)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def in_ns(role: str, argv: list[str], *, timeout: float = CMD_TIMEOUT,
          check: bool = True) -> subprocess.CompletedProcess[str]:
    """A short command inside ``role``'s namespace."""
    done = subprocess.run(netns_prefix(ns(role)) + argv, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} in {role}: {(done.stderr or done.stdout).strip()[-500:]}")
    return done


class Daemon:
    """A long-running process started by us (tunnel daemon), stopped by its PID, with
    its CPU time and peak RSS readable while it lives."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        with open(log, "wb") as err:
            # A file, not a pipe: nobody reads a pipe while the daemon runs.
            self.proc = subprocess.Popen(argv, stdout=err, stderr=subprocess.STDOUT, env=env or child_env())
        REGISTRY.daemons.append(self)

    def alive(self) -> bool:
        """Whether it still runs."""
        return self.proc.poll() is None

    def tail(self) -> str:
        """The end of its log."""
        try:
            return self.log.read_bytes()[-1500:].decode(errors="replace")
        except OSError:
            return ""

    def cpu(self) -> float:
        """CPU seconds so far (0 once it has exited)."""
        try:
            return proc_cpu(self.proc.pid) if self.alive() else 0.0
        except (OSError, IndexError, ValueError):
            return 0.0

    def hwm(self) -> int:
        """Peak RSS (VmHWM) in bytes, 0 once it has exited."""
        try:
            return proc_mem(self.proc.pid)[1] if self.alive() else 0
        except (OSError, KeyError):
            return 0

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; only this process, by its PID."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


@dataclass
class Registry:
    """What this run created, for the teardown."""

    namespaces: list[str] = field(default_factory=list)
    daemons: list[Daemon] = field(default_factory=list)
    listeners: list[Scp] = field(default_factory=list)


REGISTRY = Registry()


def teardown() -> None:
    """Stops every daemon and listener we started (by PID), then any process still in
    one of our namespaces (only we start processes there), then deletes the
    namespaces, which deletes their veths and tunnel devices. Safe to call twice."""
    procs: list[Scp | Daemon] = [*REGISTRY.listeners, *REGISTRY.daemons]
    for proc in procs:
        try:
            proc.stop()
        except (OSError, subprocess.SubprocessError):
            pass
    REGISTRY.listeners.clear()
    REGISTRY.daemons.clear()
    for name in list(REGISTRY.namespaces):
        kill_leftovers(name)
        ip("netns", "del", name, check=False)
        REGISTRY.namespaces.remove(name)


def kill_leftovers(name: str) -> None:
    """SIGKILL whatever still runs in our namespace ``name`` (a grandchild of a tool)."""
    done = ip("netns", "pids", name, check=False)
    for pid in done.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass


def install_teardown() -> None:
    """Teardown at exit and on SIGTERM/SIGHUP (Ctrl-C already raises KeyboardInterrupt
    through the caller's try/finally)."""
    atexit.register(teardown)

    def on_signal(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)


def stale_namespaces() -> list[str]:
    """Namespaces of earlier runs of this harness whose process is gone (killed with
    SIGKILL, say): ours by name, safe to delete."""
    done = ip("netns", "list", check=False)
    stale = []
    for line in done.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        parts = name.split("-")
        if len(parts) >= 3 and parts[0] == "spdu" and parts[1].isdigit() and not Path(f"/proc/{parts[1]}").exists():
            stale.append(name)
    return stale


def build() -> None:
    """The four namespaces, their veths and addresses (IPv6 without duplicate address
    detection, which would hold the addresses back for a second or two)."""
    for role in ROLES:
        ip("netns", "add", ns(role))
        REGISTRY.namespaces.append(ns(role))
        ip("-n", ns(role), "link", "set", "lo", "up")
    for link in LINKS.values():
        left, right = f"{link.name}-{link.left}", f"{link.name}-{link.right}"
        ip("link", "add", left, "netns", ns(link.left), "type", "veth", "peer", "name", right, "netns", ns(link.right))
        for role, dev in ((link.left, left), (link.right, right)):
            ip("-n", ns(role), "addr", "add", f"{link.addr(role, '4')}/24", "dev", dev)
            ip("-n", ns(role), "addr", "add", f"{link.addr(role, '6')}/64", "dev", dev, "nodad")
            ip("-n", ns(role), "link", "set", dev, "up")


def ping(role: str, address: str, *, tries: int = 10) -> float:
    """Round-trip time in ms of one ping from ``role`` to ``address``, retried (the
    first IPv6 packet waits for neighbour discovery); raises when it never answers."""
    last = ""
    for _ in range(tries):
        done = in_ns(role, ["ping", "-n", "-c", "1", "-W", "1", address], check=False)
        if done.returncode == 0:
            for word in done.stdout.split():
                if word.startswith("time="):
                    return float(word[5:])
            return 0.0
        last = (done.stderr or done.stdout).strip()[-200:]
        time.sleep(0.2)
    raise RuntimeError(f"{role} cannot ping {address}: {last}")


def iperf3(client: str, server: str, address: str, seconds: float, scratch: Path,
           daemons: Sequence[Daemon] = ()) -> tuple[float, float]:
    """(MB/s received, CPU seconds per GB of ``daemons``) of one iperf3 TCP stream from
    ``client`` to an iperf3 server in ``server`` listening on ``address``."""
    port = 5201
    argv = netns_prefix(ns(server)) + ["iperf3", "-s", "-1", "-B", address, "-p", str(port)]
    srv = Scp(argv, port, child_env(), scratch / "iperf3-server.log")
    REGISTRY.listeners.append(srv)
    try:
        cpu0 = sum(d.cpu() for d in daemons)
        done = in_ns(client, ["iperf3", "-J", "-c", address, "-p", str(port), "-t", f"{seconds:g}"],
                     timeout=seconds + 30)
        cpu = sum(d.cpu() for d in daemons) - cpu0
    finally:
        srv.stop()
        REGISTRY.listeners.remove(srv)
    summary = json.loads(done.stdout)["end"]["sum_received"]
    received = summary["bytes"]
    return summary["bits_per_second"] / 8e6, (cpu / (received / 1e9) if received else 0.0)
