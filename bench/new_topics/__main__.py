"""New topic to target: `python -m bench.new_topics [--topics 20] [--rounds 1]`.

How long after a topic is created on the source is its first record readable on the
target? Two dcmirror clusters and two mirror daemons (processes, through the CLI) run side
by side over the same source: one with the Metadata watch (`topic_watch_interval_s` 0.5 s,
the default) and one without it (`topic_watch_interval_s: 0`), both with the default
`sync_interval_s` of 5 s. Each new topic gets one record at creation; the bench polls both
targets for it. Prints median, p90 and max per contender. For scale: MirrorMaker 2 looks
for new topics every `refresh.topics.interval.seconds` (600 s by default).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.mirror.conftest import write_config  # noqa: E402
from tests.processes import ClusterProcess, MirrorProcess  # noqa: E402

CONTENDERS = {"watch": 0.5, "no-watch": 0.0}


async def _has_first_record(client, topic: str) -> bool:
    """True once the target's partition 0 of ``topic`` holds a record (our client asks the
    broker every time; librdkafka caches an unknown partition for its metadata interval)."""
    from cluster.client.errors import KafkaError

    try:
        return (await client.list_offsets(topic, [0], -1))[0][0] >= 1
    except (KafkaError, KeyError):
        return False


async def _measure(clusters: dict, topics: int, rounds: int, gap_s: float) -> dict[str, list[float]]:
    from cluster.client.admin import NewTopic
    from cluster.client.client import KafkaClient
    from cluster.wire.batch_builder import build_batch

    source = KafkaClient(clusters["east"].bootstrap)
    targets = {n: KafkaClient(clusters[n].bootstrap, retry_deadline_s=0.5) for n in CONTENDERS}
    for c in (source, *targets.values()):
        await c.start()
    took: dict[str, list[float]] = {n: [] for n in CONTENDERS}
    try:
        for r in range(rounds):
            for i in range(topics):
                topic = f"bench.r{r}.t{i}"
                await source.create_topics([NewTopic(topic, 1, 1, {})])
                created = time.monotonic()
                await source.produce(topic, 0, build_batch([(None, b"first", [], int(time.time() * 1000))]))
                pending = set(CONTENDERS)
                while pending:
                    for n in sorted(pending):
                        if await _has_first_record(targets[n], topic):
                            took[n].append(time.monotonic() - created)
                            pending.discard(n)
                    if time.monotonic() - created > 60:
                        raise SystemExit(f"{topic} did not reach {sorted(pending)} within 60 s")
                    await asyncio.sleep(0.02)
                await asyncio.sleep(max(0.0, gap_s - (time.monotonic() - created)))
    finally:
        for c in (source, *targets.values()):
            await c.close()
    return took


@click.command()
@click.option("--topics", type=click.IntRange(1), default=20, show_default=True, help="New topics per round.")
@click.option("--rounds", type=click.IntRange(1), default=1, show_default=True)
@click.option("--gap-s", type=float, default=1.3, show_default=True,
              help="Seconds between creations (not a multiple of the sync interval, so arrival phases spread).")
def main(topics: int, rounds: int, gap_s: float) -> None:
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        clusters = {n: ClusterProcess(n, tmp / n).start() for n in ("east", *CONTENDERS)}
        mirrors = []
        try:
            for name, watch in CONTENDERS.items():
                cfg = write_config(tmp / f"{name}.yaml", {"east": clusters["east"].bootstrap,
                                                         name: clusters[name].bootstrap},
                                   [{"name": f"to-{name}", "source": "east", "target": name,
                                     "topics": ["bench\\..*"], "topic_watch_interval_s": watch}])
                mirrors.append(MirrorProcess(cfg).start())
            took = asyncio.run(_measure(clusters, topics, rounds, gap_s))
            print(f"{'contender':10} {'n':>4} {'median s':>9} {'p90 s':>7} {'max s':>7}")
            for n, xs in took.items():
                xs.sort()
                print(f"{n:10} {len(xs):4d} {statistics.median(xs):9.2f} {xs[int(0.9 * (len(xs) - 1))]:7.2f} "
                      f"{xs[-1]:7.2f}")
            med = {n: statistics.median(xs) for n, xs in took.items()}
            print(f"ratio no-watch/watch (median): {med['no-watch'] / med['watch']:.1f}x")
        finally:
            for m in mirrors:
                m.stop()
            for c in clusters.values():
                c.stop()


if __name__ == "__main__":
    main()
