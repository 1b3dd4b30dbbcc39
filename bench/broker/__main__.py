"""CLI of the broker benchmark: `python -m bench.broker [--quick] [--targets ...] [--json F]`."""
from __future__ import annotations

import json
import logging
import os
import platform
import sys
from dataclasses import replace
from pathlib import Path

import click

from bench.broker.report import print_report
from bench.broker.runner import Params, run, to_json
from bench.broker.targets import TARGETS

QUICK = Params(rounds=1, small_count=200_000, large_count=50_000, latency_samples=300,
               warmup_count=20_000, idle_partitions=0)


@click.command()
@click.option("--quick", is_flag=True, help="One small round, no RSS (under a minute).")
@click.option("--targets", default="dcmirror,kafka,tansu", show_default=True,
              help="Comma-separated: " + ",".join(TARGETS))
@click.option("--rounds", type=click.IntRange(1), default=None, help="Override round count.")
@click.option("--idle-partitions", type=click.IntRange(0), default=None,
              help="Partitions for the idle RSS measurement (0 skips it).")
@click.option("--sizes", default="100B,1KB", show_default=True,
              help="Record sizes to measure (comma-separated: 100B, 1KB).")
@click.option("--pin", is_flag=True, help="Broker on CPU 0, load generator on CPU 1.")
@click.option("--fetch-queue-backoff-ms", type=click.IntRange(0), default=None,
              help="Consumer fetch.queue.backoff.ms (default 10; librdkafka's own is 1000).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write all runs and medians as JSON here.")
@click.option("-v", "--verbose", is_flag=True)
def main(quick: bool, targets: str, rounds: int | None, idle_partitions: int | None,
         sizes: str, pin: bool, fetch_queue_backoff_ms: int | None, json_path: Path | None,
         verbose: bool) -> None:
    """Produce/consume throughput, produce latency and idle-partition RSS of dcmirror's
    broker next to Apache Kafka and Tansu, alternated round by round in one run."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    names = [t.strip() for t in targets.split(",") if t.strip()]
    unknown = [t for t in names if t not in TARGETS]
    if unknown:
        raise click.BadParameter(f"unknown targets {unknown}", param_hint="--targets")
    p = QUICK if quick else Params()
    if rounds is not None:
        p = replace(p, rounds=rounds)
    if idle_partitions is not None:
        p = replace(p, idle_partitions=idle_partitions)
    if fetch_queue_backoff_ms is not None:
        p = replace(p, fetch_queue_backoff_ms=fetch_queue_backoff_ms)
    chosen = tuple(x.strip() for x in sizes.split(",") if x.strip())
    if not chosen or set(chosen) - {"100B", "1KB"}:
        raise click.BadParameter(f"{sizes!r}: choose from 100B and 1KB", param_hint="--sizes")
    p = replace(p, sizes=chosen)
    if pin:
        if len(os.sched_getaffinity(0)) < 2:
            raise click.UsageError("--pin needs at least 2 CPUs")
        p = replace(p, pin=True)
    results = run(names, p)
    baseline = "dcmirror" if "dcmirror" in names else names[0]
    print_report(names, results, baseline)
    if json_path:
        setup = {"cpus": os.cpu_count(), "machine": platform.machine(),
                 "python": platform.python_version(), "load_generator": "confluent-kafka",
                 "pinned": p.pin}
        json_path.write_text(json.dumps(to_json(names, p, results, setup), indent=2))


if __name__ == "__main__":
    main()
