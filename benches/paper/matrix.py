"""The study's matrix: address family x protection x stack x data set, the route each
(family, protection) group takes through the test network, and the runs.

A run is benches.measure.run_once (SCP in b, SCU in a, objects checked on arrival)
with the gateways of the run, when there are some, started around it, and the CPU
time of the tunnel daemons and gateways added to the SCU's and SCP's.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from benches.data import DataSet
from benches.measure import Cell, Context, Place, run_echo, run_once, shown
from benches.paper import gateway, net, tunnels
from benches.paper.net import LINKS, ns

FAMILIES = ("IPv4", "IPv6", "mixed")
PROTECTIONS = ("none", "tls12", "tls13", "mtls", "tls13+integrity", "ipsec", "wireguard", "gateway")
LABELS = {"none": "none", "tls12": "TLS 1.2", "tls13": "TLS 1.3", "mtls": "mutual TLS 1.3",
          "tls13+integrity": "TLS 1.3 + integrity", "ipsec": "IPsec", "wireguard": "WireGuard",
          "gateway": "gateway pair (mTLS)"}
STACKS = ("securepdu", "pynetdicom", "dcmtk")
#: (inside family, WAN/outer family) of each address family: mixed is the paper's case,
#: IPv4 hosts joined across an IPv6 network.
FAMILY_IP = {"IPv4": ("4", "4"), "IPv6": ("6", "6"), "mixed": ("4", "6")}
TLS_PROTECTIONS = ("tls12", "tls13", "mtls", "tls13+integrity")


@dataclass
class Environment:
    """What this machine can run: the IPsec and WireGuard implementations (kind, and
    the description or the reason there is none) and the gateway."""

    ipsec: tuple[str, str]
    wireguard: tuple[str, str]
    gateway: tuple[bool, str]


@dataclass
class PaperCell:
    """One cell: the suite's Cell (samples, error, commands) plus what the relays and
    tunnel daemons cost."""

    family: str
    protection: str
    stack: str
    data: str
    cell: Cell
    extra_cpu: list[float] = field(default_factory=list)  # tunnel daemons + gateways, per sample
    relay_hwm: int = 0  # the largest peak RSS of a gateway or tunnel daemon, bytes

    @property
    def label(self) -> str:
        """E.g. "IPv4 TLS 1.3 securepdu CT"."""
        return f"{self.family} {LABELS[self.protection]} {self.stack} {self.data}"

    def cpu_per_gb(self) -> float | None:
        """Median CPU seconds per GB of every process involved."""
        if not self.cell.samples:
            return None
        gb = self.cell.nbytes / 1e9
        return statistics.median((s.cpu + x) / gb for s, x in zip(self.cell.samples, self.extra_cpu))


def skip_reason(family: str, protection: str, stack: str, env: Environment) -> str:
    """Why a cell cannot exist or cannot run here ("" runs it); a missing kernel feature
    or gateway is said exactly, never measured around."""
    if stack == "dcmtk" and family == "IPv6":
        return "no IPv6 in dcmtk 3.6.7"
    if protection == "tls13+integrity" and stack != "securepdu":
        return "integrity is securepdu's own"
    if family == "mixed" and protection in TLS_PROTECTIONS:
        return "n/a: the IPv4 hosts have no path across the IPv6 WAN; TLS between them runs through the gateway pair"
    if protection == "ipsec" and not env.ipsec[0]:
        return f"IPsec unavailable: {env.ipsec[1]}"
    if protection == "wireguard" and not env.wireguard[0]:
        return f"WireGuard unavailable: {env.wireguard[1]}"
    if (protection == "gateway" or (family == "mixed" and protection == "none")) and not env.gateway[0]:
        return env.gateway[1]
    return ""


def in_quick(family: str, protection: str, data: str) -> bool:
    """The quick subset: every stack on CT in every group (so every protection and
    family once), the other data sets on plain IPv4 only."""
    return data == "CT" or (family == "IPv4" and protection == "none")


def plan(names: list[str], quick: bool, env: Environment) -> list[PaperCell]:
    """Every cell, grouped by (family, protection) in the order they run."""
    cells = []
    for family in FAMILIES:
        for protection in PROTECTIONS:
            for stack in STACKS:
                for data in names:
                    if quick and not in_quick(family, protection, data):
                        continue
                    skip = skip_reason(family, protection, stack, env)
                    mode = protection if protection in TLS_PROTECTIONS else "plain"
                    cell = Cell(stack, stack, mode, "", data, skip=skip)
                    cells.append(PaperCell(family, protection, stack, data, cell))
    return cells


@dataclass
class Route:
    """How a group's traffic goes: the address the SCU connects to, where the SCP
    listens, the tunnel or gateway pair in between."""

    connect: str
    scp_host: str
    tunnel: tunnels.Tunnel | None = None
    pair: gateway.Pair | None = None
    notes: list[str] = field(default_factory=list)  # daemon and gateway command lines

    def daemons(self) -> list[net.Daemon]:
        """The tunnel daemons whose CPU time counts."""
        return self.tunnel.daemons if self.tunnel else []


@contextlib.contextmanager
def open_route(family: str, protection: str, env: Environment, ctx: Context) -> Iterator[Route]:
    """Brings a group's tunnel up (and down again after), or describes its direct or
    gateway path."""
    inside, outer = FAMILY_IP[family]
    if protection in ("ipsec", "wireguard"):
        start = tunnels.start_ipsec if protection == "ipsec" else tunnels.start_wireguard
        impl = env.ipsec[0] if protection == "ipsec" else env.wireguard[0]
        tunnel = start(impl, outer, inside, ctx.scratch / f"{protection}-{family}")
        try:
            yield Route(tunnel.b, tunnel.b, tunnel=tunnel, notes=[" ".join(d.argv) for d in tunnel.daemons])
        finally:
            tunnel.stop()
        return
    if protection == "gateway" or (family == "mixed" and protection == "none"):
        pair = gateway.Pair(LINKS["agw"].addr("ga", inside), LINKS["wan"].addr("gb", outer),
                            LINKS["bgw"].addr("b", inside), tls=protection == "gateway")
        yield Route(pair.inside_a, pair.scp, pair=pair)
        return
    address = LINKS["ab"].addr("b", inside)
    yield Route(address, address)


class Ports:
    """Fresh ports for every run (a new namespace has them all free; never reusing one
    keeps TIME_WAIT out of the way)."""

    def __init__(self, first: int = 20000) -> None:
        self.next = first

    def take(self) -> int:
        """The next port, wrapping within 20000-59999."""
        port = self.next
        self.next = 20000 + (self.next - 20000 + 1) % 40000
        return port


PORTS = Ports()


def run_sample(pc: PaperCell, route: Route, data: DataSet, ctx: Context, *, first: bool) -> None:
    """One run of ``pc``: gateways (if any) around run_once, the tunnel daemons' and
    gateways' CPU time added; appends the sample or raises."""
    port = PORTS.take()
    scp_port = PORTS.take() if route.pair else port  # without gateways the SCU connects to the SCP itself
    pc.cell.place = Place(scu_ns=ns("a"), scp_ns=ns("b"), scp_host=route.scp_host, scp_port=scp_port, port=port)
    pc.cell.host = route.connect
    daemons = route.daemons()
    cpu0 = sum(d.cpu() for d in daemons)
    relays = gateway.Running(route.pair, (port, PORTS.take(), scp_port), ctx.secrets, ctx.scratch) if route.pair else None
    try:
        sample = run_once(pc.cell, data, ctx, first=first)
        relay_cpu, relay_hwm = relays.readings() if relays else (0.0, 0)
    finally:
        if relays:
            relays.stop()
    if relays and first:
        pc.cell.commands += [shown(c, {}, port, [], ctx) for c in relays.commands]
    pc.cell.samples.append(sample)
    pc.extra_cpu.append(relay_cpu + sum(d.cpu() for d in daemons) - cpu0)
    pc.relay_hwm = max(pc.relay_hwm, relay_hwm, *(d.hwm() for d in daemons))


