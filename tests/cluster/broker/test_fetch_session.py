"""The fetch session cache and contexts (cluster/broker/fetch_session.py), without a broker.

Requests are stand-ins with the attribute names of kio's FetchRequest; responses are the
handler's dicts. The eviction cases follow Kafka's FetchSessionCacheTest.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

from kio.schema.errors import ErrorCode

from cluster.broker import fetch_session as fs


@dataclass
class P:
    partition: int
    fetch_offset: int = 0
    partition_max_bytes: int = 1000
    current_leader_epoch: int = -1


@dataclass
class T:
    topic: str = ""
    topic_id: uuid.UUID = uuid.UUID(int=0)
    partitions: list = field(default_factory=list)


@dataclass
class Forget:
    topic: str = ""
    topic_id: uuid.UUID = uuid.UUID(int=0)
    partitions: list = field(default_factory=list)


@dataclass
class Req:
    session_id: int
    session_epoch: int
    topics: list
    forgotten_topics_data: list = field(default_factory=list)


def entry(p: int, hw: int = 10, records: bytes = b"", error: int = 0) -> dict:
    return {"partition_index": p, "error_code": error, "high_watermark": hw, "last_stable_offset": hw,
            "log_start_offset": 0, "preferred_read_replica": -1, "records": records}


def answer(ctx: fs.FetchContext, by_partition: dict[int, dict] | None = None) -> list[dict]:
    """The handler's collected responses for a context: one entry per listed partition."""
    by_partition = by_partition or {}
    return [{"topic": t.topic, "topic_id": t.topic_id,
             "partitions": [by_partition.get(p.partition, entry(p.partition)) for p in t.partitions]}
            for t in ctx.topics]


def full_session(cache: fs.FetchSessionCache, n: int, now: int = 0, version: int = 12) -> int:
    ctx = fs.new_context(cache, version, Req(0, 0, [T("t", partitions=[P(i) for i in range(n)])]), now)
    code, sid, _ = fs.respond(cache, ctx, answer(ctx), now)
    assert code == 0
    return sid


def test_full_fetch_creates_a_session_at_epoch_1_and_answers_everything() -> None:
    cache = fs.FetchSessionCache(10)
    ctx = fs.new_context(cache, 12, Req(0, 0, [T("t", partitions=[P(0), P(1)])]), 0)
    assert ctx.kind == "full"
    code, sid, out = fs.respond(cache, ctx, answer(ctx), 0)
    assert code == 0 and sid != 0 and len(out[0]["partitions"]) == 2
    assert cache.get(sid).epoch == 1


def test_final_epoch_and_old_versions_are_sessionless() -> None:
    cache = fs.FetchSessionCache(10)
    sid = full_session(cache, 2)
    ctx = fs.new_context(cache, 12, Req(sid, -1, [T("t", partitions=[P(0)])]), 1)
    assert ctx.kind == "sessionless" and cache.get(sid) is None  # closed
    assert fs.respond(cache, ctx, answer(ctx), 1)[1] == 0
    assert fs.new_context(cache, 6, Req(0, 0, [T("t", partitions=[P(0)])]), 1).kind == "sessionless"
    assert len(cache) == 0


def test_incremental_answers_only_what_changed_and_keeps_positions() -> None:
    cache = fs.FetchSessionCache(10)
    sid = full_session(cache, 3)
    # Nothing sent: all three partitions fetched from their cached offsets, none has news.
    ctx = fs.new_context(cache, 12, Req(sid, 1, []), 1)
    assert ctx.kind == "incremental"
    assert [p.partition for t in ctx.topics for p in t.partitions] == [0, 1, 2]
    assert fs.respond(cache, ctx, answer(ctx), 1) == (0, sid, [])
    # Partition 1 moved on (client sends it), partition 2 has a new high watermark.
    ctx = fs.new_context(cache, 12, Req(sid, 2, [T("t", partitions=[P(1, fetch_offset=7)])]), 2)
    assert ctx.topics[0].partitions[1].fetch_offset == 7
    code, _, out = fs.respond(cache, ctx, answer(ctx, {1: entry(1, records=b"x" * 5), 2: entry(2, hw=11)}), 2)
    assert [p["partition_index"] for t in out for p in t["partitions"]] == [1, 2]
    # Partition 1 returned data: it moved to the back of the session.
    ctx = fs.new_context(cache, 12, Req(sid, 3, []), 3)
    assert [p.partition for t in ctx.topics for p in t.partitions] == [0, 2, 1]
    assert cache.get(sid).epoch == 4


def test_errors_are_always_sent_and_sent_again_when_healed() -> None:
    cache = fs.FetchSessionCache(10)
    sid = full_session(cache, 1)
    ctx = fs.new_context(cache, 12, Req(sid, 1, []), 1)
    out = fs.respond(cache, ctx, answer(ctx, {0: entry(0, hw=-1, error=6)}), 1)[2]
    assert out[0]["partitions"][0]["error_code"] == 6
    ctx = fs.new_context(cache, 12, Req(sid, 2, []), 2)
    assert fs.respond(cache, ctx, answer(ctx, {0: entry(0, hw=10)}), 2)[2] != []  # same hw as before the error


