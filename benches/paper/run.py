#!/usr/bin/env python3
"""The paper's experiment, rerunnable (issue 9). As root:

    python -m benches.paper --quick     # about 3 minutes: every protection and family once
    python -m benches.paper             # the whole matrix, 3 runs per cell (an hour or more)
    python benches/paper/run.py ...     # the same

It builds four network namespaces (hosts a and b, gateways ga and gb) joined by veth
pairs with addresses from 198.18.0.0/15 and 2001:2::/48, checks them with ping and
iperf3, and runs C-STORE for address family {IPv4, IPv6, mixed: IPv4 hosts across an
IPv6 WAN} x protection {none, TLS 1.2, TLS 1.3, mutual TLS 1.3, TLS 1.3 + securepdu
integrity, IPsec (strongSwan), WireGuard, securepdu gateway pair} x stack {securepdu,
pynetdicom, dcmtk} x data set {CR, CT, MR, MG}, with association set-up times per
group. What the kernel cannot do (ESP, WireGuard) runs in user space, and says so;
what cannot run at all says exactly why. Results: benches/results/paper.md and
paper.png. Everything it created is removed at the end, also on error or Ctrl-C.

Exit status 1 when any run failed or lost an object, or a component that this machine
should run (namespaces, tunnels, gateways) failed; 2 on bad usage, a debug build or
no root. Nothing about speed is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benches` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benches import data as datasets
from benches.measure import Context
from benches.paper import gateway, matrix, net, report, tunnels
from benches.paper.pki import make_pki
from benches.peers import ROOT, make_secrets
from benches.run import build_profile, environment


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Options; --quick changes the defaults, explicit values win."""
    p = argparse.ArgumentParser(prog="python -m benches.paper", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small data, one run, a subset of the matrix (~3 min)")
    p.add_argument("--runs", type=int, help="runs per cell, 1-10 (default 3; quick 1)")
    p.add_argument("--ct", type=int, help="CT objects of 0.5 MB (default 200; quick 20)")
    p.add_argument("--mr", type=int, help="MR objects of 0.13 MB (default 400; quick 40)")
    p.add_argument("--cr", type=int, help="CR objects of 10.5 MB (default 5; quick: 1 of 2 MB)")
    p.add_argument("--mg", type=int, help="MG views of 40 MB (default 4; quick: 1 of 5 MB)")
    p.add_argument("--echo-reps", type=int, help="securepdu associations per echo case (default 200; quick 20)")
    p.add_argument("--iperf-seconds", type=float, help="length of each iperf3 baseline (default 5; quick 1)")
    p.add_argument("--timeout", type=float, help="seconds allowed for one run (default 600; quick 60)")
    p.add_argument("--budget", type=float, help="seconds for the whole matrix; later cells are not run "
                   "and count as failures (default 14400; quick 420)")
    p.add_argument("--workdir", type=Path, default=ROOT / "benches" / ".work", help="data cache and scratch")
    p.add_argument("--results", type=Path, default=ROOT / "benches" / "results", help="where paper.md/.png go")
    p.add_argument("--allow-debug", action="store_true", help="time a debug (or unknown) build anyway")
    args = p.parse_args(argv)
    quick = {"runs": 1, "ct": 20, "mr": 40, "cr": 1, "mg": 1, "echo_reps": 20, "iperf_seconds": 1.0,
             "timeout": 60.0, "budget": 420.0}
    full = {"runs": 3, "ct": 200, "mr": 400, "cr": 5, "mg": 4, "echo_reps": 200, "iperf_seconds": 5.0,
            "timeout": 600.0, "budget": 14400.0}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    bounds = {"runs": (1, 10), "ct": (0, 2000), "mr": (0, 5000), "cr": (0, 100), "mg": (0, 50),
              "echo_reps": (5, 5000), "iperf_seconds": (1, 60), "timeout": (10, 7200), "budget": (30, 86400)}
    for key, (lo, hi) in bounds.items():
        if not lo <= getattr(args, key) <= hi:
            p.error(f"--{key.replace('_', '-')} must be within {lo}-{hi}")
    return args


def data_specs(args: argparse.Namespace) -> list[datasets.Spec]:
    """The suite's data sets; in quick mode CR and MG at a few MB (smaller images) unless
    their counts were given."""
    if not args.quick:
        return datasets.specs(ct=args.ct, mr=args.mr, cr=args.cr, mg=args.mg, large_mb=0)
    small = [datasets.Spec("CR", "CR", args.cr, 1024, 1024), datasets.Spec("CT", "CT", args.ct, 512, 512),
             datasets.Spec("MR", "MR", args.mr, 256, 256), datasets.Spec("MG", "MG", args.mg, 2048, 1220)]
    return [s for s in small if s.count > 0]


def probe(failures: list[str]) -> tuple[tunnels.Kernel, matrix.Environment]:
    """What this machine can run; a missing package is a failure, a missing kernel
    feature is not (it is reported and the user-space implementation used)."""
    kernel = tunnels.probe_kernel()
    env = matrix.Environment(tunnels.ipsec_choice(kernel), tunnels.wireguard_choice(kernel), gateway.available())
    for name, (kind, why) in (("IPsec", env.ipsec), ("WireGuard", env.wireguard)):
        print(f"  {name}: {why}", flush=True)
        if not kind and "not installed" in why:
            failures.append(f"{name}: {why}")
    print(f"  gateway: {'securepdu gateway' if env.gateway[0] else env.gateway[1]}", flush=True)
    return kernel, env


def check_network(seconds: float, scratch: Path, failures: list[str]) -> list[report.Baseline]:
    """Every link answers ping in both families; iperf3 a -> b over IPv4 and IPv6."""
    for link in net.LINKS.values():
        for family in "46":
            net.ping(link.left, link.addr(link.right, family))
    out = []
    for family, name in (("4", "IPv4"), ("6", "IPv6")):
        address = net.LINKS["ab"].addr("b", family)
        try:
            mbps, _ = net.iperf3("a", "b", address, seconds, scratch)
            out.append(report.Baseline(f"{name} a -> b ({address})", "none", mbps, None, ""))
        except Exception as exc:  # noqa: BLE001 - a baseline that fails fails the run
            failures.append(f"iperf3 {name}: {exc}")
            out.append(report.Baseline(f"{name} a -> b ({address})", "none", None, None, str(exc)[:200]))
    return out


def run_groups(cells: list[matrix.PaperCell], env: matrix.Environment, loaded: dict[str, datasets.DataSet],
               ctx: Context, args: argparse.Namespace, failures: list[str]) -> tuple[list[matrix.Echo], list[report.Baseline], dict[str, list[str]]]:
    """Each (family, protection) group: its route up, an iperf3 through a tunnel, the
    cells, the echoes, the route down."""
    echoes: list[matrix.Echo] = []
    baselines: list[report.Baseline] = []
    daemon_commands: dict[str, list[str]] = {}
    deadline = time.monotonic() + args.budget
    for family in matrix.FAMILIES:
        for protection in matrix.PROTECTIONS:
            group = [pc for pc in cells if pc.family == family and pc.protection == protection]
            runnable = [pc for pc in group if not pc.cell.skip]
            if not runnable:
                continue
            print(f"== {family} / {matrix.LABELS[protection]}", flush=True)
            try:
                with matrix.open_route(family, protection, env, ctx) as route:
                    if route.tunnel:
                        daemon_commands[f"{protection} {family}"] = route.notes
                        baselines.append(tunnel_baseline(family, protection, route, args, ctx, failures))
                    matrix.run_group(group, route, loaded, ctx, args.runs, deadline)
                    stacks = ["securepdu"] + (["pynetdicom"] if not args.quick or
                                              (family, protection) in {("IPv4", "none"), ("mixed", "gateway")} else [])
                    stacks = [s for s in stacks if not matrix.skip_reason(family, protection, s, env)]
                    if time.monotonic() < deadline:
                        echoes += matrix.run_echo_group(family, protection, route, stacks, args.echo_reps, ctx)
            except Exception as exc:  # noqa: BLE001 - the tunnel or gateway did not come up
                why = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:400]
                failures.append(f"{family} {matrix.LABELS[protection]}: {why}")
                print(f"  FAILED to set up: {why}", flush=True)
                for pc in runnable:
                    pc.cell.error = pc.cell.error or f"set-up failed: {why}"
    return echoes, baselines, daemon_commands


