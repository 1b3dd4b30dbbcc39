"""Translation mode's idempotent writer: producer identity, sequences, batch rewrite (pure).

A translating link writes to a foreign Kafka cluster with ordinary Produce, so a batch
whose reply was lost must be re-sent — and without help the target appends it twice. The
help Kafka offers is the idempotent producer: one producer id + epoch (InitProducerId,
once per sink) and per partition a sequence number in every batch header; the target
broker drops a re-sent batch whose sequence it already holds (it answers with the first
append's offset, or DUPLICATE_SEQUENCE_NUMBER, both success for us).

`Sequencer` keeps what that needs, per partition: the next new sequence, and the
sequences given to batches that were sent but not yet acknowledged, keyed by their source
base offset — a source batch is immutable, so when the copier re-sends from an earlier
position the same batch gets the same sequence and the broker recognises it. Anything
that breaks the stream (OUT_OF_ORDER_SEQUENCE, UNKNOWN_PRODUCER_ID, a fenced epoch: the
broker lost or never had our state, or an unsent batch left a gap) is answered by a new
identity, every partition starting again at sequence 0; what the old identity may have
left on the target is then found by the resume check (`mirror.replication.resume_check`).

`rewrite` builds the batch as sent: the same records section — never decompressed, not
even copied — behind a new 61-byte header (base offset 0, our producer id/epoch and base
sequence, the transactional bit cleared) whose CRC32C is computed over the new header
fields and continued over the unchanged records bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import crc32c as _crc32c
from kio.schema.errors import ErrorCode

from cluster.wire import record_batch as rb

TP = tuple[str, int]
SEQ_MODULUS = 1 << 31  # sequences wrap at 2^31, as Kafka's
_PRODUCER = struct.Struct(">qhi")  # producer id, epoch, base sequence (at offset 43)
_ATTR = struct.Struct(">h")
_CRC = struct.Struct(">I")
_Q = struct.Struct(">q")

#: Replies that mean the broker's producer state and ours disagree: start a new identity.
RESET_IDENTITY = frozenset(int(c) for c in (
    ErrorCode.out_of_order_sequence_number, ErrorCode.unknown_producer_id,
    ErrorCode.invalid_producer_epoch, ErrorCode.producer_fenced))
#: A re-sent batch the broker already holds but no longer remembers the offset of.
DUPLICATE = int(ErrorCode.duplicate_sequence_number)


@dataclass(frozen=True)
class Identity:
    producer_id: int
    epoch: int


@dataclass
class _Partition:
    next_seq: int = 0
    pending: dict[int, int] = field(default_factory=dict)  # source base offset -> sequence


class Sequencer:
    """Sequence numbers of one producer identity, per target partition (see module doc)."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self._parts: dict[TP, _Partition] = {}

    def assign(self, tp: TP, upstream_base: int, count: int) -> int:
        """The base sequence for the source batch at ``upstream_base`` with ``count``
        records: the one it was sent with before if it is still unacknowledged."""
        part = self._parts.setdefault(tp, _Partition())
        seq = part.pending.get(upstream_base)
        if seq is None:
            seq = part.next_seq
            part.next_seq = (seq + count) % SEQ_MODULUS
            part.pending[upstream_base] = seq
        return seq

    def acknowledged(self, tp: TP, upstream_base: int) -> None:
        """The batch at ``upstream_base`` (and every earlier one) is on the target."""
        part = self._parts.get(tp)
        if part is None:
            return
        # `pending` is in send order, which is source order: drop from the front (a write
        # acknowledges hundreds of batches; scanning all of them for each would be quadratic).
        while part.pending:
            first = next(iter(part.pending))
            if first > upstream_base:
                break
            del part.pending[first]

    def unacknowledged(self, tp: TP) -> int:
        part = self._parts.get(tp)
        return 0 if part is None else len(part.pending)

    def reset(self, identity: Identity) -> None:
        """A new producer identity: every partition starts again at sequence 0."""
        self.identity = identity
        self._parts.clear()


def rewrite(batch: memoryview, identity: Identity, base_sequence: int) -> list[memoryview | bytes]:
    """``batch`` as this producer sends it: [new header, the batch's own records bytes]."""
    head = bytearray(batch[: rb.HEADER_SIZE])
    _Q.pack_into(head, 0, 0)  # Kafka 4 refuses any other base offset from clients
    (attrs,) = _ATTR.unpack_from(head, rb.ATTRIBUTES_OFFSET)
    _ATTR.pack_into(head, rb.ATTRIBUTES_OFFSET, attrs & ~rb.TRANSACTIONAL_BIT)
    _PRODUCER.pack_into(head, 43, identity.producer_id, identity.epoch, base_sequence)
    body = batch[rb.HEADER_SIZE:]
    crc = _crc32c.crc32c(body, _crc32c.crc32c(memoryview(head)[rb.ATTRIBUTES_OFFSET:]))
    _CRC.pack_into(head, rb.CRC_OFFSET, crc)
    return [bytes(head), body]
