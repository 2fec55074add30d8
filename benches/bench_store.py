#!/usr/bin/env python3
"""C-STORE throughput, side by side, from one run: securepdu, pynetdicom, dcmtk,
securepdu and dcmtk again over TLS, and securepdu with its end-to-end integrity
check (plain and TLS); then one large object (~200 MB) with and without integrity.

    python benches/bench_store.py [--runs 3] [--objects 200] [--large-mb 200]

Each pair sends the same CT-like study (default 200 x 0.5 MB, about 105 MB) over
127.0.0.1 on ONE association, SCU -> SCP:

  securepdu   securepdu.send()            -> `python -m securepdu listen` (fsyncs every object)
  pynetdicom  AE.send_c_store(path)       -> pynetdicom AE.start_server, writing
                                             event.encoded_dataset() to disk (no fsync)
  dcmtk       storescu -pdu 131072        -> storescp -pdu 131072 -od DIR (no fsync);
                                             env TCP_NODELAY=1 (dcmtk >= 3.6.2 leaves Nagle on
                                             unless told; see dcmtk's envvars.txt)
  securepdu-tls  the securepdu pair over TLS 1.3, mutual authentication (rustls)
  dcmtk-tls      the dcmtk pair with +tls (OpenSSL, dcmtk's default BCP 195 profile)
  securepdu-int      the securepdu pair with integrity required on both ends
                     (HMAC-SHA256 per object, a throwaway key made for the run)
  securepdu-tls-int  securepdu-tls with integrity required on both ends

The TLS pairs use throwaway certificates made for the run (a CA, a server certificate
for 127.0.0.1, a client certificate) and show their rate as a fraction of the same
pair over plain TCP (TLS/plain). The integrity pairs show their rate as a fraction
of the same pair without integrity (int/none).

The large-object case sends ONE multi-frame object of --large-mb MB (default 200;
0 skips it) with each securepdu pair chosen, and prints int/none against the
target: integrity may cost at most 10% of the throughput for large objects.

Every SCP runs in its own process and is stopped by its PID after each run. The
Python SCUs are timed in this process from associate to release; storescu is timed
as a whole process (its start-up is a few ms). The received files are counted after
each run. The table shows the median of --runs runs, the ratio to pynetdicom and,
for the TLS pairs, TLS/plain.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
MB = 1_000_000
SCP_AET = "BENCH-SCP"
SCU_AET = "BENCH-SCU"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"

PYNETDICOM_SCP = textwrap.dedent(
    """
    import os, sys
    from pynetdicom import AE, evt, StoragePresentationContexts
    out, port = sys.argv[1], int(sys.argv[2])

    def on_store(event):
        # The fast way pynetdicom's documentation recommends: no decoding.
        path = os.path.join(out, event.request.AffectedSOPInstanceUID + ".dcm")
        with open(path, "wb") as f:
            f.write(event.encoded_dataset())
        return 0x0000

    ae = AE(ae_title=sys.argv[3])
    ae.supported_contexts = StoragePresentationContexts
    ae.start_server(("127.0.0.1", port), block=True, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 3 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def start_scp(args: list[str], port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **(env or {})}
    )
    deadline = time.monotonic() + 30
    while not listening(port):
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"{args[0]} exited with {proc.returncode}: {err}")
        if time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f"{' '.join(args)} is not listening after 30 s")
        time.sleep(0.02)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
    if proc.stderr:
        proc.stderr.close()


def dcmtk_tool(name: str) -> str:
    """dcmtk's binary, not pip's pynetdicom scripts of the same name."""
    for c in (os.path.join(os.environ.get("DCMTK_BIN", "/usr/bin"), name), shutil.which(name)):
        if c and os.access(c, os.X_OK):
            out = subprocess.run([c, "--version"], capture_output=True, text=True, timeout=30)
            if "dcmtk" in (out.stdout + out.stderr).lower():
                return c
    raise SystemExit(f"dcmtk's {name} not found: run scripts/install-peers.sh")


