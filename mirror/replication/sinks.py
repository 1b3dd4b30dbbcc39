"""Where copied batches go: the two ways of writing to a target cluster.

`PreservingSink` (target is a dcmirror cluster): batches travel untouched through the
private DcMirrorAppend API, keep their offsets, and the target's log end offset *is* the
mirror's progress — a restarted or moved daemon resumes exactly, and a re-sent request
is skipped by the broker, so nothing is lost or duplicated.

`TranslatingSink` (any other Kafka cluster): ordinary Produce. Batches stay compressed as
they are; only producer id, epoch, sequence and the transactional bit are cleared (the
target would reject a foreign producer's sequences) and the header CRC is recomputed —
records are never decompressed. Every written batch yields an offset sync (upstream base
-> downstream base, and both ends) stored in the target's `__dcmirror.offset-syncs.<link>`
topic, which is also where a restarted daemon finds its resume position.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import dataclass
from typing import Protocol, Sequence

from kio.schema.errors import ErrorCode

from cluster.client.client import KafkaClient
from cluster.client.errors import KafkaProtocolError
from cluster.wire import codec
from cluster.wire.dcmirror_api import DCMIRROR_APPEND
from cluster.wire import record_batch as rb
from cluster.wire.produce_request import Buffer, produce_v9_parts
from mirror.records.offsets import OffsetSync, claim_sync, decode_syncs, encode_sync, offset_syncs_store

log = logging.getLogger(__name__)

TP = tuple[str, int]
PRODUCE = 0
_ATTR = struct.Struct(">h")


@dataclass
class Written:
    """One partition's outcome: the upstream offset after the last written batch (-1 when
    none was), and the error that stopped it, if any (the copier decides what it means)."""

    next_upstream: int
    syncs: list[OffsetSync]
    error: KafkaProtocolError | None = None
    batches: int = 0  # how many of the partition's batches were written


class Sink(Protocol):
    mode: str

    async def resume_positions(self, tps: Sequence[TP]) -> dict[TP, int | None]: ...

    async def write(self, data: dict[TP, list[memoryview]]) -> dict[TP, Written]: ...


async def is_dcmirror(client: KafkaClient) -> bool:
    """A dcmirror cluster advertises the private offset-preserving append in ApiVersions."""
    conn = await client.any_connection()
    return conn.versions.supports(DCMIRROR_APPEND)


async def _send_by_leader(
    client: KafkaClient, rounds: list[dict[TP, list[Buffer]]], api_key: int | None
) -> list[dict[TP, tuple[int, int, str | None]]]:
    """Send Produce-shaped requests, one per round and target leader, pipelined in round
    order on each connection (a broker serves one connection's requests in order).

    Returns, per round, {tp: (error_code, base_offset, message)}. Rounds exist because
    Kafka accepts only one compressed batch per partition in a Produce request. Requests
    at Produce v9 (always, for DcMirrorAppend) are encoded by hand around the batch
    buffers (`cluster.wire.produce_request`); older versions go through kio."""
    leaders: dict[TP, int] = {}
    for requests in rounds:
        for topic, p in requests:
            if (topic, p) not in leaders:
                leaders[(topic, p)] = await client.leader(topic, p)
    conns = {node: await client.connection(node) for node in set(leaders.values())}
    tasks = []
    for requests in rounds:
        by_node: dict[int, dict[str, list[tuple[int, list[Buffer]]]]] = {}
        for (topic, p), batches in requests.items():
            by_node.setdefault(leaders[(topic, p)], {}).setdefault(topic, []).append((p, batches))
        round_tasks = []
        for node, topics in by_node.items():
            # Created in order, each task writes its request before its first await.
            round_tasks.append(asyncio.ensure_future(_send_one(conns[node], topics, api_key)))
        tasks.append(round_tasks)
    out: list[dict[TP, tuple[int, int, str | None]]] = []
    try:
        for round_tasks in tasks:
            results: dict[TP, tuple[int, int, str | None]] = {}
            for resp in await asyncio.gather(*round_tasks):
                for t in resp.responses:
                    for pr in t.partition_responses:
                        results[(t.name, pr.index)] = (
                            int(pr.error_code), int(pr.base_offset), getattr(pr, "error_message", None))
            out.append(results)
    finally:
        for round_tasks in tasks:
            for t in round_tasks:
                if not t.done():
                    t.cancel()
    return out


async def _send_one(conn, topics: dict[str, list[tuple[int, list[Buffer]]]], api_key: int | None):
    version = 0 if api_key is not None else conn.version_for(PRODUCE, 9)
    key = PRODUCE if api_key is None else api_key
    if api_key is not None or version == 9:
        items = list(topics.items())
        raw = await conn.roundtrip_parts(
            lambda cid: produce_v9_parts(cid, conn.client_id, items, api_key=key, api_version=version),
            "Produce")
        return codec.decode_response(raw, codec.response_schema(key, version))[1]
    from cluster.wire.build import build

    body = build(codec.request_schema(PRODUCE, version), {
        "transactional_id": None, "acks": -1, "timeout": 30000,
        "topic_data": [{"name": t, "partition_data": [{"index": p, "records": b"".join(bs)} for p, bs in ps]}
                       for t, ps in topics.items()],
    })
    return await conn.send(body)


class PreservingSink:
    mode = "preserve-offsets"

    def __init__(self, target: KafkaClient, rename) -> None:
        self.target = target
        self.rename = rename  # source topic -> target topic

    async def resume_positions(self, tps: Sequence[TP]) -> dict[TP, int | None]:
        """Target log end per partition; None where the target partition is still empty
        at offset 0 (the copier then starts where the link says)."""
        out: dict[TP, int | None] = {}
        by_topic: dict[str, list[int]] = {}
        for t, p in tps:
            by_topic.setdefault(t, []).append(p)
        for topic, parts in by_topic.items():
            ends = await self.target.list_offsets(self.rename(topic), parts, -1)
            for p in parts:
                end = ends[p][0]
                out[(topic, p)] = None if end == 0 else end
        return out

    async def write(self, data: dict[TP, list[memoryview]]) -> dict[TP, Written]:
        requests = {(self.rename(t), p): list(bs) for (t, p), bs in data.items()}
        (results,) = await _send_by_leader(self.target, [requests], DCMIRROR_APPEND)
        out = {}
        for (t, p), bs in data.items():
            code, _, msg = results[(self.rename(t), p)]
            if code:
                out[(t, p)] = Written(-1, [], KafkaProtocolError(
                    ErrorCode(code), msg, context=f"append to {self.rename(t)}-{p}"))
                continue
            last = rb.read_header(bs[-1])
            out[(t, p)] = Written(last.next_offset, [], None, len(bs))
        return out


def for_produce(batch: memoryview) -> bytes:
    """A copy of `batch` as a producer would send it: base offset 0 (Kafka 4 refuses
    anything else from clients) and, for idempotent/transactional batches, no producer
    id/epoch/sequence and no transactional bit, with the CRC recomputed. The records —
    compressed or not — are untouched."""
    b = bytearray(batch)
    rb.set_base_offset(b, 0)
    if rb.read_header(b).producer_id < 0:
        return bytes(b)
    (attrs,) = _ATTR.unpack_from(b, rb.ATTRIBUTES_OFFSET)
    _ATTR.pack_into(b, rb.ATTRIBUTES_OFFSET, attrs & ~rb.TRANSACTIONAL_BIT)
    struct.pack_into(">qhi", b, 43, -1, -1, -1)
    struct.pack_into(">I", b, rb.CRC_OFFSET, rb.compute_crc(b))
    return bytes(b)


class TranslatingSink:
    mode = "translate"

    def __init__(self, target: KafkaClient, rename, link_name: str) -> None:
        self.target = target
        self.rename = rename
        self.syncs = offset_syncs_store(target, link_name)
        self.read_to = 0  # the sync topic was read up to here

    async def read_syncs(self, since: int | None = None) -> list[OffsetSync]:
        """Every sync in the target's sync topic, oldest first (from offset ``since``)."""
        await self.syncs.ensure()
        records, pos = await self.syncs.read(since)
        self.read_to = max(self.read_to, pos)
        return decode_syncs(records)

    async def new_claims(self) -> set[str]:
        """Source topics named by syncs or claims written since the last read (by anyone)."""
        return {s.topic for s in await self.read_syncs(self.read_to)}

    async def claim(self, source_topics: Sequence[str]) -> None:
        """Record that the link owns the target copies of these source topics
        (`mirror.replication.existing`): translation-mode targets have no topic marker."""
        await self.syncs.append([encode_sync(claim_sync(t)) for t in source_topics])

    async def resume_positions(self, tps: Sequence[TP]) -> dict[TP, int | None]:
        latest: dict[TP, int] = {}
        for s in await self.read_syncs():
            nxt = s.upstream_next if s.upstream_next is not None else s.upstream_offset
            latest[(s.topic, s.partition)] = max(latest.get((s.topic, s.partition), -1), nxt)
        return {tp: latest.get(tp) for tp in tps}

    async def write(self, data: dict[TP, list[memoryview]]) -> dict[TP, Written]:
        """Produce each partition's batches (one per request: Kafka's rule for compressed
        batches), then record offset syncs for the batches that were acknowledged in order;
        a partition's first refused batch is its ``error``. A failure after a later batch
        succeeded re-sends that later batch on resume: at most one request's batches per
        partition are duplicated, never any lost."""
        await self.syncs.ensure()
        stripped = {tp: [for_produce(b) for b in bs] for tp, bs in data.items()}
        depth = max(len(bs) for bs in stripped.values())
        rounds = [{(self.rename(t), p): [bs[k]] for (t, p), bs in stripped.items() if k < len(bs)}
                  for k in range(depth)]
        results = await _send_by_leader(self.target, rounds, None)
        out: dict[TP, Written] = {}
        sync_records = []
        for (t, p), bs in data.items():
            syncs = []
            failure: KafkaProtocolError | None = None
            for k, b in enumerate(bs):
                code, base, msg = results[k][(self.rename(t), p)]
                if code:
                    failure = KafkaProtocolError(ErrorCode(code), msg, context=f"produce to {self.rename(t)}-{p}")
                    break
                h = rb.read_header(b)
                span = h.last_offset_delta + 1
                syncs.append(OffsetSync(t, p, h.base_offset, base, h.next_offset, base + span))
            out[(t, p)] = Written((syncs[-1].upstream_next or 0) if syncs else -1, syncs, failure, len(syncs))
            sync_records += [encode_sync(s) for s in syncs]
        await self.syncs.append(sync_records)
        return out
