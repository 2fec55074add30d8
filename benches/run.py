#!/usr/bin/env python3
"""securepdu's benchmark suite: C-STORE throughput of securepdu, pynetdicom and dcmtk
side by side, from one run on one machine.

    python benches/run.py --quick     # a few minutes: every stack and security mode once
    python benches/run.py             # the whole matrix, 3 runs per cell (long)
    python -m benches ...             # the same, from the repository root

Matrix: stacks {securepdu, pynetdicom, dcmtk} x security {plain, TLS 1.2, TLS 1.3,
mutual TLS 1.3, securepdu integrity} x address {127.0.0.1, ::1} x data sets {CR, CT,
MR, MG, one large multi-frame object}; pynetdicom's chunked mode is added for the
large object. Then the association latency (C-ECHO), 64 concurrent associations
into one securepdu SCP, and dcmtk's default storescu (Nagle on) into securepdu's SCP
beside storescp. Each cell runs --runs times, interleaved with the others; every
SCP runs in its own process, started here and stopped by its PID. The run exits 1
when any run failed or lost an object; it asserts nothing about time. Results go to
benches/results/latest.md and latest.png.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benches` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benches import data as datasets
from benches import report
from benches.measure import STORESCU, STORESCU_NAGLE, Cell, Context, Sample, run_echo, run_once
from benches.peers import HOSTS, MODES, ROOT, dcmtk_tool, make_secrets

STACKS = ("securepdu", "pynetdicom", "dcmtk")
V4 = HOSTS[0]
#: The issue's concurrency case.
CONCURRENT = 64


def build_profile() -> str:
    """securepdu's build profile, asked of a fresh interpreter (a rebuild may have
    replaced the extension since we started)."""
    code = "import securepdu._core as c; print(getattr(c, 'BUILD_PROFILE', 'unknown'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def build_release() -> None:
    """maturin build --release, then install the wheel into this interpreter."""
    maturin = Path(sys.executable).with_name("maturin")
    with tempfile.TemporaryDirectory(prefix="securepdu-wheel-") as out:
        subprocess.run([str(maturin), "build", "--release", "-o", out], cwd=ROOT, check=True)
        wheels = sorted(Path(out).glob("*.whl"))
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--force-reinstall", str(wheels[-1])],
                       check=True)


def in_quick(stack: str, mode: str, host: str, data: str) -> bool:
    """The quick subset: every stack and mode on CT, the large object on the paths the
    targets name, the other data sets in plain TCP; ::1 in plain TCP only."""
    if mode != "plain" and host != V4:
        return False
    if data == "CT":
        return True
    if data == "large":
        return stack == "securepdu" or mode == "plain" or (stack == "dcmtk" and mode == "mtls")
    return mode == "plain" and host == V4


def plan(names: list[str], quick: bool, ct_count: int) -> list[Cell]:
    """Every cell to run (or to show as not applicable), matrix first."""
    cells = []
    for data in names:
        for stack in STACKS + (("pynetdicom-chunked",) if data == "large" else ()):
            for mode in MODES:
                for host in HOSTS:
                    if quick and not in_quick(stack, mode, host, data):
                        continue
                    skip = ""
                    if mode == "integrity" and stack != "securepdu":
                        skip = "n/a (securepdu only)"
                    elif stack == "dcmtk" and host != V4:
                        skip = "no IPv6 in dcmtk 3.6.7"
                    cells.append(Cell(stack, stack, mode, host, data, skip=skip))
    if "CT" in names:
        cells += [Cell(STORESCU_NAGLE, "dcmtk", "plain", V4, "CT"), Cell(STORESCU_NAGLE, "securepdu", "plain", V4, "CT"),
                  Cell(STORESCU, "securepdu", "plain", V4, "CT"),
                  Cell("securepdu", "securepdu", "plain", V4, "CT", parallel=min(CONCURRENT, ct_count))]
    return cells


def run_cells(cells: list[Cell], loaded: dict[str, datasets.DataSet], ctx: Context, runs: int) -> None:
    """Every runnable cell ``runs`` times, interleaved (run 1 of each, then run 2 ...)
    so that a noisy moment lands on no single cell; a failed cell is not rerun."""
    todo = [c for c in cells if not c.skip]
    for c in todo:
        c.nbytes = loaded[c.data].nbytes
    for run in range(runs):
        for c in todo:
            if c.error:
                continue
            warm(loaded[c.data])
            try:
                sample = attempt(c, loaded[c.data], ctx, first=run == 0)
            except Exception as exc:  # noqa: BLE001 - the cell shows it and the exit code is 1
                c.error = f"{type(exc).__name__}: {exc}".replace("\n", " ")
                print(f"  run {run + 1}/{runs}  {c.label:<44} FAILED: {c.error}", flush=True)
                continue
            c.samples.append(sample)
            print(f"  run {run + 1}/{runs}  {c.label:<44} {sample.seconds:7.2f} s {c.mbps()[-1]:8.1f} MB/s"
                  f"  {sample.tls}", flush=True)


def warm(data: datasets.DataSet) -> None:
    """Reads the data set's files once, so that no run reads them from the disk: the
    page cache may have let them go since their last run (a 1 GB object, the received
    files kept), and the first run of the full suite's first cells went at 396-404
    MB/s from a cold cache against 700-1,300 from a warm one."""
    for f in data.files:
        with f.open("rb", buffering=0) as fh:
            while fh.read(8 << 20):
                pass


def attempt(cell: Cell, data: datasets.DataSet, ctx: Context, *, first: bool) -> Sample:
    """One run, retried once after a failure (pynetdicom's SCU has been seen to hang
    now and then on a loaded machine); the first failure stays in ``cell.retries``."""
    try:
        return run_once(cell, data, ctx, first=first)
    except Exception as exc:  # noqa: BLE001 - retried once, then raised
        cell.retries.append(f"{type(exc).__name__}: {exc}".replace("\n", " ")[:200])
        print(f"  retrying {cell.label}: {cell.retries[-1]}", flush=True)
        return run_once(cell, data, ctx, first=first)


def run_echoes(ctx: Context, reps: int) -> tuple[dict[tuple[str, str], list[float]], list[str]]:
    """Association latency for securepdu and pynetdicom, plain and mutual TLS 1.3;
    pynetdicom gets a tenth of the repetitions (it takes tens of ms each)."""
    result: dict[tuple[str, str], list[float]] = {}
    errors = []
    for stack in ("securepdu", "pynetdicom"):
        for mode in ("plain", "mtls"):
            n = reps if stack == "securepdu" else max(5, reps // 10)
            try:
                result[stack, mode] = lat = run_echo(stack, mode, V4, n, ctx)
                print(f"  echo {stack} {mode}: median {statistics.median(lat):.2f} ms of {len(lat)}", flush=True)
            except Exception as exc:  # noqa: BLE001 - reported, exit code 1
                errors.append(f"echo {stack} {mode}: {type(exc).__name__}: {exc}")
                print(f"  {errors[-1]}", flush=True)
    return result, errors


def tool_version(argv: list[str], pattern: str) -> str:
    """The first match of ``pattern`` in a tool's version output, or "?"."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except OSError:
        return "?"
    found = re.search(pattern, out.stdout + out.stderr)
    return found.group(0) if found else "?"


