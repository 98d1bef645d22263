"""Array counts of a request body, checked against the frame before kio decodes it.

kio's native reader reserves room for an array's announced element count before it reads
the elements (a Rust ``Vec::with_capacity``). Five bytes announcing 2^31-1 elements (or, in
flexible versions, 2^32-2) make it ask for 16-32 GiB, and a failed allocation in Rust
aborts the whole broker process: one 22-byte request from anyone would take the broker
down. ``bounded_body`` walks the body along the request's schema, without creating
any object per field, and refuses an array whose count is larger than the bytes left in
the frame, the same rule as Kafka's generated readers ("Tried to allocate a collection of
size N, but there are only M bytes remaining").

The walk stops at the first inconsistency it can see (a count or length past the end);
everything else is left to kio, which then reports the precise error.

The same walk finds tagged fields (KIP-482) the schema does not know. Kafka's receivers
skip them (that is what lets a newer client add tags), but kio refuses them with a
KeyError and has no option to skip. ``bounded_body`` therefore hands kio a copy of the body
without them, rebuilt only when there is one: a request without unknown tags costs nothing
more than the bounds walk. Skipping is bounded like everything else: a tag announcing more
bytes than the frame holds is refused.
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


class _UnknownTags(Exception):
    """A tagged-field section holds a tag the schema does not know (first pass only)."""


# A rewrite of the body: (start, end, replacement) byte ranges, in order, not overlapping.
_Edits = list[tuple[int, int, bytes]]


@dataclasses.dataclass(frozen=True, slots=True)
class _Plan:
    flexible: bool
    ops: tuple[tuple[int, Any], ...]
    # the schema's own tags: a plan to walk the value with, or None (a fixed-size value)
    tagged: dict[int, _Plan | None] = dataclasses.field(default_factory=dict)
    section: bool = True  # ends with a tagged-field section (false for a tagged value)


def _op(schema: type, f: dataclasses.Field[Any]) -> tuple[int, Any]:
    kind = classify_field(f)
    if isinstance(kind, EntityTupleField):
        return (_ARRAY_ENTITY, plan_for(kind.type_))
    if isinstance(kind, EntityField):
        return (_ENTITY, (is_optional(f), plan_for(kind.type_)))
    kafka_type = get_schema_field_type(f)
    if isinstance(kind, PrimitiveTupleField):
        if kafka_type == "string":
            return (_ARRAY_STRING, None)
        if kafka_type in _FIXED:
            return (_ARRAY_FIXED, _FIXED[kafka_type])
        raise TypeError(f"array of {kafka_type} in {schema.__name__}")
    if kafka_type == "string":
        return (_STRING, None)
    if kafka_type in ("bytes", "records"):
        return (_BYTES, None)
    if kafka_type in _FIXED:
        return (_SKIP, _FIXED[kafka_type])
    raise TypeError(f"field type {kafka_type} in {schema.__name__}")


@cache
def plan_for(schema: type) -> _Plan:
    flexible = bool(getattr(schema, "__flexible__", False))
    ops: list[tuple[int, Any]] = []
    tagged: dict[int, _Plan | None] = {}
    for f in dataclasses.fields(schema):
        if "tag" in f.metadata:
            # sized in the tagged-field section; walked only when it can hold a count
            try:
                op = _op(schema, f)
            except TypeError:  # a type this walk does not know: kio checks the value
                op = (_SKIP, 0)
            tagged[f.metadata["tag"]] = None if op[0] == _SKIP else _Plan(True, (op,), {}, False)
        else:
            ops.append(_op(schema, f))
    return _Plan(flexible, tuple(ops), tagged)


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


def _walk(plan: _Plan, buf: Any, pos: int, end: int, edits: _Edits | None = None) -> int:
    """Walk one struct from ``pos``; return where it ends. Without ``edits`` an unknown tag
    raises _UnknownTags; with it, each tagged-field section holding one is recorded there
    as rewritten without it."""
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
            pos = _walk(inner, buf, pos, end, edits)
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
                    pos = _walk(arg, buf, pos, end, edits)
    if flexible and plan.section:
        if pos < end and buf[pos] == 0:  # no tagged fields: the common case
            return pos + 1
        return _tagged_section(plan.tagged, buf, pos, end, edits)
    return pos


def _tagged_section(
    known: dict[int, _Plan | None], buf: Any, pos: int, end: int, edits: _Edits | None
) -> int:
    start = pos
    count, pos = _uvarint(buf, pos, end)
    if count > (end - pos) // 2:  # a tag and its size take a byte each at least
        raise ArrayBoundsError(f"{count} tagged fields at byte {start} exceed the frame")
    kept: list[tuple[int, bytes]] = []
    dropped = False
    for _ in range(count):
        tag, pos = _uvarint(buf, pos, end)
        size, pos = _uvarint(buf, pos, end)
        if size > end - pos:
            raise ArrayBoundsError(f"tagged field of {size} bytes exceeds the frame")
        value_end = pos + size
        if tag not in known:
            if edits is None:
                raise _UnknownTags
            dropped = True
        else:
            inner = known[tag]
            if edits is None:
                if inner is not None:
                    _walk(inner, buf, pos, value_end)
            else:
                inner_edits: _Edits = []
                if inner is not None:
                    _walk(inner, buf, pos, value_end, inner_edits)
                dropped = dropped or bool(inner_edits)
                kept.append((tag, _splice(buf, pos, value_end, inner_edits)))
        pos = value_end
    if dropped and edits is not None:
        rebuilt = bytearray(encode_uvarint(len(kept)))
        for tag, value in kept:
            rebuilt += encode_uvarint(tag) + encode_uvarint(len(value)) + value
        edits.append((start, pos, bytes(rebuilt)))
    return pos


def encode_uvarint(value: int) -> bytes:
    """An unsigned varint (also broker/protocol.py's response writers use it)."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _splice(buf: Any, start: int, end: int, edits: _Edits) -> bytes:
    """``buf[start:end]`` with the edits applied."""
    out = bytearray()
    for s, e, replacement in edits:
        out += buf[start:s]
        out += replacement
        start = e
    out += buf[start:end]
    return bytes(out)


def skip_tagged_fields(frame: Any, offset: int) -> int:
    """Skip a tagged-field section none of whose tags are known (the request header v2's,
    the response header v1's); return where it ends. Raises ArrayBoundsError."""
    return _tagged_section({}, frame, offset, len(frame), [])


def bounded_body(schema: type, frame: Any, offset: int) -> tuple[Any, int]:
    """Check the body of ``frame`` from ``offset`` before kio decodes it; return the buffer
    and offset to decode from.

    Raises ArrayBoundsError if an array count, a length or a tagged field announces more
    than the frame holds. Returns ``(frame, offset)`` itself, or, when a tagged-field
    section holds tags the schema does not know, a copy of the body without them at
    offset 0 (the known tags of that section kept in order).
    """
    try:
        plan = plan_for(schema)
    except TypeError:  # a field type this walk does not know: leave the schema to kio
        return frame, offset
    end = len(frame)
    try:
        _walk(plan, frame, offset, end)
    except _UnknownTags:
        edits: _Edits = []
        _walk(plan, frame, offset, end, edits)
        return _splice(frame, offset, end, edits), 0
    return frame, offset
