"""Transaction markers: our control batches as peers read them, and parsing theirs."""

from __future__ import annotations

import struct

import pytest
from aiokafka.record.control_record import ABORT_MARKER, COMMIT_MARKER, ControlRecord
from aiokafka.record.default_records import DefaultRecordBatch
from kafka.record.default_records import DefaultRecordBatch as KpBatch

from cluster.wire.control import (
    NotATransactionMarker,
    build_control_batch,
    control_type,
    parse_control_record,
)
from cluster.wire.record_batch import InvalidBatch, validate
from cluster.wire.records import Record, decode_batch


@pytest.mark.parametrize("commit", [True, False])
def test_control_batch_layout(commit: bool) -> None:
    batch = build_control_batch(
        producer_id=4_000,
        producer_epoch=2,
        commit=commit,
        coordinator_epoch=17,
        timestamp_ms=1_700_000_000_000,
        base_offset=55,
        partition_leader_epoch=3,
    )
    h = validate(batch)
    assert h.is_control and h.is_transactional and h.compression == 0
    assert (h.producer_id, h.producer_epoch, h.base_sequence) == (4_000, 2, -1)
    assert (h.base_offset, h.records_count, h.partition_leader_epoch) == (55, 1, 3)
    assert h.base_timestamp == h.max_timestamp == 1_700_000_000_000
    _, (record,) = decode_batch(batch)
    assert record.offset == 55
    assert record.key == struct.pack(">hh", 0, 1 if commit else 0)
    assert record.value == struct.pack(">hi", 0, 17)
    assert parse_control_record(record) == (commit, 17)


@pytest.mark.parametrize("commit", [True, False])
def test_aiokafka_reads_our_markers(commit: bool) -> None:
    batch = DefaultRecordBatch(build_control_batch(9, 0, commit, 1, 1_000))
    assert batch.validate_crc() and batch.is_control_batch and batch.is_transactional
    (record,) = list(batch)
    assert ControlRecord.parse(record.key) == (COMMIT_MARKER if commit else ABORT_MARKER)


@pytest.mark.parametrize("commit", [True, False])
def test_kafka_python_reads_our_markers(commit: bool) -> None:
    batch = KpBatch(build_control_batch(9, 0, commit, 1, 1_000))
    assert batch.validate_crc() and batch.is_control_batch
    (record,) = list(batch)
    assert record.commit is commit and record.abort is not commit


def test_future_versions_are_read_by_their_v0_prefix() -> None:
    record = Record(0, 0, struct.pack(">hh", 1, 1) + b"extra", struct.pack(">hi", 1, 9) + b"more")
    assert parse_control_record(record) == (True, 9)


@pytest.mark.parametrize(
    "key,value,match",
    [
        (None, struct.pack(">hi", 0, 1), "key"),
        (b"\x00\x00\x01", struct.pack(">hi", 0, 1), "key"),
        (struct.pack(">hh", -1, 1), struct.pack(">hi", 0, 1), "version"),
        (struct.pack(">hh", 0, 2), struct.pack(">hi", 0, 1), "type 2"),  # KRaft leader change
        (struct.pack(">hh", 0, 1), None, "value"),
        (struct.pack(">hh", 0, 1), b"\x00\x00\x00", "value"),
        (struct.pack(">hh", 0, 0), struct.pack(">hi", -3, 1), "version"),
    ],
)
def test_malformed_markers(key: bytes | None, value: bytes | None, match: str) -> None:
    with pytest.raises(NotATransactionMarker, match=match) as info:
        parse_control_record(Record(0, 0, key, value))
    assert isinstance(info.value, InvalidBatch)


def test_control_type_reports_kraft_types() -> None:
    assert control_type(Record(0, 0, struct.pack(">hh", 0, 3), b"")) == 3
