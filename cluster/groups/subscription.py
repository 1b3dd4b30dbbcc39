"""Read the topic list out of a consumer's JoinGroup metadata (ConsumerProtocolSubscription).

OffsetDelete must refuse to delete offsets of topics an active consumer group still
subscribes to (GROUP_SUBSCRIBED_TO_TOPIC), and the only place the broker learns those
topics is the opaque protocol metadata the members sent. Every version (0-3) of the
subscription starts with the same non-flexible prefix: int16 version, then an int32-counted
array of int16-length topic names; later fields are ignored.
"""

from __future__ import annotations

import struct

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")


def topics_of(metadata: bytes) -> set[str] | None:
    """The subscribed topics, or None if `metadata` is not a consumer subscription."""
    try:
        pos = 2  # version
        (count,) = _I32.unpack_from(metadata, pos)
        pos += 4
        if count < 0:
            return set()
        topics = set()
        for _ in range(count):
            (length,) = _I16.unpack_from(metadata, pos)
            pos += 2
            if length < 0 or pos + length > len(metadata):
                return None
            topics.add(metadata[pos : pos + length].decode("utf-8"))
            pos += length
        return topics
    except (struct.error, UnicodeDecodeError):
        return None


def subscribed_topics(metadatas: list[bytes]) -> set[str] | None:
    """The union of the members' subscriptions, or None if any is unreadable."""
    topics: set[str] = set()
    for meta in metadatas:
        parsed = topics_of(meta)
        if parsed is None:
            return None
        topics |= parsed
    return topics


def encode_subscription(topics: list[str], version: int = 0) -> bytes:
    """A minimal ConsumerProtocolSubscription (for tests and our own client)."""
    out = bytearray(_I16.pack(version))
    out += _I32.pack(len(topics))
    for t in topics:
        raw = t.encode()
        out += _I16.pack(len(raw)) + raw
    out += _I32.pack(-1)  # user_data: null bytes
    return bytes(out)
