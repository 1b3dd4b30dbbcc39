"""Test batches built by kafka-python's independent v2 encoder, plus small log helpers.

Using a third-party builder keeps the tests honest: the log must handle batches it did not
produce itself.
"""

from __future__ import annotations

from kafka.record.default_records import DefaultRecordBatchBuilder

from cluster.log import PartitionLog
from cluster.wire.record_batch import iter_batches, set_base_offset, set_leader_epoch


def make_batch(count: int = 1, *, ts: int = 1_000, value_size: int = 10, base_offset: int = 0,
               leader_epoch: int = 0, compression: int = 0, tag: int = 0,
               timestamps: list[int] | None = None) -> bytes:
    """A v2 batch of `count` records; `tag` varies the payload so batches differ byte-wise."""
    b = DefaultRecordBatchBuilder(
        magic=2, compression_type=compression, is_transactional=False,
        producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 30,
    )
    for i in range(count):
        t = timestamps[i] if timestamps else ts + i
        value = bytes((tag + i + j) % 256 for j in range(value_size))
        b.append(i, timestamp=t, key=None, value=value, headers=[])
    buf = b.build()
    set_base_offset(buf, base_offset)
    set_leader_epoch(buf, leader_epoch)
    return bytes(buf)


def read_all(log: PartitionLog, start: int | None = None) -> list[tuple[int, int, bytes]]:
    """(base_offset, last_offset, records part) of every batch from `start` to the log end.

    The records part (after the 61-byte header) is what the producer built, so comparing it
    checks the payload survived byte for byte while offsets were rewritten.
    """
    out = []
    offset = log.log_start_offset if start is None else start
    while offset < log.log_end_offset:
        data = log.read(offset, 1 << 20)
        if not data:
            break
        for pos, h in iter_batches(data, allow_partial_tail=False):
            if h.last_offset >= offset:
                out.append((h.base_offset, h.last_offset, bytes(data[pos + 61 : pos + h.size])))
            offset = h.next_offset
    return out
