"""The peers of a run: ports, SCP processes and their /proc readings, throwaway
secrets (PKI, integrity key, OpenSSL version pins), and the command lines of every
stack's SCP and of dcmtk's storescu."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCP_AET = "BENCH-SCP"
SCU_AET = "BENCH-SCU"
#: Security modes: integrity is securepdu's end-to-end HMAC over plain TCP.
MODES = ("plain", "tls12", "tls13", "mtls", "integrity")
TLS_MODES = ("tls12", "tls13", "mtls")
HOSTS = ("127.0.0.1", "::1")
#: The demo PKI's keys are ECDSA P-256, so TLS 1.2 runs this suite on every stack.
TLS12_SUITE = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
#: dcmtk's largest -pdu; securepdu advertises 262144 by default.
DCMTK_PDU = "131072"
#: What an SCP may take to start listening.
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Secrets:
    """Throwaway files for one suite run (keys 0600)."""

    folder: Path
    integrity_key: Path

    def pem(self, name: str) -> str:
        """Path of one PEM file: ca_cert, server_cert/_key, client_cert/_key."""
        return str(self.folder / f"{name}.pem")

    def openssl_conf(self, mode: str) -> str:
        """An OpenSSL config pinning dcmtk to TLS 1.2 (tls12) or 1.3 (tls13, mtls):
        storescu/storescp 3.6.7 have no option for the protocol version."""
        return str(self.folder / ("openssl-tls12.cnf" if mode == "tls12" else "openssl-tls13.cnf"))


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def make_secrets(folder: Path, pki: dict[str, str] | None = None) -> Secrets:
    """The CA, server (127.0.0.1, ::1) and client certificates made by securepdu's core
    (or ``pki``: the same five PEM texts, e.g. for a server with other addresses), an
    integrity key and the two OpenSSL pins, in a new folder."""
    from securepdu import _core

    folder.mkdir(mode=0o700)
    for name, text in (pki or dict(_core.demo_pki())).items():
        _write_private(folder / f"{name}.pem", text)
    key = folder / "integrity.key"
    _write_private(key, f"bench:{secrets.token_hex(32)}\n")
    for version, line in (("tls12", "MaxProtocol = TLSv1.2"), ("tls13", "MinProtocol = TLSv1.3")):
        conf = f"openssl_conf = c\n[c]\nssl_conf = s\n[s]\nsystem_default = d\n[d]\n{line}\n"
        (folder / f"openssl-{version}.cnf").write_text(conf)
    return Secrets(folder, key)


def free_port(host: str) -> int:
    """A port the kernel says is free on ``host`` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def listening(port: int, pid: int | str = "self") -> bool:
    """Whether something listens on ``port`` (IPv4 or IPv6) in the network namespace
    of process ``pid`` (default ours), from /proc/PID/net."""
    for name in (f"/proc/{pid}/net/tcp", f"/proc/{pid}/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 3 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def netns_prefix(ns: str) -> list[str]:
    """The argv prefix running a command in network namespace ``ns`` ("" = ours)."""
    return ["ip", "netns", "exec", ns] if ns else []


def split_mode(mode: str) -> tuple[str, bool]:
    """(transport mode, integrity on) of a security mode: "integrity" is integrity over
    plain TCP, "tls13+integrity" integrity over TLS 1.3, anything else no integrity."""
    if mode == "integrity":
        return "plain", True
    transport, plus, extra = mode.partition("+")
    return transport, plus == "+" and extra == "integrity"


def child_env(extra: dict[str, str] | None = None, *, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """Our environment for a child, with the repo root importable (for ``-m benches.*``)."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    # numpy (through pydicom) would start OpenBLAS threads that spin on the
    # same two cores the peers share.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return {**env, **(extra or {})}


def proc_cpu(pid: int) -> float:
    """utime + stime of a live process, all its threads, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the ")" field 3 (state) is fields[0]; utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_mem(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a live process, in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


class Scp:
    """One SCP process, started listening and stopped by its PID, with its CPU time and
    peak RSS growth over its life measured from the moment it listened."""

    def __init__(self, argv: list[str], port: int, env: dict[str, str], log: Path) -> None:
        self.argv = argv
        self.log = log
        # A file, not a pipe: a chatty SCP would fill a pipe nobody reads and stall.
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=ROOT)
        deadline = time.monotonic() + START_TIMEOUT
        # Asked in the child's own network namespace: it may run under `ip netns exec`.
        while not listening(port, self.proc.pid):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{Path(argv[0]).name} exited with {self.proc.returncode}: {self._stderr()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{' '.join(argv)} is not listening after {START_TIMEOUT:.0f} s")
            time.sleep(0.02)
        self.cpu0 = proc_cpu(self.proc.pid)
        self.rss0 = proc_mem(self.proc.pid)[0]

    def _stderr(self) -> str:
        return self.log.read_bytes()[-2000:].decode(errors="replace")

    def readings(self) -> tuple[float, int]:
        """(CPU seconds since it listened, peak RSS growth in bytes): read before stop()."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"SCP died with {self.proc.returncode}: {self._stderr()}")
        return proc_cpu(self.proc.pid) - self.cpu0, proc_mem(self.proc.pid)[1] - self.rss0

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s; only this process, by its PID."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)


def dcmtk_tool(name: str) -> str:
    """dcmtk's binary, not pynetdicom's pip scripts of the same name that shadow PATH."""
    for c in (os.path.join(os.environ.get("DCMTK_BIN", "/usr/bin"), name), shutil.which(name)):
        if c and os.access(c, os.X_OK):
            out = subprocess.run([c, "--version"], capture_output=True, text=True, timeout=30)
            if "dcmtk" in (out.stdout + out.stderr).lower():
                return c
    raise SystemExit(f"dcmtk's {name} not found: run scripts/install-peers.sh (or set DCMTK_BIN)")


def _dcmtk_tls(mode: str, sec: Secrets, *, server: bool) -> tuple[list[str], dict[str, str]]:
    """dcmtk's TLS options and environment for a mode: +tls with our key (the server
    always, the client only for mtls), the CA to verify the peer, the version pinned
    through OPENSSL_CONF, and the ECDSA suite for TLS 1.2 (the BCP 195-ND profile
    lists only RSA ones)."""
    if mode not in TLS_MODES:
        return [], {}
    who = "server" if server else "client"
    if server or mode == "mtls":
        args = ["+tls", sec.pem(f"{who}_key"), sec.pem(f"{who}_cert"), "-pw"]
    else:
        args = ["+tla"]
    args += ["+cf", sec.pem("ca_cert")]
    if server and mode != "mtls":
        args.append("-ic")  # server authentication only
    if mode == "tls12":
        args += ["+cs", TLS12_SUITE]
    return args, {"OPENSSL_CONF": sec.openssl_conf(mode)}


def scp_command(stack: str, mode: str, host: str, port: int, out: Path, sec: Secrets,
                *, max_associations: int = 0, nodelay: bool = True) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of ``stack``'s SCP for ``mode`` on ``host``:``port``;
    ``nodelay=False`` leaves storescp with dcmtk's default (Nagle on), as for the
    Nagle case, where both dcmtk ends run as shipped."""
    if stack == "securepdu":
        argv = [sys.executable, "-m", "securepdu", "listen", str(port), "--bind", host, "--aet", SCP_AET,
                "--output-dir", str(out)]
        if max_associations:
            argv += ["--max-associations", str(max_associations)]
        mode, integrity = split_mode(mode)
        if mode in TLS_MODES:
            argv += ["--tls", "--cert", sec.pem("server_cert"), "--key", sec.pem("server_key")]
            if mode != "tls12":
                argv.append("--tls13-only")  # TLS 1.2 is pinned by the client's suite
            if mode == "mtls":
                argv += ["--ca", sec.pem("ca_cert")]
        if integrity:
            argv += ["--integrity-key", str(sec.integrity_key), "--integrity", "required"]
        return argv, child_env()
    if stack.startswith("pynetdicom"):
        argv = [sys.executable, "-m", "benches.pnd_scp", host, str(port), str(out), mode, str(sec.folder)]
        if stack == "pynetdicom-chunked":
            argv.append("--chunked")
        # Chunked mode writes a temporary file; next to the output it is a rename away.
        return argv, child_env({"TMPDIR": str(out.parent)})
    tls, env = _dcmtk_tls(mode, sec, server=True)
    argv = [dcmtk_tool("storescp"), "-aet", SCP_AET, "-pdu", DCMTK_PDU, *tls, "-od", str(out), str(port)]
    if not nodelay:
        return argv, child_env(env, drop=("TCP_NODELAY",))
    return argv, child_env({"TCP_NODELAY": "1", **env})


def storescu_command(mode: str, host: str, port: int, files: list[Path], sec: Secrets,
                     *, nodelay: bool = True) -> tuple[list[str], dict[str, str]]:
    """storescu's argv and environment; ``nodelay=False`` is dcmtk's default (Nagle on)."""
    tls, env = _dcmtk_tls(mode, sec, server=False)
    argv = [dcmtk_tool("storescu"), "-aet", SCU_AET, "-aec", SCP_AET, "-pdu", DCMTK_PDU, *tls, host, str(port),
            *map(str, files)]
    extra = {"TCP_NODELAY": "1", **env} if nodelay else env
    return argv, child_env(extra, drop=("TCP_NODELAY",))
