"""Helpers shared by the admin API handlers (topics, partitions, records, configs, cluster).

Owns: finding the response classes of a given API version (kio's, or ours for the versions
kio dropped), building a response entity from keyword arguments that may include fields a
version does not have, and the small vocabulary (resource types, a zero throttle time) the
admin handlers share.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import importlib
from collections import Counter
from collections.abc import Iterable
from typing import Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i32Timedelta

from broker.handlers._legacy_schemas import RESPONSE_NAMESPACES

NO_THROTTLE = i32Timedelta.parse(datetime.timedelta(0))

# ConfigResource.Type
RESOURCE_UNKNOWN = 0
RESOURCE_TOPIC = 2
RESOURCE_BROKER = 4
RESOURCE_BROKER_LOGGER = 8


class Responses:
    """The response classes of one API version: ``Responses(19, "create_topics", 5).CreatableTopicResult``."""

    def __init__(self, api_key: int, api_name: str, version: int) -> None:
        legacy = RESPONSE_NAMESPACES.get((api_key, version))
        self._names: dict[str, type] = {}
        if legacy is not None:
            self._names.update(legacy)
        else:
            module = importlib.import_module(f"kio.schema.{api_name}.v{version}.response")
            for name, obj in vars(module).items():
                if dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__:
                    self._names[name] = obj

    def __getattr__(self, name: str) -> type:
        try:
            return self._names[name]
        except KeyError:
            raise AttributeError(name) from None


@functools.cache
def responses(api_key: int, api_name: str, version: int) -> Responses:
    """The response classes of one API version, looked up once."""
    return Responses(api_key, api_name, version)


_FIELDS: dict[type, frozenset[str]] = {}


def build(cls: type, **kw: Any) -> Any:
    """Instantiate a kio entity, dropping the arguments this version's schema lacks."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = frozenset(f.name for f in dataclasses.fields(cls))
    return cls(**{k: v for k, v in kw.items() if k in names})


def has_field(cls: type, name: str) -> bool:
    return any(f.name == name for f in dataclasses.fields(cls))


def duplicates(names: Iterable[Any]) -> set[Any]:
    """Items named more than once in a request (Kafka answers INVALID_REQUEST for each)."""
    return {n for n, c in Counter(names).items() if c > 1}


def code(value: int) -> ErrorCode:
    try:
        return ErrorCode(value)
    except ValueError:
        return ErrorCode.unknown_server_error


class AdminError(Exception):
    """An error answered for one resource: a Kafka error code and a message."""

    def __init__(self, error: ErrorCode, message: str | None = None) -> None:
        super().__init__(message or error.name)
        self.error = error
        self.message = message


def metadata_error(exc: Exception) -> AdminError:
    """Map a broker.metadata error (which carries ``error_code``) to an AdminError."""
    value = getattr(exc, "error_code", -1)
    return AdminError(code(value), str(exc))
