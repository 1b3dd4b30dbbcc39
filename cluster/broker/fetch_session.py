"""Incremental fetch sessions (KIP-227): the session cache and the per-request context.

Why: a consumer of 1,000 partitions otherwise sends and receives 1,000 partition entries
on every Fetch, even when nothing changed. With a session the broker remembers what the
client fetches; the client then sends only the partitions whose position changed (and
`forgotten_topics_data` for the ones it dropped), and the broker answers only the
partitions that have something to say.

Pure (no I/O, no asyncio; the caller passes the time), and modelled on Apache Kafka's
FetchSession.scala, whose rules clients rely on:

- Request metadata (session_id, session_epoch): epoch -1 (FINAL) is a sessionless full
  fetch, closing session_id if given; epoch 0 (INITIAL) is a full fetch that closes
  session_id if given and asks for a new session; epoch > 0 is an incremental fetch of
  session_id, which must exist (else FETCH_SESSION_ID_NOT_FOUND) and be at that epoch
  (else INVALID_FETCH_SESSION_EPOCH); a session made with topic ids (v13+) is only used by
  v13+ requests and one made with names only by v7-v12 (else FETCH_SESSION_TOPIC_ID_ERROR).
  Fetch v4-v6 have no sessions.
- An incremental request adds or updates the partitions it names, then removes the
  forgotten ones, and bumps the epoch. The fetch reads every partition of the session, in
  session order; a partition that returned records moves to the end (fairness). The
  response carries a partition only when it has records, an error, a preferred read
  replica, a diverging epoch, or a high watermark, last stable offset or log start
  offset other than the one last sent. (Kafka does not compare the last stable offset; we do, so a
  read_committed consumer's lag is never stale. It costs a partition entry at most.)
- A full fetch answers every partition and, at response time, creates a session if the
  cache has a slot: fewer than `max_entries` sessions, or one can be evicted
  (FetchSessionCache.tryEvict): the least recently used one if unused for `eviction_ms`;
  else the least valuable evictable one if the new one is worth at least as much. A
  session is worth more when privileged (a follower's), then when larger. A session
  becomes evictable by everyone once older than `eviction_ms`; by a privileged newcomer
  also while young, unless it is itself privileged. No slot: session id 0, and the client
  keeps sending full fetches. `max_entries` 0 turns sessions off.
- A long poll may outlive its session's next use: the response of an incremental fetch
  whose session moved on meanwhile is INVALID_FETCH_SESSION_EPOCH, as Kafka answers.

Kafka 3.7+ shards this cache by session id (each shard a share of the slots); one
unsharded cache is what a single broker process needs and is what the eviction rules
above describe.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any, Sequence

from kio.schema.errors import ErrorCode

INITIAL_EPOCH = 0
FINAL_EPOCH = -1
INVALID_SESSION_ID = 0
DEFAULT_CACHE_SLOTS = 1000  # Kafka's max.incremental.fetch.session.cache.slots default
EVICTION_MS = 120_000  # Kafka's fetch session eviction time (not configurable there)
_INT32_MAX = 2**31 - 1
_ZERO_ID = uuid.UUID(int=0)

Key = tuple[Any, int]  # (topic id, or topic name for a v7-v12 session; partition)


def next_epoch(epoch: int) -> int:
    """The epoch after `epoch` (JFetchMetadata.nextEpoch: wraps to 1, FINAL stays)."""
    if epoch < 0:
        return FINAL_EPOCH
    return 1 if epoch == _INT32_MAX else epoch + 1


@dataclass
class CachedPartition:
    """One partition of a session: the client's last request for it and the last answer.

    Carries the attribute names of a request's FetchPartition, so the fetch path reads a
    session's partitions and a request's the same way."""

    partition: int
    fetch_offset: int
    partition_max_bytes: int
    current_leader_epoch: int = -1
    last_fetched_epoch: int = -1
    log_start_offset: int = -1  # a follower's own log start (Fetch v5+)
    # What the client was last told; -1: never told (or an error since: tell again).
    high_watermark: int = -1
    last_stable_offset: int = -1
    local_log_start_offset: int = -1

    def update_request(self, p: Any) -> None:
        self.fetch_offset = p.fetch_offset
        self.partition_max_bytes = p.partition_max_bytes
        self.current_leader_epoch = getattr(p, "current_leader_epoch", -1)
        self.last_fetched_epoch = getattr(p, "last_fetched_epoch", -1)
        self.log_start_offset = getattr(p, "log_start_offset", -1)

    def must_respond(self, entry: dict, update: bool) -> bool:
        """Does the client need this partition's `entry`? Remembers what it is told when
        `update` (Kafka's CachedPartition.maybeUpdateResponseData)."""
        respond = (records_size(entry.get("records")) > 0 or entry.get("preferred_read_replica", -1) >= 0
                   or "diverging_epoch" in entry)
        for mine, theirs in (("high_watermark", "high_watermark"),
                             ("last_stable_offset", "last_stable_offset"),
                             ("local_log_start_offset", "log_start_offset")):
            if getattr(self, mine) != entry[theirs]:
                respond = True
                if update:
                    setattr(self, mine, entry[theirs])
        if entry["error_code"]:
            # Always sent; forget the watermark so the partition is sent again once healthy.
            respond = True
            if update:
                self.high_watermark = -1
        return respond


def cached_partition(p: Any) -> CachedPartition:
    c = CachedPartition(p.partition, p.fetch_offset, p.partition_max_bytes)
    c.update_request(p)
    return c


def records_size(records: Any) -> int:
    """Bytes of a response entry's records: one buffer or a list of pieces (file ranges)."""
    if records is None:
        return 0
    if isinstance(records, list):
        return sum(len(r) for r in records)
    return len(records)


@dataclass
class SessionTopic:
    """A run of a session's partitions of one topic, shaped like a request's FetchTopic."""

    topic: str
    topic_id: uuid.UUID
    partitions: list[CachedPartition]


@dataclass(eq=False)
class FetchSession:
    id: int
    privileged: bool
    uses_topic_ids: bool
    creation_ms: int
    last_used_ms: int
    epoch: int
    partitions: dict[Key, CachedPartition]  # insertion order is the fetch order
    # Set by FetchSessionCache.touch, as Kafka files a session in its eviction maps.
    evictable_by_all: bool = False
    evictable_by_privileged: bool = False

    def value(self) -> tuple[bool, int, int]:
        """Kafka's EvictableKey order: privileged over not, then size, then id."""
        return (self.privileged, len(self.partitions), self.id)

    def topics(self) -> list[SessionTopic]:
        """The session's partitions grouped into runs of one topic, in session order."""
        out: list[SessionTopic] = []
        for (tkey, _), cp in self.partitions.items():
            name, tid = ("", tkey) if self.uses_topic_ids else (tkey, _ZERO_ID)
            if out and (out[-1].topic_id if self.uses_topic_ids else out[-1].topic) == tkey:
                out[-1].partitions.append(cp)
            else:
                out.append(SessionTopic(name, tid, [cp]))
        return out


class FetchSessionCache:
    """At most `max_entries` sessions, evicted by Kafka's FetchSessionCache rules."""

    def __init__(self, max_entries: int = DEFAULT_CACHE_SLOTS, eviction_ms: int = EVICTION_MS,
                 rng: random.Random | None = None) -> None:
        if max_entries < 0:
            raise ValueError(f"the fetch session cache size must be 0 or more, got {max_entries}")
        self.max_entries = max_entries
        self.eviction_ms = eviction_ms
        self.sessions: dict[int, FetchSession] = {}
        self.evictions = 0
        self.incremental_fetches = 0  # requests served from a session (tests, operators)
        self._rng = rng or random.Random()

    def __len__(self) -> int:
        return len(self.sessions)

    def get(self, session_id: int) -> FetchSession | None:
        return self.sessions.get(session_id)

    def remove(self, session_id: int) -> FetchSession | None:
        return self.sessions.pop(session_id, None)

    def touch(self, session: FetchSession, now_ms: int) -> None:
        """Mark a use, and file the session as evictable the way Kafka's touch does."""
        session.last_used_ms = now_ms
        old = now_ms - session.creation_ms > self.eviction_ms
        session.evictable_by_all = old
        session.evictable_by_privileged = old or not session.privileged

    def maybe_create(self, now_ms: int, privileged: bool, uses_topic_ids: bool,
                     partitions: dict[Key, CachedPartition]) -> int:
        """A new session's id, or INVALID_SESSION_ID when there is no slot for it."""
        if self.max_entries == 0:
            return INVALID_SESSION_ID
        if len(self.sessions) >= self.max_entries \
                and not self._try_evict(privileged, len(partitions), now_ms):
            return INVALID_SESSION_ID
        sid = self._new_id()
        session = FetchSession(sid, privileged, uses_topic_ids, now_ms, now_ms,
                               next_epoch(INITIAL_EPOCH), partitions)
        self.sessions[sid] = session
        self.touch(session, now_ms)
        return sid

    def _try_evict(self, privileged: bool, size: int, now_ms: int) -> bool:
        if not self.sessions:
            return False
        lru = min(self.sessions.values(), key=lambda s: (s.last_used_ms, s.id))
        if now_ms - lru.last_used_ms > self.eviction_ms:
            return self._evict(lru)
        pool = [s for s in self.sessions.values()
                if (s.evictable_by_privileged if privileged else s.evictable_by_all)]
        if not pool:
            return False
        least = min(pool, key=FetchSession.value)
        # The newcomer's key has id 0, so an equal (privileged, size) never evicts.
        if (privileged, size, 0) < least.value():
            return False
        return self._evict(least)

    def _evict(self, session: FetchSession) -> bool:
        del self.sessions[session.id]
        self.evictions += 1
        return True

    def _new_id(self) -> int:
        while True:
            sid = self._rng.randint(1, _INT32_MAX)
            if sid not in self.sessions:
                return sid


@dataclass
class FetchContext:
    """What one Fetch request reads, and how its response is made (FetchManager.newContext)."""

    kind: str  # "sessionless" | "full" | "incremental" | "error"
    error: int = 0
    topics: Sequence[Any] = ()  # request FetchTopics, or the session's SessionTopics
    session: FetchSession | None = None
    expected_epoch: int = 0
    uses_topic_ids: bool = False
    privileged: bool = False


def _key(uses_topic_ids: bool, t: Any) -> Any:
    return t.topic_id if uses_topic_ids else t.topic


def new_context(cache: FetchSessionCache, version: int, req: Any, now_ms: int,
                privileged: bool = False) -> FetchContext:
    """Validate the request's session metadata and apply an incremental request."""
    uses_ids = version >= 13
    if version < 7:
        return FetchContext("sessionless", topics=req.topics, uses_topic_ids=uses_ids)
    sid, epoch = req.session_id, req.session_epoch
    if epoch in (INITIAL_EPOCH, FINAL_EPOCH):
        if sid != INVALID_SESSION_ID:
            cache.remove(sid)
        kind = "full" if epoch == INITIAL_EPOCH else "sessionless"
        return FetchContext(kind, topics=req.topics, uses_topic_ids=uses_ids, privileged=privileged)
    session = cache.get(sid)
    if session is None:
        return FetchContext("error", error=ErrorCode.fetch_session_id_not_found)
    if session.epoch != epoch:
        return FetchContext("error", error=ErrorCode.invalid_fetch_session_epoch)
    if session.uses_topic_ids != uses_ids:
        return FetchContext("error", error=ErrorCode.fetch_session_topic_id_error)
    for t in req.topics:
        tkey = _key(uses_ids, t)
        for p in t.partitions:
            key = (tkey, p.partition)
            cp = session.partitions.get(key)
            if cp is None:
                session.partitions[key] = cached_partition(p)
            else:
                cp.update_request(p)
    for t in getattr(req, "forgotten_topics_data", None) or ():
        tkey = _key(uses_ids, t)
        for p in t.partitions:
            session.partitions.pop((tkey, p), None)
    session.epoch = next_epoch(session.epoch)
    cache.touch(session, now_ms)
    cache.incremental_fetches += 1
    return FetchContext("incremental", topics=session.topics(), session=session,
                        expected_epoch=session.epoch, uses_topic_ids=uses_ids)


def respond(cache: FetchSessionCache, ctx: FetchContext, responses: list[dict],
            now_ms: int) -> tuple[int, int, list[dict]]:
    """(error_code, session_id, responses to send) for the context's collected `responses`
    (the handler's topic dicts, partitions in the order the context listed them)."""
    if ctx.kind == "sessionless":
        return 0, INVALID_SESSION_ID, responses
    if ctx.kind == "full":
        return 0, _create_session(cache, ctx, responses, now_ms), responses
    session = ctx.session
    assert session is not None
    if cache.get(session.id) is not session or session.epoch != ctx.expected_epoch:
        return ErrorCode.invalid_fetch_session_epoch, INVALID_SESSION_ID, []
    return 0, session.id, _incremental(session, ctx, responses)


def _create_session(cache: FetchSessionCache, ctx: FetchContext, responses: list[dict],
                    now_ms: int) -> int:
    partitions: dict[Key, CachedPartition] = {}
    for t, rt in zip(ctx.topics, responses):
        tkey = _key(ctx.uses_topic_ids, t)
        for p, entry in zip(t.partitions, rt["partitions"]):
            cp = cached_partition(p)
            cp.must_respond(entry, update=True)
            partitions[(tkey, p.partition)] = cp
    return cache.maybe_create(now_ms, ctx.privileged, ctx.uses_topic_ids, partitions)


def _incremental(session: FetchSession, ctx: FetchContext, responses: list[dict]) -> list[dict]:
    out: list[dict] = []
    moved: list[Key] = []
    for t, rt in zip(ctx.topics, responses):
        tkey = _key(ctx.uses_topic_ids, t)
        kept = []
        for p, entry in zip(t.partitions, rt["partitions"]):
            if p.must_respond(entry, update=True):
                kept.append(entry)
                if records_size(entry.get("records")):
                    moved.append((tkey, p.partition))
        if kept:
            out.append({**{k: v for k, v in rt.items() if k != "partitions"}, "partitions": kept})
    for key in moved:  # partitions that returned data go to the back of the session
        cp = session.partitions.pop(key, None)
        if cp is not None:
            session.partitions[key] = cp
    return out

