"""The pair of securepdu gateways of the paper's deployment: gateway A in front of site
A (namespace ga) relays the associations of a's SCU over the WAN link to gateway B
(namespace gb), which relays them to b's SCP. Inside legs are plain DICOM; the WAN leg
is mutual TLS 1.3 (or plain, to measure the relaying alone). Until `securepdu gateway`
exists, every gateway cell says so instead of running."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benches.paper.net import REGISTRY, ns
from benches.peers import ROOT, Scp, Secrets, child_env, netns_prefix, proc_mem


def available() -> tuple[bool, str]:
    """Whether ``python -m securepdu gateway --help`` works; the reason when not."""
    try:
        done = subprocess.run([sys.executable, "-m", "securepdu", "gateway", "--help"], capture_output=True,
                              text=True, timeout=60, env=child_env(), cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"gateway not available: {exc}"
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        return False, f"gateway not available: `python -m securepdu gateway --help` exited {done.returncode}: {last[0][:160]}"
    return True, ""


def hostport(address: str, port: int) -> str:
    """ADDR:PORT, IPv6 in brackets."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@dataclass(frozen=True)
class Pair:
    """Where the gateways listen and whether the WAN leg is mutual TLS."""

    inside_a: str  # gateway A's address on site A's link (the SCU connects here)
    wan_b: str  # gateway B's address on the WAN link
    scp: str  # b's address on site B's link
    tls: bool

    def argv_a(self, port_a: int, port_b: int, sec: Secrets) -> list[str]:
        """Gateway A: plain inside, onward to gateway B (with a client certificate)."""
        argv = [sys.executable, "-m", "securepdu", "gateway", "--listen", hostport(self.inside_a, port_a),
                "--to", hostport(self.wan_b, port_b)]
        if self.tls:
            argv += ["--out-tls", "--out-cert", sec.pem("client_cert"), "--out-key", sec.pem("client_key"),
                     "--out-ca", sec.pem("ca_cert")]
        return argv

    def argv_b(self, port_b: int, port_scp: int, sec: Secrets) -> list[str]:
        """Gateway B: TLS from gateway A (client certificate required), plain to b."""
        argv = [sys.executable, "-m", "securepdu", "gateway", "--listen", hostport(self.wan_b, port_b),
                "--to", hostport(self.scp, port_scp)]
        if self.tls:
            argv += ["--in-tls", "--in-cert", sec.pem("server_cert"), "--in-key", sec.pem("server_key"),
                     "--in-ca", sec.pem("ca_cert")]
        return argv


class Running:
    """The two gateway processes of one run, started listening, stopped by PID."""

    def __init__(self, pair: Pair, ports: tuple[int, int, int], sec: Secrets, scratch: Path) -> None:
        port_a, port_b, port_scp = ports
        self.commands = [netns_prefix(ns("gb")) + pair.argv_b(port_b, port_scp, sec),
                         netns_prefix(ns("ga")) + pair.argv_a(port_a, port_b, sec)]
        self.procs: list[Scp] = []
        try:
            # B first: A connects onward only when an association arrives, but then B must be there.
            for argv, port, name in ((self.commands[0], port_b, "gb"), (self.commands[1], port_a, "ga")):
                proc = Scp(argv, port, child_env(), scratch / f"gateway-{name}.log")
                self.procs.append(proc)
                REGISTRY.listeners.append(proc)
        except BaseException:
            self.stop()
            raise

    def readings(self) -> tuple[float, int]:
        """(CPU seconds of both since they listened, the larger peak RSS), before stop()."""
        cpu, hwm = 0.0, 0
        for proc in self.procs:
            cpu += proc.readings()[0]
            hwm = max(hwm, proc_mem(proc.proc.pid)[1])
        return cpu, hwm

    def stop(self) -> None:
        """Both, by PID."""
        for proc in self.procs:
            proc.stop()
            if proc in REGISTRY.listeners:
                REGISTRY.listeners.remove(proc)
