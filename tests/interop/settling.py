"""Waiting out Apache Kafka's settling windows in the reference comparisons.

Kafka answers CreateTopics, CreatePartitions and (Incremental)AlterConfigs once the KRaft
controller has committed the change; each broker applies it from the metadata log a moment
later. The Java AdminClient documents it ("it may take several seconds after
CreateTopicsResult returns success for all the brokers to become aware that the topics
have been created"). Inside that window Kafka answers a Produce with
NOT_LEADER_OR_FOLLOWER, a Metadata with the old partition count, a DescribeConfigs with the
old values: answers about timing, not behaviour. dcmirror applies such changes before it
replies, so on our broker every wait here ends at the first check.

Each helper waits for the condition the next step needs, polling with a short interval
and a bounded deadline (no fixed sleeps). Readiness of a partition is asked without
changing anything: ListOffsets(LATEST) at the partition's leader goes through the same
"is this partition hosted here" check as Produce and Fetch in Kafka's ReplicaManager,
and the broker publishes its metadata image before that, so the topic's configs are
visible too once it answers.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, TypeVar

from cluster.client import KafkaClient, KafkaProtocolError, NewTopic

log = logging.getLogger(__name__)
T = TypeVar("T")

DEADLINE_S = 30.0
POLL_S = 0.05
LIST_OFFSETS, LATEST = 2, -1


async def poll(probe: Callable[[], Awaitable[T]], ready: Callable[[T], bool], what: str,
               deadline_s: float = DEADLINE_S, *, raise_on_timeout: bool = True) -> T:
    """Call `probe` until `ready(result)`; the last result when the deadline passes
    (or AssertionError naming `what`, with `raise_on_timeout`)."""
    start = time.monotonic()
    end = start + deadline_s
    attempts = 0
    while True:
        result = await probe()
        attempts += 1
        if ready(result):
            if attempts > 1:  # how often (and how long) the reference broker was settling
                log.info("%s after %d checks (%.2f s)", what, attempts, time.monotonic() - start)
            return result
        if time.monotonic() >= end:
            if raise_on_timeout:
                raise AssertionError(f"{what}: not reached within {deadline_s:.0f} s (last: {result!r})")
            return result
        await asyncio.sleep(POLL_S)


async def partition_errors(client: KafkaClient, topic: str, count: int) -> dict[int, int | str]:
    """{partition: error of ListOffsets(LATEST) at its leader, or why it has none} for
    partitions 0..count-1, from a fresh metadata refresh."""
    meta = await client.metadata([topic])
    info = meta.topics.get(topic)
    out: dict[int, int | str] = {}
    for p in range(count):
        part = info.partitions.get(p) if info is not None else None
        if part is None or part.leader_id < 0:
            out[p] = "no leader in metadata"
            continue
        conn = await client.connection(part.leader_id)
        resp = await conn.send(conn.build(LIST_OFFSETS, {
            "replica_id": -1, "isolation_level": 0, "timeout": 5000,
            "topics": [{"name": topic, "partitions": [
                {"partition_index": p, "current_leader_epoch": -1, "timestamp": LATEST}]}]}))
        out[p] = int(resp.topics[0].partitions[0].error_code)
    return out


async def wait_partitions_ready(client: KafkaClient, topic: str, count: int) -> None:
    """Until partitions 0..count-1 of `topic` have a leader that serves them."""
    await poll(lambda: partition_errors(client, topic, count),
               lambda errors: all(e == 0 for e in errors.values()),
               f"partitions of {topic} ready at their leaders")


async def create_ready(client: KafkaClient, topics: list[NewTopic]) -> dict[str, KafkaProtocolError | None]:
    """CreateTopics (errors raised, as `create_topics` does), then wait until every
    partition of every topic is served by its leader."""
    results = await client.create_topics(topics)
    for t in topics:
        await wait_partitions_ready(client, t.name, t.num_partitions)
    return results


async def partition_count_when(client: KafkaClient, topic: str, expected: int) -> int:
    """The topic's partition count in Metadata, once it shows `expected` (after a
    CreatePartitions that succeeded), or whatever it shows when the deadline passes."""
    async def count() -> int:
        meta = await client.metadata([topic])
        return meta.topics[topic].num_partitions if topic in meta.topics else -1

    return await poll(count, lambda n: n == expected, f"{topic} with {expected} partitions",
                      raise_on_timeout=False)


async def configs_when(client: KafkaClient, topic: str, expected: dict[str, str | None]) -> dict[str, Any]:
    """DescribeConfigs of `topic` once every key in `expected` has the given value (None:
    back at its default), or as it is when the deadline passes: the caller compares it."""
    def settled(described: dict[str, Any]) -> bool:
        for key, value in expected.items():
            entry = described.get(key)
            if entry is None:
                return False
            if not (entry.is_default if value is None else entry.value == value):
                return False
        return True

    async def describe() -> dict[str, Any]:
        return (await client.describe_configs([topic]))[topic]

    return await poll(describe, settled, f"configs of {topic}", raise_on_timeout=False)