# --------------------------------------------------------------------------- certificates

_PKI: dict[str, Path] = {}


def pki_files(work: Path) -> dict[str, Path]:
    """Throwaway PEM files for the TLS pairs, made once per benchmark run by securepdu's
    core (keys written 0600): ca_cert, server_cert/_key (127.0.0.1), client_cert/_key."""
    if not _PKI:
        from securepdu import _core

        folder = work / "pki"
        folder.mkdir(mode=0o700)
        for name, text in dict(getattr(_core, "demo_pki")()).items():
            path = folder / f"{name}.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            _PKI[name] = path
    return _PKI


_KEY: dict[str, Path] = {}


def integrity_key_file(work: Path) -> Path:
    """A throwaway integrity key file (0600), made once per benchmark run."""
    if not _KEY:
        path = work / "bench-integrity.key"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"bench:{secrets.token_hex(32)}\n")
        _KEY["path"] = path
    return _KEY["path"]


# --------------------------------------------------------------------------- the pairs


def run_securepdu(files: list[Path], out: Path, timeout: float, *, tls: bool = False, integrity: bool = False) -> float:
    import securepdu

    port = free_port()
    listen_tls: list[str] = []
    options: dict[str, Any] = {}
    if integrity:
        key_file = integrity_key_file(out.parent)
        listen_tls += ["--integrity-key", str(key_file), "--integrity", "required"]
        options["integrity"] = "required"
        options["integrity_key"] = securepdu.IntegrityKey.from_file(key_file)
    if tls:
        from securepdu.tls import TLSConfig

        pki = pki_files(out.parent)
        listen_tls += ["--tls", "--cert", str(pki["server_cert"]), "--key", str(pki["server_key"]), "--ca", str(pki["ca_cert"])]
        options["tls"] = TLSConfig(cert=pki["client_cert"], key=pki["client_key"], ca=pki["ca_cert"], min_version="1.3")
    scp = start_scp(
        [sys.executable, "-m", "securepdu", "listen", str(port), "--bind", HOST, "--aet", SCP_AET, "--output-dir", str(out),
         *listen_tls],
        port,
    )
    try:
        t0 = time.perf_counter()
        results = securepdu.send(
            HOST, port, files, called_ae=SCP_AET, calling_ae=SCU_AET, dimse_timeout=timeout, **options
        )
        elapsed = time.perf_counter() - t0
    finally:
        stop(scp)
    bad = [r for r in results if not r.ok]
    if bad:
        raise RuntimeError(f"securepdu: {len(bad)} objects failed, first: {bad[0]}")
    if integrity and not all(getattr(r, "integrity_tag", None) for r in results):
        raise RuntimeError("securepdu: integrity was required but an object has no tag")
    return elapsed


def run_pynetdicom(files: list[Path], out: Path, timeout: float) -> float:
    from pynetdicom import AE

    port = free_port()
    scp = start_scp([sys.executable, "-c", PYNETDICOM_SCP, str(out), str(port), SCP_AET], port)
    try:
        ae = AE(ae_title=SCU_AET)
        ae.dimse_timeout = timeout
        ae.add_requested_context(CT_IMAGE_STORAGE, [EXPLICIT_VR_LE])
        t0 = time.perf_counter()
        assoc = ae.associate(HOST, port, ae_title=SCP_AET)
        if not assoc.is_established:
            raise RuntimeError("pynetdicom: association not established")
        try:
            for f in files:
                status = assoc.send_c_store(f)
                if not status or status.Status != 0:
                    raise RuntimeError(f"pynetdicom: {f}: {status}")
        finally:
            assoc.release()
        elapsed = time.perf_counter() - t0
    finally:
        stop(scp)
    return elapsed


