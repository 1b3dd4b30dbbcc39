"""The hand-encoded CreateTopics v5+ response is byte for byte what kio encodes."""

from __future__ import annotations

import uuid

import pytest
from kio.schema.errors import ErrorCode

from cluster.broker import create_topics_response
from cluster.broker.k19_create_topics import _config_entries, _result
from cluster.wire import codec
from cluster.wire.build import build
from tests.cluster.broker.rawconn import RawConn
from tests.cluster.broker.test_topic_limits import create_topics, topic


def sample_results() -> list[dict]:
    shared = _config_entries({})
    return [
        {"name": "plain", "topic_id": uuid.uuid4(), "error_code": 0, "error_message": None,
         "num_partitions": 3, "replication_factor": 1, "configs": shared},
        {"name": "same", "topic_id": uuid.uuid4(), "error_code": 0, "error_message": None,
         "num_partitions": 1, "replication_factor": 1, "configs": shared},
        {"name": "compacted-ü", "topic_id": uuid.uuid4(), "error_code": 0, "error_message": None,
         "num_partitions": 200, "replication_factor": 1,
         "configs": _config_entries({"cleanup.policy": "compact", "retention.ms": "-1"})},
        _result("bad", ErrorCode.invalid_replication_factor, "Replication factor: 3 larger than available brokers: 1."),
        _result("x" * 200, ErrorCode.policy_violation, None),
    ]


@pytest.mark.parametrize("version", [5, 6, 7])
def test_bytes_equal_kio(version: int) -> None:
    results = sample_results()
    want = codec.encode_response(
        42, build(codec.response_schema(19, version), {"throttle_time": 0, "topics": results}), framed=True)
    got = b"".join(create_topics_response.pre_encoded(version, 0, results).encode(42))
    assert got == want


def test_empty_request_equals_kio() -> None:
    want = codec.encode_response(7, build(codec.response_schema(19, 7), {"throttle_time": 0, "topics": []}),
                                 framed=True)
    assert b"".join(create_topics_response.pre_encoded(7, 0, []).encode(7)) == want


async def test_clients_decode_it(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    try:
        res = await create_topics(conn, topic("a", 2), topic("a", 1),
                                  {**topic("c", 1), "configs": [{"name": "cleanup.policy", "value": "compact"}]})
        assert [r.error_code for r in res.values()] == [ErrorCode.topic_already_exists, 0]
        cfg = {c.name: (c.value, c.config_source) for c in res["c"].configs}
        assert cfg["cleanup.policy"] == ("compact", 1) and cfg["retention.ms"][1] == 5
        for version in (5, 6):
            resp = await conn.call(19, version, {"topics": [topic(f"v{version}", 2)], "timeout": 5000,
                                                 "validate_only": False})
            assert resp.topics[0].error_code == 0 and resp.topics[0].num_partitions == 2
    finally:
        conn.close()
