"""Metadata parsing and merging, from kio responses built in memory."""

import uuid

from cluster.client.core import parse_bootstrap
from cluster.client.metadata import parse_metadata
from cluster.wire.build import build
from cluster.wire.codec import response_schema

TID = uuid.uuid4()


def _response(version: int, topics: list[dict]) -> object:
    return build(
        response_schema(3, version),
        {
            "brokers": [{"node_id": 1, "host": "h1", "port": 9092}, {"node_id": 2, "host": "h2", "port": 9093,
                                                                      "rack": "r2"}],
            "cluster_id": "c1",
            "controller_id": 2,
            "topics": topics,
        },
    )


def _topic(name: str, error: int = 0, leaders: tuple[int, ...] = (1, 2), tid: uuid.UUID = TID) -> dict:
    return {
        "name": name, "topic_id": tid, "error_code": error,
        "partitions": [
            {"partition_index": i, "leader_id": leader, "leader_epoch": 7, "replica_nodes": [1, 2], "isr_nodes": [leader]}
            for i, leader in enumerate(leaders)
        ],
    }


def test_parse_v12() -> None:
    meta = parse_metadata(_response(12, [_topic("a"), _topic("missing", error=3, leaders=())]))
    assert meta.cluster_id == "c1" and meta.controller_id == 2
    assert meta.brokers[2].rack == "r2" and meta.brokers[1].port == 9092
    assert meta.topics["a"].topic_id == TID
    assert meta.leader("a", 1) == 2 and meta.topics["a"].partitions[0].leader_epoch == 7
    assert meta.topics["a"].partitions[1].replicas == (1, 2)
    assert "missing" not in meta.topics and meta.topic_errors == {"missing": 3}
    assert meta.topic_name(TID) == "a"


def test_parse_v1_has_no_epochs_or_ids() -> None:
    meta = parse_metadata(_response(1, [_topic("a")]))
    assert meta.topics["a"].topic_id is None
    assert meta.topics["a"].partitions[0].leader_epoch == -1
    assert meta.cluster_id is None  # v1 has no cluster id


def test_leaderless_partition_has_no_leader() -> None:
    meta = parse_metadata(_response(12, [_topic("a", leaders=(-1, 1))]))
    assert meta.leader("a", 0) is None
    assert meta.leader("a", 1) == 1
    assert meta.leader("a", 9) is None and meta.leader("zzz", 0) is None


def test_partial_refresh_keeps_other_topics() -> None:
    full = parse_metadata(_response(12, [_topic("a"), _topic("b")]))
    partial = parse_metadata(_response(12, [_topic("b", leaders=(2,), tid=uuid.uuid4())]))
    merged = full.merged(partial, ["b"])
    assert set(merged.topics) == {"a", "b"}
    assert merged.topics["b"].num_partitions == 1
    gone = full.merged(parse_metadata(_response(12, [_topic("a", error=3, leaders=())])), ["a"])
    assert set(gone.topics) == {"b"} and gone.topic_errors == {"a": 3}
    assert full.merged(partial, None).topics.keys() == {"b"}


def test_parse_bootstrap_forms() -> None:
    assert parse_bootstrap("a:1, b:2") == [("a", 1), ("b", 2)]
    assert parse_bootstrap(["tcp://a:1", "[::1]:9"]) == [("a", 1), ("::1", 9)]
    assert parse_bootstrap("host") == [("host", 9092)]
