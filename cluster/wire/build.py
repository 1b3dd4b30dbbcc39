"""Build a kio message of any version from one version-independent dict.

kio generates a separate dataclass per API version, each with only that version's fields.
Handlers and the client describe a message once, as a plain dict holding the union of the
fields they care about; `build` keeps the fields the chosen version has, converts
milliseconds to the timedelta kio wants, recurses into nested entities, and fills the
fields the caller left out with Kafka's zero values. That keeps one handler per API instead
of one per version. A key that no version of the message has raises ValueError: a typo
must not quietly become a zero value (error_code=0 is success).
"""

from __future__ import annotations

import datetime
import importlib
import pkgutil
import uuid
from dataclasses import MISSING, fields, is_dataclass
from functools import cache
from typing import Any, Callable

from kio.schema.errors import ErrorCode
from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    PrimitiveField,
    PrimitiveTupleField,
    classify_field,
    get_schema_field_type,
    is_optional,
)

_ZERO_UUID = uuid.UUID(int=0)


def _zero(kafka_type: str, optional: bool) -> Any:
    if optional:
        return None
    if kafka_type.startswith(("int", "uint", "float")):
        return 0
    if kafka_type == "string":
        return ""
    if kafka_type in ("bytes", "records"):
        return b""
    if kafka_type == "bool":
        return False
    if kafka_type == "error_code":
        return ErrorCode.none
    if kafka_type == "uuid":
        return _ZERO_UUID
    if kafka_type.startswith("timedelta"):
        return datetime.timedelta(0)
    if kafka_type.startswith("datetime"):
        return datetime.datetime.fromtimestamp(0, datetime.UTC)
    raise ValueError(f"no zero value for {kafka_type}")


def _convert_primitive(kafka_type: str) -> Callable[[Any], Any]:
    if kafka_type.startswith("timedelta"):
        return lambda v: v if isinstance(v, datetime.timedelta) else datetime.timedelta(milliseconds=v)
    if kafka_type == "error_code":
        return lambda v: v if isinstance(v, ErrorCode) else ErrorCode(int(v))
    if kafka_type == "datetime_i64":
        return lambda v: (
            v
            if v is None or isinstance(v, datetime.datetime)
            else datetime.datetime.fromtimestamp(v / 1000, datetime.UTC)
        )
    return lambda v: v


@cache
def _plan(schema: type) -> list[tuple[str, Callable[[Any], Any], Callable[[], Any] | None]]:
    plan = []
    for f in fields(schema):
        cls = classify_field(f)
        has_default = f.default is not MISSING or f.default_factory is not MISSING  # type: ignore[misc]
        if isinstance(cls, EntityField):
            nested = cls.type_
            conv: Callable[[Any], Any] = lambda v, t=nested: None if v is None else build(t, v)
            zero = (lambda: None) if is_optional(f) else (lambda t=nested: build(t, {}))
        elif isinstance(cls, EntityTupleField):
            nested = cls.type_
            conv = lambda v, t=nested: None if v is None else tuple(build(t, x) for x in v)
            zero = (lambda: None) if is_optional(f) else (lambda: ())
        elif isinstance(cls, PrimitiveTupleField):
            conv = lambda v: None if v is None else tuple(v)
            zero = (lambda: None) if is_optional(f) else (lambda: ())
        else:
            assert isinstance(cls, PrimitiveField)
            kt = get_schema_field_type(f)
            conv = _convert_primitive(kt)
            z = _zero(kt, is_optional(f))
            zero = lambda z=z: z
        plan.append((f.name, conv, None if has_default else zero))
    return plan


def _versions_of(schema: type) -> list[type]:
    """The same entity in every version of its message (kio.schema.<api>.v<N>.<kind>)."""
    parts = schema.__module__.split(".")
    if len(parts) < 4 or not (parts[-2].startswith("v") and parts[-2][1:].isdigit()):
        return [schema]
    package = importlib.import_module(".".join(parts[:-2]))
    out = []
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("v") and info.name[1:].isdigit():
            try:
                module = importlib.import_module(f"{package.__name__}.{info.name}.{parts[-1]}")
            except ImportError:
                continue
            other = getattr(module, schema.__name__, None)
            if isinstance(other, type) and is_dataclass(other):
                out.append(other)
    return out or [schema]


@cache
def known_fields(schema: type) -> frozenset[str]:
    """Every field name the entity has in some version of its message: the keys a
    version-independent dict may hold."""
    return frozenset(f.name for s in [schema, *_versions_of(schema)] for f in fields(s))


def build(schema: type, data: Any) -> Any:
    """Instantiate `schema` from a dict (or return `data` if it already is one).

    A key no version of the message has is a mistake (a typo would otherwise silently
    become the field's zero value, e.g. error_code 0): ValueError naming key and message."""
    if isinstance(data, schema):
        return data
    if not isinstance(data, dict):
        raise TypeError(f"{schema.__name__} needs a dict, got {type(data).__name__}")
    unknown = data.keys() - known_fields(schema)
    if unknown:
        raise ValueError(f"{schema.__module__}.{schema.__name__} has no field {sorted(unknown)[0]!r} "
                         f"in any version (unknown: {', '.join(sorted(unknown))})")
    kwargs = {}
    for name, conv, zero in _plan(schema):
        if name in data:
            kwargs[name] = conv(data[name])
        elif zero is not None:
            kwargs[name] = zero()
    return schema(**kwargs)


def to_dict(entity: Any) -> Any:
    """The inverse of `build`, for tests and JSON output: nested dicts with ms integers."""
    if isinstance(entity, tuple):
        return [to_dict(x) for x in entity]
    if hasattr(entity, "__dataclass_fields__"):
        return {f.name: to_dict(getattr(entity, f.name)) for f in fields(entity)}
    if isinstance(entity, datetime.timedelta):
        return int(entity.total_seconds() * 1000)
    if isinstance(entity, ErrorCode):
        return int(entity)
    return entity