def run_group(cells: list[PaperCell], route: Route, loaded: dict[str, DataSet], ctx: Context, runs: int,
              deadline: float) -> None:
    """Every runnable cell of one group ``runs`` times, interleaved; a failure is
    retried once, then the cell is given up; nothing starts after ``deadline``."""
    todo = [pc for pc in cells if not pc.cell.skip]
    for pc in todo:
        pc.cell.nbytes = loaded[pc.data].nbytes
    for run in range(runs):
        for pc in todo:
            if pc.cell.error:
                continue
            if time.monotonic() > deadline:
                pc.cell.error = "not run: the time budget (--budget) was exhausted"
                continue
            try:
                attempt(pc, route, loaded[pc.data], ctx, first=run == 0)
            except Exception as exc:  # noqa: BLE001 - shown in the cell; the exit code is 1
                pc.cell.error = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:400]
                print(f"  run {run + 1}/{runs}  {pc.label:<48} FAILED: {pc.cell.error}", flush=True)
                continue
            s = pc.cell.samples[-1]
            print(f"  run {run + 1}/{runs}  {pc.label:<48} {s.seconds:7.2f} s {pc.cell.mbps()[-1]:8.1f} MB/s "
                  f"{(s.cpu + pc.extra_cpu[-1]) / (pc.cell.nbytes / 1e9):7.1f} CPU s/GB  {s.tls}", flush=True)


