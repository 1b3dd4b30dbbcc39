"""The hand-written Fetch v4-v16 response encoder matches kio byte for byte."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.wire import codec
from cluster.wire.build import build
from cluster.wire.fetch_response import fetch_response_parts

part_st = st.fixed_dictionaries({
    "partition_index": st.integers(0, 2**31 - 1), "error_code": st.sampled_from([0, 1, 3, 100]),
    "high_watermark": st.integers(-1, 2**40), "last_stable_offset": st.integers(-1, 2**40),
    "log_start_offset": st.integers(-1, 2**40),
    "aborted_transactions": st.one_of(st.none(), st.lists(st.fixed_dictionaries(
        {"producer_id": st.integers(0, 2**40), "first_offset": st.integers(0, 2**40)}), max_size=3)),
    "preferred_read_replica": st.just(-1),
    "records": st.one_of(st.none(), st.binary(max_size=200)),
})
topic_st = st.fixed_dictionaries({
    "topic": st.text(alphabet="abc.-_x", min_size=1, max_size=20),
    "topic_id": st.uuids(),
    "partitions": st.lists(part_st, max_size=3),
})


@given(st.integers(4, 16), st.integers(0, 2**31 - 1), st.lists(topic_st, max_size=3))
@settings(max_examples=300, deadline=None)
def test_matches_kio(version: int, cid: int, responses) -> None:
    ours = b"".join(fetch_response_parts(cid, version, responses))
    body = build(codec.response_schema(1, version), {
        "throttle_time": 0, "error_code": 0, "session_id": 0, "responses": responses})
    assert ours == codec.encode_response(cid, body, framed=True)


def test_zero_uuid_when_missing() -> None:
    parts = fetch_response_parts(1, 13, [{"topic": "t", "topic_id": None, "partitions": []}])
    assert bytes(16) in b"".join(parts)
    assert uuid.UUID(int=0).bytes == bytes(16)


@given(st.integers(12, 16), st.lists(st.tuples(st.integers(0, 2**31 - 1), st.integers(0, 2**40)),
                                     min_size=1, max_size=3))
@settings(max_examples=100, deadline=None)
def test_diverging_epoch_matches_kio(version: int, epochs) -> None:
    """A leader's DivergingEpoch to a follower (tagged field 0 of the partition)."""
    partitions = [{"partition_index": i, "error_code": 0, "high_watermark": 5, "last_stable_offset": 5,
                   "log_start_offset": 0, "aborted_transactions": None, "preferred_read_replica": -1,
                   "records": b"", "diverging_epoch": {"epoch": e, "end_offset": end}}
                  for i, (e, end) in enumerate(epochs)]
    responses = [{"topic": "t", "topic_id": uuid.UUID(int=7), "partitions": partitions}]
    ours = b"".join(fetch_response_parts(3, version, responses))
    body = build(codec.response_schema(1, version), {
        "throttle_time": 0, "error_code": 0, "session_id": 0, "responses": responses})
    assert ours == codec.encode_response(3, body, framed=True)
    decoded = codec.decode_response(ours[4:], codec.response_schema(1, version))[1]
    got = [(p.diverging_epoch.epoch, p.diverging_epoch.end_offset) for p in decoded.responses[0].partitions]
    assert got == list(epochs)