def test_added_and_forgotten_partitions() -> None:
    cache = fs.FetchSessionCache(10)
    sid = full_session(cache, 2)
    req = Req(sid, 1, [T("u", partitions=[P(0)])], [Forget("t", partitions=[0])])
    ctx = fs.new_context(cache, 12, req, 1)
    assert [(t.topic, p.partition) for t in ctx.topics for p in t.partitions] == [("t", 1), ("u", 0)]


def test_session_errors() -> None:
    cache = fs.FetchSessionCache(10)
    assert fs.new_context(cache, 12, Req(12345, 1, []), 0).error == ErrorCode.fetch_session_id_not_found
    sid = full_session(cache, 1)
    assert fs.new_context(cache, 12, Req(sid, 5, []), 0).error == ErrorCode.invalid_fetch_session_epoch
    # A name session is not used by a topic-id request, nor the other way round.
    assert fs.new_context(cache, 13, Req(sid, 1, []), 0).error == ErrorCode.fetch_session_topic_id_error
    sid13 = full_session(cache, 1, version=13)
    assert fs.new_context(cache, 12, Req(sid13, 1, []), 0).error == ErrorCode.fetch_session_topic_id_error


def test_topic_id_sessions_key_by_id() -> None:
    cache = fs.FetchSessionCache(10)
    tid = uuid.uuid4()
    ctx = fs.new_context(cache, 13, Req(0, 0, [T(topic_id=tid, partitions=[P(0), P(1)])]), 0)
    sid = fs.respond(cache, ctx, answer(ctx), 0)[1]
    ctx = fs.new_context(cache, 13, Req(sid, 1, [], [Forget(topic_id=tid, partitions=[0])]), 1)
    assert [(t.topic_id, p.partition) for t in ctx.topics for p in t.partitions] == [(tid, 1)]


def test_a_long_poll_whose_session_moved_on_gets_invalid_epoch() -> None:
    cache = fs.FetchSessionCache(10)
    sid = full_session(cache, 1)
    slow = fs.new_context(cache, 12, Req(sid, 1, []), 1)
    fs.new_context(cache, 12, Req(sid, 2, []), 2)  # the client gave up and went on
    assert fs.respond(cache, slow, answer(slow), 3)[:2] == (ErrorCode.invalid_fetch_session_epoch, 0)


def test_full_fetch_with_an_id_replaces_the_session() -> None:
    cache = fs.FetchSessionCache(10)
    sid = full_session(cache, 1)
    ctx = fs.new_context(cache, 12, Req(sid, 0, [T("t", partitions=[P(0)])]), 1)
    assert cache.get(sid) is None
    assert fs.respond(cache, ctx, answer(ctx), 1)[1] not in (0, sid)
    assert len(cache) == 1


def test_zero_slots_turn_sessions_off() -> None:
    cache = fs.FetchSessionCache(0)
    assert full_session(cache, 3) == 0 and len(cache) == 0


def test_cache_full_young_unprivileged_sessions_are_kept_unless_smaller() -> None:
    cache = fs.FetchSessionCache(2, eviction_ms=1000, rng=random.Random(1))
    a = cache.maybe_create(0, False, False, {("t", i): fs.CachedPartition(i, 0, 1) for i in range(3)})
    b = cache.maybe_create(10, False, False, {("t", i): fs.CachedPartition(i, 0, 1) for i in range(5)})
    assert a and b
    # Young (< eviction_ms since creation) sessions are not evictable by unprivileged ones.
    assert cache.maybe_create(20, False, False, {("t", 0): fs.CachedPartition(0, 0, 1)}) == 0
    # A privileged (follower) session evicts the least valuable unprivileged one: a (3 < 5).
    c = cache.maybe_create(30, True, False, {("t", 0): fs.CachedPartition(0, 0, 1)})
    assert c and cache.get(a) is None and cache.get(b) is not None
    # Stale by use (> eviction_ms since last used): evicted by anyone, least recently used first.
    cache.touch(cache.get(c), 1500)
    d = cache.maybe_create(1500, False, False, {})
    assert d and cache.get(b) is None and cache.evictions == 2


def test_old_sessions_are_evicted_by_size() -> None:
    cache = fs.FetchSessionCache(2, eviction_ms=1000, rng=random.Random(2))
    big = cache.maybe_create(0, False, False, {("t", i): fs.CachedPartition(i, 0, 1) for i in range(9)})
    small = cache.maybe_create(0, False, False, {("t", 0): fs.CachedPartition(0, 0, 1)})
    for sid in (big, small):  # used recently, but created long ago: evictable by all
        cache.touch(cache.get(sid), 1100)
    assert cache.maybe_create(1200, False, False, {}) == 0  # worth less than the smallest (1 partition)
    new = cache.maybe_create(1200, False, False, {("t", i): fs.CachedPartition(i, 0, 1) for i in range(4)})
    assert new and cache.get(small) is None and cache.get(big) is not None


def test_epochs_wrap_to_one() -> None:
    assert fs.next_epoch(2**31 - 1) == 1
    assert fs.next_epoch(0) == 1 and fs.next_epoch(-1) == -1
