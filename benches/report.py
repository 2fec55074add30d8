"""What a suite run prints and writes: the matrix as a table (console and Markdown),
the targets of issue 7 as ratios with PASS/MISS, and a PNG chart."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from benches.measure import STORESCU, STORESCU_NAGLE, Cell
from benches.peers import HOSTS, MODES, TLS_MODES

MIB = 1 << 20
V4, V6 = HOSTS
#: Stacks with a row in the matrix, in table order.
ROW_STACKS = ("securepdu", "pynetdicom", "pynetdicom-chunked", "dcmtk")
MODE_TITLES = {"plain": "plain", "tls12": "TLS 1.2", "tls13": "TLS 1.3", "mtls": "mutual TLS 1.3",
               "integrity": "integrity"}


@dataclass(frozen=True)
class Check:
    """One target: the measured value, the bound, and whether it is met (None: not measured)."""

    what: str
    value: float | None
    bound: float
    higher_is_better: bool = True
    unit: str = "x"

    @property
    def ok(self) -> bool | None:
        """PASS (True), MISS (False) or not measured (None)."""
        if self.value is None:
            return None
        return self.value >= self.bound if self.higher_is_better else self.value <= self.bound

    def row(self) -> tuple[str, str, str, str]:
        """(target, value, bound, verdict) for a table."""
        value = "-" if self.value is None else f"{self.value:.2f}{self.unit}"
        bound = f"{'>=' if self.higher_is_better else '<='} {self.bound:g}{self.unit}"
        verdict = {True: "PASS", False: "MISS", None: "not measured"}[self.ok]
        return self.what, value, bound, verdict


class Results:
    """Every cell of a run, looked up by what it measured."""

    def __init__(self, cells: Iterable[Cell], echo: dict[tuple[str, str], list[float]]) -> None:
        self.cells = list(cells)
        self.echo = echo
        self._index = {(c.scu, c.scp, c.mode, c.host, c.data, c.parallel): c for c in self.cells}

    def get(self, stack: str, mode: str, host: str, data: str, *, scp: str | None = None,
            parallel: int = 1) -> Cell | None:
        """The cell, if it was planned."""
        return self._index.get((stack, scp or stack, mode, host, data, parallel))

    def mbps(self, stack: str, mode: str, host: str, data: str, *, scp: str | None = None) -> float | None:
        """Median MB/s of a cell; None when absent or failed."""
        cell = self.get(stack, mode, host, data, scp=scp)
        return cell.median_mbps() if cell else None

    def failed(self) -> list[Cell]:
        """Cells with an error."""
        return [c for c in self.cells if c.error]


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _median_ms(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def checks(r: Results) -> list[Check]:
    """The targets of issue 7, each as a measured ratio (or value) against its bound."""
    out: list[Check] = []
    for data in ("CT", "large"):
        for host in HOSTS:
            sp = r.mbps("securepdu", "plain", host, data)
            # dcmtk 3.6.7 has no IPv6: securepdu on ::1 is held against dcmtk on 127.0.0.1.
            out.append(Check(f"securepdu/dcmtk, plain, {data}, {host}", _ratio(sp, r.mbps("dcmtk", "plain", V4, data)),
                             1.5))
            if data == "CT":
                out.append(Check(f"securepdu/pynetdicom (default), plain, CT, {host}",
                                 _ratio(sp, r.mbps("pynetdicom", "plain", host, "CT")), 25))
            else:
                out.append(Check(f"securepdu/pynetdicom (chunked), plain, large, {host}",
                                 _ratio(sp, r.mbps("pynetdicom-chunked", "plain", host, "large")), 3))
        for mode in TLS_MODES:
            sp = r.mbps("securepdu", mode, V4, data)
            out.append(Check(f"securepdu/dcmtk, {MODE_TITLES[mode]}, {data}", _ratio(sp, r.mbps("dcmtk", mode, V4, data)),
                             1.5))
            out.append(Check(f"securepdu {MODE_TITLES[mode]}/plain, {data}",
                             _ratio(sp, r.mbps("securepdu", "plain", V4, data)), 0.85))
    out.append(Check("securepdu integrity/none, large",
                     _ratio(r.mbps("securepdu", "integrity", V4, "large"), r.mbps("securepdu", "plain", V4, "large")),
                     0.90))
    for mode in MODES:
        cell = r.get("securepdu", mode, V4, "large")
        growth = statistics.median(s.rss_growth for s in cell.samples) / MIB if cell and cell.samples else None
        out.append(Check(f"securepdu SCP peak RSS growth, large, {MODE_TITLES[mode]}", growth, 64,
                         higher_is_better=False, unit=" MiB"))
    out.append(Check("echo association, securepdu, plain (median)", _median_ms(r.echo.get(("securepdu", "plain"))), 1,
                     higher_is_better=False, unit=" ms"))
    out.append(Check("echo association, securepdu, mutual TLS 1.3 (median)",
                     _median_ms(r.echo.get(("securepdu", "mtls"))), 3, higher_is_better=False, unit=" ms"))
    out.append(Check("storescu with Nagle -> securepdu SCP, vs with TCP_NODELAY",
                     _ratio(r.mbps(STORESCU_NAGLE, "plain", V4, "CT", scp="securepdu"),
                            r.mbps(STORESCU, "plain", V4, "CT", scp="securepdu")), 0.5))
    many = next((c for c in r.cells if c.parallel > 1), None)
    out.append(Check(f"{many.parallel if many else 64} associations at once / one, securepdu, CT",
                     _ratio(many.median_mbps() if many else None, r.mbps("securepdu", "plain", V4, "CT")), 1.0))
    return out


def cell_text(cell: Cell | None) -> str:
    """"MB/s median (min-max); CPU s/GB (the SCP's part); SCP RSS growth", or why
    there is no number."""
    if cell is None:
        return ""
    if cell.skip:
        return cell.skip
    if cell.error:
        return f"FAILED: {cell.error[:80]}"
    if not cell.samples:
        return "-"
    rates = cell.mbps()
    cpu = statistics.median(s.cpu for s in cell.samples) / (cell.nbytes / 1e9)
    scp_cpu = statistics.median(s.scp_cpu for s in cell.samples) / (cell.nbytes / 1e9)
    rss = statistics.median(s.rss_growth for s in cell.samples) / MIB
    retried = f"; {len(cell.retries)} retried" if cell.retries else ""
    return f"{statistics.median(rates):.0f} ({min(rates):.0f}-{max(rates):.0f}); {cpu:.2f} s/GB (SCP {scp_cpu:.2f}); +{rss:.0f} MiB{retried}"


def matrix_rows(r: Results, datasets: list[str]) -> list[tuple[str, ...]]:
    """One row per data set, stack and address; one column per security mode."""
    rows: list[tuple[str, ...]] = [("data", "stack", "address", *(MODE_TITLES[m] for m in MODES))]
    for data in datasets:
        for stack in ROW_STACKS:
            for host in HOSTS:
                texts = [cell_text(r.get(stack, m, host, data)) for m in MODES]
                if any(texts):
                    rows.append((data, stack, host, *texts))
    return rows


def extra_rows(r: Results) -> list[tuple[str, ...]]:
    """The Nagle case and the concurrent associations, one row each."""
    rows: list[tuple[str, ...]] = [("case", "SCU -> SCP", "MB/s median (min-max); CPU s/GB (SCP's part); SCP RSS growth")]
    for scu, scp, what in ((STORESCU_NAGLE, "dcmtk", "storescu (Nagle on, dcmtk's default) -> storescp"),
                           (STORESCU_NAGLE, "securepdu", "storescu (Nagle on, dcmtk's default) -> securepdu"),
                           (STORESCU, "securepdu", "storescu (TCP_NODELAY=1) -> securepdu")):
        rows.append(("Nagle, CT", what, cell_text(r.get(scu, "plain", V4, "CT", scp=scp))))
    for c in r.cells:
        if c.parallel > 1:
            rows.append((f"concurrency, {c.data}", f"{c.parallel} securepdu.send() at once -> one securepdu SCP",
                         cell_text(c)))
    rows.append(("concurrency, CT", "one securepdu.send() -> securepdu SCP",
                 cell_text(r.get("securepdu", "plain", V4, "CT"))))
    return rows


def echo_rows(r: Results) -> list[tuple[str, ...]]:
    """Association + C-ECHO + release latency per stack and mode."""
    rows: list[tuple[str, ...]] = [("SCU -> SCP", "security", "associations", "median ms", "min ms", "max ms")]
    for (stack, mode), lat in r.echo.items():
        if lat:
            rows.append((stack, MODE_TITLES[mode], str(len(lat)), f"{statistics.median(lat):.2f}", f"{min(lat):.2f}",
                         f"{max(lat):.2f}"))
    return rows


def console(rows: list[tuple[str, ...]]) -> str:
    """A plain aligned table."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(rows: list[tuple[str, ...]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
    lines.insert(1, "|" + "---|" * len(rows[0]))
    return "\n".join(lines)


