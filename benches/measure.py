"""One run of one cell: start the SCP, run the SCU in its own process, read the SCP's
CPU time and peak RSS growth from /proc, stop it by its PID, check what arrived."""

from __future__ import annotations

import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benches.data import DataSet, verify
from benches.peers import ROOT, Scp, Secrets, child_env, free_port, netns_prefix, scp_command, storescu_command

#: SCU names beside the stacks: dcmtk's storescu with TCP_NODELAY=1, or with Nagle on.
STORESCU, STORESCU_NAGLE = "dcmtk", "dcmtk-nagle"


@dataclass
class Sample:
    """What one run measured."""

    seconds: float
    cpu: float  # SCU + SCP CPU seconds
    scp_cpu: float  # the SCP's share of them
    rss_growth: int  # the SCP's peak RSS growth, bytes
    tls: str  # negotiated TLS version and suite, when the SCU can tell


@dataclass(frozen=True)
class Place:
    """Where a run's processes live when not all in ours (benches/paper): the SCU's and
    the SCP's network namespaces ("" = ours), and the SCP's own address and port when
    the SCU reaches it through something else (a gateway pair): then the SCU connects
    to the cell's host at ``port``. Port 0 picks a free one on the cell's host."""

    scu_ns: str = ""
    scp_ns: str = ""
    scp_host: str = ""  # "" = the cell's host
    scp_port: int = 0  # 0 = the port the SCU connects to
    port: int = 0


@dataclass
class Cell:
    """One SCU -> SCP pair in one security mode, on one address, with one data set."""

    scu: str
    scp: str
    mode: str
    host: str
    data: str
    parallel: int = 1  # associations at once (securepdu SCU only)
    place: Place = Place()
    skip: str = ""  # why the cell is not run ("" runs it)
    samples: list[Sample] = field(default_factory=list)
    error: str = ""
    nbytes: int = 0
    retries: list[str] = field(default_factory=list)  # failures a second attempt made good
    commands: list[str] = field(default_factory=list)  # the SCP's and storescu's command lines

    @property
    def label(self) -> str:
        """E.g. "securepdu tls13 127.0.0.1 CT"."""
        pair = self.scu if self.scu == self.scp else f"{self.scu}->{self.scp}"
        extra = f" x{self.parallel}" if self.parallel > 1 else ""
        return f"{pair}{extra} {self.mode} {self.host} {self.data}"

    def mbps(self) -> list[float]:
        """MB/s of every run."""
        return [self.nbytes / 1e6 / s.seconds for s in self.samples]

    def median_mbps(self) -> float | None:
        """Median MB/s, None when nothing was measured."""
        return statistics.median(self.mbps()) if self.samples else None


@dataclass(frozen=True)
class Context:
    """What every run needs: the secrets, a scratch folder and the time bound."""

    secrets: Secrets
    scratch: Path
    timeout: float


def shown(argv: list[str], env: dict[str, str], port: int, files: list[Path], ctx: Context) -> str:
    """A command line as the results show it: the environment variables that matter,
    "python", $PORT, $RUN for the scratch folder, FILE... for the data files."""
    paths = set(map(str, files))
    rest = [a for a in argv if a not in paths]
    words = [f"{k}={env[k]}" for k in ("TCP_NODELAY", "OPENSSL_CONF") if k in env]
    words += ["python" if a == sys.executable else "$PORT" if a == str(port) else a for a in rest]
    words += ["FILE..."] if len(rest) < len(argv) else []
    return " ".join(words).replace(str(ctx.scratch), "$RUN")


def run_python_scu(job: dict[str, Any], ctx: Context, ns: str = "") -> dict[str, Any]:
    """``python -m benches.scu`` on a job file, in network namespace ``ns``; its JSON answer."""
    path = ctx.scratch / "job.json"
    path.write_text(json.dumps({**job, "secrets": str(ctx.secrets.folder), "timeout": ctx.timeout}))
    argv = [*netns_prefix(ns), sys.executable, "-m", "benches.scu", str(path)]
    done = subprocess.run(argv, capture_output=True, text=True,
                          timeout=ctx.timeout + 30, env=child_env(), cwd=ROOT)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"SCU exited with {done.returncode}: {done.stderr[-1500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["failures"]:
        raise RuntimeError(f"{len(result['failures'])} failed, first: {result['failures'][0]}")
    return result