def run_dcmtk(files: list[Path], out: Path, timeout: float, *, tls: bool = False) -> float:
    env = {"TCP_NODELAY": "1"}
    port = free_port()
    scp_tls: list[str] = []
    scu_tls: list[str] = []
    if tls:
        # -pw: the keys have no password (never prompt); +cf: the CA; peer certificates
        # are required and verified by default on both sides.
        pki = pki_files(out.parent)
        scp_tls = ["+tls", str(pki["server_key"]), str(pki["server_cert"]), "-pw", "+cf", str(pki["ca_cert"])]
        scu_tls = ["+tls", str(pki["client_key"]), str(pki["client_cert"]), "-pw", "+cf", str(pki["ca_cert"])]
    scp = start_scp(
        [dcmtk_tool("storescp"), "-aet", SCP_AET, "-pdu", "131072", *scp_tls, "-od", str(out), str(port)], port, env
    )
    try:
        args = [dcmtk_tool("storescu"), "-aet", SCU_AET, "-aec", SCP_AET, "-pdu", "131072", *scu_tls, HOST, str(port)]
        t0 = time.perf_counter()
        done = subprocess.run(
            [*args, *map(str, files)], capture_output=True, text=True, timeout=timeout, env={**os.environ, **env}
        )
        elapsed = time.perf_counter() - t0
    finally:
        stop(scp)
    if done.returncode != 0:
        raise RuntimeError(f"storescu exited with {done.returncode}: {done.stderr[-2000:]}")
    return elapsed


@dataclass
class Pair:
    name: str
    what: str
    run: Callable[[list[Path], Path, float], float]
    times: list[float] = field(default_factory=list)
    error: str | None = None


PAIRS: dict[str, tuple[str, Callable[[list[Path], Path, float], float]]] = {
    "securepdu": ("securepdu SCU -> securepdu SCP (fsync)", run_securepdu),
    "securepdu-tls": ("the same over TLS 1.3, mutual auth (rustls)", partial(run_securepdu, tls=True)),
    "pynetdicom": ("pynetdicom SCU -> pynetdicom SCP", run_pynetdicom),
    "dcmtk": ("storescu -> storescp (-pdu 131072)", run_dcmtk),
    "dcmtk-tls": ("the same with +tls, mutual auth (OpenSSL)", partial(run_dcmtk, tls=True)),
    "securepdu-int": ("securepdu with integrity required (HMAC-SHA256)", partial(run_securepdu, integrity=True)),
    "securepdu-tls-int": ("securepdu-tls with integrity required", partial(run_securepdu, tls=True, integrity=True)),
}
TLS_SUFFIX = "-tls"
INT_SUFFIX = "-int"
#: The most throughput integrity may cost for large objects (issue 6): 10%.
INTEGRITY_TARGET = 0.90
MANIFEST = "securepdu-manifest.jsonl"


def received_count(out: Path) -> int:
    """Objects an SCP wrote: every file but hidden ones and securepdu's manifest."""
    return sum(1 for f in out.iterdir() if f.is_file() and not f.name.startswith(".") and f.name != MANIFEST)


def make_data(out: Path, objects: int) -> list[Path]:
    from pydicom.uid import generate_uid

    from securepdu import _synthetic

    study = None
    series = str(generate_uid())
    files = []
    for i in range(1, objects + 1):
        ds = _synthetic.make_dataset("CT", 512, 512, study=study, series_uid=series, instance_number=i, seed=i)
        study = study or ds
        path = out / f"CT{i:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def versions() -> str:
    import pydicom

    parts = [f"Python {platform.python_version()}", f"pydicom {pydicom.__version__}"]
    try:
        import securepdu

        parts.append(f"securepdu {securepdu.__version__}")
    except ImportError:
        pass
    try:
        import pynetdicom

        parts.append(f"pynetdicom {pynetdicom.__version__}")
    except ImportError:
        pass
    try:
        v = subprocess.run([dcmtk_tool("storescu"), "--version"], capture_output=True, text=True, timeout=30)
        parts.append(v.stdout.splitlines()[0].strip("$ "))  # "dcmtk: storescu v3.6.7 2022-04-22"
    except (SystemExit, IndexError, OSError):
        pass
    return ", ".join(parts)


