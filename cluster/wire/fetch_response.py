"""Fetch responses (v4-v16) as buffer lists around the log's record bytes.

Written by hand because this is the broker's hot path for every consumer and for the
mirror's source side: kio would copy each partition's records into a BytesIO and out
again. Here the response is small header pieces plus the records buffers read from the
log, handed to the transport in one `writelines`. Only what dcmirror sends is encoded:
of the partition's tagged fields only DivergingEpoch (tag 0, v12+, which a leader sends a
follower whose tail diverged: cluster/broker/replicas.py); no current leader, snapshot id
or node endpoints (left at their defaults, so none is written). v13+ names topics by id;
v4-v11 are the non-flexible layout (int32 array counts, int16 strings, int32 records length). A test
checks the bytes against kio for every version.

A partition's records may be a list of pieces instead of one buffer: anything with a
`len()` the connection knows how to send (bytes, or the log's file ranges that go out by
`sendfile`); the pieces are placed in the reply as they are, their lengths summed.
"""

from __future__ import annotations

import struct
import uuid
from typing import Any, Sequence

from cluster.wire.produce_request import Buffer, uvarint

_PREFIX = struct.Struct(">ii")  # size, correlation id
_TOP = struct.Struct(">ihi")  # throttle_time, error_code, session_id
_PART = struct.Struct(">ihqqq")  # index, error, high watermark, last stable, log start
_ABORTED = struct.Struct(">qq")
_I32 = struct.Struct(">i")
_I16 = struct.Struct(">h")
_LEGACY_TOP = struct.Struct(">iihi")  # correlation id, throttle_time, error_code, session_id
_LEGACY_V4 = struct.Struct(">ii")  # correlation id, throttle_time (v4-v6)
_PART_V4 = struct.Struct(">ihqq")  # index, error, high watermark, last stable
_Q = struct.Struct(">q")
_EPOCH_END = struct.Struct(">iq")  # DivergingEpoch: epoch, end offset


def fetch_response_parts(correlation_id: int, version: int, responses: Sequence[dict[str, Any]],
                         *, throttle_time: int = 0, error_code: int = 0,
                         session_id: int = 0) -> list[Buffer]:
    """A framed FetchResponse (v4-v16) from the handler's dicts."""
    if version < 4:
        raise ValueError("fetch_response_parts encodes versions 4-16")
    if version < 12:
        return _legacy_parts(correlation_id, version, responses, throttle_time, error_code,
                             session_id)
    parts: list[Buffer] = [b""]
    piece = bytearray(b"\x00")  # response header tagged fields
    piece += _TOP.pack(throttle_time, error_code, session_id)
    piece += uvarint(len(responses) + 1)
    for t in responses:
        if version >= 13:
            tid = t["topic_id"]
            piece += (tid.bytes if isinstance(tid, uuid.UUID) else bytes(16))
        else:
            raw = t["topic"].encode()
            piece += uvarint(len(raw) + 1) + raw
        partitions = t["partitions"]
        piece += uvarint(len(partitions) + 1)
        for p in partitions:
            piece += _PART.pack(p["partition_index"], int(p["error_code"]), p["high_watermark"],
                                p["last_stable_offset"], p["log_start_offset"])
            aborted = p.get("aborted_transactions")
            if aborted is None:
                piece += b"\x00"
            else:
                piece += uvarint(len(aborted) + 1)
                for a in aborted:
                    piece += _ABORTED.pack(a["producer_id"], a["first_offset"]) + b"\x00"
            piece += _I32.pack(p.get("preferred_read_replica", -1))
            records = p.get("records")
            if records is None:
                piece += b"\x00"
            else:
                size = _size(records)
                piece += uvarint(size + 1)
                if size:
                    parts.append(bytes(piece))
                    _place(parts, records)
                    piece = bytearray()
            diverging = p.get("diverging_epoch")
            if diverging is None:
                piece += b"\x00"  # partition tagged fields: none
            else:  # one tagged field, tag 0: EpochEndOffset {epoch, end_offset, no tags}
                piece += b"\x01\x00" + uvarint(_EPOCH_END.size + 1)
                piece += _EPOCH_END.pack(diverging["epoch"], diverging["end_offset"]) + b"\x00"
        piece += b"\x00"  # topic tagged fields
    piece += b"\x00"  # response tagged fields
    parts.append(bytes(piece))
    total = 4 + sum(len(x) for x in parts)  # correlation id + the rest
    parts[0] = _PREFIX.pack(total, correlation_id)
    return parts


def _legacy_parts(correlation_id: int, version: int, responses: Sequence[dict[str, Any]],
                  throttle_time: int, error_code: int, session_id: int) -> list[Buffer]:
    """v4-v11: non-flexible, no tagged fields, topics by name."""
    parts: list[Buffer] = [b""]
    if version >= 7:
        piece = bytearray(_LEGACY_TOP.pack(correlation_id, throttle_time, error_code, session_id))
    else:
        piece = bytearray(_LEGACY_V4.pack(correlation_id, throttle_time))
    piece += _I32.pack(len(responses))
    for t in responses:
        raw = t["topic"].encode()
        piece += _I16.pack(len(raw)) + raw
        partitions = t["partitions"]
        piece += _I32.pack(len(partitions))
        for p in partitions:
            piece += _PART_V4.pack(p["partition_index"], int(p["error_code"]), p["high_watermark"],
                                   p["last_stable_offset"])
            if version >= 5:
                piece += _Q.pack(p["log_start_offset"])
            aborted = p.get("aborted_transactions")
            if aborted is None:
                piece += _I32.pack(-1)
            else:
                piece += _I32.pack(len(aborted))
                for a in aborted:
                    piece += _ABORTED.pack(a["producer_id"], a["first_offset"])
            if version >= 11:
                piece += _I32.pack(p.get("preferred_read_replica", -1))
            records = p.get("records")
            if records is None:
                piece += _I32.pack(-1)
            else:
                size = _size(records)
                piece += _I32.pack(size)
                if size:
                    parts.append(bytes(piece))
                    _place(parts, records)
                    piece = bytearray()
    parts.append(bytes(piece))
    parts[0] = _I32.pack(sum(len(x) for x in parts))
    return parts


def _size(records: Any) -> int:
    """Bytes of a partition's records: one buffer, or a list of pieces."""
    return sum(len(x) for x in records) if isinstance(records, list) else len(records)


def _place(parts: list, records: Any) -> None:
    if isinstance(records, list):
        parts.extend(records)
    else:
        parts.append(records)
