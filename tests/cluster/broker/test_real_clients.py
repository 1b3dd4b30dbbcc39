"""The first scenario a user runs: a cluster started by the CLI, used by real clients.

confluent-kafka (librdkafka 2.x), kafka-python, aiokafka and Debian's kcat produce keyed
records with headers in every codec; every client reads them back identically; placement
follows murmur2; after `kill -9` and a restart everything reads back byte for byte.
"""

from __future__ import annotations

import shutil

import pytest

from tests import scenarios


def test_every_client_every_codec_survives_kill9(cluster) -> None:
    if not shutil.which("kcat"):
        pytest.skip("kcat not installed (apt-get install kcat)")

    def restart() -> str:
        cluster.kill9()
        cluster.start()
        return cluster.bootstrap

    scenarios.keyed_records_every_codec(cluster.bootstrap, "orders", restart=restart)
