"""Medians and the printed table. Ratios read "how many times better dcmirror is than the
peer" (>1 = dcmirror better) for throughput and latency alike."""
from __future__ import annotations

import statistics
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from bench.broker.runner import TargetResult


def medians(res: "TargetResult") -> dict[str, dict[str, float]]:
    return {wl: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            for wl, runs in res.runs.items() if runs}


def _ratio(base: float | None, other: float | None, higher_better: bool) -> str:
    if not base or not other:
        return "-"
    return f"{(base / other if higher_better else other / base):.2f}x"


def print_report(targets: list[str], results: dict[str, "TargetResult"], baseline: str,
                 console: Console | None = None) -> None:
    if console is None:  # piped output: wide enough that cells do not wrap
        console = Console() if sys.stdout.isatty() else Console(width=150)
    med = {t: medians(results[t]) for t in targets}
    workloads: list[str] = []
    for t in targets:
        workloads += [wl for wl in med[t] if wl not in workloads]
    peers = [t for t in targets if t != baseline]

    table = Table(title=f"Broker benchmark (medians; ratios = {baseline} vs peer, >1 = "
                        f"{baseline} better; CPU-s/GB = the broker's CPU per GB of values)")
    table.add_column("workload")
    for t in targets:
        table.add_column(t, justify="right")
    for t in peers:
        table.add_column(f"{baseline}/{t}", justify="right")
    for wl in workloads:
        latency = "latency" in wl
        row = [wl]
        for t in targets:
            m = med[t].get(wl)
            if not m:
                row.append("-")
            elif latency:
                row.append(f"p50 {m['p50_ms']:.2f} ms\np99 {m['p99_ms']:.2f} ms")
            else:
                cell = f"{m['mb_s']:.1f} MB/s\n{m['msgs_s']:,.0f} msg/s"
                if "broker_cpu_s_per_gb" in m:
                    cell += f"\n{m['broker_cpu_s_per_gb']:.2f} CPU-s/GB"
                row.append(cell)
        for t in peers:
            b, o = med.get(baseline, {}).get(wl), med[t].get(wl)
            if latency:
                row.append(f"p50 {_ratio(b and b['p50_ms'], o and o['p50_ms'], False)}\n"
                           f"p99 {_ratio(b and b['p99_ms'], o and o['p99_ms'], False)}")
            else:
                cell = _ratio(b and b["mb_s"], o and o["mb_s"], True)
                if b and o and "broker_cpu_s_per_gb" in b and "broker_cpu_s_per_gb" in o:
                    cell += f"\nCPU {_ratio(b['broker_cpu_s_per_gb'], o['broker_cpu_s_per_gb'], False)}"
                row.append(cell)
        table.add_row(*row, end_section=True)
    rss_keys: list[str] = []
    for t in targets:
        rss_keys += [k for k in results[t].rss if k not in rss_keys]
    for k in rss_keys:
        row = [f"RSS, {k}"]
        vals = {t: results[t].rss.get(k) for t in targets}
        row += [f"{v / 2**20:.0f} MiB" if v else "-" for v in vals.values()]
        row += [_ratio(vals.get(baseline), vals.get(t), False) for t in peers]
        table.add_row(*row)
    console.print(table)
    print_security_cost(targets, med, console)
    for t in targets:
        for e in results[t].errors:
            console.print(f"[red]{t}[/red]: {e}", markup=True, highlight=False)


SECURE_SUFFIX = "-sasl-ssl"


def print_security_cost(targets: list[str], med: dict[str, dict[str, dict[str, float]]],
                        console: Console) -> None:
    """For each broker measured both plain and over SASL_SSL: the secure run's throughput as
    a share of the plain one (what TLS and SASL cost that broker)."""
    pairs = [(t[: -len(SECURE_SUFFIX)], t) for t in targets
             if t.endswith(SECURE_SUFFIX) and t[: -len(SECURE_SUFFIX)] in targets]
    if not pairs:
        return
    table = Table(title="Cost of SASL_SSL: secure throughput / plaintext throughput (1.00 = free)")
    table.add_column("workload")
    for plain, _ in pairs:
        table.add_column(plain, justify="right")
    workloads = [wl for wl in med[pairs[0][1]] if "latency" not in wl]
    for wl in workloads:
        row = [wl]
        for plain, secure in pairs:
            a, b = med[plain].get(wl), med[secure].get(wl)
            row.append(f"{b['mb_s'] / a['mb_s']:.2f}" if a and b and a["mb_s"] else "-")
        table.add_row(*row)
    console.print(table)
