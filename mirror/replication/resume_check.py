"""On resume, find the source batches a translating link already wrote but never synced (pure).

A translating link records every written batch as an offset sync *after* the target
acknowledged it. A crash, a lost reply or a failed sync append in between leaves batches
on the target beyond the partition's last sync; resuming from that sync would write them
again. So before writing, the sink reads the target partition from the last sync's
downstream end to its log end (`Tail`), and the copier's next source batches are compared
with those, in order: a source batch that is already there is not written again, only its
offset sync is (with the offsets the target gave it).

Two batches are the same when their records sections are byte-identical (CRC32C over the
bytes after the 61-byte header: a CRC of our own, because the header CRC also covers the
producer id, sequence and base offset, which differ between source and target) and their
record count, last offset delta, first timestamp and codec agree. Kafka stores a v2 batch's
records section as the producer sent it (only a target `compression.type` other than
`producer` re-encodes it), so a batch we wrote compares equal.

What cannot be matched is counted, never guessed: target records after the last match
(a re-encoding target, a foreign producer, or our own batch we failed to recognise) and
records beyond what the check could read are *possible duplicates* — the mirror reports
them (`dcmirror_possible_duplicates_total`, `dcmirror status`) rather than skip a batch it
cannot prove is there, which could lose data.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from cluster.wire import record_batch as rb
from cluster.wire.record_batch import crc32c

#: At most this many bytes of a partition's tail are read on resume (a tail is normally at
#: most one write of the copier: `partition_max_bytes`, 4 MiB by default).
TAIL_LIMIT = 64 << 20


@dataclass(frozen=True)
class Landed:
    """A data batch on the target beyond the partition's last offset sync."""

    base_offset: int
    next_offset: int
    records_count: int
    last_offset_delta: int
    base_timestamp: int
    codec: int
    records_crc: int


def records_crc(batch: memoryview | bytes) -> int:
    """CRC32C of a batch's records section (independent of offsets and producer fields)."""
    return crc32c(memoryview(batch)[rb.HEADER_SIZE:])


def landed_batches(records: memoryview | bytes, after: int) -> tuple[list[Landed], int]:
    """The data batches in fetched ``records`` that end after offset ``after``, and the
    offset after the last batch of any kind (``after`` when there is none)."""
    out = []
    nxt = after
    mv = memoryview(records)
    for at, h in rb.iter_batches(mv):
        if h.next_offset <= after:
            continue
        nxt = max(nxt, h.next_offset)
        if not h.is_control:
            out.append(Landed(h.base_offset, h.next_offset, h.records_count, h.last_offset_delta,
                              h.base_timestamp, h.compression, records_crc(mv[at:at + h.size])))
    return out, nxt


def same(batch: memoryview, landed: Landed) -> bool:
    """Whether source ``batch`` is the batch ``landed`` on the target (see module doc)."""
    h = rb.read_header(batch)
    return (h.records_count == landed.records_count and h.last_offset_delta == landed.last_offset_delta
            and h.base_timestamp == landed.base_timestamp and h.compression == landed.codec
            and records_crc(batch) == landed.records_crc)


@dataclass(frozen=True)
class Match:
    """A source batch found on the target, and the target records before it that were
    passed over (not ours as far as the check can tell: possible duplicates)."""

    landed: Landed
    skipped: int


@dataclass
class Tail:
    """One partition's unsynced target tail: what the check read, and how far the log goes.

    ``start`` is where reading began (the last sync's downstream end); ``end`` is the
    target's log end when it was read; ``read_to`` is where the read batches stop
    (``end`` unless the read was cut at `TAIL_LIMIT` or failed); ``pos`` is where the part
    of the tail not yet attributed to a source batch begins."""

    start: int
    end: int
    read_to: int
    batches: deque[Landed] = field(default_factory=deque)
    pos: int = -1

    def __post_init__(self) -> None:
        if self.pos < 0:
            self.pos = self.start

    def match(self, batch: memoryview) -> Match | None:
        """The target's copy of ``batch`` among the tail's unattributed batches, if any.
        Batches before it are dropped and counted in `Match.skipped`: a lost write of
        another producer, or of ours re-encoded, can sit before a batch we wrote later."""
        for i, landed in enumerate(self.batches):
            if same(batch, landed):
                skipped = max(0, landed.base_offset - self.pos)
                for _ in range(i + 1):
                    self.batches.popleft()
                self.pos = landed.next_offset
                return Match(landed, skipped)
        return None

    def unmatched(self) -> int:
        """Target records of the tail not attributed to a source batch: possible
        duplicates once the copier writes past them."""
        return max(0, self.end - self.pos)

    @property
    def exhausted(self) -> bool:
        """Every read batch was matched and nothing beyond the read remains."""
        return not self.batches and self.read_to >= self.end
