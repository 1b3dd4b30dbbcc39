"""Offset syncs, offset translation, and how both are stored as Kafka records.

When the target is not a dcmirror cluster it assigns its own offsets, so a consumer group's
upstream position must be *translated* before it means anything downstream. The copier
emits one :class:`OffsetSync` per produced batch: the upstream batch's base offset maps to
the downstream base offset the target assigned, and the upstream offset after the batch
maps to the downstream offset after it. :class:`OffsetSyncStore` keeps those points per
partition and answers "where should a group at upstream offset ``u`` resume downstream?".

Invariants of :class:`OffsetSyncStore` (tested with Hypothesis in tests/mirror/records/test_offsets.py):

1. **Exact at batch boundaries.** For every batch whose sync is still held, translating its
   upstream base (or next) offset returns exactly its downstream base (or next) offset.
2. **Never skips.** ``translate(u)`` is never beyond the downstream position of the first
   record at or after ``u``: a group resuming there sees every record it had not consumed.
3. **Bounded re-delivery.** Inside a held batch, ``translate(u)`` is that batch's downstream
   start, so at most one batch is delivered twice. Past the newest sync it is the newest
   downstream "next" offset (records not yet copied arrive after it). Thinning (below)
   widens the re-delivered span to the gap between the two held points around ``u``.
4. **Monotonic.** For a fixed store, ``u1 <= u2`` implies ``translate(u1) <= translate(u2)``.
5. **Refuses to guess.** Below the oldest held point it returns None (MM2 returns -1):
   mapping to a later point would skip data, to an earlier one we do not know.

Memory is bounded two ways: :meth:`OffsetSyncStore.forget_before` drops points no group
still needs (the caller passes the smallest committed upstream offset of all mirrored
groups), and ``max_points`` thins the older half of the history to every other point
when exceeded, so old history ends up roughly exponentially spaced (the idea of MM2's
power-of-two buckets) while the newest half stays exact. A sync going backwards (the
copier restarted from an earlier offset and re-produced) drops every point at or after it
upstream; a sync going backwards downstream (target topic truncated or recreated) drops
all points. Both keep the held points increasing in both offsets.

In offset-preserving mode downstream offsets equal upstream ones and translation is the
identity (`mirror.replication.mode.IdentityMapping`); no syncs are written.

Record formats (key and value both start with an int16 version; decoders read the
fields of versions they know and ignore trailing bytes, so newer writers may append):

- ``__dcmirror.offset-syncs.<link>``: key v0 = topic (int16-length UTF-8), partition
  (int32); value v0 = upstream, downstream, upstream_next, downstream_next (int64, -1 for
  unknown), then, when not 0, possible_duplicates (int64: target records before this
  sync that the mirror could not rule out as duplicates; see mirror.replication.resume_check). Use ``cleanup.policy=delete``: compaction would keep only the newest sync
  per partition and lose exactness for groups behind it.
  A sync with partition -1 (:data:`CLAIM_PARTITION`, offsets 0 -> 0) claims the topic
  for the link: the link created or adopted its target copy (`mirror.replication.existing`).
- ``__dcmirror.checkpoints.<link>``: key v0 = group, topic (int16-length UTF-8),
  partition (int32); value v0 = upstream, downstream (int64), metadata (int16-length
  UTF-8, -1 for null), timestamp_ms (int64). Compaction is fine: the newest wins.
"""

from __future__ import annotations

import bisect
import logging
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from mirror.records.store import InternalStore, InternalTopic, Record

log = logging.getLogger(__name__)

OFFSET_SYNCS_PREFIX = "__dcmirror.offset-syncs."
#: Offset syncs (and claims) are kept a week: a group idle for longer resumes from its
#: checkpoint's last translation, never from a guess.
SYNC_RETENTION_MS = 7 * 24 * 3600 * 1000
CHECKPOINTS_PREFIX = "__dcmirror.checkpoints."
RECORD_VERSION = 0

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_SYNC_VALUE = struct.Struct(">hqqqq")


