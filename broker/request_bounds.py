"""Array counts of a request body, checked against the frame before kio decodes it.

kio's native reader reserves room for an array's announced element count before it reads
the elements (a Rust ``Vec::with_capacity``). Five bytes announcing 2^31-1 elements (or, in
flexible versions, 2^32-2) make it ask for 16-32 GiB, and a failed allocation in Rust
aborts the whole broker process: one 22-byte request from anyone would take the broker
down. ``check_array_counts`` walks the body along the request's schema, without creating
any object per field, and refuses an array whose count is larger than the bytes left in
the frame, the same rule as Kafka's generated readers ("Tried to allocate a collection of
size N, but there are only M bytes remaining").

The walk stops at the first inconsistency it can see (a count or length past the end);
everything else is left to kio, which then reports the precise error.
"""

from __future__ import annotations

import dataclasses
import struct
from functools import cache
from typing import Any

from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    PrimitiveTupleField,
    classify_field,
    get_schema_field_type,
    is_optional,
)

_FIXED = {
    "int8": 1,
    "bool": 1,
    "int16": 2,
    "uint16": 2,
    "error_code": 2,
    "int32": 4,
    "uint32": 4,
    "timedelta_i32": 4,
    "int64": 8,
    "uint64": 8,
    "float64": 8,
    "timedelta_i64": 8,
    "datetime_i64": 8,
    "uuid": 16,
}

# Plan opcodes: (op, size or nested plan)
_SKIP = 0  # fixed-size field: arg is its size
_STRING = 1  # int16 length (-1 null) / compact: uvarint length + 1
_BYTES = 2  # int32 length (-1 null) / compact: uvarint length + 1
_ARRAY_FIXED = 3  # array of fixed-size primitives: arg is the element size
_ARRAY_STRING = 4  # array of strings
_ARRAY_ENTITY = 5  # array of entities: arg is the element's plan
_ENTITY = 6  # a nested struct: arg is (nullable, plan)


class ArrayBoundsError(ValueError):
    """An array or length in the request reaches past the end of the frame."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Plan:
    flexible: bool
    ops: tuple[tuple[int, Any], ...]


@cache
def plan_for(schema: type) -> _Plan:
    flexible = bool(getattr(schema, "__flexible__", False))
    ops: list[tuple[int, Any]] = []
    for f in dataclasses.fields(schema):
        if "tag" in f.metadata:
            continue  # tagged fields live in the tagged-field section, sized
        kind = classify_field(f)
        if isinstance(kind, EntityTupleField):
            ops.append((_ARRAY_ENTITY, plan_for(kind.type_)))
        elif isinstance(kind, EntityField):
            ops.append((_ENTITY, (is_optional(f), plan_for(kind.type_))))
        else:
            kafka_type = get_schema_field_type(f)
            if isinstance(kind, PrimitiveTupleField):
                if kafka_type == "string":
                    ops.append((_ARRAY_STRING, None))
                elif kafka_type in _FIXED:
                    ops.append((_ARRAY_FIXED, _FIXED[kafka_type]))
                else:
                    raise TypeError(f"array of {kafka_type} in {schema.__name__}")
            elif kafka_type == "string":
                ops.append((_STRING, None))
            elif kafka_type in ("bytes", "records"):
                ops.append((_BYTES, None))
            elif kafka_type in _FIXED:
                ops.append((_SKIP, _FIXED[kafka_type]))
            else:
                raise TypeError(f"field type {kafka_type} in {schema.__name__}")
    return _Plan(flexible, tuple(ops))


def _uvarint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 28:
            raise ArrayBoundsError(f"unsigned varint runs past byte {pos}")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


_UNPACK = {
    1: struct.Struct(">b").unpack_from,
    2: struct.Struct(">h").unpack_from,
    4: struct.Struct(">i").unpack_from,
}


def _int(buf: Any, pos: int, size: int, end: int) -> tuple[int, int]:
    if pos + size > end:
        raise ArrayBoundsError(f"field of {size} bytes runs past the end at byte {pos}")
    return _UNPACK[size](buf, pos)[0], pos + size


def _count(buf: Any, pos: int, end: int, flexible: bool, size: int) -> tuple[int, int]:
    """A length or count: int16/int32 (-1 null), or compact (uvarint of n + 1, 0 null)."""
    if flexible:
        if pos < end and buf[pos] < 0x80:  # the common one-byte varint
            return buf[pos] - 1, pos + 1
        n, pos = _uvarint(buf, pos, end)
        return n - 1, pos
    return _int(buf, pos, size, end)


def _walk(plan: _Plan, buf: Any, pos: int, end: int) -> int:
    flexible = plan.flexible
    for op, arg in plan.ops:
        if op == _SKIP:
            pos += arg
            if pos > end:
                raise ArrayBoundsError("fixed-size field runs past the end of the frame")
        elif op == _STRING or op == _BYTES:
            n, pos = _count(buf, pos, end, flexible, 2 if op == _STRING else 4)
            if n > 0:
                if n > end - pos:
                    raise ArrayBoundsError(f"length {n} at byte {pos} exceeds the frame")
                pos += n
        elif op == _ENTITY:
            nullable, inner = arg
            if nullable:
                marker, pos = _int(buf, pos, 1, end)
                if marker < 0:
                    continue
            pos = _walk(inner, buf, pos, end)
        else:
            n, pos = _count(buf, pos, end, flexible, 4)
            if n <= 0:
                continue
            if n > end - pos:
                raise ArrayBoundsError(
                    f"array of {n} elements at byte {pos}, only {end - pos} bytes remain"
                )
            if op == _ARRAY_FIXED:
                pos += n * arg
                if pos > end:
                    raise ArrayBoundsError("array elements run past the end of the frame")
            elif op == _ARRAY_STRING:
                for _ in range(n):
                    m, pos = _count(buf, pos, end, flexible, 2)
                    if m > 0:
                        if m > end - pos:
                            raise ArrayBoundsError(f"length {m} at byte {pos} exceeds the frame")
                        pos += m
            else:
                for _ in range(n):
                    pos = _walk(arg, buf, pos, end)
    if flexible:
        if pos < end and buf[pos] == 0:  # no tagged fields: the common case
            return pos + 1
        count, pos = _uvarint(buf, pos, end)
        for _ in range(count):
            _tag, pos = _uvarint(buf, pos, end)
            size, pos = _uvarint(buf, pos, end)
            if size > end - pos:
                raise ArrayBoundsError(f"tagged field of {size} bytes exceeds the frame")
            pos += size
    return pos


def check_array_counts(schema: type, frame: Any, offset: int) -> None:
    """Raise ArrayBoundsError if an array count (or a length) in the body of ``frame`` from
    ``offset`` announces more than the frame holds."""
    try:
        plan = plan_for(schema)
    except TypeError:  # a field type this walk does not know: leave the schema to kio
        return
    _walk(plan, frame, offset, len(frame))