def tunnel_baseline(family: str, protection: str, route: matrix.Route, args: argparse.Namespace, ctx: Context,
                    failures: list[str]) -> report.Baseline:
    """iperf3 through the group's tunnel: the ceiling of the tunnel on this machine."""
    name = f"{matrix.LABELS[protection]} {family} a -> b ({route.connect})"
    try:
        mbps, cpu = net.iperf3("a", "b", route.connect, args.iperf_seconds, ctx.scratch, route.daemons())
        print(f"  iperf3 {name}: {mbps:.0f} MB/s, tunnel daemons {cpu:.1f} CPU s/GB", flush=True)
        return report.Baseline(name, protection, mbps, cpu, "")
    except Exception as exc:  # noqa: BLE001
        failures.append(f"iperf3 {name}: {exc}")
        return report.Baseline(name, protection, None, None, str(exc)[:200])


def preflight(args: argparse.Namespace) -> str:
    """Why we cannot start ("" when we can): root, tools, a release build."""
    if os.geteuid() != 0:
        return "network namespaces need root: run as root (CI is)"
    missing = [t for t in ("ip", "ping", "iperf3") if not shutil.which(t)]
    if missing:
        return f"missing {', '.join(missing)}: run scripts/install-paper.sh"
    profile = build_profile()
    if profile != "release" and not args.allow_debug:
        return f"securepdu is a {profile} build: build a release (python -m benches --build) or pass --allow-debug"
    return ""


