"""Request/response headers and API message bodies, encoded and decoded through kio.

kio supplies the generated dataclasses for every API message (with correct tagged fields,
written only when non-default — which Debian's librdkafka 2.0.2 needs). This module adds the
pieces kio leaves to its caller: the request header, choosing header versions, tolerating
trailing bytes after a request body (librdkafka's Metadata v12 sends some), and turning
malformed input into one exception type the broker can answer.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from functools import cache
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.schema.index import api_key_map, schema_name_map
from kio.serial import entity_reader, entity_writer
from kio.serial.readers import read_unsigned_varint
from kio.static.constants import EntityType

from .request_bounds import check_bounds

_HDR = struct.Struct(">hhi")

# dcmirror's private API keys and the public schemas they borrow (cluster/wire/dcmirror_api.py).
from .dcmirror_api import DCMIRROR_APPEND, DCMIRROR_TRUNCATE, PRIVATE_APIS  # noqa: E402,F401
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")


class DecodeError(Exception):
    """The peer sent bytes that are not a valid message of the announced API and version."""


class UnsupportedApi(Exception):
    """A request for an API key or version kio (and so this codec) has no schema for."""

    def __init__(self, api_key: int, api_version: int, correlation_id: int) -> None:
        super().__init__(f"unsupported api_key={api_key} version={api_version}")
        self.api_key = api_key
        self.api_version = api_version
        self.correlation_id = correlation_id


@dataclass(frozen=True, slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


@dataclass(frozen=True, slots=True)
class Request:
    header: RequestHeader
    body: Any


def known_versions(api_key: int) -> tuple[int, int] | None:
    """The (min, max) versions kio has schemas for, or None for an unknown key."""
    if api_key in PRIVATE_APIS:
        vs = PRIVATE_APIS[api_key]
        return (min(vs), max(vs))
    name = api_key_map.get(api_key)
    if name is None:
        return None
    versions = [
        v
        for v, kinds in schema_name_map[name].items()
        if EntityType.request in kinds and EntityType.response in kinds
    ]
    return (min(versions), max(versions)) if versions else None


def _public(api_key: int, api_version: int) -> tuple[int, int]:
    private = PRIVATE_APIS.get(api_key)
    if private is None:
        return api_key, api_version
    if api_version not in private:
        raise KeyError(f"private api {api_key} has no version {api_version}")
    return private[api_version]


@cache
def request_schema(api_key: int, api_version: int) -> type:
    return load_request_schema(*_public(api_key, api_version))


@cache
def response_schema(api_key: int, api_version: int) -> type:
    return load_response_schema(*_public(api_key, api_version))


@cache
def _reader(schema: type) -> Any:
    return entity_reader(schema)


@cache
def _writer(schema: type) -> Any:
    return entity_writer(schema)


def peek_header(frame: bytes) -> tuple[int, int, int]:
    """(api_key, api_version, correlation_id) from a request frame, or DecodeError."""
    if len(frame) < _HDR.size:
        raise DecodeError(f"request of {len(frame)} bytes is shorter than a header")
    return _HDR.unpack_from(frame, 0)


def _skip_tagged_fields(frame: bytes, pos: int) -> int:
    count, n = read_unsigned_varint(frame, pos)
    pos += n
    for _ in range(count):
        _tag, n = read_unsigned_varint(frame, pos)
        pos += n
        size, n = read_unsigned_varint(frame, pos)
        pos += n + size
    if pos > len(frame):
        raise DecodeError("tagged fields run past the end of the frame")
    return pos


def decode_request(frame: bytes) -> Request:
    """Decode a request frame body (without the size prefix).

    Raises UnsupportedApi for an unknown key/version (the caller decides how to answer) and
    DecodeError for malformed bytes. Trailing bytes after the body are ignored.
    """
    api_key, api_version, correlation_id = peek_header(frame)
    try:
        schema = request_schema(api_key, api_version)
    except Exception:
        raise UnsupportedApi(api_key, api_version, correlation_id) from None
    try:
        pos = _HDR.size
        (cid_len,) = _I16.unpack_from(frame, pos)
        pos += 2
        client_id = None
        if cid_len >= 0:
            if pos + cid_len > len(frame):
                raise DecodeError("client_id runs past the end of the frame")
            client_id = frame[pos : pos + cid_len].decode("utf-8", "replace")
            pos += cid_len
        if schema.__flexible__:
            pos = _skip_tagged_fields(frame, pos)
        check_bounds(schema, frame, pos)  # kio would reserve memory for claimed counts
        body, _size = _reader(schema)(frame, pos)
    except DecodeError:
        raise
    except Exception as exc:  # kio raises assorted errors on garbage
        raise DecodeError(f"malformed {schema.__name__} v{api_version}: {exc}") from None
    return Request(RequestHeader(api_key, api_version, correlation_id, client_id), body)


def encode_response(correlation_id: int, body: Any, *, framed: bool = False) -> bytes:
    """Encode a response body with its header (v0 or v1 as the schema says).

    With `framed` the int32 size prefix is included, patched in place at the end: that saves
    copying a (possibly multi-megabyte) Fetch response once more to prepend it."""
    buf = io.BytesIO()
    if framed:
        buf.write(b"\0\0\0\0")
    buf.write(_I32.pack(correlation_id))
    # kio's per-message __header_schema__ encodes Kafka's rule, including ApiVersions'
    # exception of always using response header v0.
    if body.__header_schema__.__flexible__:
        buf.write(b"\x00")
    _writer(type(body))(buf, body)
    if framed:
        view = buf.getbuffer()
        _I32.pack_into(view, 0, len(view) - 4)
        del view
    return buf.getvalue()


def encode_request(
    body: Any,
    correlation_id: int,
    client_id: str | None,
    *,
    api_key: int | None = None,
    api_version: int | None = None,
) -> bytes:
    """Encode a request with header v1/v2 (as the schema's flexibility says), unframed.

    `api_key`/`api_version` override the schema's own for private APIs that borrow a
    public schema (PRIVATE_APIS)."""
    buf = io.BytesIO()
    key = body.__api_key__ if api_key is None else api_key
    version = body.__version__ if api_version is None else api_version
    buf.write(_HDR.pack(key, version, correlation_id))
    if client_id is None:
        buf.write(_I16.pack(-1))
    else:
        raw = client_id.encode()
        buf.write(_I16.pack(len(raw)))
        buf.write(raw)
    if body.__flexible__:
        buf.write(b"\x00")
    _writer(type(body))(buf, body)
    return buf.getvalue()


def decode_response(frame: bytes, schema: type) -> tuple[int, Any]:
    """Decode a response frame body for a known schema: (correlation_id, body)."""
    try:
        (correlation_id,) = _I32.unpack_from(frame, 0)
        pos = 4
        if schema.__header_schema__.__flexible__:
            pos = _skip_tagged_fields(frame, pos)
        check_bounds(schema, frame, pos)  # a broken or hostile peer broker too
        body, _ = _reader(schema)(frame, pos)
    except Exception as exc:
        raise DecodeError(f"malformed {schema.__name__}: {exc}") from None
    return correlation_id, body
