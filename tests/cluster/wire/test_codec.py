"""Request decoding on hostile input: claimed array lengths are checked before kio reads.

kio's native reader reserves memory for an array's claimed count up front; before
request_bounds a 20-byte Metadata v9 claiming 2^35 topics aborted the process (found by
tests/fuzz, target `decode`). These run in a subprocess so a regression fails the test
instead of killing pytest.
"""

from __future__ import annotations

import struct
import subprocess
import sys

import pytest

from cluster.wire import codec
from cluster.wire.build import build
from cluster.wire.request_bounds import _struct, check_bounds

# (api_key, version, body after the request header): each claims a huge array.
HUGE_ARRAYS = [
    (3, 9, "ffffffff7f"),  # Metadata v9: compact topics array of 2^35 - 2
    (3, 12, "ffffffff0f"),  # Metadata v12: 2^32 - 2
    (42, 2, "ffffffff0f"),  # DeleteGroups v2: compact array of compact strings
    (42, 0, "7fffffff"),  # DeleteGroups v0: int32 count, 2^31 - 1
    (1, 4, "ffffffff" "00000000" "00000000" "00000000" "00000001" "0001" "74" "7fffffff"),  # Fetch v4 partitions
    # StreamsGroupHeartbeat v0 with the nullable topology struct's marker -50: kio reads any
    # marker but -1 as present, then a subtopologies count of 2^31 (atheris found this one)
    (88, 0, "027802780000000000f67808080808080808080808080d480808080808cececececececececececece"
            "080010000300000008ffff08000000"),
]


def _header(api_key: int, version: int) -> bytes:
    flexible = codec.request_schema(api_key, version).__flexible__
    return struct.pack(">hhih", api_key, version, 1, -1) + (b"\0" if flexible else b"")


@pytest.mark.parametrize("api_key,version,body", HUGE_ARRAYS)
def test_huge_claimed_array_is_a_decode_error_not_an_abort(api_key: int, version: int, body: str) -> None:
    script = (
        "import sys; from cluster.wire import codec\n"
        f"frame = bytes.fromhex({(_header(api_key, version).hex() + body)!r})\n"
        "try:\n    codec.decode_request(frame)\nexcept codec.DecodeError as e:\n    print('refused', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("refused") and "remaining bytes" in out.stdout, out.stdout


def test_bounds_accept_every_valid_request_with_arrays() -> None:
    # Arrays at every nesting level, flexible and not: the walk must agree with kio.
    for version in (4, 12, 16):
        schema = codec.request_schema(1, version)
        topic_key = "topic_id" if version >= 13 else "topic"
        body = build(schema, {"topics": [{topic_key: "t" if version < 13 else None,
                                          "partitions": [{"partition": i} for i in range(3)]}],
                              "forgotten_topics_data": [], "rack_id": "r"})
        frame = codec.encode_request(body, 5, "c")
        check_bounds(schema, frame, len(_header(1, version)) + 1)
        assert codec.decode_request(frame).body == body


# (api_key, version, response frame): each claims a huge array.
HUGE_RESPONSE_ARRAYS = [
    # Metadata v12's brokers array claiming 2^35 - 2 entries (found by tests/fuzz, `decode`)
    (3, 12, "00000001" "00" "00000000" "ffffffff7f"),
    # VoteResponse v1: tagged node_endpoints (tag 0) stating size 0, then a count of 2^32 - 2:
    # kio reads a known tag's field whatever its stated size says (atheris found this one)
    (52, 1, "000000f7" "00" "0000" "00" "01" "00" "00" "efffffff01" "00"),
    # EndQuorumEpochResponse v1: a topic, then tag 0 stating size 0x13 and a count of 2^35 - 2
    (54, 1, "00000009000000014100" "4b0000000000" "09f9ffffff13131313131313131313131313000001ffffff00"),
]


@pytest.mark.parametrize("api_key,version,frame", HUGE_RESPONSE_ARRAYS)
def test_huge_claimed_array_in_a_response_is_a_decode_error_not_an_abort(
        api_key: int, version: int, frame: str) -> None:
    # The mirror and the client decode responses from peer brokers with the same reader.
    script = (
        "import resource; from cluster.wire import codec\n"
        "resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n"
        f"frame = bytes.fromhex({frame!r})\n"
        "try:\n"
        f"    codec.decode_response(frame, codec.response_schema({api_key}, {version}))\n"
        "except codec.DecodeError as e:\n    print('refused', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("refused") and "remaining bytes" in out.stdout, out.stdout


def test_known_tag_is_read_past_its_stated_size_as_kio_does() -> None:
    # VoteResponse v1 with one node endpoint in tag 0 whose stated size is 0: kio still reads
    # the endpoint, so the bounds walk must follow the field to its end, not the size.
    frame = bytes.fromhex("00000001" "00" "0000" "01" "01" "00" "00" "02" "00000005" "0268" "0009" "00")
    schema = codec.response_schema(52, 1)
    _cid, body = codec.decode_response(frame, schema)
    assert [e.node_id for e in body.node_endpoints] == [5]
    assert _struct(schema)(frame, 5, len(frame)) == len(frame)
