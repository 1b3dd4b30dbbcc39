"""dcmirror's own ``__dcmirror.*`` topics (offset syncs, checkpoints, link state, last
contact), kept in one way: ensure, read all, read the tail, append.

Every one is a single partition, written with acks=all and read from its log start, so
one store serves them all and they cannot drift apart: one replication-factor rule
(`replication_factor`: three copies, or one per broker on smaller clusters, the way
MirrorMaker 2 keeps its internal topics but without refusing a one-broker cluster), one
read loop, one append that stays under Kafka's default max.message.bytes. What differs
per topic (its name, retention, compression) is an `InternalTopic`, defined next to the
encoder and decoder of its records (`mirror.records.offsets`, `mirror.records.link_state`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from kio.schema.errors import ErrorCode

from cluster.client.admin import NewTopic
from cluster.client.client import KafkaClient
from cluster.client.data import FetchPosition
from cluster.client.errors import KafkaProtocolError
from cluster.wire.batch_builder import build_batch
from cluster.wire.records import decode_batches

log = logging.getLogger(__name__)

#: Copies of each internal topic, at most (fewer on a cluster with fewer brokers).
MAX_REPLICATION_FACTOR = 3
#: Records per appended batch: far under Kafka's default max.message.bytes (1 MiB).
APPEND_CHUNK = 2000
_FETCH_BYTES = 8 << 20
_PARTITION = 0

#: (offset, key, value) of one stored record.
Record = tuple[int, bytes | None, bytes | None]


@dataclass(frozen=True)
class InternalTopic:
    """One of dcmirror's topics: its name, topic configs and the codec its batches use."""

    name: str
    configs: Mapping[str, str] = field(default_factory=dict)
    codec: int = 0


async def replication_factor(client: KafkaClient) -> int:
    """The one rule for internal topics: three copies, or one per broker when fewer."""
    brokers = len((await client.metadata([])).brokers)
    return max(1, min(MAX_REPLICATION_FACTOR, brokers))


class InternalStore:
    """Reads and appends one internal topic of one cluster. ``ensure`` creates it (once
    per store); reads of a topic that does not exist yet find nothing."""

    def __init__(self, client: KafkaClient, topic: InternalTopic) -> None:
        self.client = client
        self.topic = topic
        self._exists = False

    @property
    def name(self) -> str:
        return self.topic.name

    async def exists(self) -> bool:
        if not self._exists:
            self._exists = self.name in await self.client.list_topics(include_internal=True)
        return self._exists

    async def ensure(self) -> None:
        if await self.exists():
            return
        rf = await replication_factor(self.client)
        try:
            await self.client.create_topics([NewTopic(self.name, 1, rf, dict(self.topic.configs))])
            log.info("created %s (replication factor %d)", self.name, rf)
        except KafkaProtocolError as exc:
            if exc.error_code != ErrorCode.topic_already_exists:
                raise
        self._exists = True

    async def bounds(self) -> tuple[int, int]:
        """(log start, log end) of the topic's partition."""
        return (await self.client.offset_ranges([(self.name, _PARTITION)]))[(self.name, _PARTITION)]

    async def read(self, since: int | None = None) -> tuple[list[Record], int]:
        """Every record from offset ``since`` (the log start when None, or when ``since``
        was deleted), oldest first, and the offset to read from next time."""
        if not await self.exists():
            return [], since or 0
        start, end = await self.bounds()
        return await self._read_range(max(start, since or 0), end)

    async def read_tail(self, n: int) -> list[Record]:
        """The last ``n`` records (fewer when the topic holds fewer), oldest first."""
        if not await self.exists():
            return []
        start, end = await self.bounds()
        records, _ = await self._read_range(max(start, end - n), end)
        return records

    async def _read_range(self, pos: int, end: int) -> tuple[list[Record], int]:
        out: list[Record] = []
        tp = (self.name, _PARTITION)
        while pos < end:
            res = (await self.client.fetch({tp: FetchPosition(pos, _FETCH_BYTES)}, max_wait_ms=0))[tp]
            if res.error_code or not res.records:
                break
            for h, records in decode_batches(res.records):
                out.extend((r.offset, r.key, r.value) for r in records if r.offset >= pos)
                pos = max(pos, h.next_offset)
        return out, pos

    async def append(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Append (key, value) records, creating the topic first if needed; acks=all."""
        if not records:
            return
        await self.ensure()
        now = int(time.time() * 1000)
        for i in range(0, len(records), APPEND_CHUNK):
            batch = build_batch([(k, v, [], now) for k, v in records[i : i + APPEND_CHUNK]],
                                codec=self.topic.codec)
            await self.client.produce(self.name, _PARTITION, batch, acks=-1)
