"""Fetch sessions on many partitions: `python -m bench.broker.fetch_sessions [--targets ...]`.

Why: KIP-227's point is the cost of a consumer of many partitions whose fetches are
small. Each target gets one topic of 1,000 partitions, one 100 B record in each; then
one client (raw requests, Fetch v12, max_wait 0) consumes it and keeps fetching for a
fixed time, as a consumer at the tail does, asking the broker for a session (full
request at epoch 0, then incremental requests naming only partitions that moved, as
the Java client does). Two modes: `idle` (nothing new: every fetch after the first is
empty) and `trickle` (before each fetch the client produces one 100 B record, acks=1,
to the next partition round-robin, so each fetch carries one partition's new record;
the broker CPU then includes that produce, the same for every target). The broker's
CPU time per fetch is reported, with how many fetches were incremental. Targets:
`dcmirror` (sessions on, the default), `dcmirror-no-sessions` (the same broker with
max.incremental.fetch.session.cache.slots=0: every fetch names and answers 1,000
partitions), `kafka`; alternated round by round, each started fresh; medians printed.
"""
from __future__ import annotations

import statistics
import sys
import time

import click

from bench.broker.fetch_memory import _call, _connect, _exactly, _request
from bench.broker.targets import TARGETS
from cluster.wire import codec
from cluster.wire.batch_builder import build_batch
from cluster.wire.record_batch import iter_batches
from peers.common import cpu_seconds

TOPIC = "fetch-sessions"
PARTITIONS = 1000
MODES = ("idle", "trickle")


def _produce_body(partitions: list[int], acks: int) -> dict:
    batch = build_batch([(None, b"x" * 100, [], int(time.time() * 1000))])
    return {"transactional_id": None, "acks": acks, "timeout": 30_000,
            "topic_data": [{"name": TOPIC, "partition_data": [
                {"index": p, "records": batch} for p in partitions]}]}


def _fill(bootstrap: str) -> None:
    """The topic and one record per partition, retried while the partitions settle."""
    with _connect(bootstrap) as sock:
        _call(sock, 19, 7, {"topics": [{"name": TOPIC, "num_partitions": PARTITIONS,
                                        "replication_factor": 1, "assignments": [], "configs": []}],
                            "timeout": 60_000, "validate_only": False}, 1)
        todo, cid, deadline = list(range(PARTITIONS)), 1, time.monotonic() + 60
        while todo:
            cid += 1
            resp = _call(sock, 0, 9, _produce_body(todo, -1), cid)
            todo = [p.index for p in resp.responses[0].partition_responses if p.error_code]
            if todo and time.monotonic() > deadline:
                raise RuntimeError(f"{len(todo)} partitions keep refusing produce")
            if todo:
                time.sleep(0.2)  # Kafka's partitions right after CreateTopics


class SessionFetcher:
    """A consumer of every partition over one connection, through a fetch session."""

    def __init__(self, bootstrap: str) -> None:
        self.sock = _connect(bootstrap)
        self.offsets = {p: 0 for p in range(PARTITIONS)}
        self.moved = set(self.offsets)
        self.session_id, self.epoch = 0, 0
        self.cid = 0
        self.fetches = self.incremental = self.answered = 0

    def fetch(self) -> None:
        full = self.session_id == 0
        names = sorted(self.offsets if full else self.moved)
        self.cid += 1
        body = {"max_wait": 0, "min_bytes": 0, "max_bytes": 50 << 20, "isolation_level": 0,
                "session_id": self.session_id, "session_epoch": 0 if full else self.epoch,
                "replica_id": -1, "rack_id": "", "forgotten_topics_data": [],
                "topics": [{"topic": TOPIC, "partitions": [
                    {"partition": p, "fetch_offset": self.offsets[p], "partition_max_bytes": 1 << 20}
                    for p in names]}]}
        self.sock.sendall(_request(1, 12, body, self.cid))
        data = _exactly(self.sock, int.from_bytes(_exactly(self.sock, 4), "big"))
        resp = codec.decode_response(data, codec.response_schema(1, 12))[1]
        self.fetches += 1
        if resp.error_code:  # the session is gone: ask in full again
            self.session_id, self.moved = 0, set(self.offsets)
            return
        self.incremental += not full
        self.session_id = resp.session_id
        self.epoch = 1 if full else self.epoch + 1
        self.moved = set()
        for t in resp.responses:
            for p in t.partitions:
                self.answered += 1
                last = None
                for _, h in iter_batches(memoryview(p.records or b"")):
                    last = h
                if last is not None:
                    self.offsets[p.partition_index] = last.next_offset
                    self.moved.add(p.partition_index)

    def close(self) -> None:
        self.sock.close()


def _run(bootstrap: str, pid: int, mode: str, seconds: float) -> tuple[float, int, int, int]:
    """(broker CPU-us per fetch, fetches, incremental fetches, partitions answered per fetch)."""
    fetcher = SessionFetcher(bootstrap)
    producer = _connect(bootstrap) if mode == "trickle" else None
    try:
        fetcher.fetch()  # the full fetch that takes the one record of every partition
        fetcher.fetches = fetcher.incremental = fetcher.answered = 0
        cpu0 = cpu_seconds(pid)
        end, n = time.monotonic() + seconds, 0
        while time.monotonic() < end:
            if producer is not None:
                n += 1
                resp = _call(producer, 0, 9, _produce_body([n % PARTITIONS], 1), n)
                assert not resp.responses[0].partition_responses[0].error_code
            fetcher.fetch()
        cpu = cpu_seconds(pid) - cpu0
        f = fetcher.fetches
        return cpu / f * 1e6, f, fetcher.incremental, fetcher.answered // max(1, f)
    finally:
        fetcher.close()
        if producer is not None:
            producer.close()


@click.command()
@click.option("--targets", default="dcmirror,dcmirror-no-sessions,kafka", show_default=True)
@click.option("--rounds", type=click.IntRange(1), default=3, show_default=True)
@click.option("--seconds", type=float, default=5.0, show_default=True, help="Per mode per round.")
def main(targets: str, rounds: int, seconds: float) -> None:
    """Broker CPU per fetch of a 1,000-partition consumer, with and without sessions."""
    names = [t.strip() for t in targets.split(",") if t.strip()]
    results: dict[tuple[str, str], list[tuple[float, int, int, int]]] = {}
    for r in range(rounds):
        for name in names:
            running = TARGETS[name].start()
            try:
                _fill(running.bootstrap)
                for mode in MODES:
                    results.setdefault((name, mode), []).append(
                        _run(running.bootstrap, running.pid, mode, seconds))
            finally:
                running.stop()
            print(f"round {r + 1} {name} done", file=sys.stderr, flush=True)
    print("| 1,000 partitions | " + " | ".join(
        f"{n}: CPU-us/fetch, fetches/s, incremental %, partitions/answer" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for mode in MODES:
        cells = []
        for name in names:
            runs = results[(name, mode)]
            cpu = statistics.median(x[0] for x in runs)
            rate = statistics.median(x[1] for x in runs) / seconds
            inc = statistics.median(100 * x[2] / max(1, x[1]) for x in runs)
            per = statistics.median(x[3] for x in runs)
            cells.append(f"{cpu:.0f} / {rate:.0f} / {inc:.0f} / {per:.0f}")
        print(f"| {mode} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
