"""Malformed-but-CRC-valid batches sent to Apache Kafka 4.3.1 and to us: the answers compared.

Every probe of tests/cluster/wire/malformed.py goes to both brokers through Produce; then
the log end offset and the good records around the probes must read back the same. Where
Kafka answers differently (it accepts and rewrites or tolerates the batch, or fails with
UNKNOWN_SERVER_ERROR where we name the defect), the difference is listed in DIFFERS with
Kafka's code and checked, so a change on either side shows up. With DCMIRROR_PROBE_TABLE=path the comparison is
written as the Markdown table README.md shows.
"""
from __future__ import annotations

import os
from typing import Any

import pytest
from kio.schema.errors import ErrorCode

from cluster.client import LATEST, KafkaClient, NewTopic
from cluster.wire.batch_builder import build_batch
from peers.kafka_broker import KafkaBroker
from tests.cluster.wire.malformed import TS, probes
from tests.interop.settling import create_ready
from tests.interop.test_reference_kafka import on_both, raw_produce
from tests.processes import ClusterProcess

pytestmark = pytest.mark.interop

# Kafka's answer where it is not the probe's code, and why ours differs.
DIFFERS: dict[str, tuple[int, str]] = {
    "key-length=-2": (0, "Kafka reads any negative key length as a null key"),
    "header-key-not-utf8": (0, "Kafka decodes header keys leniently; our readers need UTF-8"),
    "offset-deltas-0-0": (0, "Kafka rebuilds the batch with fresh offsets; we never rewrite client bytes"),
    "overlong-varint": (-1, "Kafka's varint reader throws an unchecked error: UNKNOWN_SERVER_ERROR"),
    "unknown-codec-5": (-1, "Kafka fails on the codec id with an unchecked error"),
    "gzip-garbage": (-1, "Kafka's gzip stream error surfaces as UNKNOWN_SERVER_ERROR"),
}


def _name(code: int) -> str:
    return "OK" if code == 0 else ErrorCode(code).name.upper()


async def test_malformed_batches_answered_like_kafka(cluster: ClusterProcess, kafka_broker: KafkaBroker,
                                                     topic_name: str) -> None:
    cases = probes()

    async def probe(client: KafkaClient, topic: str) -> dict[str, Any]:
        await create_ready(client, [NewTopic(topic, 1)])
        good = build_batch([(b"k", b"good", [], TS)])
        out: dict[str, Any] = {"first": await raw_produce(client, topic, 0, good)}
        for p in cases:
            out[p.name] = (await raw_produce(client, topic, 0, p.batch))[0]
        out["last"] = await raw_produce(client, topic, 0, good)
        out["end"] = (await client.list_offsets(topic, [0], LATEST))[0][0]
        return out

    answers = await on_both(cluster, kafka_broker, topic_name, probe)
    ours, kafka = answers["dcmirror"], answers["kafka"]
    rows = [f"| {p.name} | {_name(kafka[p.name])} | {_name(ours[p.name])} |" for p in cases]
    if path := os.environ.get("DCMIRROR_PROBE_TABLE"):
        with open(path, "w") as f:
            f.write("| probe (CRC valid) | Apache Kafka 4.3.1 | dcmirror |\n|---|---|---|\n")
            f.write("\n".join(rows) + "\n")
    for p in cases:
        assert ours[p.name] == p.produce_answer, (p.name, ours[p.name])
        expected_kafka = DIFFERS.get(p.name, (p.produce_answer, ""))[0]
        assert kafka[p.name] == expected_kafka, f"{p.name}: Kafka answers {kafka[p.name]}; update DIFFERS"
    accepted_by_kafka = sum(1 for p in cases if kafka[p.name] == 0)
    assert ours["first"] == (0, 0) and ours["last"] == (0, 1) and ours["end"] == 2
    assert kafka["first"] == (0, 0) and kafka["end"] > accepted_by_kafka
