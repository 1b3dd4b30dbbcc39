"""Admin operations against the selected target cluster."""

from __future__ import annotations

import pytest
from kafka.record.default_records import DefaultRecordBatchBuilder

from cluster.client import KafkaClient, KafkaProtocolError, NewTopic
from cluster.client.admin import SOURCE_TOPIC


async def test_create_existing_topic_reports_already_exists(client: KafkaClient, name: str) -> None:
    assert await client.create_topics([NewTopic(name, 2)]) == {name: None}
    results = await client.create_topics([NewTopic(name, 2)], raise_errors=False)
    assert results[name] is not None and results[name].error_code == 36  # TOPIC_ALREADY_EXISTS
    with pytest.raises(KafkaProtocolError):
        await client.create_topics([NewTopic(name, 2)])


async def test_validate_only_creates_nothing(client: KafkaClient, name: str, known_bug) -> None:
    known_bug("tansu", "ignores validate_only and creates the topic")
    await client.create_topics([NewTopic(name, 1)], validate_only=True)
    assert name not in await client.list_topics()


async def test_delete_topic(client: KafkaClient, name: str) -> None:
    await client.create_topics([NewTopic(name, 1)])
    assert await client.delete_topics([name]) == {name: None}
    assert name not in await client.list_topics()
    again = await client.delete_topics([name], raise_errors=False)
    assert again[name] is not None and again[name].error_code == 3


async def test_create_partitions(client: KafkaClient, name: str, known_bug) -> None:
    known_bug("tansu", "no CreatePartitions (API 37)")
    await client.create_topics([NewTopic(name, 1)])
    await client.create_partitions({name: 3})
    meta = await client.metadata([name])
    assert meta.topics[name].num_partitions == 3


async def test_topic_configs_round_trip(client: KafkaClient, name: str, known_bug) -> None:
    known_bug("tansu", "DescribeConfigs reports topic overrides with source DEFAULT_CONFIG (5)")
    await client.create_topics([NewTopic(name, 1, configs={"retention.ms": "3600000"})])
    configs = (await client.describe_configs([name]))[name]
    assert configs["retention.ms"].value == "3600000" and not configs["retention.ms"].is_default
    assert configs["retention.ms"].source == SOURCE_TOPIC
    assert configs["cleanup.policy"].is_default
    await client.incremental_alter_configs({name: {"retention.ms": "7200000", "max.message.bytes": "2000000"}})
    configs = (await client.describe_configs([name], ["retention.ms", "max.message.bytes"]))[name]
    assert configs["retention.ms"].value == "7200000" and configs["max.message.bytes"].value == "2000000"
    await client.incremental_alter_configs({name: {"retention.ms": None}})
    configs = (await client.describe_configs([name]))[name]
    assert configs["retention.ms"].is_default and configs["max.message.bytes"].value == "2000000"


async def test_alter_configs_replaces_overrides(client: KafkaClient, name: str, known_bug) -> None:
    known_bug("tansu", "no AlterConfigs (API 33)")
    await client.create_topics([NewTopic(name, 1, configs={"retention.ms": "3600000"})])
    await client.alter_configs({name: {"max.message.bytes": "2000000"}})
    configs = (await client.describe_configs([name]))[name]
    assert configs["retention.ms"].is_default and configs["max.message.bytes"].value == "2000000"


async def test_delete_records(target, name: str, known_bug) -> None:
    known_bug("tansu", "DeleteRecords panics in its memory engine ('not yet implemented')")
    # A short retry deadline: on Tansu each attempt only sees the connection drop.
    async with KafkaClient(target.bootstrap, retry_deadline_s=0.5) as client:
        await client.create_topics([NewTopic(name, 1)])
        for _ in range(3):
            await client.produce(name, 0, _two_records())
        assert await client.delete_records({(name, 0): 4}) == {(name, 0): 4}
        assert {p: o for p, (o, _) in (await client.list_offsets(name, [0], -2)).items()} == {0: 4}


def _two_records() -> bytes:
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0, producer_id=-1,
                                  producer_epoch=-1, base_sequence=-1, batch_size=1 << 16)
    for i in range(2):
        b.append(i, timestamp=1_700_000_000_000, key=None, value=b"x", headers=[])
    return bytes(b.build())


async def test_describe_cluster(client: KafkaClient) -> None:
    desc = await client.describe_cluster()
    meta = client.cached_metadata
    assert desc.cluster_id == meta.cluster_id
    assert set(desc.brokers) == set(meta.brokers)
    assert desc.controller_id in desc.brokers or desc.controller_id == -1
