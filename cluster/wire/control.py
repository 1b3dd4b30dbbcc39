"""Control records: the COMMIT/ABORT transaction markers written into partition logs.

When a transaction ends, the coordinator has each partition leader append a control batch
(attributes: transactional + control) holding one record. Consumers reading
read_committed use it to drop aborted data; the mirror must recognise (and never copy
blindly) these batches. Layout, from Kafka's ControlRecordType / EndTransactionMarker:

    key:   version int16 (0), type int16 (0 = ABORT, 1 = COMMIT; 2+ are KRaft-internal)
    value: version int16 (0), coordinator_epoch int32
"""

from __future__ import annotations

import logging
import struct
from typing import Protocol

from .batch_builder import build_batch
from .records import InvalidRecord

logger = logging.getLogger(__name__)

CONTROL_VERSION = 0
ABORT, COMMIT = 0, 1
LEADER_CHANGE, SNAPSHOT_HEADER, SNAPSHOT_FOOTER = 2, 3, 4

_KEY = struct.Struct(">hh")
_VALUE = struct.Struct(">hi")


class NotATransactionMarker(InvalidRecord):
    """A control record whose key is not COMMIT/ABORT, or whose bytes are malformed."""


class _HasKeyValue(Protocol):
    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


def marker_key(commit: bool) -> bytes:
    return _KEY.pack(CONTROL_VERSION, COMMIT if commit else ABORT)


def marker_value(coordinator_epoch: int) -> bytes:
    return _VALUE.pack(CONTROL_VERSION, coordinator_epoch)


def build_control_batch(
    producer_id: int,
    producer_epoch: int,
    commit: bool,
    coordinator_epoch: int,
    timestamp_ms: int,
    base_offset: int = 0,
    partition_leader_epoch: int = -1,
) -> bytes:
    """A one-record transactional control batch ending `producer_id`'s transaction."""
    return build_batch(
        [(marker_key(commit), marker_value(coordinator_epoch), None, timestamp_ms)],
        base_offset=base_offset,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        transactional=True,
        control=True,
        partition_leader_epoch=partition_leader_epoch,
    )


def control_type(record: _HasKeyValue) -> int:
    """The control type from a control record's key (Kafka reads it for any key version)."""
    key = record.key
    if key is None or len(key) < _KEY.size:
        raise NotATransactionMarker("control record key shorter than 4 bytes")
    version, ctype = _KEY.unpack_from(key)
    if version < 0:
        raise NotATransactionMarker(f"negative control key version {version}")
    return ctype


def parse_control_record(record: _HasKeyValue) -> tuple[bool, int]:
    """(commit, coordinator_epoch) of a transaction marker record.

    Newer key/value versions are read by their version-0 prefix, as Kafka does, so a
    future marker format still yields its type and epoch.
    """
    ctype = control_type(record)
    if ctype not in (ABORT, COMMIT):
        raise NotATransactionMarker(f"control type {ctype} is not COMMIT or ABORT")
    value = record.value
    if value is None or len(value) < _VALUE.size:
        raise NotATransactionMarker("transaction marker value shorter than 6 bytes")
    version, coordinator_epoch = _VALUE.unpack_from(value)
    if version < 0:
        raise NotATransactionMarker(f"negative marker value version {version}")
    if version > CONTROL_VERSION:
        logger.debug("transaction marker value version %d read as version 0", version)
    return ctype == COMMIT, coordinator_epoch
