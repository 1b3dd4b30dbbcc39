"""CreateTopics v5+ responses encoded directly, each distinct config list encoded once.

Why: since v5 the answer for every created topic carries its ~20 effective configs, and
building and serialising those through kio (~22 entities per topic) cost ~1 s per 1,000
topics on this machine, so one 10,000-topic request held the event loop for ~10 s. Topics
of one request created with the same configs share one config list object (see
k19_create_topics); its encoding is cached by identity for the request. The bytes are
exactly kio's (tests/cluster/broker/test_create_topics_response.py compares them); v0-v4
still go through kio.
"""

from __future__ import annotations

import struct
import uuid

from cluster.broker.registry import PreEncoded

FIRST_VERSION = 5  # configs, num_partitions, replication_factor in the answer; flexible
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_ERR_PARTS = struct.Struct(">ih")  # num_partitions, replication_factor


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _string(s: str | None) -> bytes:
    if s is None:
        return b"\x00"
    raw = s.encode()
    return _uvarint(len(raw) + 1) + raw


def _configs(configs: list[dict] | None) -> bytes:
    if configs is None:
        return b"\x00"
    parts = [_uvarint(len(configs) + 1)]
    for c in configs:
        parts.append(_string(c["name"]) + _string(c["value"])
                     + (b"\x01" if c["read_only"] else b"\x00")
                     + struct.pack(">b", c.get("config_source", -1))
                     + (b"\x01" if c["is_sensitive"] else b"\x00") + b"\x00")
    return b"".join(parts)


def encode_body(version: int, throttle_ms: int, results: list[dict]) -> bytes:
    """The response body (after the response header) for `version` >= 5."""
    cache: dict[int, bytes] = {}
    parts = [_I32.pack(throttle_ms), _uvarint(len(results) + 1)]
    for r in results:
        parts.append(_string(r["name"]))
        if version >= 7:
            tid = r.get("topic_id")
            parts.append((tid or uuid.UUID(int=0)).bytes)
        parts.append(_I16.pack(r["error_code"]) + _string(r.get("error_message")))
        parts.append(_ERR_PARTS.pack(r.get("num_partitions", -1), r.get("replication_factor", -1)))
        configs = r.get("configs")
        key = id(configs)
        enc = cache.get(key)
        if enc is None:
            enc = cache[key] = _configs(configs)
        parts.append(enc)
        tag_code = r.get("topic_config_error_code", 0)
        parts.append(b"\x01\x00\x02" + _I16.pack(tag_code) if tag_code else b"\x00")
    parts.append(b"\x00")
    return b"".join(parts)


def pre_encoded(version: int, throttle_ms: int, results: list[dict]) -> PreEncoded:
    body = encode_body(version, throttle_ms, results)

    def encode(correlation_id: int) -> list:
        head = _I32.pack(len(body) + 5) + _I32.pack(correlation_id) + b"\x00"  # header v1
        return [head, body]

    return PreEncoded(encode)
