"""CLI of the mirror benchmark: `python -m bench.mirror [--quick] [--gb 1.0] [--json FILE]`."""
from __future__ import annotations

import json
import logging
import os
import platform
import sys
from dataclasses import replace
from pathlib import Path

import click

from bench.mirror.contenders import CONTENDERS
from bench.mirror.report import print_report
from bench.mirror.runner import Params, Result, run, to_json


@click.command()
@click.option("--quick", is_flag=True, help="~100 MB backlog, one round, short latency runs.")
@click.option("--gb", type=float, default=None, help="Backlog size in GB of record values.")
@click.option("--contenders", default="dcmirror,dcmirror-tls,naive,none,mm2,dcmirror-kafka,none-kafka", show_default=True,
              help="Comma-separated, run in this order each round; known: " + ",".join(CONTENDERS))
@click.option("--rounds", type=click.IntRange(1), default=None)
@click.option("--latency-s", type=float, default=None, help="Seconds of paced load per run.")
@click.option("--latency-rate", type=float, default=None,
              help="MB/s of the paced load (default: half of dcmirror's copy rate).")
@click.option("--latency-cap", type=float, default=None,
              help="Upper bound of the default paced rate, MB/s (default 10).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write all runs and medians as JSON here.")
@click.option("--report", "report_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Only print the table of an earlier --json file.")
@click.option("-v", "--verbose", is_flag=True)
def main(quick: bool, gb: float | None, contenders: str, rounds: int | None,
         latency_s: float | None, latency_rate: float | None, latency_cap: float | None, json_path: Path | None,
         report_path: Path | None, verbose: bool) -> None:
    """Backlog copy throughput, CPU per GB and replication latency of dcmirror's mirror
    next to a per-record confluent-kafka mirror and MirrorMaker 2, in one run."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if report_path is not None:
        doc = json.loads(report_path.read_text())
        names = list(doc["results"])
        results = {n: Result(runs=r["runs"], errors=r["errors"]) for n, r in doc["results"].items()}
        print_report(names, results, doc["info"])
        return
    names = [n.strip() for n in contenders.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONTENDERS]
    if unknown:
        raise click.BadParameter(f"unknown contenders {unknown}", param_hint="--contenders")
    p = Params(gb=0.1, rounds=1, latency_s=8.0, latency_warmup_s=2.0) if quick else Params()
    if gb is not None:
        p = replace(p, gb=gb)
    if rounds is not None:
        p = replace(p, rounds=rounds)
    if latency_s is not None:
        p = replace(p, latency_s=latency_s)
    if latency_rate is not None:
        p = replace(p, latency_rate_mb_s=latency_rate)
    if latency_cap is not None:
        p = replace(p, latency_cap_mb_s=latency_cap)
    results, info = run(names, p)
    print_report(names, results, info)
    if json_path:
        setup = {"cpus": os.cpu_count(), "machine": platform.machine(),
                 "python": platform.python_version(), "kafka": "4.3.1"}
        json_path.write_text(json.dumps(to_json(names, p, results, info, setup), indent=2))


if __name__ == "__main__":
    main()
