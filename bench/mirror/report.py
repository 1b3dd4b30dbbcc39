"""The printed table: medians per contender, and ratios read "how many times better
dcmirror is" (>1 = dcmirror better): throughput ratio = dcmirror / peer, CPU and latency
ratio = peer / dcmirror."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from bench.mirror.contenders import CONTENDERS
from bench.mirror.runner import Result, medians


def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _spread(res: Result, key: str, fmt: str) -> str:
    """' (lo-hi)' over the rounds, when there is more than one: the noise, in plain sight."""
    vals = [r[key] for r in res.runs if key in r]
    if len(vals) < 2:
        return ""
    return f"\n({min(vals):{fmt}}-{max(vals):{fmt}})"


def _ratio(base: float | None, other: float | None, higher_better: bool) -> str:
    if not base or not other:
        return "-"
    return f"{(base / other if higher_better else other / base):.2f}x"


def print_report(names: list[str], results: dict[str, Result], info: dict,
                 baseline: str = "dcmirror", console: Console | None = None) -> None:
    console = console or Console(width=170)
    med = {n: medians(results[n]) for n in names}
    b = med.get(baseline, {})
    rate = info.get("latency_rate_mb_s")
    t = Table(title=f"Mirror benchmark (medians of {max(len(results[n].runs) for n in names)} "
                    f"round(s); latency at {_f(rate, '.1f')} MB/s; ratios = {baseline} vs "
                    f"contender, >1 = {baseline} better)")
    for col in ("contender", "clusters", "copy MB/s\n(range)", "mirror CPU-s/GB\n(range)", "brokers CPU-s/GB",
                "latency p50 / p99 ms\n(p99 range)", f"MB/s ratio", "CPU ratio", "p99 ratio"):
        t.add_column(col, justify="left" if col in ("contender", "clusters") else "right")
    for n in names:
        m = med[n]
        floor = CONTENDERS[n].name.startswith("none")  # reference rows: no ratios
        lat = (f"{m['lat_p50_ms']:.1f} / {m['lat_p99_ms']:.1f}"
               + _spread(results[n], "lat_p99_ms", ".0f") if "lat_p99_ms" in m else "-")
        if m.get("lat_received_frac", 1) < 0.999:
            lat += f" ({m['lat_received_frac']:.0%} arrived)"
        t.add_row(CONTENDERS[n].label, CONTENDERS[n].clusters,
                  _f(m.get("mb_s"), ".1f") + _spread(results[n], "mb_s", ".0f"),
                  _f(m.get("cpu_s_per_gb"), ".2f") + _spread(results[n], "cpu_s_per_gb", ".1f"), _f(m.get("broker_cpu_s_per_gb"), ".2f"), lat,
                  *(["-"] * 3 if floor else [
                      _ratio(b.get("mb_s"), m.get("mb_s"), True),
                      _ratio(b.get("cpu_s_per_gb"), m.get("cpu_s_per_gb"), False),
                      _ratio(b.get("lat_p99_ms"), m.get("lat_p99_ms"), False)]),
                  end_section=True)
    console.print(t)
    k, mm = med.get("dcmirror-kafka"), med.get("mm2")
    if k and mm:  # the like-for-like pair: same Kafka clusters, same data
        console.print(
            f"Kafka->Kafka, dcmirror (translate) vs MirrorMaker 2: MB/s "
            f"{_ratio(k.get('mb_s'), mm.get('mb_s'), True)}, CPU-s/GB "
            f"{_ratio(k.get('cpu_s_per_gb'), mm.get('cpu_s_per_gb'), False)}, p99 "
            f"{_ratio(k.get('lat_p99_ms'), mm.get('lat_p99_ms'), False)}", highlight=False)
    tls, plain = med.get("dcmirror-tls"), med.get("dcmirror")
    if tls and plain:  # the cost of TLS on the link: secure / plaintext, <1 = TLS costs that much
        console.print(
            f"SASL_SSL link vs plaintext link (dcmirror, offsets preserved): copy MB/s "
            f"{_ratio(tls.get('mb_s'), plain.get('mb_s'), True)}, mirror CPU-s/GB "
            f"{_ratio(tls.get('cpu_s_per_gb'), plain.get('cpu_s_per_gb'), True)}, p99 "
            f"{_ratio(tls.get('lat_p99_ms'), plain.get('lat_p99_ms'), True)} (secure / plaintext)",
            highlight=False)
    for n in names:
        for e in results[n].errors:
            console.print(f"[red]{n}[/red]: {e}", markup=True, highlight=False)
