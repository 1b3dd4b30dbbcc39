"""Array lengths in a request checked against the bytes left, before kio decodes it.

kio's native (Rust) reader reserves memory for an array's claimed element count before it
reads a single element. A 20-byte request claiming a compact array of 2^35 elements makes
it ask for 256 GiB, and Rust's allocation failure aborts the whole process: one frame
killed the broker (found by tests/fuzz, target `decode`). Every element of every array
takes at least one byte on the wire, so a count above the bytes left is a lie; this walk
reads the same layout kio does, builds nothing, and refuses such a count.

The walk follows the message schema: fixed-size primitives, (compact) strings and bytes,
(compact) arrays, nullable structs (an int8 marker, null only if -1, as kio reads it) and, in flexible versions, the tagged
fields at the end of every struct, whose known tags are walked as kio reads them: from the
start of the field's bytes to the field's own end, whatever size the tag states.
It only needs to be right about where arrays start: if it meets bytes it cannot follow it
stops quietly and leaves the verdict to kio, which will fail on the same bytes.
"""

from __future__ import annotations

import logging
from dataclasses import fields
from functools import cache
from typing import Callable

from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    PrimitiveTupleField,
    classify_field,
    get_field_tag,
    get_schema_field_type,
    is_optional,
)

logger = logging.getLogger(__name__)

_FIXED = {"int8": 1, "int16": 2, "int32": 4, "int64": 8, "uint16": 2, "uint32": 4,
          "uint64": 8, "float64": 8, "bool": 1, "uuid": 16, "error_code": 2,
          "timedelta_i32": 4, "timedelta_i64": 8, "datetime_i64": 8}

Step = Callable[[bytes, int, int], int]  # (buf, pos, end) -> new pos


class ArrayTooLong(ValueError):
    """An array claims more elements than there are bytes left in the request."""


class _Lost(Exception):
    """The walk met bytes it cannot follow; kio decides."""


def _uvarint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while pos < end and shift < 35:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
    raise _Lost


def _int(buf: bytes, pos: int, end: int, width: int) -> tuple[int, int]:
    if pos + width > end:
        raise _Lost
    return int.from_bytes(buf[pos : pos + width], "big", signed=True), pos + width


def _length(buf: bytes, pos: int, end: int, flexible: bool, width: int) -> tuple[int, int]:
    """A string/bytes/array length; -1 for null."""
    if flexible:
        n, pos = _uvarint(buf, pos, end)
        return n - 1, pos
    return _int(buf, pos, end, width)


def _fixed(size: int) -> Step:
    def step(buf: bytes, pos: int, end: int) -> int:
        if pos + size > end:
            raise _Lost
        return pos + size
    return step


def _blob(flexible: bool, width: int) -> Step:
    def step(buf: bytes, pos: int, end: int) -> int:
        n, pos = _length(buf, pos, end, flexible, width)
        if n < -1 or pos + max(n, 0) > end:
            raise _Lost
        return pos + max(n, 0)
    return step


def _primitive(kafka_type: str, flexible: bool) -> Step:
    if kafka_type in _FIXED:
        return _fixed(_FIXED[kafka_type])
    if kafka_type == "string":
        return _blob(flexible, 2)
    if kafka_type in ("bytes", "records"):
        return _blob(flexible, 4)
    raise TypeError(f"no bounds rule for kafka type {kafka_type}")


def _array(element: Step, fixed_size: int | None, flexible: bool) -> Step:
    def step(buf: bytes, pos: int, end: int) -> int:
        n, pos = _length(buf, pos, end, flexible, 4)
        if n > end - pos:
            raise ArrayTooLong(f"array of {n} elements in {end - pos} remaining bytes")
        if n <= 0:
            return pos
        if fixed_size is not None:
            return pos + n * fixed_size if pos + n * fixed_size <= end else _fail()
        for _ in range(n):
            pos = element(buf, pos, end)
        return pos
    return step


def _fail() -> int:
    raise _Lost


def _nullable_struct(inner: Step) -> Step:
    def step(buf: bytes, pos: int, end: int) -> int:
        marker, pos = _int(buf, pos, end, 1)
        # kio reads only -1 as null (Kafka: any negative): follow kio, it is what reads next.
        return pos if marker == -1 else inner(buf, pos, end)
    return step


def _field_step(f, flexible: bool) -> Step:  # type: ignore[no-untyped-def]
    cls = classify_field(f)
    if isinstance(cls, EntityTupleField):
        return _array(_struct(cls.type_), _fixed_size(cls.type_), flexible)
    if isinstance(cls, EntityField):
        inner = _struct(cls.type_)
        return _nullable_struct(inner) if is_optional(f) and get_field_tag(f) is None else inner
    kafka_type = get_schema_field_type(f)
    element = _primitive(kafka_type, flexible)
    if isinstance(cls, PrimitiveTupleField):
        return _array(element, _FIXED.get(kafka_type), flexible)
    return element


@cache
def _fixed_size(schema: type) -> int | None:
    """The size of a struct made only of fixed-size fields (no tags), else None."""
    if schema.__flexible__:
        return None
    total = 0
    for f in fields(schema):
        cls = classify_field(f)
        if cls.__class__.__name__ != "PrimitiveField" or get_schema_field_type(f) not in _FIXED:
            return None
        total += _FIXED[get_schema_field_type(f)]
    return total


@cache
def _struct(schema: type) -> Step:
    flexible = bool(schema.__flexible__)
    steps: list[Step] = []
    fixed_run = 0  # consecutive fixed-size fields are skipped in one step
    tagged: dict[int, Step] = {}
    for f in fields(schema):
        tag = get_field_tag(f)
        if tag is not None:
            tagged[int(tag)] = _field_step(f, flexible)
            continue
        cls = classify_field(f)
        if cls.__class__.__name__ == "PrimitiveField" and get_schema_field_type(f) in _FIXED:
            fixed_run += _FIXED[get_schema_field_type(f)]
            continue
        if fixed_run:
            steps.append(_fixed(fixed_run))
            fixed_run = 0
        steps.append(_field_step(f, flexible))
    if fixed_run:
        steps.append(_fixed(fixed_run))

    def step(buf: bytes, pos: int, end: int) -> int:
        for s in steps:
            pos = s(buf, pos, end)
        if flexible:
            if pos < end and buf[pos] == 0:  # no tagged fields: the common case
                return pos + 1
            count, pos = _uvarint(buf, pos, end)
            for _ in range(count):
                tag, pos = _uvarint(buf, pos, end)
                size, pos = _uvarint(buf, pos, end)
                inner = tagged.get(tag)
                if inner is not None:
                    # kio reads a known tag's field from here to wherever the field ends, and
                    # goes on from there: the stated size bounds nothing (a field claiming
                    # size 0 still reads an array count), so the walk does the same.
                    pos = inner(buf, pos, end)
                    continue
                if pos + size > end:
                    raise _Lost
                pos += size
        return pos
    return step


def check_bounds(schema: type, buf: bytes, pos: int) -> None:
    """Raise ArrayTooLong if any array in the message at `pos` claims more elements than
    bytes remain; otherwise return (malformed bytes elsewhere are kio's to report)."""
    try:
        _struct(schema)(buf, pos, len(buf))
    except _Lost:
        pass
