"""What a paper run writes: benches/results/paper.md (machine, implementations,
baselines, the matrix, association set-up, the issue's targets, commands, and the
study's conclusions restated from the numbers) and paper.png."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from benches.paper import matrix
from benches.paper.matrix import LABELS, Echo, Environment, PaperCell
from benches.paper.net import PREFIX
from benches.paper.tunnels import Kernel
from benches.report import Check, console as console_table, markdown

MB = 1e6
STACK_COLOURS = {"securepdu": "tab:blue", "pynetdicom": "tab:orange", "dcmtk": "tab:green"}


@dataclass(frozen=True)
class Baseline:
    """One iperf3 measurement (MB/s, tunnel daemons' CPU s/GB) or why it failed."""

    name: str
    protection: str
    mbps: float | None
    cpu_per_gb: float | None
    error: str


@dataclass
class Results:
    """Everything a run measured."""

    header: list[str]
    kernel: Kernel
    env: Environment
    names: list[str]
    described: list[str]
    cells: list[PaperCell]
    echoes: list[Echo]
    baselines: list[Baseline]
    daemon_commands: dict[str, list[str]]
    quick: bool

    @property
    def ref(self) -> str:
        """The data set the overview, the chart and the conclusions use: CT if run."""
        return "CT" if "CT" in self.names else self.names[0]

    def cell(self, family: str, protection: str, stack: str, data: str | None = None) -> PaperCell | None:
        """The cell, if planned."""
        data = data or self.ref
        for pc in self.cells:
            if (pc.family, pc.protection, pc.stack, pc.data) == (family, protection, stack, data):
                return pc
        return None

    def mbps(self, family: str, protection: str, stack: str = "securepdu") -> float | None:
        """Median MB/s on the reference data set; None when not measured."""
        pc = self.cell(family, protection, stack)
        return pc.cell.median_mbps() if pc else None

    def cpu(self, family: str, protection: str, stack: str = "securepdu") -> float | None:
        """Median CPU s/GB on the reference data set."""
        pc = self.cell(family, protection, stack)
        return pc.cpu_per_gb() if pc else None

    def why_not(self, family: str, protection: str, stack: str = "securepdu") -> str:
        """Why a cell has no number: its skip reason or error."""
        pc = self.cell(family, protection, stack)
        if pc is None:
            return "not in this run's subset"
        return pc.cell.skip or pc.cell.error or "no sample"


def fmt(value: float | None, digits: int = 0) -> str:
    """A number or "-"."""
    return "-" if value is None else f"{value:,.{digits}f}"


def cell_row(pc: PaperCell) -> tuple[str, ...]:
    """One row of the detailed table."""
    c = pc.cell
    name = (pc.family, LABELS[pc.protection], pc.stack, pc.data)
    if c.skip or not c.samples:
        return (*name, "-", "-", "-", "-", "", (c.skip or c.error)[:160])
    mbps = c.mbps()
    spread = f" ({min(mbps):.0f}-{max(mbps):.0f})" if len(mbps) > 1 else ""
    rss = statistics.median(s.rss_growth for s in c.samples) / MB
    tls = c.samples[-1].tls.replace("TLS_", "")
    note = "; ".join(filter(None, [c.error, f"retried: {c.retries[0]}" if c.retries else ""]))[:160]
    return (*name, f"{statistics.median(mbps):.1f}{spread}", fmt(pc.cpu_per_gb(), 1), f"{rss:.0f}",
            f"{pc.relay_hwm / MB:.0f}" if pc.relay_hwm else "-", tls, note)


def detail_rows(r: Results) -> list[tuple[str, ...]]:
    """Every cell of the run."""
    head = ("network", "protection", "stack", "data", "MB/s", "CPU s/GB", "SCP RSS +MB", "relay RSS MB", "TLS", "note")
    return [head, *(cell_row(pc) for pc in r.cells)]


def overview_rows(r: Results) -> list[tuple[str, ...]]:
    """MB/s on the reference data set: protections down, network x stack across."""
    cols = [(f, s) for f in matrix.FAMILIES for s in matrix.STACKS if not (f == "IPv6" and s == "dcmtk")]
    head = ("protection", *(f"{f} {s}" for f, s in cols))
    rows = [head]
    for p in matrix.PROTECTIONS:
        cells = [r.cell(f, p, s) for f, s in cols]
        if not any(pc and pc.cell.samples for pc in cells):
            continue
        rows.append((LABELS[p], *(fmt(pc.cell.median_mbps()) if pc and pc.cell.samples else "-" for pc in cells)))
    return rows


def baseline_rows(r: Results) -> list[tuple[str, ...]]:
    """iperf3 between the namespaces and through each tunnel."""
    return [("iperf3, one TCP stream", "MB/s", "tunnel daemons CPU s/GB", "note"),
            *((b.name, fmt(b.mbps), fmt(b.cpu_per_gb, 1) if b.protection != "none" else "-", b.error)
              for b in r.baselines)]


def echo_rows(r: Results) -> list[tuple[str, ...]]:
    """Association set-up (associate + C-ECHO + release, in the SCU process)."""
    rows: list[tuple[str, ...]] = [("network", "protection", "stack", "n", "median ms", "min ms", "max ms", "note")]
    for e in r.echoes:
        lat = e.latencies_ms
        if lat:
            rows.append((e.family, LABELS[e.protection], e.stack, str(len(lat)), f"{statistics.median(lat):.2f}",
                         f"{min(lat):.2f}", f"{max(lat):.2f}", e.error))
        else:
            rows.append((e.family, LABELS[e.protection], e.stack, "0", "-", "-", "-", e.error[:160]))
    return rows


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def checks(r: Results) -> list[Check]:
    """The targets of issue 9 on the reference data set (securepdu unless named)."""
    tls = r.mbps("IPv4", "tls13")
    cost = lambda via, direct: (None if via is None or not direct else (1 - via / direct) * 100)  # noqa: E731
    out = [Check("securepdu TLS 1.3 / dcmtk TLS 1.3 (IPv4)", _ratio(tls, r.mbps("IPv4", "tls13", "dcmtk")), 1.5)]
    for p in ("ipsec", "wireguard"):
        out.append(Check(f"securepdu TLS 1.3 / securepdu over {LABELS[p]} (IPv4)", _ratio(tls, r.mbps("IPv4", p)), 5))
    direct = r.mbps("IPv4", "mtls")
    out.append(Check("gateway pair cost vs direct mutual TLS (IPv4)", cost(r.mbps("IPv4", "gateway"), direct), 10,
                     higher_is_better=False, unit="%"))
    out.append(Check("gateway pair cost, mixed, vs direct mutual TLS (IPv4)", cost(r.mbps("mixed", "gateway"), direct),
                     10, higher_is_better=False, unit="%"))
    for p in ("none", "tls13"):
        v4, v6 = r.mbps("IPv4", p), r.mbps("IPv6", p)
        gap = None if v4 is None or v6 is None else abs(1 - v6 / v4) * 100
        out.append(Check(f"IPv6 vs IPv4 gap, securepdu {LABELS[p]}", gap, 5, higher_is_better=False, unit="%"))
    return out


def check_rows(r: Results) -> list[tuple[str, ...]]:
    """The targets as a table; quick runs are too small to judge."""
    rows: list[tuple[str, ...]] = [("target", "measured", "bound", "verdict")]
    for c in checks(r):
        what, value, bound, verdict = c.row()
        rows.append((what, value, bound, f"{verdict} (quick run: indicative only)" if r.quick and c.ok is not None
                     else verdict))
    return rows


def best(r: Results, family: str, protections: list[str]) -> tuple[str, float] | None:
    """The fastest of ``protections`` for securepdu on ``family``, with its MB/s."""
    measured = [(p, v) for p in protections if (v := r.mbps(family, p)) is not None]
    return max(measured, key=lambda x: x[1]) if measured else None


def describe(r: Results, family: str, protection: str) -> str:
    """"TLS 1.3 at 412 MB/s (3.1 CPU s/GB)", or why there is no number."""
    v = r.mbps(family, protection)
    if v is None:
        return f"{LABELS[protection]}: no number ({r.why_not(family, protection)})"
    return f"{LABELS[protection]} at {v:,.0f} MB/s ({fmt(r.cpu(family, protection), 1)} CPU s/GB)"


def conclusions(r: Results) -> list[str]:
    """The study's recommendations restated from this run's securepdu numbers on the
    reference data set: every sentence is computed, none is canned."""
    tunnel_impl = {"ipsec": r.env.ipsec[0], "wireguard": r.env.wireguard[0]}
    user_space = [LABELS[p] for p, k in tunnel_impl.items() if k in ("libipsec", "go")]
    lines = []
    secure = ["tls12", "tls13", "mtls", "tls13+integrity", "ipsec", "wireguard", "gateway"]
    for family in matrix.FAMILIES:
        top = best(r, family, secure)
        if top is None:
            lines.append(f"**{family}**: no protected transfer was measured.")
            continue
        ranked = sorted(((p, v) for p in secure if (v := r.mbps(family, p)) is not None), key=lambda x: -x[1])
        clear = r.mbps(family, "none")
        vs_clear = f", {top[1] / clear:.0%} of unprotected ({clear:,.0f} MB/s)" if clear else ""
        lines.append(f"**{family}**: fastest protection here is {describe(r, family, top[0])}{vs_clear}; in order: "
                     + ", ".join(f"{LABELS[p]} {v:,.0f}" for p, v in ranked) + " MB/s.")
    lines.append(_ipv6_verdict(r, user_space))
    lines.append(_ipv4_mixed_verdict(r))
    lines.append(_gateway_verdict(r))
    v4, v6 = r.mbps("IPv4", "tls13"), r.mbps("IPv6", "tls13")
    if v4 and v6 is not None:
        gap = v6 / v4 - 1
        verdict = ("within 5%: the address family does not decide the choice here" if abs(gap) <= 0.05 else
                   "IPv6 is faster here: nothing counts against IPv6" if gap > 0 else
                   "IPv6 is more than 5% slower here: rerun with more runs before blaming the family")
        lines.append(f"IPv6 against IPv4 (TLS 1.3): {v6:,.0f} vs {v4:,.0f} MB/s, {gap * 100:+.0f}%; {verdict}.")
    if user_space:
        lines.append(f"Caveat: {' and '.join(user_space)} ran in user space on this kernel (see Implementations); "
                     "kernel ESP or kernel WireGuard would be faster, so the tunnel numbers are this machine's, "
                     "not the protocols' ceiling.")
    if r.quick:
        lines.append("This was a quick run (small data, one repetition): the ordering above is indicative only.")
    return lines


def _ipv6_verdict(r: Results, user_space: list[str]) -> str:
    """2007: IPsec for pure IPv6. Today, on this machine?"""
    ipsec, tls = r.mbps("IPv6", "ipsec"), best(r, "IPv6", ["tls12", "tls13", "mtls"])
    if ipsec is None or tls is None:
        return (f"Pure IPv6 (2007: IPsec): not decided by this run ({describe(r, 'IPv6', 'ipsec')}; "
                f"TLS {'measured' if tls else 'not measured'}).")
    if ipsec >= tls[1]:
        return (f"Pure IPv6 (2007: IPsec): still IPsec here, {describe(r, 'IPv6', 'ipsec')} against "
                f"{describe(r, 'IPv6', tls[0])}.")
    return (f"Pure IPv6 (2007: IPsec): **differs** - {describe(r, 'IPv6', tls[0])} is {tls[1] / ipsec:.1f}x "
            f"{describe(r, 'IPv6', 'ipsec')}" + (" (user-space ESP)" if "IPsec" in user_space else "") +
            "; TLS is the better choice for DICOM over IPv6 on this machine.")


def _ipv4_mixed_verdict(r: Results) -> str:
    """2007: TLS for IPv4 and mixed networks."""
    parts = []
    for family, tls_options in (("IPv4", ["tls12", "tls13", "mtls"]), ("mixed", ["gateway"])):
        tls = best(r, family, tls_options)
        tun = best(r, family, ["ipsec", "wireguard"])
        if tls is None or tun is None:
            parts.append(f"{family}: not decided ({'no TLS number' if tls is None else 'no tunnel number'})")
        elif tls[1] >= tun[1]:
            parts.append(f"{family}: agrees, {describe(r, family, tls[0])} beats {describe(r, family, tun[0])}")
        else:
            parts.append(f"{family}: **differs**, {describe(r, family, tun[0])} beats {describe(r, family, tls[0])}")
    return "IPv4 and mixed networks (2007: TLS): " + "; ".join(parts) + "."


def _gateway_verdict(r: Results) -> str:
    """2007: Linux peer security gateways in front of hospital systems."""
    if not r.env.gateway[0]:
        return f"Peer gateways (2007: Linux peer gateways): not measured - {r.env.gateway[1]}."
    via, direct = r.mbps("mixed", "gateway"), r.mbps("IPv4", "mtls")
    if via is None or direct is None:
        return f"Peer gateways (2007: Linux peer gateways): no number ({r.why_not('mixed', 'gateway')})."
    cost = (1 - via / direct) * 100
    where = f"{cost:.0f}% below" if cost > 0.5 else "no slower than" if cost > -0.5 else f"{-cost:.0f}% above"
    return (f"Peer gateways (2007: Linux peer gateways): a securepdu gateway pair bridging IPv4 sites over IPv6 with "
            f"mutual TLS runs at {via:,.0f} MB/s, {where} direct mutual TLS on IPv4 ({direct:,.0f} MB/s): "
            f"{'within' if cost <= 10 else 'more than'} the 10% the issue allows for the bridging and the policy point.")


def chart(r: Results, path: Path) -> None:
    """MB/s (log scale) and CPU s/GB on the reference data set: one column per network,
    protections along x, one bar per stack."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(14, 7), squeeze=False)
    width = 0.27
    for col, family in enumerate(matrix.FAMILIES):
        prots = [p for p in matrix.PROTECTIONS if any(r.mbps(family, p, s) for s in matrix.STACKS)]
        for row, (metric, title) in enumerate(((r.mbps, "MB/s (log)"), (r.cpu, "CPU s per GB"))):
            ax = axes[row][col]
            for i, stack in enumerate(matrix.STACKS):
                values = [metric(family, p, stack) or 0 for p in prots]
                ax.bar([x + (i - 1) * width for x in range(len(prots))], values, width, label=stack,
                       color=STACK_COLOURS[stack])
            ax.set_xticks(range(len(prots)), [LABELS[p].replace(" (mTLS)", "").replace(" + ", "\n+ ") for p in prots],
                          rotation=30, ha="right", fontsize=7)
            if row == 0:
                ax.set_yscale("log")
                ax.set_ylim(bottom=1)  # bars from a common floor, comparable across panels
            ax.set_title(f"{family}: {title}, {r.ref}", fontsize=9)
            ax.tick_params(axis="y", labelsize=7)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=3, fontsize=8)  # above the panels, over no bar
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=72)
    plt.close(fig)


def commands(r: Results) -> str:
    """Every distinct command line of the run (namespaces named by role), as a code block."""
    lines = [line for pc in r.cells for line in pc.cell.commands]
    lines += [line for cmds in r.daemon_commands.values() for line in cmds]
    text = "\n".join(dict.fromkeys(lines))
    text = re.sub(r"/\S*/paper-[^/\s]+", "$RUN", text).replace(f"{PREFIX}-", "")
    # Every run takes fresh ports (benches.paper.matrix.PORTS): show them as $PORT.
    text = re.sub(r"(?<=[: ])[2-5][0-9]{4}\b", "$PORT", text)
    return "```sh\n" + "\n".join(dict.fromkeys(text.splitlines())) + "\n```"


def implementations(r: Results) -> list[str]:
    """Which IPsec, WireGuard and gateway ran, and why."""
    return [f"IPsec: {r.env.ipsec[1]}", f"WireGuard: {r.env.wireguard[1]}",
            "gateway: " + ("`python -m securepdu gateway`, WAN leg mutual TLS 1.3 (client certificate), inside legs "
                           "plain" if r.env.gateway[0] else r.env.gateway[1])]


def write(r: Results, folder: Path) -> str:
    """paper.md and paper.png in ``folder``; returns the Markdown."""
    folder.mkdir(parents=True, exist_ok=True)
    md = "\n\n".join([
        "# The paper's experiment, rerun (issue 9)",
        "Zhang et al., IEEE Trans. Inf. Technol. Biomed. 11(1), 2007, sent DICOM images over TCP/IPv4 and TCP/IPv6 "
        "protected by IPsec or SSL/TLS. This run does the same with today's methods, between network namespaces "
        "on one machine (both hosts share its cores).",
        "\n".join(f"- {line}" for line in [*r.header, f"data: {', '.join(r.described)}"]),
        "## Implementations",
        "\n".join(f"- {line}" for line in implementations(r)),
        "## Network",
        "Hosts a (SCU) and b (SCP) share a dual-stack veth link (198.18.0.0/24, 2001:2:0:1::/64); IPsec and "
        "WireGuard carry traffic between inner addresses routed only through the tunnel. The gateway pair: "
        "a -> ga (198.18.3.0/24, 2001:2:0:3::/64) -> WAN ga -> gb (198.18.4.0/24, 2001:2:0:4::/64) -> "
        "gb -> b (198.18.5.0/24, 2001:2:0:5::/64). **mixed**: IPv4 hosts, IPv6 in between (the WAN leg of the "
        "gateway pair, or the outer addresses of an IPv4-in-IPv6 tunnel); 'none' there means gateways "
        "relaying in the clear.",
        report_baselines(r),
        f"## Overview: MB/s, {r.ref}, median",
        markdown(overview_rows(r)),
        "![chart](paper.png)",
        "## Every cell",
        "MB/s (10^6 bytes/s of whole files): median (min-max) of the runs; CPU s/GB: every process involved "
        "(SCU, SCP, gateways, tunnel daemons; read from /proc before each is stopped); kernel work done in softirq "
        "context is not attributed to any of them. SCP RSS +MB: the SCP's peak RSS growth while receiving; "
        "relay RSS MB: the largest peak RSS of a gateway or tunnel daemon.",
        markdown(detail_rows(r)),
        "## Association set-up: associate + C-ECHO + release, timed in the SCU process",
        markdown(echo_rows(r)),
        "## Targets (issue 9)",
        markdown(check_rows(r)),
        "## Conclusions, from the numbers above",
        "\n".join(f"- {line}" for line in conclusions(r)),
        "## Commands",
        "Python SCUs run `python -m benches.scu JOB.json` inside namespace a (`ip netns exec a ...`); "
        "the SCPs, storescu, gateways and tunnel daemons ran as:",
        commands(r),
    ]) + "\n"
    (folder / "paper.md").write_text(md)
    chart(r, folder / "paper.png")
    return md


def report_baselines(r: Results) -> str:
    """The baselines section."""
    return "## Baselines (iperf3)\n\n" + markdown(baseline_rows(r))


def console(r: Results) -> str:
    """The overview, targets and conclusions for the terminal."""
    parts = [console_table(baseline_rows(r)), console_table(overview_rows(r)), console_table(echo_rows(r)),
             console_table(check_rows(r)), "\n".join(f"- {line}" for line in conclusions(r))]
    return "\n\n".join(parts)
