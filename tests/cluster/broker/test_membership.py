"""Pieces of a broker's membership in a multi-broker cluster that need no processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.broker.config import BrokerConfig
from cluster.broker.membership import coordinator_partition, java_string_hash


def test_java_string_hash_matches_java() -> None:
    assert java_string_hash("hello") == 99162322            # "hello".hashCode()
    assert java_string_hash("") == 0
    assert java_string_hash("\U0001F600") == 0xD83D * 31 + 0xDE00  # a surrogate pair: two UTF-16 units
    assert java_string_hash("polygenelubricants") == -(1 << 31)  # Integer.MIN_VALUE, famously


def test_coordinator_partition_is_kafkas_partition_for() -> None:
    assert coordinator_partition("hello", 50) == 99162322 % 50
    assert coordinator_partition("polygenelubricants", 50) == 0  # Utils.abs(MIN_VALUE) == 0
    assert all(0 <= coordinator_partition(f"g{i}", 50) < 50 for i in range(200))


def test_multi_broker_settings_are_checked_at_load(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown scheme"):
        BrokerConfig(name="c", data_dir=tmp_path, port=9092, metadata_url="zk://x:1/y")
    with pytest.raises(ValueError, match="needs a fixed port"):
        BrokerConfig(name="c", data_dir=tmp_path, port=0, metadata_url=f"sqlite://{tmp_path}/m.db")
    with pytest.raises(ValueError, match="give --metadata too"):
        BrokerConfig(name="c", data_dir=tmp_path, port=9092, rack="r1")