def ratios(name: str, medians: dict[str, float]) -> tuple[str, str]:
    """(TLS/plain, int/none) for a pair: its rate as a fraction of the same pair over
    plain TCP, and of the same pair without integrity; "-" where there is none."""
    med = medians[name]
    without_int = name.removesuffix(INT_SUFFIX)
    tls_base = without_int.removesuffix(TLS_SUFFIX) + (INT_SUFFIX if name.endswith(INT_SUFFIX) else "")
    plain = medians.get(tls_base) if without_int.endswith(TLS_SUFFIX) else None
    none = medians.get(without_int) if name.endswith(INT_SUFFIX) else None
    return (f"{plain / med:.2f}" if plain else "-", f"{none / med:.2f}" if none else "-")


def print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def run_large(work: Path, names: list[str], args: argparse.Namespace) -> bool:
    """One object of --large-mb MB through each securepdu pair chosen (with and without
    integrity are both run, so the ratio is there); prints int/none against the target.
    Returns True when a pair failed."""
    from securepdu import _synthetic

    wanted = {n.removesuffix(INT_SUFFIX) for n in names}
    order = [n for n in PAIRS if n.startswith("securepdu") and n.removesuffix(INT_SUFFIX) in wanted]
    data = work / "large"
    data.mkdir()
    t0 = time.perf_counter()
    big = _synthetic.make_large(data / "LARGE.dcm", args.large_mb, seed=1)
    size = big.stat().st_size
    print()
    print(f"large object: one multi-frame object of {size / MB:.1f} MB, generated in {time.perf_counter() - t0:.1f} s",
          flush=True)
    times: dict[str, list[float]] = {n: [] for n in order}
    errors: dict[str, str] = {}
    for run in range(1, args.large_runs + 1):
        for name in order:
            if name in errors:
                continue
            out = work / f"recv-large-{name}-{run}"
            out.mkdir()
            try:
                seconds = PAIRS[name][1]([big], out, args.timeout)
                if received_count(out) != 1:
                    raise RuntimeError(f"{received_count(out)} of 1 object stored")
                times[name].append(seconds)
                print(f"  run {run} {name:<17} {seconds:7.2f} s  {size / MB / seconds:7.1f} MB/s", flush=True)
            except Exception as exc:  # noqa: BLE001 - report it and go on
                errors[name] = f"{type(exc).__name__}: {exc}"
                print(f"  run {run} {name:<17} FAILED: {errors[name]}", flush=True)
            finally:
                shutil.rmtree(out, ignore_errors=True)
    big.unlink()
    medians = {n: statistics.median(t) for n, t in times.items() if t}
    rows = [("pair", "SCU -> SCP", "objects", "MB", "median s", "MB/s", "TLS/plain", "int/none")]
    for name in order:
        if name not in medians:
            rows.append((name, PAIRS[name][0], "1", f"{size / MB:.1f}", "-", "-", errors.get(name, "-"), "-"))
            continue
        med = medians[name]
        rows.append((name, PAIRS[name][0], "1", f"{size / MB:.1f}", f"{med:.2f}", f"{size / MB / med:.1f}",
                     *ratios(name, medians)))
    print()
    print(f"large object, median of {args.large_runs} run(s)")
    print_table(rows)
    for name in order:
        if name.endswith(INT_SUFFIX) and name in medians and name.removesuffix(INT_SUFFIX) in medians:
            ratio = medians[name.removesuffix(INT_SUFFIX)] / medians[name]
            verdict = "meets" if ratio >= INTEGRITY_TARGET else "MISSES"
            cost = (1 - ratio) * 100
            what = f"{cost:.1f}% lower throughput" if cost > 0 else "no measurable cost"
            print(f"integrity cost, {name.removesuffix(INT_SUFFIX)}: int/none = {ratio:.3f} "
                  f"({what}; {verdict} the target of at most {(1 - INTEGRITY_TARGET) * 100:.0f}% lower)")
    return bool(errors)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="runs per pair; the median is shown (1-10, default 3)")
    p.add_argument("--objects", type=int, default=200, help="CT objects of 0.5 MB (1-2000, default 200)")
    p.add_argument("--only", default=",".join(PAIRS), help=f"comma-separated subset of {','.join(PAIRS)}")
    p.add_argument("--timeout", type=float, default=600, help="seconds allowed for one run (default 600)")
    p.add_argument("--large-runs", type=int, default=5, help="runs of the large-object case (1-20, default 5; "
                   "one object is noisier than a study)")
    p.add_argument("--large-mb", type=float, default=200, help="size of the one large object for the integrity cost "
                   "(0-2000 MB, default 200; 0 skips; run when a securepdu pair is chosen)")
    p.add_argument("--workdir", type=Path, default=None, help="where to put data and received files (default: a temp dir)")
    args = p.parse_args(argv)
    if not 1 <= args.runs <= 10 or not 1 <= args.objects <= 2000 or not 0 <= args.large_mb <= 2000:
        p.error("--runs must be 1-10, --objects 1-2000 and --large-mb 0-2000")
    if not 1 <= args.large_runs <= 20:
        p.error("--large-runs must be 1-20")
    chosen = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in PAIRS]
    if unknown:
        p.error(f"unknown pair(s): {', '.join(unknown)}")

    work = Path(tempfile.mkdtemp(prefix="securepdu-bench-", dir=args.workdir))
    try:
        data = work / "data"
        data.mkdir()
        t0 = time.perf_counter()
        files = make_data(data, args.objects)
        nbytes = sum(f.stat().st_size for f in files)
        print(f"{len(files)} CT objects, {nbytes / MB:.1f} MB, generated in {time.perf_counter() - t0:.1f} s", flush=True)
        print(versions(), flush=True)
        print(f"{os.cpu_count()} CPUs, {platform.platform()}; {HOST}, one association per run", flush=True)
        pairs = [Pair(n, PAIRS[n][0], PAIRS[n][1]) for n in chosen]
        # Interleave the pairs run by run, so that a noisy moment on a shared machine
        # does not land on one pair only.
        for run in range(1, args.runs + 1):
            for pair in pairs:
                if pair.error:
                    continue
                out = work / f"recv-{pair.name}-{run}"
                out.mkdir()
                try:
                    seconds = pair.run(files, out, args.timeout)
                    got = received_count(out)
                    if got != len(files):
                        raise RuntimeError(f"{got} of {len(files)} objects stored")
                    pair.times.append(seconds)
                    print(f"  run {run} {pair.name:<17} {seconds:7.2f} s  {nbytes / MB / seconds:7.1f} MB/s", flush=True)
                except Exception as exc:  # noqa: BLE001 - report it in the table and go on
                    pair.error = f"{type(exc).__name__}: {exc}"
                    print(f"  run {run} {pair.name:<17} FAILED: {pair.error}", flush=True)
                finally:
                    shutil.rmtree(out, ignore_errors=True)

        medians = {q.name: statistics.median(q.times) for q in pairs if q.times}
        base = medians.get("pynetdicom")
        rows = [("pair", "SCU -> SCP", "objects", "MB", "median s", "MB/s", "x pynetdicom", "TLS/plain", "int/none")]
        for q in pairs:
            if not q.times:
                rows.append((q.name, q.what, str(len(files)), f"{nbytes / MB:.1f}", "-", "-", q.error or "-", "-", "-"))
                continue
            med = medians[q.name]
            ratio = f"{base / med:.2f}" if base else "-"
            rows.append(
                (q.name, q.what, str(len(files)), f"{nbytes / MB:.1f}", f"{med:.2f}", f"{nbytes / MB / med:.1f}", ratio,
                 *ratios(q.name, medians))
            )
        print()
        print(f"median of {args.runs} run(s); MB = 10^6 bytes")
        print_table(rows)
        failed = any(q.error for q in pairs)
        large = [n for n in chosen if n.startswith("securepdu")]
        if args.large_mb > 0 and large:
            failed |= run_large(work, large, args)
        return 1 if failed else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
