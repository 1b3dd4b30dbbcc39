"""Batch builder: header fields, CRC, argument checks, and peers reading what we build."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.wire.batch_builder import attributes_for, build_batch, encode_record
from cluster.wire.record_batch import read_header, validate
from cluster.wire.records import (
    ConsumerRecord,
    Record,
    decode_batch,
    decode_records,
    iter_payload,
)

SAMPLE = [
    (b"key-0", b"value-0" * 40, [("trace", b"abc"), ("null", None)], 1_700_000_000_500),
    (None, b"no key", None, 1_700_000_000_100),  # earlier than the first: negative delta
    (b"no value", None, [], 1_700_000_000_900),
    ("str key \u00e9", memoryview(b"view value"), [(b"bytes-key", b"")], 1_700_000_000_200),
]


@pytest.mark.parametrize("codec", [0, 1, 2, 3, 4])
def test_header_fields_and_crc(codec: int) -> None:
    batch = build_batch(
        SAMPLE,
        base_offset=1_000,
        codec=codec,
        producer_id=77,
        producer_epoch=5,
        base_sequence=123,
        transactional=True,
        partition_leader_epoch=9,
    )
    h = validate(batch)  # length, magic and CRC32C
    assert h.base_offset == 1_000 and h.partition_leader_epoch == 9
    assert h.compression == codec and h.is_transactional and not h.is_control
    assert not h.log_append_time
    assert h.records_count == 4 and h.last_offset_delta == 3 and h.next_offset == 1_004
    assert h.base_timestamp == 1_700_000_000_500  # the first record's, as Java does
    assert h.max_timestamp == 1_700_000_000_900
    assert (h.producer_id, h.producer_epoch, h.base_sequence) == (77, 5, 123)
    assert h.last_sequence == 126


@pytest.mark.parametrize("codec", [0, 1, 2, 3, 4])
def test_round_trip_through_our_decoder(codec: int) -> None:
    _, records = decode_batch(build_batch(SAMPLE, base_offset=10, codec=codec))
    assert records == [
        ConsumerRecord(10, 1_700_000_000_500, b"key-0", b"value-0" * 40, (("trace", b"abc"), ("null", None))),
        ConsumerRecord(11, 1_700_000_000_100, None, b"no key", ()),
        ConsumerRecord(12, 1_700_000_000_900, b"no value", None, ()),
        ConsumerRecord(13, 1_700_000_000_200, "str key \u00e9".encode(), b"view value", (("bytes-key", b""),)),
    ]


@pytest.mark.parametrize("codec", [0, 1, 2, 3, 4])
def test_peers_read_our_batches(peer, codec: int) -> None:  # type: ignore[no-untyped-def]
    peer.require(codec)
    batch = build_batch(SAMPLE, base_offset=500, codec=codec, producer_id=3, producer_epoch=1, base_sequence=0)
    theirs = peer.batch(batch)
    assert theirs.compression_type == codec
    assert theirs.producer_id == 3 and theirs.base_sequence == 0
    assert peer.read(batch) == [
        (500, 1_700_000_000_500, b"key-0", b"value-0" * 40, [("trace", b"abc"), ("null", None)]),
        (501, 1_700_000_000_100, None, b"no key", []),
        (502, 1_700_000_000_900, b"no value", None, []),
        (503, 1_700_000_000_200, "str key \u00e9".encode(), b"view value", [("bytes-key", b"")]),
    ]


@pytest.mark.parametrize("codec", [0, 2])
def test_byte_identical_to_aiokafka_for_deterministic_codecs(peer, codec: int) -> None:  # type: ignore[no-untyped-def]
    """Uncompressed and snappy(xerial) output leave no freedom: the bytes must match."""
    peer.require(codec)
    records = [(b"k%d" % i, b"v" * i, [("h", b"x")] if i % 2 else [], 1_000 + i) for i in range(20)]
    ours = build_batch(records, codec=codec, producer_id=1, producer_epoch=0, base_sequence=0)
    theirs = bytearray(peer.build(records, codec, producer_id=1, producer_epoch=0, base_sequence=0))
    theirs[12:16] = b"\xff\xff\xff\xff"  # kafka-python writes leader epoch 0; it is outside the CRC
    assert ours == bytes(theirs)


def test_offset_gaps_for_compacted_batches(peer) -> None:  # type: ignore[no-untyped-def]
    batch = build_batch(
        [(b"a", b"1", None, 1), (b"b", b"2", None, 2), (b"c", b"3", None, 3)],
        base_offset=100,
        offset_deltas=[0, 4, 9],
    )
    h = validate(batch)
    assert h.last_offset_delta == 9 and h.records_count == 3 and h.next_offset == 110
    assert [r.offset for r in decode_batch(batch)[1]] == [100, 104, 109]
    assert [r[0] for r in peer.read(batch)] == [100, 104, 109]


def test_empty_batch_like_compaction_leaves() -> None:
    batch = build_batch([], base_offset=7, producer_id=5, producer_epoch=0, base_sequence=3)
    h = validate(batch)
    assert h.records_count == 0 and h.base_offset == 7 and len(batch) == 61
    assert (h.base_timestamp, h.max_timestamp) == (-1, -1)
    assert decode_records(batch) == []


def test_flags() -> None:
    h = read_header(build_batch([(None, b"x", None, 5)], control=True, log_append_time=True, codec=3))
    assert h.is_control and h.log_append_time and h.compression == 3 and not h.is_transactional
    assert attributes_for(4, transactional=True, control=True, log_append_time=True) == 0x3C


def test_null_timestamp_means_no_timestamp() -> None:
    h = read_header(build_batch([(None, b"x", None, None)]))
    assert h.base_timestamp == -1 == h.max_timestamp


def test_same_input_same_bytes() -> None:
    assert build_batch(SAMPLE) == build_batch(SAMPLE)


def test_encode_record_matches_decoder() -> None:
    one = encode_record(3, -2, b"k", None, [("h", b"v")])
    assert one[0] == 2 * (len(one) - 1)  # zigzag length prefix of the body
    assert list(iter_payload(one * 2, 2)) == [Record(3, -2, b"k", None, (("h", b"v"),))] * 2


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"codec": 5}, "codec"),
        ({"producer_epoch": 40_000}, "range"),
        ({"base_sequence": 2**31}, "range"),
        ({"base_offset": 2**63}, "range"),
        ({"offset_deltas": [0]}, "offset_deltas"),
        ({"offset_deltas": [1, 1]}, "increasing"),
        ({"offset_deltas": [-1, 2]}, "increasing"),
        ({"offset_deltas": [0, 2**31]}, "increasing"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_batch([(None, b"a", None, 1), (None, b"b", None, 2)], **kwargs)


def test_null_header_key_is_refused() -> None:
    with pytest.raises(ValueError, match="null"):
        build_batch([(None, b"a", [(None, b"x")], 1)])  # type: ignore[list-item]


keys = st.none() | st.binary(max_size=64)
headers = st.lists(st.tuples(st.text(max_size=10), st.none() | st.binary(max_size=20)), max_size=4)


@settings(max_examples=200, deadline=None)
@given(
    records=st.lists(
        st.tuples(keys, keys, headers, st.integers(-1, 2**52)), max_size=25
    ),
    codec=st.sampled_from([0, 1, 2, 3, 4]),
    base_offset=st.integers(0, 2**62),
    gaps=st.lists(st.integers(0, 1_000), min_size=25, max_size=25),
)
def test_random_records_round_trip(
    records: list, codec: int, base_offset: int, gaps: list[int]
) -> None:
    deltas = []
    delta = -1
    for gap in gaps[: len(records)]:
        delta += 1 + gap
        deltas.append(delta)
    batch = build_batch(records, codec=codec, base_offset=base_offset, offset_deltas=deltas)
    header, got = decode_batch(batch)
    assert header.records_count == len(records)
    expected = [
        ConsumerRecord(base_offset + d, ts, k, v, tuple(h)) for d, (k, v, h, ts) in zip(deltas, records)
    ]
    assert got == expected
    if records:
        assert header.max_timestamp == max(r[3] for r in records)