def attempt(pc: PaperCell, route: Route, data: DataSet, ctx: Context, *, first: bool) -> None:
    """run_sample, retried once after a failure (kept in ``retries``)."""
    try:
        run_sample(pc, route, data, ctx, first=first)
    except Exception as exc:  # noqa: BLE001 - retried once, then raised
        pc.cell.retries.append(f"{type(exc).__name__}: {exc}".replace("\n", " ")[:200])
        print(f"  retrying {pc.label}: {pc.cell.retries[-1]}", flush=True)
        run_sample(pc, route, data, ctx, first=first)


@dataclass
class Echo:
    """Association set-up latencies of one (family, protection, stack)."""

    family: str
    protection: str
    stack: str
    latencies_ms: list[float] = field(default_factory=list)
    error: str = ""


def run_echo_group(family: str, protection: str, route: Route, stacks: list[str], reps: int,
                   ctx: Context) -> list[Echo]:
    """associate + C-ECHO + release, timed in the SCU process, for each of ``stacks``
    (pynetdicom a fifth of the repetitions: tens of ms each), through the route."""
    mode = protection if protection in TLS_PROTECTIONS else "plain"
    out = []
    for stack in stacks:
        echo = Echo(family, protection, stack)
        port = PORTS.take()
        scp_port = PORTS.take() if route.pair else port
        place = Place(scu_ns=ns("a"), scp_ns=ns("b"), scp_host=route.scp_host, scp_port=scp_port, port=port)
        relays = None
        try:
            if route.pair:
                relays = gateway.Running(route.pair, (port, PORTS.take(), scp_port), ctx.secrets, ctx.scratch)
            n = reps if stack == "securepdu" else max(3, reps // 5)
            echo.latencies_ms = run_echo(stack, mode, route.connect, n, ctx, place)
            print(f"  echo {family} {LABELS[protection]} {stack}: median {statistics.median(echo.latencies_ms):.2f} ms"
                  f" of {n}", flush=True)
        except Exception as exc:  # noqa: BLE001 - shown; the exit code is 1
            echo.error = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]
            print(f"  echo {family} {LABELS[protection]} {stack} FAILED: {echo.error}", flush=True)
        finally:
            if relays:
                relays.stop()
        out.append(echo)
    return out