def chart(r: Results, datasets: list[str], path: Path) -> None:
    """Median MB/s of every measured matrix cell on 127.0.0.1, one panel per data set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"securepdu": "tab:blue", "pynetdicom": "tab:orange", "pynetdicom-chunked": "tab:red",
               "dcmtk": "tab:green"}
    panels = [(d, [c for c in r.cells if c.data == d and c.host == V4 and c.scu == c.scp and c.parallel == 1
                   and c.samples]) for d in datasets]
    panels = [(d, cells) for d, cells in panels if cells]
    if not panels:
        return
    heights = [len(cells) + 2 for _, cells in panels]  # bars of one height in every panel
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 0.2 * sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, (data, cells) in zip(axes[:, 0], panels):
        labels = [f"{c.scu} {MODE_TITLES[c.mode]}" for c in cells]
        ax.barh(labels, [c.median_mbps() or 0 for c in cells], color=[colours[c.scu] for c in cells])
        ax.invert_yaxis()
        ax.set_title(f"{data}: MB/s, median, 127.0.0.1", fontsize=9)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


def commands(r: Results) -> str:
    """Every distinct SCP and storescu command line of the run, as a code block."""
    seen = dict.fromkeys(line for c in r.cells for line in c.commands)
    return "```sh\n" + "\n".join(seen) + "\n```"