#: A sync for this partition is a *claim*: the link created or adopted the named target
#: topic (translation mode has no topic marker). Readers that translate never ask for it.
CLAIM_PARTITION = -1


def claim_sync(topic: str) -> "OffsetSync":
    """The record that says the link owns (the target copy of) source topic ``topic``."""
    return OffsetSync(topic, CLAIM_PARTITION, 0, 0)


def offset_syncs_topic(link: str) -> str:
    return f"{OFFSET_SYNCS_PREFIX}{link}"


def checkpoints_topic(link: str) -> str:
    return f"{CHECKPOINTS_PREFIX}{link}"


class OffsetRecordError(ValueError):
    """A sync or checkpoint record we cannot decode (corrupt, or from a newer major version)."""


@dataclass(frozen=True)
class OffsetSync:
    """Upstream ``upstream_offset`` is downstream ``downstream_offset`` in one partition.

    With ``upstream_next``/``downstream_next`` (the offsets right after the batch) the sync
    also pins the batch's end, which makes a group sitting at the end of the data exact.
    """

    topic: str
    partition: int
    upstream_offset: int
    downstream_offset: int
    upstream_next: int | None = None
    downstream_next: int | None = None
    #: target records before ``downstream_offset`` that the writer could not rule out as
    #: duplicates of what it wrote (translation's resume check); summed per partition
    possible_duplicates: int = 0

    def __post_init__(self) -> None:
        if self.possible_duplicates < 0:
            raise ValueError(f"possible_duplicates must not be negative: {self}")
        if self.upstream_offset < 0 or self.downstream_offset < 0:
            raise ValueError(f"offsets must not be negative: {self}")
        if (self.upstream_next is None) != (self.downstream_next is None):
            raise ValueError("upstream_next and downstream_next go together")
        if self.upstream_next is not None and self.downstream_next is not None:
            if self.upstream_next <= self.upstream_offset or self.downstream_next <= self.downstream_offset:
                raise ValueError(f"a batch ends after it starts: {self}")

    def points(self) -> list[tuple[int, int]]:
        out = [(self.upstream_offset, self.downstream_offset)]
        if self.upstream_next is not None and self.downstream_next is not None:
            out.append((self.upstream_next, self.downstream_next))
        return out


@dataclass(frozen=True)
class Checkpoint:
    """A group's upstream commit and its translation, as written for the target side."""

    group: str
    topic: str
    partition: int
    upstream_offset: int
    downstream_offset: int
    metadata: str | None = None
    timestamp_ms: int = 0


