"""Where copied batches go: the two ways of writing to a target cluster.

`PreservingSink` (target is a dcmirror cluster): batches travel untouched through the
private DcMirrorAppend API, keep their offsets, and the target's log end offset *is* the
mirror's progress — a restarted or moved daemon resumes exactly, and a re-sent request
is skipped by the broker, so nothing is lost or duplicated.

`TranslatingSink` (any other Kafka cluster): ordinary Produce, as one idempotent producer
(`mirror.replication.idempotence`): batches stay compressed as they are; the header gets
our producer id, epoch and per-partition sequence (the source's transactional bit cleared)
and a recomputed CRC — records are never decompressed — so the target broker itself drops
a batch re-sent after a lost reply. Every written batch yields an offset sync (upstream
base -> downstream base, and both ends) stored in the target's
`__dcmirror.offset-syncs.<link>` topic, which is also where a restarted daemon finds its
resume position; on resume the target's records beyond the last sync are compared with the
source (`mirror.replication.resume_check`), so a batch that landed but was never synced is
not written twice, and what cannot be matched is counted as a possible duplicate.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, replace
from typing import Protocol, Sequence

from kio.schema.errors import ErrorCode

from cluster.client.client import KafkaClient
from cluster.client.data import FetchPosition
from cluster.client.errors import KafkaProtocolError
from cluster.client.pipeline import Buffer
from cluster.wire import record_batch as rb
from mirror.records.offsets import OffsetSync, claim_sync, decode_syncs, encode_sync, offset_syncs_store
from mirror.replication.idempotence import DUPLICATE, RESET_IDENTITY, Identity, Sequencer, rewrite
from mirror.replication.resume_check import TAIL_LIMIT, Tail, landed_batches

log = logging.getLogger(__name__)

TP = tuple[str, int]
_ATTR = struct.Struct(">h")


@dataclass
class Written:
    """One partition's outcome: the upstream offset after the last written batch (-1 when
    none was), and the error that stopped it, if any (the copier decides what it means)."""

    next_upstream: int
    syncs: list[OffsetSync]
    error: KafkaProtocolError | None = None
    batches: int = 0  # how many of the partition's batches were written
    #: target records this write could not rule out as copies of what it wrote (translation)
    possible_duplicates: int = 0


class Sink(Protocol):
    mode: str

    async def resume_positions(self, tps: Sequence[TP]) -> dict[TP, int | None]: ...

    async def write(self, data: dict[TP, list[memoryview]]) -> dict[TP, Written]: ...


class PreservingSink:
    mode = "preserve-offsets"

    def __init__(self, target: KafkaClient, rename) -> None:
        self.target = target
        self.rename = rename  # source topic -> target topic

    async def resume_positions(self, tps: Sequence[TP]) -> dict[TP, int | None]:
        """Target log end per partition; None where the target partition is still empty
        at offset 0 (the copier then starts where the link says)."""
        ends = await self.target.end_offsets([(self.rename(t), p) for t, p in tps])
        return {(t, p): ends[(self.rename(t), p)] or None for t, p in tps}

    async def write(self, data: dict[TP, list[memoryview]]) -> dict[TP, Written]:
        requests = {(self.rename(t), p): list(bs) for (t, p), bs in data.items()}
        (results,) = await self.target.append_rounds([requests])
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
    """Ordinary Produce as one idempotent producer, with the resume check (module doc)."""

    mode = "translate"

    def __init__(self, target: KafkaClient, rename, link_name: str) -> None:
        self.target = target
        self.rename = rename
        self.link_name = link_name
        self.syncs = offset_syncs_store(target, link_name)
        self.read_to = 0  # the sync topic was read up to here
        self._sequencer: Sequencer | None = None
        self._idempotent = True  # False once the target refused InitProducerId for good
        self._reset = False  # the target's producer state and ours disagree: new identity
        self._tails: dict[TP, Tail] = {}  # unsynced target tails found by the last resume
        self._carry: dict[TP, int] = {}  # possible duplicates not yet written in a sync

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
        """Per partition the upstream end of its newest sync (None: never synced), after
        reading what the target holds beyond that sync's downstream end (`Tail`), so the
        next write skips batches that already landed."""
        latest: dict[TP, tuple[int, int]] = {}  # upstream next, downstream next
        for s in await self.read_syncs():
            up = s.upstream_next if s.upstream_next is not None else s.upstream_offset
            down = s.downstream_next if s.downstream_next is not None else s.downstream_offset
            tp = (s.topic, s.partition)
            if tp not in latest or up > latest[tp][0]:
                latest[tp] = (up, down)
        await self._read_tails({tp: latest[tp][1] if tp in latest else None for tp in tps})
        return {tp: latest[tp][0] if tp in latest else None for tp in tps}

    async def _read_tails(self, starts: dict[TP, int | None]) -> None:
        """Read each partition's target records from ``starts`` (None: its log start) to
        its log end, up to `TAIL_LIMIT` bytes; a partition with nothing there has no tail."""
        for tp in starts:  # a resume re-reads the tail, and counts what it finds anew
            self._tails.pop(tp, None)
            self._carry.pop(tp, None)
        names = {tp: (self.rename(tp[0]), tp[1]) for tp in starts}
        ends = await self.target.end_offsets(list(names.values()))
        lows = await self.target.start_offsets([names[tp] for tp, d in starts.items() if d is None])
        tails = {}
        for tp, down in starts.items():
            start = lows[names[tp]] if down is None else down
            if ends[names[tp]] > start:
                tails[tp] = Tail(start, ends[names[tp]], start)
        pos = {tp: t.start for tp, t in tails.items()}
        budget = TAIL_LIMIT
        while pos and budget > 0:
            got = await self.target.fetch({names[tp]: FetchPosition(at, 4 << 20) for tp, at in pos.items()},
                                          max_wait_ms=0, max_bytes=min(budget, 32 << 20))
            for tp in list(pos):
                res = got.get(names[tp])
                found, nxt = ([], pos[tp]) if res is None or res.error_code else landed_batches(res.records, pos[tp])
                budget -= len(res.records) if res is not None else 0
                tails[tp].batches.extend(found)
                if nxt <= pos[tp] or nxt >= tails[tp].end:
                    del pos[tp]  # done, or cannot read further: the rest stays unattributed
                tails[tp].read_to = max(tails[tp].read_to, nxt)
                if tp in pos:
                    pos[tp] = nxt
        for tp, t in tails.items():
            log.info("link %s: %s-%d: target holds %d record(s) beyond the last offset sync; "
                     "comparing them with the source before writing", self.link_name, tp[0], tp[1],
                     t.end - t.start)
        self._tails.update(tails)

    async def _producer(self) -> Sequencer | None:
        """This sink's idempotent producer (a new identity after the target lost ours);
        None when the target does not grant one (writes then rely on the resume check)."""
        if not self._idempotent:
            return None
        if self._sequencer is None or self._reset:
            try:
                ident = Identity(*await self.target.init_producer_id())
            except KafkaProtocolError as exc:
                if int(exc.error_code) not in _NO_IDEMPOTENCE:
                    raise
                log.warning("link %s: the target refuses an idempotent producer (%s): writing "
                            "without one; a re-sent batch may be duplicated", self.link_name, exc)
                self._idempotent = False
                return None
            if self._sequencer is None:
                self._sequencer = Sequencer(ident)
            else:
                self._sequencer.reset(ident)
            self._reset = False
            log.info("link %s: writing as idempotent producer %d epoch %d", self.link_name,
                     ident.producer_id, ident.epoch)
        return self._sequencer

    def _skip_landed(self, tp: TP, bs: list[memoryview]) -> tuple[list[OffsetSync], int, int]:
        """The leading batches of ``bs`` the resume check found on the target: their syncs,
        how many they are, and the target records that are possible duplicates."""
        tail = self._tails.get(tp)
        if tail is None:
            return [], 0, 0
        syncs: list[OffsetSync] = []
        doubtful = 0
        for b in bs:
            found = tail.match(b)
            if found is None:
                break
            doubtful += found.skipped
            h = rb.read_header(b)
            syncs.append(OffsetSync(tp[0], tp[1], h.base_offset, found.landed.base_offset,
                                    h.next_offset, found.landed.next_offset))
        if len(syncs) < len(bs) or tail.exhausted:
            doubtful += tail.unmatched()
            del self._tails[tp]
            if doubtful:
                log.warning("link %s: %s-%d: %d target record(s) beyond the last offset sync do not "
                            "match the source; counted as possible duplicates", self.link_name,
                            tp[0], tp[1], doubtful)
        return syncs, len(syncs), doubtful

    async def write(self, data: dict[TP, list[memoryview]]) -> dict[TP, Written]:
        """Produce each partition's batches (one per request: Kafka's rule for compressed
        batches) as the idempotent producer, skipping those the resume check found on the
        target, then record offset syncs for the batches acknowledged in order; a
        partition's first refused batch is its ``error``."""
        await self.syncs.ensure()
        seq = await self._producer()
        skipped = {tp: self._skip_landed(tp, bs) for tp, bs in data.items()}
        send = {tp: bs[skipped[tp][1]:] for tp, bs in data.items()}
        results = await self._send(send, seq)
        out: dict[TP, Written] = {}
        sync_records = []
        for tp, bs in data.items():
            syncs, landed, doubtful = skipped[tp]
            w = self._outcome(tp, send[tp], [r[(self.rename(tp[0]), tp[1])] for r in results
                                             if (self.rename(tp[0]), tp[1]) in r], seq, list(syncs))
            w.batches += landed
            self._attach_doubt(tp, w, doubtful)
            if w.next_upstream < 0 and syncs:
                w.next_upstream = syncs[-1].upstream_next or 0
            out[tp] = w
            sync_records += [encode_sync(s) for s in w.syncs]
        await self.syncs.append(sync_records)
        return out

    def _attach_doubt(self, tp: TP, w: Written, doubtful: int) -> None:
        """Record possible duplicates durably, in the partition's first sync of this write
        (status and the metric sum them); held until a sync of ``tp`` is written."""
        doubtful += self._carry.pop(tp, 0)
        if doubtful and not w.syncs:
            self._carry[tp] = doubtful
        elif doubtful:
            w.syncs[0] = replace(w.syncs[0], possible_duplicates=doubtful)
            w.possible_duplicates = doubtful

    async def _send(self, send: dict[TP, list[memoryview]], seq: Sequencer | None):
        """Every partition's batches in rounds of one batch each, rewritten for ``seq``."""
        def prepared(tp: TP, b: memoryview) -> list[Buffer]:
            if seq is None:
                return [for_produce(b)]
            h = rb.read_header(b)
            return rewrite(b, seq.identity, seq.assign(tp, h.base_offset, h.last_offset_delta + 1))

        depth = max((len(bs) for bs in send.values()), default=0)
        rounds = [{(self.rename(t), p): prepared((t, p), bs[k]) for (t, p), bs in send.items() if k < len(bs)}
                  for k in range(depth)]
        return await self.target.produce_rounds(rounds) if rounds else []

    def _outcome(self, tp: TP, sent: list[memoryview], replies: list[tuple[int, int, str | None]],
                 seq: Sequencer | None, syncs: list[OffsetSync]) -> Written:
        """What the target's replies to ``sent`` (in order) mean for partition ``tp``."""
        failure: KafkaProtocolError | None = None
        nxt, n = -1, 0
        for b, (code, base, msg) in zip(sent, replies):
            h = rb.read_header(b)
            if code and code != DUPLICATE:
                if code in RESET_IDENTITY:
                    self._reset = True
                failure = KafkaProtocolError(ErrorCode(code), msg, context=f"produce to {self.rename(tp[0])}-{tp[1]}")
                break
            if seq is not None:
                seq.acknowledged(tp, h.base_offset)
            if code == 0 and base >= 0:  # a duplicate's offset is unknown: no sync for it
                syncs.append(OffsetSync(tp[0], tp[1], h.base_offset, base, h.next_offset,
                                        base + h.last_offset_delta + 1))
            nxt, n = h.next_offset, n + 1
        return Written(nxt, syncs, failure, n)


#: InitProducerId refusals that mean "no idempotent producer here", not "try again".
_NO_IDEMPOTENCE = frozenset(int(c) for c in (
    ErrorCode.cluster_authorization_failed, ErrorCode.unsupported_version,
    ErrorCode.transactional_id_authorization_failed))
