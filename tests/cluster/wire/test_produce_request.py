"""The hand-written Produce v9 encoder matches kio's encoding byte for byte."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.wire import codec
from cluster.wire.build import build
from cluster.wire.framing import frame
from cluster.wire.produce_request import produce_v9_parts, uvarint


def kio_encoding(cid, client_id, topics, api_key, acks, timeout):
    body = build(codec.request_schema(0, 9), {
        "transactional_id": None, "acks": acks, "timeout": timeout,
        "topic_data": [{"name": n, "partition_data": [
            {"index": i, "records": b"".join(bs)} for i, bs in parts]} for n, parts in topics]})
    return frame(codec.encode_request(body, cid, client_id, api_key=api_key, api_version=9 if api_key == 0 else 0))


names = st.text(alphabet="abcxyz._-0123", min_size=1, max_size=30)
topics_st = st.lists(st.tuples(names, st.lists(st.tuples(st.integers(0, 2**31 - 1),
                                                         st.lists(st.binary(max_size=300), max_size=4)),
                                               max_size=4)), max_size=4)


@given(topics_st, st.one_of(st.none(), names), st.integers(0, 2**31 - 1), st.sampled_from([-1, 0, 1]),
       st.integers(0, 2**31 - 1), st.sampled_from([0, codec.DCMIRROR_APPEND]))
@settings(max_examples=200, deadline=None)
def test_matches_kio(topics, client_id, cid, acks, timeout, api_key) -> None:
    ours = b"".join(produce_v9_parts(cid, client_id, topics, api_key=api_key,
                                     api_version=9 if api_key == 0 else 0, acks=acks, timeout_ms=timeout))
    assert ours == kio_encoding(cid, client_id, topics, api_key, acks, timeout)
    decoded = codec.decode_request(ours[4:])
    assert decoded.header.correlation_id == cid


def test_uvarint() -> None:
    assert uvarint(0) == b"\x00" and uvarint(127) == b"\x7f" and uvarint(128) == b"\x80\x01"
    assert uvarint(300) == b"\xac\x02"