class OffsetSyncStore:
    """The sync points of one partition, and translation through them (see module doc)."""

    def __init__(self, max_points: int = 4096) -> None:
        if max_points < 4:
            raise ValueError("max_points must be at least 4")
        self.max_points = max_points
        self._up: list[int] = []
        self._down: list[int] = []

    def __len__(self) -> int:
        return len(self._up)

    def points(self) -> list[tuple[int, int]]:
        """Held (upstream, downstream) points, oldest first (for status and tests)."""
        return list(zip(self._up, self._down))

    def add(self, sync: OffsetSync) -> None:
        for up, down in sync.points():
            self._add_point(up, down)
        while len(self._up) > self.max_points:
            self._thin()

    def _add_point(self, up: int, down: int) -> None:
        if self._up and down < self._down[-1]:
            # The downstream log went back (target topic truncated or recreated): no held
            # point can be trusted any more, so start over rather than guess.
            log.debug("sync %d->%d goes back downstream; dropping %d points", up, down, len(self._up))
            self._up.clear()
            self._down.clear()
        elif self._up and up <= self._up[-1]:
            # The copier went back upstream (restart, retry) and re-produced: points from
            # here on are superseded, and keeping them would break monotonicity.
            cut = bisect.bisect_left(self._up, up)
            del self._up[cut:], self._down[cut:]
        self._up.append(up)
        self._down.append(down)

    def _thin(self) -> None:
        """Drop every other point of the older half, keeping the oldest one."""
        half = len(self._up) // 2
        keep = [i for i in range(half) if i % 2 == 0] + list(range(half, len(self._up)))
        self._up = [self._up[i] for i in keep]
        self._down = [self._down[i] for i in keep]

    def forget_before(self, upstream_offset: int) -> None:
        """Drop points no group at or after ``upstream_offset`` needs.

        The newest point at or below ``upstream_offset`` stays, so translating
        ``upstream_offset`` itself is unchanged.
        """
        i = bisect.bisect_right(self._up, upstream_offset) - 1
        if i > 0:
            del self._up[:i], self._down[:i]

    def translate(self, upstream_offset: int) -> int | None:
        """Where a group at ``upstream_offset`` resumes downstream; None if unknown."""
        i = bisect.bisect_right(self._up, upstream_offset) - 1
        if i < 0:
            return None
        return self._down[i]

    def rereads(self, upstream_offset: int) -> int:
        """Records a group resuming at ``translate(upstream_offset)`` reads a second time:
        the distance back to the held point at or below it (0 below every point)."""
        i = bisect.bisect_right(self._up, upstream_offset) - 1
        return 0 if i < 0 else upstream_offset - self._up[i]

    def newest(self) -> tuple[int, int] | None:
        """The newest held (upstream, downstream) point: how far the target holds the data."""
        return (self._up[-1], self._down[-1]) if self._up else None


class OffsetSyncIndex:
    """One :class:`OffsetSyncStore` per (topic, partition), fed by sync records."""

    def __init__(self, max_points_per_partition: int = 4096) -> None:
        self._max = max_points_per_partition
        self._stores: dict[tuple[str, int], OffsetSyncStore] = {}

    def add(self, sync: OffsetSync) -> None:
        key = (sync.topic, sync.partition)
        store = self._stores.get(key)
        if store is None:
            store = self._stores[key] = OffsetSyncStore(self._max)
        store.add(sync)

    def add_all(self, syncs: Iterable[OffsetSync]) -> None:
        for sync in syncs:
            self.add(sync)

    def store(self, topic: str, partition: int) -> OffsetSyncStore | None:
        return self._stores.get((topic, partition))

    def translate(self, topic: str, partition: int, upstream_offset: int) -> int | None:
        store = self._stores.get((topic, partition))
        return None if store is None else store.translate(upstream_offset)

    def forget_before(self, topic: str, partition: int, upstream_offset: int) -> None:
        store = self._stores.get((topic, partition))
        if store is not None:
            store.forget_before(upstream_offset)

    def drop_topic(self, topic: str) -> None:
        """Forget a topic entirely (deleted or recreated upstream: old syncs are lies)."""
        for key in [k for k in self._stores if k[0] == topic]:
            del self._stores[key]


# -- record encoding ---------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def take(self, s: struct.Struct) -> tuple[int, ...]:
        if self.pos + s.size > len(self.data):
            raise OffsetRecordError(f"{self.what} is truncated at byte {self.pos}")
        out = s.unpack_from(self.data, self.pos)
        self.pos += s.size
        return out

    def version(self) -> int:
        (version,) = self.take(_I16)
        if version < 0 or version > RECORD_VERSION:
            message = f"{self.what} has version {version}; this dcmirror reads up to {RECORD_VERSION}"
            raise OffsetRecordError(message)
        return version

    def string(self, nullable: bool = False) -> str | None:
        (n,) = self.take(_I16)
        if n < 0:
            if nullable:
                return None
            raise OffsetRecordError(f"{self.what} has a null string where one is required")
        if self.pos + n > len(self.data):
            raise OffsetRecordError(f"{self.what} is truncated at byte {self.pos}")
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise OffsetRecordError(f"{self.what} has invalid UTF-8: {exc.reason}") from None


