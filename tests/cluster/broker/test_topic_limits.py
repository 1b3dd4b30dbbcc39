"""Partition ceilings: per request (KRaft's 10,000) and broker-wide (`max_partitions`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode

from cluster.broker.config import BrokerConfig
from cluster.broker.server import Broker
from tests.cluster.broker.rawconn import RawConn

KRAFT_MESSAGE = "Excessively large number of partitions per request."


def topic(name: str, partitions: int) -> dict:
    return {"name": name, "num_partitions": partitions, "replication_factor": 1,
            "assignments": [], "configs": []}


async def create_topics(conn: RawConn, *topics: dict, validate_only: bool = False):
    resp = await conn.call(19, 7, {"topics": list(topics), "timeout": 5000,
                                   "validate_only": validate_only})
    return {t.name: t for t in resp.topics}


async def create_partitions(conn: RawConn, name: str, count: int, validate_only: bool = False):
    resp = await conn.call(37, 3, {"topics": [{"name": name, "count": count, "assignments": None}],
                                   "timeout": 5000, "validate_only": validate_only})
    return resp.results[0]


async def metadata_names(conn: RawConn) -> dict[str, int]:
    resp = await conn.call(3, 12, {"topics": None, "allow_auto_topic_creation": False,
                                   "include_topic_authorized_operations": False})
    return {t.name: len(t.partitions) for t in resp.topics}


@pytest.fixture
async def small_broker(tmp_path: Path):
    b = Broker(BrokerConfig(name="test", data_dir=tmp_path / "broker", port=0, max_partitions=12))
    await b.start()
    yield b
    await b.stop()


async def test_create_topics_over_10000_partitions_refused_as_a_whole(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    try:
        res = await create_topics(conn, topic("small", 1), topic("huge", 10_000))
        assert {n: r.error_code for n, r in res.items()} == {
            "small": ErrorCode.policy_violation, "huge": ErrorCode.policy_violation}
        assert res["huge"].error_message == KRAFT_MESSAGE
        res = await create_topics(conn, topic("one", 100_000), validate_only=True)
        assert res["one"].error_code == ErrorCode.policy_violation
        assert await metadata_names(conn) == {}
        assert not [p for p in broker.data_dir.iterdir() if p.name not in ("meta", "__groups", "__transactions")]
    finally:
        conn.close()


async def test_create_partitions_over_10000_refused(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    try:
        assert (await create_topics(conn, topic("t", 1)))["t"].error_code == 0
        res = await create_partitions(conn, "t", 10_002)
        assert (res.error_code, res.error_message) == (ErrorCode.policy_violation, KRAFT_MESSAGE)
        assert await metadata_names(conn) == {"t": 1}
    finally:
        conn.close()


async def test_broker_wide_max_partitions(small_broker) -> None:
    conn = await RawConn.open(small_broker.config.port)
    try:
        res = await create_topics(conn, topic("a", 8), topic("b", 5), topic("c", 4))
        assert [res[n].error_code for n in "abc"] == [0, ErrorCode.policy_violation, 0]
        assert "max_partitions" in res["b"].error_message
        # Validate-only answers what a real request would, and changes nothing.
        assert (await create_topics(conn, topic("d", 1), validate_only=True))["d"].error_code == (
            ErrorCode.policy_violation)
        assert (await create_partitions(conn, "a", 9, validate_only=True)).error_code == (
            ErrorCode.policy_violation)
        assert (await create_partitions(conn, "a", 9)).error_code == ErrorCode.policy_violation
        assert await metadata_names(conn) == {"a": 8, "c": 4}
        # Deleting frees room again.
        resp = await conn.call(20, 6, {"topics": [{"name": "c", "topic_id": None}], "timeout": 5000})
        assert resp.responses[0].error_code == 0
        assert (await create_partitions(conn, "a", 12)).error_code == 0
        assert await metadata_names(conn) == {"a": 12}
    finally:
        conn.close()


async def test_auto_create_respects_max_partitions(small_broker) -> None:
    conn = await RawConn.open(small_broker.config.port)
    try:
        assert (await create_topics(conn, topic("full", 12)))["full"].error_code == 0
        resp = await conn.call(3, 12, {"topics": [{"name": "auto", "topic_id": None}],
                                       "allow_auto_topic_creation": True,
                                       "include_topic_authorized_operations": False})
        assert resp.topics[0].error_code == ErrorCode.unknown_topic_or_partition
        assert await metadata_names(conn) == {"full": 12}
    finally:
        conn.close()


async def test_cli_max_partitions(cluster_factory) -> None:
    c = cluster_factory("east", "--max-partitions", "3")
    conn = await RawConn.open(c.port)
    try:
        res = await create_topics(conn, topic("four", 4), topic("three", 3))
        assert [res["four"].error_code, res["three"].error_code] == [ErrorCode.policy_violation, 0]
    finally:
        conn.close()
