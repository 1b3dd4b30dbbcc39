"""Our broker's answers compared with Apache Kafka's, the reference for behaviour.

The keyed-records scenario that passes against our broker (tests/cluster/broker/
test_real_clients.py) runs unchanged against a real KRaft Apache Kafka, so a scenario that
only passes against us would show up here. Then the same protocol requests go to both
brokers and the parts of the answers that matter (error codes, offsets, config values and
sources) must agree; cluster ids, node ids and messages are not compared.
"""
from __future__ import annotations

import shutil
import time
from typing import Any, Awaitable, Callable

import pytest
from kio.schema.errors import ErrorCode

from cluster.client import EARLIEST, LATEST, MAX_TIMESTAMP, FetchPosition, KafkaClient, KafkaProtocolError, NewTopic
from cluster.wire.batch_builder import build_batch
from cluster.wire.compression import CODECS_BY_NAME
from peers.kafka_broker import KafkaBroker
from tests import scenarios
from tests.processes import ClusterProcess

pytestmark = pytest.mark.interop


def test_keyed_records_every_codec_on_apache_kafka(kafka_broker: KafkaBroker, topic_name: str) -> None:
    if not shutil.which("kcat"):
        pytest.skip("kcat not installed (apt-get install kcat)")

    def restart() -> str:
        kafka_broker.kill9()
        kafka_broker.restart()
        return kafka_broker.bootstrap

    scenarios.keyed_records_every_codec(kafka_broker.bootstrap, topic_name, restart=restart)


# ---- the same requests to both brokers ---------------------------------------------------
Probe = Callable[[KafkaClient, str], Awaitable[Any]]
METADATA, PRODUCE, FETCH = 3, 0, 1


async def on_both(cluster: ClusterProcess, kafka: KafkaBroker, topic: str, probe: Probe) -> dict[str, Any]:
    """Run `probe(client, topic)` against our broker and against Apache Kafka."""
    out = {}
    for name, bootstrap in (("dcmirror", cluster.bootstrap), ("kafka", kafka.bootstrap)):
        async with KafkaClient(bootstrap, request_timeout_s=15) as client:
            out[name] = await probe(client, topic)
    return out


def same(answers: dict[str, Any]) -> Any:
    assert answers["dcmirror"] == answers["kafka"], f"dcmirror differs from Apache Kafka:\n" \
        f"  dcmirror: {answers['dcmirror']}\n  kafka:    {answers['kafka']}"
    return answers["kafka"]


def code(exc_or_none: KafkaProtocolError | None) -> int:
    return 0 if exc_or_none is None else exc_or_none.error_code


async def raw_metadata(client: KafkaClient, names: list[str], auto_create: bool = False) -> dict[str, int]:
    conn = await client.any_connection()
    resp = await conn.send(conn.build(METADATA, {
        "topics": [{"name": n} for n in names], "allow_auto_topic_creation": auto_create,
        "include_cluster_authorized_operations": False, "include_topic_authorized_operations": False}))
    return {t.name: int(t.error_code) for t in resp.topics}


async def test_metadata_unknown_and_invalid_topic_names(cluster: ClusterProcess, kafka_broker: KafkaBroker,
                                                        topic_name: str) -> None:
    async def probe(client: KafkaClient, topic: str) -> dict[str, int]:
        names = [f"{topic}-absent", "bad/name", "x" * 250, "..", "with space"]
        got = await raw_metadata(client, names)
        got.update({f"auto:{k}": v for k, v in (await raw_metadata(client, names[1:], auto_create=True)).items()})
        return got

    answer = same(await on_both(cluster, kafka_broker, topic_name, probe))
    assert answer[f"{topic_name}-absent"] == ErrorCode.unknown_topic_or_partition
    assert answer["bad/name"] == ErrorCode.invalid_topic_exception


NOW = int(time.time() * 1000) - 3_600_000  # an hour ago: inside any retention


async def produce_timed(client: KafkaClient, topic: str, partition: int, stamps: list[int],
                        codec: str = "none") -> int:
    recs = [(f"k{i}".encode(), f"v{i}".encode(), [], NOW + ts) for i, ts in enumerate(stamps)]
    res = await client.produce(topic, partition, build_batch(recs, codec=CODECS_BY_NAME[codec]))
    return res.base_offset


async def test_list_offsets_earliest_latest_by_time_max_time(cluster: ClusterProcess, kafka_broker: KafkaBroker,
                                                             topic_name: str) -> None:
    async def probe(client: KafkaClient, topic: str) -> dict[str, Any]:
        await client.create_topics([NewTopic(topic, 2)])
        empty = {name: await client.list_offsets(topic, [0, 1], t)
                 for name, t in (("earliest", EARLIEST), ("latest", LATEST), ("max", MAX_TIMESTAMP),
                                 ("by-time", NOW))}
        await produce_timed(client, topic, 0, [0, 50, 20])              # offsets 0-2
        await produce_timed(client, topic, 0, [100, 30, 100], "gzip")   # offsets 3-5
        await produce_timed(client, topic, 0, [40])                     # offset 6
        full = {name: await client.list_offsets(topic, [0, 1], t)
                for name, t in (("earliest", EARLIEST), ("latest", LATEST), ("max", MAX_TIMESTAMP))}
        for delta in (-1, 0, 10, 25, 50, 60, 100, 101):
            full[f"at+{delta}"] = await client.list_offsets(topic, [0, 1], NOW + delta)
        return {"empty": empty, "full": full}

    answer = same(await on_both(cluster, kafka_broker, topic_name, probe))
    assert answer["full"]["at+25"][0] == (1, NOW + 50)
    assert answer["full"]["max"][0] == (3, NOW + 100)