def _string(text: str | None) -> bytes:
    if text is None:
        return _I16.pack(-1)
    raw = text.encode("utf-8")
    if len(raw) > 0x7FFF:
        raise ValueError(f"string of {len(raw)} bytes is too long for an int16 length")
    return _I16.pack(len(raw)) + raw


def encode_sync(sync: OffsetSync) -> tuple[bytes, bytes]:
    """(key, value) of the record for ``__dcmirror.offset-syncs.<link>``."""
    key = _I16.pack(RECORD_VERSION) + _string(sync.topic) + _I32.pack(sync.partition)
    value = _SYNC_VALUE.pack(
        RECORD_VERSION,
        sync.upstream_offset,
        sync.downstream_offset,
        -1 if sync.upstream_next is None else sync.upstream_next,
        -1 if sync.downstream_next is None else sync.downstream_next,
    )
    if sync.possible_duplicates:  # appended field: older readers ignore it
        value += _I64.pack(sync.possible_duplicates)
    return key, value


def decode_sync(key: bytes, value: bytes) -> OffsetSync:
    k = _Reader(key, "offset sync key")
    k.version()
    topic = k.string()
    (partition,) = k.take(_I32)
    v = _Reader(value, "offset sync value")
    v.version()
    up, down, up_next, down_next = v.take(struct.Struct(">qqqq"))
    (doubtful,) = v.take(_I64) if len(value) - v.pos >= _I64.size else (0,)
    try:
        return OffsetSync(
            topic=topic or "",
            partition=partition,
            upstream_offset=up,
            downstream_offset=down,
            upstream_next=None if up_next < 0 else up_next,
            downstream_next=None if down_next < 0 else down_next,
            possible_duplicates=max(0, doubtful),
        )
    except ValueError as exc:
        raise OffsetRecordError(f"offset sync is inconsistent: {exc}") from None


def encode_checkpoint(cp: Checkpoint) -> tuple[bytes, bytes]:
    """(key, value) of the record for ``__dcmirror.checkpoints.<link>``."""
    key = _I16.pack(RECORD_VERSION) + _string(cp.group) + _string(cp.topic) + _I32.pack(cp.partition)
    value = (
        _I16.pack(RECORD_VERSION)
        + _I64.pack(cp.upstream_offset)
        + _I64.pack(cp.downstream_offset)
        + _string(cp.metadata)
        + _I64.pack(cp.timestamp_ms)
    )
    return key, value


def decode_checkpoint(key: bytes, value: bytes) -> Checkpoint:
    k = _Reader(key, "checkpoint key")
    k.version()
    group = k.string() or ""
    topic = k.string() or ""
    (partition,) = k.take(_I32)
    v = _Reader(value, "checkpoint value")
    v.version()
    (up,) = v.take(_I64)
    (down,) = v.take(_I64)
    metadata = v.string(nullable=True)
    (ts,) = v.take(_I64)
    return Checkpoint(group, topic, partition, up, down, metadata, ts)


# -- where they are stored ---------------------------------------------------------------


def offset_syncs_store(client, link: str) -> InternalStore:
    """The link's sync topic on the target (``cleanup.policy=delete``, see the module doc)."""
    return InternalStore(client, InternalTopic(offset_syncs_topic(link), {"retention.ms": str(SYNC_RETENTION_MS)}))


def checkpoints_store(client, link: str) -> InternalStore:
    return InternalStore(client, InternalTopic(checkpoints_topic(link)))


def decode_syncs(records: Iterable[Record]) -> list[OffsetSync]:
    return [decode_sync(k, v) for _, k, v in records if k is not None and v is not None]


async def read_checkpoints(client, link: str) -> list[Checkpoint]:
    """Every checkpoint record of the link, oldest first."""
    records, _ = await checkpoints_store(client, link).read()
    return [decode_checkpoint(k, v) for _, k, v in records if k is not None and v is not None]