def environment(profile: str) -> list[str]:
    """Machine and versions, one line each."""
    import pydicom
    import pynetdicom

    import securepdu

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    lock = re.search(r'name = "rustls"\nversion = "([^"]+)"', (ROOT / "Cargo.lock").read_text())
    return [
        f"machine: {cpu}, {os.cpu_count()} cores, Linux {platform.release()}",
        f"securepdu {securepdu.__version__} ({profile} build; rustls {lock.group(1) if lock else '?'}), "
        f"pynetdicom {pynetdicom.__version__}, pydicom {pydicom.__version__}, "
        f"dcmtk {tool_version([dcmtk_tool('storescu'), '--version'], r'v[0-9.]+')} "
        f"({tool_version(['openssl', 'version'], r'OpenSSL [0-9.]+')}), Python {platform.python_version()}",
    ]


def cpu_ticks() -> tuple[int, int]:
    """(steal, all) CPU ticks of the machine so far, from /proc/stat ((0, 0) elsewhere)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user]
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def steal_line(before: tuple[int, int], after: tuple[int, int]) -> str:
    """How much CPU time the hypervisor took from this virtual machine during the run."""
    steal, total = after[0] - before[0], after[1] - before[1]
    share = 100 * steal / total if total > 0 else 0.0
    return (f"CPU time stolen by the hypervisor during the run: {share:.1f}% "
            "(a virtual machine's noisy neighbours; /proc/stat)")


def write_results(folder: Path, r: report.Results, names: list[str], header: list[str], echo_errors: list[str]) -> str:
    """latest.md and latest.png in ``folder``; returns the Markdown."""
    folder.mkdir(parents=True, exist_ok=True)
    md = "\n\n".join([
        "# securepdu benchmarks: latest run",
        "\n".join(f"- {line}" for line in header),
        "C-STORE on one association (unless stated), SCU -> SCP of the same stack. Each cell: MB/s "
        "(10^6 bytes/s, whole files) median (min-max) of the runs; CPU seconds of SCU + SCP per GB, the SCP's part in brackets; "
        "the SCP's peak RSS growth while receiving (VmHWM at the end less VmRSS when it started listening). "
        "Only securepdu's SCP fsyncs each object before answering.",
        report.markdown(report.matrix_rows(r, names)),
        "## Nagle and concurrency",
        report.markdown(report.extra_rows(r)),
        "## Association + C-ECHO + release, timed in the SCU process",
        report.markdown(report.echo_rows(r)) + "".join(f"\n\n{e}" for e in echo_errors),
        "## Targets (issue 7)",
        report.markdown([("target", "measured", "bound", "verdict"), *(c.row() for c in report.checks(r))]),
        "![chart](latest.png)",
        "## Commands",
        "Python SCUs run `python -m benches.scu JOB.json` (securepdu.send() or pynetdicom's "
        "AE.send_c_store(), see benches/scu.py); the SCPs and dcmtk's storescu ran as:",
        report.commands(r),
    ]) + "\n"
    (folder / "latest.md").write_text(md)
    report.chart(r, names, folder / "latest.png")
    return md


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Options; --quick changes the defaults, explicit values win."""
    p = argparse.ArgumentParser(prog="benches", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small data, a subset of the matrix, 3 runs (a few minutes)")
    p.add_argument("--runs", type=int, help="runs per cell, 1-10 (default 3)")
    p.add_argument("--ct", type=int, help="CT objects of 0.5 MB (default 200; quick 100); the concurrency case spreads them over 64 associations")
    p.add_argument("--mr", type=int, help="MR objects of 0.13 MB (default 400; quick 200)")
    p.add_argument("--cr", type=int, help="CR objects of 10 MB (default 5; quick 3)")
    p.add_argument("--mg", type=int, help="MG views of 40 MB (default 4; quick 2)")
    p.add_argument("--large-mb", type=float, help="the large object, MB (default 1000; quick 250); 0 skips it")
    p.add_argument("--echo-reps", type=int, help="securepdu associations per echo case (default 1000; quick 300)")
    p.add_argument("--timeout", type=float, help="seconds allowed for one run (default 600; quick 120)")
    p.add_argument("--workdir", type=Path, default=ROOT / "benches" / ".work",
                   help="data set cache and scratch space (default benches/.work)")
    p.add_argument("--results", type=Path, default=ROOT / "benches" / "results", help="where latest.md/.png go")
    p.add_argument("--allow-debug", action="store_true", help="time a debug (or unknown) build anyway")
    p.add_argument("--build", action="store_true", help="build and install a release wheel first (maturin)")
    p.add_argument("--only", action="append", metavar="REGEX",
                   help="run only the cells whose label matches (e.g. 'securepdu plain 127.0.0.1 CT'; "
                        "repeatable); skips the echo runs")
    args = p.parse_args(argv)
    quick = {"runs": 3, "ct": 100, "mr": 200, "cr": 3, "mg": 2, "large_mb": 250, "echo_reps": 300,
             "timeout": 120}
    full = {"runs": 3, "ct": 200, "mr": 400, "cr": 5, "mg": 4, "large_mb": 1000, "echo_reps": 1000, "timeout": 600}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    bounds = {"runs": (1, 10), "ct": (0, 2000), "mr": (0, 5000), "cr": (0, 100), "mg": (0, 50),
              "large_mb": (0, 4000), "echo_reps": (10, 10000), "timeout": (10, 7200)}
    for key, (lo, hi) in bounds.items():
        if not lo <= getattr(args, key) <= hi:
            p.error(f"--{key.replace('_', '-')} must be within {lo}-{hi}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Runs the suite; 0 when every run succeeded and lost nothing, else 1."""
    args = parse(argv)
    started, ticks = time.perf_counter(), cpu_ticks()
    if args.build:
        build_release()
    profile = build_profile()
    if profile != "release" and not args.allow_debug:
        print(f"securepdu is a {profile} build: rebuild with --build, or pass --allow-debug", file=sys.stderr)
        return 2
    header = environment(profile)
    header.append("command: " + " ".join(["python", "benches/run.py", *sys.argv[1:]] if argv is None else argv))
    print("\n".join(header), flush=True)
    specs = datasets.specs(ct=args.ct, mr=args.mr, cr=args.cr, mg=args.mg, large_mb=args.large_mb)
    loaded = {s.name: datasets.load(s, args.workdir / "data") for s in specs}
    for d in loaded.values():
        print(f"  data {d.describe()}", flush=True)
    names = list(loaded)
    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=args.workdir))
    try:
        ctx = Context(make_secrets(scratch / "secrets"), scratch, args.timeout)
        cells = plan(names, args.quick, args.ct)
        if args.only:
            cells = [c for c in cells if any(re.search(o, c.label) for o in args.only)]
        run_cells(cells, loaded, ctx, args.runs)
        echo, echo_errors = ({}, []) if args.only else run_echoes(ctx, args.echo_reps)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    r = report.Results(cells, echo)
    print()
    print(report.console(report.matrix_rows(r, names)))
    print()
    print(report.console(report.extra_rows(r)))
    print()
    print(report.console(report.echo_rows(r)))
    print()
    print(report.console([("target", "measured", "bound", "verdict"), *(c.row() for c in report.checks(r))]))
    header.append(f"wall time of the suite: {time.perf_counter() - started:.0f} s")
    header.append(steal_line(ticks, cpu_ticks()))
    print(header[-1])
    write_results(args.results, r, names, header, echo_errors)
    failures = [c.label for c in r.failed()] + echo_errors
    print(f"\n{len(failures)} failure(s){': ' + '; '.join(failures) if failures else ''}; "
          f"results in {args.results / 'latest.md'}; {time.perf_counter() - started:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
