"""The batch validator: every malformed-but-CRC-valid probe refused with Kafka's code, every
real batch accepted, and the looser mirror/log rules accepting what compaction leaves."""

from __future__ import annotations

import time
import zlib

import cramjam
import pytest

from cluster.wire.batch_builder import build_batch
from cluster.wire.batch_validator import BatchRefused, Limits, Origin, validate_batch
from cluster.wire.control import build_control_batch
from cluster.wire.record_batch import CODEC_GZIP, CODEC_LZ4, CODEC_NONE, CODEC_SNAPPY, CODEC_ZSTD
from tests.cluster.wire.malformed import (
    INVALID_RECORD,
    RECORDS_COUNT,
    TS,
    good,
    patched,
    probes,
    with_payload,
)


@pytest.mark.parametrize("probe", probes(), ids=lambda p: p.name)
def test_probe_refused_from_clients_with_kafkas_code(probe) -> None:
    with pytest.raises(BatchRefused) as info:
        validate_batch(probe.batch, Origin.CLIENT)
    assert info.value.code == probe.code, info.value.message


@pytest.mark.parametrize("codec", [CODEC_NONE, CODEC_GZIP, CODEC_SNAPPY, CODEC_LZ4, CODEC_ZSTD])
def test_real_batches_pass_every_origin(codec: int) -> None:
    batch = build_batch([(b"k%d" % i, b"v" * i, [("h", b"x"), ("é", None)], TS + i) for i in range(50)],
                        codec=codec, producer_id=5, producer_epoch=0, base_sequence=10)
    for origin in Origin:
        checked = validate_batch(batch, origin)
        assert checked.keyless == 0 and checked.first_keyless == -1
        assert (checked.min_timestamp, checked.max_timestamp) == (TS, TS + 49)


def test_keyless_records_are_counted_with_the_first_index() -> None:
    batch = build_batch([(b"k", b"v", [], TS), (None, b"v", [], TS), (None, b"w", [], TS)])
    checked = validate_batch(batch, Origin.CLIENT)
    assert (checked.keyless, checked.first_keyless) == (2, 1)


def test_compacted_shapes_pass_mirror_and_log_but_not_client() -> None:
    gaps = build_batch([(b"a", b"1", [], TS), (b"b", b"2", [], TS)], offset_deltas=[1, 7])
    # the builder sets last_offset_delta from the last record; a cleaner may keep a larger one
    wider = patched(23, ">i", 9, gaps)
    empty = build_batch([], producer_id=3, producer_epoch=1, base_sequence=0)
    for batch in (gaps, wider, empty):
        for origin in (Origin.MIRROR, Origin.LOG):
            validate_batch(batch, origin)
        with pytest.raises(BatchRefused):
            validate_batch(batch, Origin.CLIENT)


def test_mirror_rules_still_refuse_lies() -> None:
    too_many = patched(RECORDS_COUNT, ">i", 11, patched(23, ">i", 9, good(3)))
    deltas_fall = build_batch([(b"a", b"1", [], TS), (b"b", b"2", [], TS)], offset_deltas=[0, 5])
    raw = bytearray(deltas_fall)
    with pytest.raises(BatchRefused):
        validate_batch(too_many, Origin.MIRROR)
    beyond = patched(23, ">i", 3, deltas_fall)  # delta 5 > last_offset_delta 3
    with pytest.raises(BatchRefused, match="within last_offset_delta"):
        validate_batch(beyond, Origin.MIRROR)
    assert raw  # unchanged input


def test_offsets_that_cannot_be_encoded_are_refused_for_mirrors() -> None:
    batch = build_batch([(b"a", b"1", [], TS), (b"b", b"2", [], TS)], base_offset=2**63 - 1)
    with pytest.raises(BatchRefused, match="64-bit offset"):
        validate_batch(batch, Origin.MIRROR)
    validate_batch(build_batch([(b"a", b"1", [], TS)], base_offset=2**63 - 1), Origin.MIRROR)


def test_control_batches_must_be_markers() -> None:
    marker = build_control_batch(9, 0, True, 3, TS)
    validate_batch(marker, Origin.MIRROR)
    validate_batch(marker, Origin.LOG)
    not_marker = build_batch([(b"\x00\x00\x00\x07", b"\x00\x00\x00\x00\x00\x01", [], TS)],
                             producer_id=9, producer_epoch=0, transactional=True, control=True)
    with pytest.raises(BatchRefused, match="control"):
        validate_batch(not_marker, Origin.MIRROR)
    two = build_batch([(b"\x00\x00\x00\x01", b"\x00\x00\x00\x00\x00\x01", [], TS)] * 2,
                      producer_id=9, producer_epoch=0, transactional=True, control=True)
    with pytest.raises(BatchRefused, match="exactly one record"):
        validate_batch(two, Origin.LOG)


def _zstd_bomb(gib: int) -> bytes:
    c = cramjam.zstd.Compressor(level=19)
    zeros = b"\0" * (64 << 20)
    for _ in range(gib * 16):
        c.compress(zeros)
    return bytes(c.finish())


def test_zstd_bomb_is_refused_after_bounded_work() -> None:
    bomb = with_payload(b"", 1)[:61]
    payload = _zstd_bomb(1)
    from tests.cluster.wire.malformed import reseal
    import struct
    b = bytearray(bomb) + payload
    struct.pack_into(">h", b, 21, CODEC_ZSTD)
    batch = reseal(b)
    t = time.perf_counter()
    with pytest.raises(BatchRefused) as info:
        validate_batch(batch, Origin.CLIENT)
    assert info.value.code == INVALID_RECORD and info.value.limit_hit
    assert "inflate" in info.value.message
    assert time.perf_counter() - t < 5  # work bounded by the cap, not by 1 GiB (generous: noisy box)


def test_gzip_bomb_and_record_count_bomb() -> None:
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    gz = co.compress(b"\0" * (256 << 20)) + co.flush()
    with pytest.raises(BatchRefused, match="inflate"):
        validate_batch(with_payload_compressed(gz, CODEC_GZIP, 1), Origin.CLIENT)
    # a million tiny records in a small gzip batch: refused by the record ceiling
    tiny = build_batch([(None, None, [], TS)] * 2000, codec=CODEC_GZIP)
    lie = patched(RECORDS_COUNT, ">i", 2_000_000, patched(23, ">i", 1_999_999, tiny))
    with pytest.raises(BatchRefused, match="limit"):
        validate_batch(lie, Origin.CLIENT, Limits(max_records=1_000_000))


def with_payload_compressed(compressed: bytes, codec: int, count: int) -> bytes:
    import struct

    from tests.cluster.wire.malformed import reseal
    b = bytearray(with_payload(b"", count)[:61]) + compressed
    struct.pack_into(">h", b, 21, codec)
    return reseal(b)


def test_limits_scale_with_the_batch() -> None:
    limits = Limits()
    assert limits.decompress_limit(1000) == 8 << 20
    assert limits.decompress_limit(512 << 10) == 32 << 20
    assert limits.decompress_limit(10 << 20) == 64 << 20
