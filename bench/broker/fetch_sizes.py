"""Fetch cost by reply size: `python -m bench.broker.fetch_sizes [--targets ...] [--rounds N]`.

Why: sendfile saves the copies of big replies but costs more system calls per reply (a dup
and close per range, the header written apart from the bytes), so small replies might be
cheaper by pread + writev. This measures both per size, to pick by measurement: each
target gets one partition of 100 B records in 16 KiB batches, then one client sends
back-to-back Fetches with partition_max_bytes of each size (reading every reply whole) and
the broker's CPU time per Fetch and per GB is reported. Targets are alternated round by
round (each started fresh), medians printed.
"""
from __future__ import annotations

import statistics
import sys
import time

import click

from bench.broker.fetch_memory import _call, _connect, _exactly, _request
from bench.broker.targets import TARGETS
from cluster.wire.batch_builder import build_batch
from peers.common import cpu_seconds

TOPIC = "fetch-sizes"
SIZES = (1024, 16 * 1024, 64 * 1024, 256 * 1024, 1 << 20)


def _fill(bootstrap: str, total: int) -> int:
    """Batches of 160 records of 100 B; returns the number of records."""
    with _connect(bootstrap) as sock:
        _call(sock, 19, 7, {"topics": [{"name": TOPIC, "num_partitions": 1, "replication_factor": 1,
                                        "assignments": [], "configs": []}],
                            "timeout": 30_000, "validate_only": False}, 1)
        now = int(time.time() * 1000)
        batch = build_batch([(None, bytes([i % 251]) * 100, [], now) for i in range(160)])
        cid, written = 1, 0
        while written < total:
            cid += 1
            deadline = time.monotonic() + 30
            while True:
                resp = _call(sock, 0, 9, {"transactional_id": None, "acks": -1, "timeout": 30_000,
                                          "topic_data": [{"name": TOPIC, "partition_data": [
                                              {"index": 0, "records": batch}]}]}, cid)
                if not resp.responses[0].partition_responses[0].error_code:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("produce keeps failing")
                time.sleep(0.1)
            written += len(batch)
        return written // len(batch) * 160


def _fetch_loop(bootstrap: str, size: int, records: int, seconds: float) -> tuple[int, int]:
    """(fetches, bytes) of back-to-back Fetches of `size` bytes walking the partition."""
    fetches = got = 0
    offset = 0
    with _connect(bootstrap) as sock:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            body = {"max_wait": 0, "min_bytes": 0, "max_bytes": size, "isolation_level": 0,
                    "session_id": 0, "session_epoch": -1, "replica_id": -1,
                    "topics": [{"topic": TOPIC, "partitions": [
                        {"partition": 0, "fetch_offset": offset, "partition_max_bytes": size}]}],
                    "forgotten_topics_data": [], "rack_id": ""}
            sock.sendall(_request(1, 12, body, fetches + 1))
            n = int.from_bytes(_exactly(sock, 4), "big")
            _exactly(sock, n)
            fetches += 1
            got += n
            # whole batches of 160 records: step by what the size holds (at least one batch)
            offset = (offset + 160 * max(1, size // 16_200)) % (records - 1600)
    return fetches, got


@click.command()
@click.option("--targets", default="dcmirror,dcmirror-base", show_default=True)
@click.option("--rounds", type=click.IntRange(1), default=3, show_default=True)
@click.option("--seconds", type=float, default=3.0, show_default=True, help="Per size per round.")
def main(targets: str, rounds: int, seconds: float) -> None:
    """Broker CPU per Fetch and per GB by reply size, targets alternated."""
    names = [t.strip() for t in targets.split(",") if t.strip()]
    results: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    for r in range(rounds):
        for name in names:
            running = TARGETS[name].start()
            try:
                records = _fill(running.bootstrap, 200 << 20)
                for size in SIZES:
                    cpu0 = cpu_seconds(running.pid)
                    fetches, got = _fetch_loop(running.bootstrap, size, records, seconds)
                    cpu = cpu_seconds(running.pid) - cpu0
                    results.setdefault((name, size), []).append(
                        (cpu / fetches * 1e6, cpu / (got / 1e9), fetches / seconds))
            finally:
                running.stop()
            print(f"round {r + 1} {name} done", file=sys.stderr, flush=True)
    print("| reply size | " + " | ".join(f"{n} CPU-us/fetch, CPU-s/GB, fetches/s" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for size in SIZES:
        cells = []
        for name in names:
            runs = results[(name, size)]
            cells.append(" / ".join(f"{statistics.median(x[i] for x in runs):.{p}f}"
                                    for i, p in ((0, 0), (1, 2), (2, 0))))
        print(f"| {size // 1024} KiB | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