def main(argv: list[str] | None = None) -> int:
    """Runs the study; 0 when everything that could run did and lost nothing."""
    args = parse(argv)
    started = time.perf_counter()
    why = preflight(args)
    if why:
        print(f"benches.paper: {why}", file=sys.stderr)
        return 2
    command = "python -m benches.paper " + " ".join(sys.argv[1:] if argv is None else argv)
    header = [*environment(build_profile()), f"command (as root): {command.strip()}"]
    print("\n".join(header), flush=True)
    loaded = {s.name: datasets.load(s, args.workdir / "data") for s in data_specs(args)}
    for d in loaded.values():
        print(f"  data {d.describe()}", flush=True)
    failures: list[str] = []
    net.install_teardown()
    for name in net.stale_namespaces():
        print(f"  removing {name}, left by a run that was killed", flush=True)
        net.kill_leftovers(name)
        net.ip("netns", "del", name, check=False)
    args.workdir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="paper-", dir=args.workdir))
    try:
        kernel, env = probe(failures)
        net.build()
        baselines = check_network(args.iperf_seconds, scratch, failures)
        ctx = Context(make_secrets(scratch / "secrets", make_pki(net.every_address())), scratch, args.timeout)
        cells = matrix.plan(list(loaded), args.quick, env)
        echoes, tunnel_baselines, daemon_commands = run_groups(cells, env, loaded, ctx, args, failures)
    finally:
        net.teardown()
        shutil.rmtree(scratch, ignore_errors=True)
    header.append(f"wall time: {time.perf_counter() - started:.0f} s")
    results = report.Results(header, kernel, env, list(loaded), [d.describe() for d in loaded.values()], cells,
                             echoes, baselines + tunnel_baselines, daemon_commands, args.quick)
    md = report.write(results, args.results)
    print()
    print(report.console(results))
    failures += [f"{pc.label}: {pc.cell.error}" for pc in cells if pc.cell.error]
    failures += [f"echo {e.family} {e.protection} {e.stack}: {e.error}" for e in echoes if e.error]
    print(f"\n{len(failures)} failure(s){': ' + '; '.join(failures) if failures else ''}; "
          f"results in {args.results / 'paper.md'} ({len(md)} chars); {time.perf_counter() - started:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
