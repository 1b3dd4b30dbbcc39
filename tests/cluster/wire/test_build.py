"""`cluster.wire.build`: one version-independent dict builds any version, and a key that no
version of the message has is refused (a typo must not become error_code=0)."""

from __future__ import annotations

import pytest

from cluster.wire import codec
from cluster.wire.build import build, known_fields

PRODUCE, LIST_OFFSETS = 0, 2


def test_keys_of_other_versions_are_dropped_not_refused() -> None:
    # topic_id exists only from Produce v13; v9 ignores it, v13 keeps it
    data = {"acks": -1, "timeout": 5000,
            "topic_data": [{"name": "t", "topic_id": None, "partition_data": [{"index": 0, "records": b""}]}]}
    v9 = build(codec.request_schema(PRODUCE, 9), data)
    assert v9.topic_data[0].name == "t" and not hasattr(v9.topic_data[0], "topic_id")
    assert "topic_id" in known_fields(type(v9.topic_data[0]))


def test_a_key_no_version_has_is_refused_naming_key_and_message() -> None:
    with pytest.raises(ValueError, match=r"ProduceRequest has no field 'timout'"):
        build(codec.request_schema(PRODUCE, 9), {"acks": -1, "timout": 5000, "topic_data": []})


def test_nested_typos_are_refused_too() -> None:
    reply = codec.response_schema(LIST_OFFSETS, 7)
    with pytest.raises(ValueError, match=r"has no field 'eror_code'"):
        build(reply, {"topics": [{"name": "t", "partitions": [{"partition_index": 0, "eror_code": 3}]}]})
    ok = build(reply, {"topics": [{"name": "t", "partitions": [{"partition_index": 0, "error_code": 3}]}]})
    assert int(ok.topics[0].partitions[0].error_code) == 3
