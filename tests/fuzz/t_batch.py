"""Fuzz target `batch`: the record-batch validator, for every origin, against the decoder.

Each input is tried three ways, so mutations reach past the CRC and the codecs:
as it is; "resealed" (batch_length and CRC32C fixed after the mutation, as a hostile client
would); and, when the attributes name a codec, with its records section compressed by that
codec before resealing (seeds include valid batches whose records are left uncompressed
for this). For each, `validate_batch` may only accept or raise BatchRefused, and an
accepted batch must decode with `records.decode_records` into exactly `records_count`
records (the validator must never accept what readers and recovery choke on). The C
record walker is compared with the Python reference walker on the same records.
"""

from __future__ import annotations

import struct
from functools import cache

from cluster.wire.batch_builder import build_batch
from cluster.wire.batch_validator import BatchRefused, Origin, validate_batch
from cluster.wire.compression import CompressionError, compress, decompress
from cluster.wire.control import build_control_batch
from cluster.wire.record_batch import CRC_OFFSET, HEADER_SIZE, crc32c
from cluster.wire.record_walk import ACCELERATED, RecordDefect, walk, walk_python
from cluster.wire.records import decode_records

from .engine import Target

TS = 1_700_000_000_000
_ATTRIBUTES = 21
CODECS = (0, 1, 2, 3, 4)


class ValidatorDisagrees(AssertionError):
    """The validator accepted a batch the record decoder refuses, or the walkers differ."""


def reseal(batch: bytes | bytearray) -> bytes:
    b = bytearray(batch)
    struct.pack_into(">i", b, 8, len(b) - 12)
    struct.pack_into(">I", b, CRC_OFFSET, crc32c(memoryview(b)[CRC_OFFSET + 4 :]))
    return bytes(b)


def _records(n: int, keyed: bool = True) -> list:
    return [(b"key-%d" % i if keyed or i % 2 else None, b"v" * (i % 7), [("h", b"x"), ("é", None)][: i % 3],
             TS + i * 3) for i in range(n)]


@cache
def seeds() -> list[bytes]:
    out = []
    for codec in CODECS:
        out.append(build_batch(_records(3), codec=codec))
        out.append(build_batch(_records(5, keyed=False), codec=codec, producer_id=7, producer_epoch=1,
                               base_sequence=4, transactional=True, base_offset=100))
        out.append(build_batch(_records(4), codec=codec, offset_deltas=[0, 2, 5, 9]))  # compacted
        if codec:  # valid records left uncompressed: the third variant compresses them
            plain = bytearray(build_batch(_records(3)))
            struct.pack_into(">h", plain, _ATTRIBUTES, codec)
            out.append(reseal(plain))
    out.append(build_batch([]))
    out.append(build_control_batch(7, 1, True, 3, TS, base_offset=50))
    out.append(build_batch(_records(2)) + build_batch(_records(1)))  # two batches: one too many
    return out


def _variants(data: bytes) -> list[bytes]:
    out = [data]
    if len(data) >= HEADER_SIZE:
        out.append(reseal(data))
        codec = data[_ATTRIBUTES + 1] & 7
        if 1 <= codec <= 4:
            out.append(reseal(data[:HEADER_SIZE] + compress(codec, data[HEADER_SIZE:])))
    return out


def _walk_both(records: bytes | memoryview, count: int, sequential: bool, lod: int) -> None:
    def run(fn):  # type: ignore[no-untyped-def]
        try:
            return fn(records, count, sequential, lod)
        except RecordDefect as exc:
            return ("defect", exc.message, exc.record_index)
    c, py = run(walk), run(walk_python)
    if c != py:
        raise ValidatorDisagrees(f"C walker {c} but Python walker {py}")


def _differential(batch: bytes) -> None:
    """Walkers compared on the (decompressed) records of any batch with a header."""
    if not ACCELERATED or len(batch) < HEADER_SIZE:
        return
    (lod,) = struct.unpack_from(">i", batch, 23)
    (count,) = struct.unpack_from(">i", batch, 57)
    codec = batch[_ATTRIBUTES + 1] & 7
    records: bytes = batch[HEADER_SIZE:]
    if codec:
        try:
            records = decompress(codec, records, 1 << 20)
        except CompressionError:
            return
    for sequential in (True, False):
        _walk_both(records, max(count, 0), sequential, lod)


def check(data: bytes) -> None:
    for variant in _variants(data):
        _differential(variant)
        for origin in Origin:
            try:
                checked = validate_batch(variant, origin)
            except BatchRefused:
                continue
            try:
                records = decode_records(variant)
            except Exception as exc:
                raise ValidatorDisagrees(f"{origin.value} accepted a batch decode_records refuses: "
                                         f"{type(exc).__name__}: {exc}") from exc
            if len(records) != checked.header.records_count:
                raise ValidatorDisagrees(f"{origin.value} accepted {checked.header.records_count} "
                                         f"records but {len(records)} decode")


TARGET = Target("batch", seeds, check, __doc__ or "")
