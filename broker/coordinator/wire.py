"""Glue between the group handlers and kio: build a response of the request's version from
plain values, and read the request fields every group API shares.

``build(cls, **values)`` drops fields the version lacks, turns ints into the timedelta and
ErrorCode types kio expects, and builds nested entities from dicts, so one handler answers
every version of its API.
"""

from __future__ import annotations

import dataclasses
import datetime
import types
import typing
from functools import cache
from typing import Any

from kio.schema.errors import ErrorCode

from broker.handlers import RequestContext

_ZERO = datetime.timedelta(0)


@cache
def _field_info(cls: type) -> dict[str, tuple[str | None, type | None]]:
    hints = typing.get_type_hints(cls)
    out: dict[str, tuple[str | None, type | None]] = {}
    for f in dataclasses.fields(cls):
        kafka_type = f.metadata.get("kafka_type")
        nested: type | None = None
        hint = hints.get(f.name)
        for arg in _flatten(hint):
            if dataclasses.is_dataclass(arg):
                nested = arg  # type: ignore[assignment]
                break
        out[f.name] = (kafka_type, nested)
    return out


def _flatten(hint: Any) -> list[Any]:
    origin = typing.get_origin(hint)
    if origin is None:
        return [hint]
    out = []
    for a in typing.get_args(hint):
        if a is Ellipsis or a is types.NoneType:
            continue
        out.extend(_flatten(a))
    return out


def build(cls: type, **values: Any) -> Any:
    """An instance of kio entity ``cls`` from plain values (see module docstring)."""
    kwargs: dict[str, Any] = {}
    for name, (kafka_type, nested) in _field_info(cls).items():
        if name not in values:
            if name == "throttle_time":
                kwargs[name] = _ZERO
            continue
        v = values[name]
        if kafka_type and kafka_type.startswith("timedelta") and isinstance(v, int):
            v = datetime.timedelta(milliseconds=v)
        elif kafka_type == "error_code" and not isinstance(v, ErrorCode):
            v = ErrorCode(int(v))
        elif nested is not None and v is not None and not isinstance(v, (str, bytes)):
            v = tuple(build(nested, **x) if isinstance(x, dict) else x for x in v)
        kwargs[name] = v
    return cls(**kwargs)


def response_class(ctx: RequestContext) -> type:
    from broker.protocol import response_schema

    cls = response_schema(ctx.api_key, ctx.api_version)
    if cls is None:
        raise LookupError(f"no response schema for api {ctx.api_key} v{ctx.api_version}")
    return cls


def ms(value: Any) -> int:
    """Milliseconds of a kio timedelta field (or an int)."""
    if isinstance(value, datetime.timedelta):
        return round(value.total_seconds() * 1000)
    return int(value)


def coordinator(ctx: RequestContext) -> Any:
    """The broker's GroupCoordinator, or None while it is not running."""
    return getattr(ctx.broker, "group_coordinator", None)


def client_host(ctx: RequestContext) -> str:
    """The peer address as Kafka reports it in DescribeGroups ("/127.0.0.1")."""
    peer = getattr(ctx.connection, "peer", None) or ""
    host = peer.rsplit(":", 1)[0] if ":" in peer else peer
    return f"/{host}" if host else ""


def topic_partitions(ctx: RequestContext, topic: str) -> set[int] | None:
    """Partition indexes of a topic per the metadata store, None if it does not exist."""
    md = getattr(ctx.broker, "metadata", None)
    if md is None:
        return None
    info = md.topic(topic)
    if info is None:
        return None
    return set(info.partitions)