def run_storescu(cell: Cell, port: int, files: list[Path], ctx: Context) -> dict[str, Any]:
    """storescu as a whole process (start-up included: a few ms). Its CPU time is the
    growth of our children's rusage: the driver reaps no other child meanwhile."""
    argv, env = storescu_command(cell.mode, cell.host, port, files, ctx.secrets, nodelay=cell.scu == STORESCU)
    argv = netns_prefix(cell.place.scu_ns) + argv  # `ip netns exec` execs: the rusage below is storescu's
    if not cell.samples:
        cell.commands.append(shown(argv, env, port, files, ctx))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=ctx.timeout, env=env)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"storescu exited with {done.returncode}: {done.stderr[-1500:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"seconds": seconds, "cpu": cpu, "tls": ""}


#: Data sets of at least this many files are kept after their run, not deleted.
KEEP_FROM_FILES = 20
#: Free space below which kept runs are deleted after all.
KEEP_FREE_BYTES = 20 << 30


def set_aside(out: Path, files: int, ctx: Context) -> None:
    """Removes a run's received files from the way of the next run. Many small files
    are kept until the suite ends (while the disk has room), because deleting them
    slows the next runs: ext4 without a journal, as on this project's machines, does
    not reuse an inode freed in the last 60 s (5 minutes while its table block is
    unwritten), and each file created meanwhile walks past every such inode. A
    profile of one association storing the CT study right after the previous runs'
    deletions spent more CPU in inode allocation than in receiving, and that run went
    at 189 MB/s against 630-700 without deletions before it."""
    if files < KEEP_FROM_FILES:
        shutil.rmtree(out, ignore_errors=True)
        return
    kept = ctx.scratch / "kept"
    kept.mkdir(exist_ok=True)
    if shutil.disk_usage(kept).free < KEEP_FREE_BYTES:
        shutil.rmtree(kept, ignore_errors=True)
        kept.mkdir()
    try:
        out.rename(kept / f"{time.monotonic_ns()}")
    except OSError:
        shutil.rmtree(out, ignore_errors=True)


def run_once(cell: Cell, data: DataSet, ctx: Context, *, first: bool) -> Sample:
    """One run of ``cell``: a fresh SCP and output folder, the SCU, the readings and
    the check that every object arrived (byte for byte on a sample in the first run)."""
    port, scp_host, scp_port = endpoints(cell.place, cell.host)
    out = ctx.scratch / "recv"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    argv, env = scp_command(cell.scp, cell.mode, scp_host, scp_port, out, ctx.secrets,
                            max_associations=max(cell.parallel, 32), nodelay=cell.scu != STORESCU_NAGLE)
    argv = netns_prefix(cell.place.scp_ns) + argv
    files = data.files
    if first:
        cell.commands = [shown(argv, env, port, files, ctx)]
    try:
        scp = Scp(argv, scp_port, env, ctx.scratch / "scp.log")
        try:
            if cell.scu in (STORESCU, STORESCU_NAGLE):
                scu = run_storescu(cell, port, files, ctx)
            else:
                job = {"kind": "store", "stack": cell.scu, "mode": cell.mode, "host": cell.host, "port": port,
                       "files": [str(f) for f in files], "parallel": cell.parallel}
                scu = run_python_scu(job, ctx, cell.place.scu_ns)
            scp_cpu, rss = scp.readings()
        finally:
            scp.stop()
        verify(out, data, files, sample=first)
    finally:
        set_aside(out, len(files), ctx)
    return Sample(scu["seconds"], scu["cpu"] + scp_cpu, scp_cpu, rss, scu["tls"])


def endpoints(place: Place, host: str) -> tuple[int, str, int]:
    """(port the SCU connects to, the SCP's address, the SCP's port) of a run on ``host``."""
    port = place.port or free_port(host)
    return port, place.scp_host or host, place.scp_port or port


def run_echo(stack: str, mode: str, host: str, reps: int, ctx: Context, place: Place = Place()) -> list[float]:
    """Latencies (ms) of ``reps`` associate + C-ECHO + release, timed in the SCU process."""
    port, scp_host, scp_port = endpoints(place, host)
    out = ctx.scratch / "recv-echo"
    out.mkdir(exist_ok=True)
    argv, env = scp_command(stack, mode, scp_host, scp_port, out, ctx.secrets)
    scp = Scp(netns_prefix(place.scp_ns) + argv, scp_port, env, ctx.scratch / "scp.log")
    try:
        job = {"kind": "echo", "stack": stack, "mode": mode, "host": host, "port": port, "reps": reps}
        return list(run_python_scu(job, ctx, place.scu_ns)["latencies_ms"])
    finally:
        scp.stop()
        shutil.rmtree(out, ignore_errors=True)
