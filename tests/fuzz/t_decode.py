"""Fuzz target `decode`: the frame reader, every request decoder and every response decoder.

Seeds are one valid request per supported (api_key, version), private APIs included,
built from kio's message schemas twice: with Kafka's zero values (empty arrays) and
"populated" (one element in every array, one byte in every bytes field, so mutations of
nested entities have something to reach). Allowed outcomes: a decoded request, DecodeError
or UnsupportedApi; from the frame reader, FrameTooLarge or NegativeFrameSize. Responses
(what the mirror and the client read from a peer broker) are fuzzed too: a response seed is
its (api_key, version) followed by a valid response frame; only DecodeError is allowed.

Every request that decodes is re-encoded and the bounds walk (request_bounds.py, which
runs before kio) must read it to exactly its end: the walk may never misread a valid layout.

Allocation is bounded: every 8th input is decoded under tracemalloc and its peak must stay
under 1 MiB + 512 bytes per input byte, so a 20-byte request claiming an array of 2^31
elements cannot make the decoder allocate for the claim.
"""

from __future__ import annotations

import struct
import tracemalloc
from dataclasses import fields
from functools import cache
from typing import Any

from kio.schema.index import api_key_map
from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    PrimitiveField,
    PrimitiveTupleField,
    classify_field,
    get_schema_field_type,
    is_optional,
)

from cluster.wire import codec
from cluster.wire.build import _zero, build
from cluster.wire.request_bounds import ArrayTooLong, _Lost, _struct
from cluster.wire.framing import FrameReader, FrameTooLarge, NegativeFrameSize, frame

from .engine import Target

ALLOC_BASE = 1 << 20
ALLOC_PER_BYTE = 512
SAMPLE_EVERY = 8


def versions() -> list[tuple[int, int]]:
    """Every (api_key, version) the codec has a request schema for."""
    out = []
    for key in sorted(set(api_key_map) | set(codec.PRIVATE_APIS)):
        known = codec.known_versions(key)
        if known:
            out.extend((key, v) for v in range(known[0], known[1] + 1))
    return out


def _populated(schema: type, depth: int = 0) -> Any:
    kwargs: dict[str, Any] = {}
    for f in fields(schema):
        cls = classify_field(f)
        if isinstance(cls, EntityTupleField):
            kwargs[f.name] = (_populated(cls.type_, depth + 1),) if depth < 4 else ()
        elif isinstance(cls, EntityField):
            kwargs[f.name] = _populated(cls.type_, depth + 1) if depth < 4 or not is_optional(f) else None
        elif isinstance(cls, PrimitiveTupleField):
            try:
                kwargs[f.name] = (_zero(get_schema_field_type(f), False),)
            except ValueError:
                kwargs[f.name] = ()
        else:
            assert isinstance(cls, PrimitiveField)
            kt = get_schema_field_type(f)
            if kt in ("string",):
                kwargs[f.name] = "x"
            elif kt in ("bytes", "records"):
                kwargs[f.name] = b"\x01"
            elif f.name not in ("__version__",):
                kwargs[f.name] = _zero(kt, False)
    return build(schema, kwargs)


@cache
def seeds() -> list[bytes]:
    out = []
    for key, version in versions():
        schema = codec.request_schema(key, version)
        out.append(codec.encode_request(build(schema, {}), 7, "fuzz", api_key=key, api_version=version))
        try:
            body = _populated(schema)
        except (TypeError, ValueError):
            continue
        out.append(codec.encode_request(body, 8, None, api_key=key, api_version=version))
        response = codec.response_schema(key, version)  # prefixed with the key and version
        out.append(_RESPONSE_TAG.pack(key, version) + codec.encode_response(9, build(response, {})))
    return out


_RESPONSE_TAG = struct.Struct(">hh")


def _response(data: bytes) -> None:
    """The first 4 bytes name the response schema (api_key, version), the rest is the frame."""
    if len(data) < _RESPONSE_TAG.size:
        return
    key, version = _RESPONSE_TAG.unpack_from(data)
    try:
        schema = codec.response_schema(key, version)
    except Exception:
        return
    frame = data[_RESPONSE_TAG.size :]
    try:
        _cid, body = codec.decode_response(frame, schema)
    except codec.DecodeError:
        return
    try:
        canonical = codec.encode_response(9, body)
    except Exception:
        return
    start = 4 + int(schema.__header_schema__.__flexible__)
    try:
        end = _struct(schema)(canonical, start, len(canonical))
    except (_Lost, ArrayTooLong) as exc:
        raise BoundsWalkDisagrees(f"{schema.__name__}: walk failed on a valid response: {exc!r}") from None
    if end != len(canonical):
        raise BoundsWalkDisagrees(f"{schema.__name__}: walk ended at {end} of {len(canonical)}")


def _frames(data: bytes) -> None:
    reader = FrameReader(max_frame=1 << 20)
    cut = data[0] % (len(data) + 1) if data else 0
    try:
        for part in (data[:cut], data[cut:]):
            reader.feed(part)
            while reader.next_frame() is not None:
                pass
    except (FrameTooLarge, NegativeFrameSize):
        pass


_count = 0


def check(data: bytes) -> None:
    global _count
    _count += 1
    _frames(data)
    _frames(frame(data))
    sample = _count % SAMPLE_EVERY == 0 and not tracemalloc.is_tracing()
    if sample:
        tracemalloc.start()
    request = None
    try:
        request = codec.decode_request(data)
    except (codec.DecodeError, codec.UnsupportedApi):
        pass
    finally:
        if sample:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    if sample and peak > ALLOC_BASE + ALLOC_PER_BYTE * len(data):
        raise MemoryError(f"decoding {len(data)} bytes allocated {peak} bytes at peak")
    if request is not None:
        _bounds_walk_agrees(request)
    _response(data)


class BoundsWalkDisagrees(AssertionError):
    """request_bounds read a valid request's layout differently from kio."""


def _bounds_walk_agrees(request: codec.Request) -> None:
    """The bounds walk over a decoded request, re-encoded, must end exactly where it ends."""
    h = request.header
    try:
        canonical = codec.encode_request(request.body, h.correlation_id, h.client_id,
                                         api_key=h.api_key, api_version=h.api_version)
    except Exception:  # not every decodable body re-encodes (kio's business, not ours)
        return
    schema = codec.request_schema(h.api_key, h.api_version)
    start = 10 + (len(h.client_id.encode()) if h.client_id is not None else 0) + int(schema.__flexible__)
    try:
        end = _struct(schema)(canonical, start, len(canonical))
    except (_Lost, ArrayTooLong) as exc:
        raise BoundsWalkDisagrees(f"{schema.__name__}: walk failed on a valid request: {exc!r}") from None
    if end != len(canonical):
        raise BoundsWalkDisagrees(f"{schema.__name__}: walk ended at {end} of {len(canonical)}")


TARGET = Target("decode", seeds, check, __doc__ or "")
