"""Topic catalogue at scale: `python -m bench.topics [--topics 10000] [--singles 100]`.

One dcmirror cluster runs as a process through the CLI. The bench creates TOPICS
one-partition topics in CreateTopics requests of --batch topics, then --singles more one
request each (the per-create cost that used to grow with the catalogue), lists them all
with Metadata, and restarts the broker twice: after SIGTERM (clean) and after kill -9.
Restart time is from spawning the process to a Metadata answer listing every topic; the
goal is under 5 s for 10,000 topics. Every run checks that all topics came back.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.cluster.broker.rawconn import RawConn  # noqa: E402
from tests.processes import ClusterProcess  # noqa: E402


def _topic(name: str) -> dict:
    return {"name": name, "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []}


async def _create(port: int, names: list[str]) -> float:
    conn = await RawConn.open(port)
    try:
        started = time.perf_counter()
        resp = await conn.call(19, 7, {"topics": [_topic(n) for n in names], "timeout": 60000,
                                       "validate_only": False})
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    bad = [(t.name, t.error_code) for t in resp.topics if t.error_code]
    if bad:
        raise SystemExit(f"CreateTopics refused {len(bad)} topics, first {bad[:3]}")
    return elapsed


async def _listed(port: int) -> set[str]:
    conn = await RawConn.open(port)
    try:
        resp = await conn.call(3, 12, {"topics": None, "allow_auto_topic_creation": False,
                                       "include_topic_authorized_operations": False})
    finally:
        conn.close()
    return {t.name for t in resp.topics}


def _restart(cluster: ClusterProcess, names: set[str], kill: bool) -> tuple[float, float]:
    """(seconds until the port answers, seconds until Metadata lists every topic)."""
    if kill:
        cluster.kill9()
    else:
        cluster.stop()
    started = time.perf_counter()
    cluster.start()
    listening = time.perf_counter() - started
    listed = asyncio.run(_listed(cluster.port))
    elapsed = time.perf_counter() - started
    if listed != names:
        raise SystemExit(f"after restart {len(names - listed)} topics missing, {len(listed - names)} unexpected")
    return listening, elapsed


@click.command()
@click.option("--topics", default=10_000, show_default=True)
@click.option("--batch", default=10_000, show_default=True, help="Topics per CreateTopics request.")
@click.option("--singles", default=100, show_default=True, help="Then this many one-topic creates.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(topics: int, batch: int, singles: int, json_path: Path | None) -> None:
    """Time creating TOPICS topics and restarting the broker that holds them."""
    with tempfile.TemporaryDirectory(prefix="dcmirror-bench-topics-") as d:
        # Reference: the same process starting on an empty data directory (interpreter
        # and imports), so the catalogue's own share of a restart is visible.
        empty = ClusterProcess("empty", Path(d) / "empty")
        started = time.perf_counter()
        empty.start()
        baseline = time.perf_counter() - started
        empty.stop()
        cluster = ClusterProcess("bench", Path(d) / "bench").start()
        try:
            names = [f"bench.t{i:05d}" for i in range(topics)]
            bulk = sum(asyncio.run(_create(cluster.port, names[i:i + batch])) for i in range(0, topics, batch))
            more = [f"bench.single{i:04d}" for i in range(singles)]
            each = [asyncio.run(_create(cluster.port, [n])) for n in more]
            every = set(names) | set(more)
            started = time.perf_counter()
            if asyncio.run(_listed(cluster.port)) != every:
                raise SystemExit("Metadata does not list every created topic")
            listing = time.perf_counter() - started
            clean = _restart(cluster, every, kill=False)
            killed = _restart(cluster, every, kill=True)
        finally:
            cluster.stop()
    res = {"topics": len(every), "create_bulk_s": round(bulk, 3),
           "create_single_median_ms": round(statistics.median(each) * 1000, 2) if each else None,
           "metadata_all_s": round(listing, 3), "empty_start_s": round(baseline, 3),
           "restart_after_sigterm_listening_s": round(clean[0], 3),
           "restart_after_sigterm_metadata_s": round(clean[1], 3),
           "restart_after_kill9_listening_s": round(killed[0], 3),
           "restart_after_kill9_metadata_s": round(killed[1], 3)}
    print(f"{res['topics']} topics: bulk create {bulk:.2f} s in requests of {batch}; "
          f"{singles} single creates, median {res['create_single_median_ms']} ms each; "
          f"Metadata of all {listing:.2f} s. Restart (goal < 5 s): listening after {clean[0]:.2f} s, "
          f"full Metadata after {clean[1]:.2f} s (SIGTERM); {killed[0]:.2f} s / {killed[1]:.2f} s "
          f"(kill -9); an empty broker starts listening in {baseline:.2f} s; all topics back", flush=True)
    if json_path is not None:
        json_path.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
