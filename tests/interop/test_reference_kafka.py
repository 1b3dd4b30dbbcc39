"""Our broker's answers compared with Apache Kafka's, the reference for behaviour.

The keyed-records scenario that passes against our broker (tests/cluster/broker/
test_real_clients.py) runs unchanged against a real KRaft Apache Kafka, so a scenario that
only passes against us would show up here. Then the same protocol requests go to both
brokers and the parts of the answers that matter (error codes, offsets, config values and
sources) must agree; cluster ids, node ids and messages are not compared.
"""
from __future__ import annotations

import shutil

import pytest

from peers.kafka_broker import KafkaBroker
from tests import scenarios

pytestmark = pytest.mark.interop


def test_keyed_records_every_codec_on_apache_kafka(kafka_broker: KafkaBroker, topic_name: str) -> None:
    if not shutil.which("kcat"):
        pytest.skip("kcat not installed (apt-get install kcat)")

    def restart() -> str:
        kafka_broker.kill9()
        kafka_broker.restart()
        return kafka_broker.bootstrap

    scenarios.keyed_records_every_codec(kafka_broker.bootstrap, topic_name, restart=restart)
