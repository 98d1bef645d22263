"""LogConfig: the per-log (topic-level) settings of the storage engine.

Names are Kafka's topic configs in snake_case (``segment.bytes`` -> ``segment_bytes``); dotted
names are accepted too. Defaults are Kafka's. ``flush_messages`` / ``flush_ms`` left at None
(or Kafka's Long.MAX_VALUE default) mean "leave flushing to the OS".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fastlog.errors import InvalidConfigurationError

LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1


@dataclass(frozen=True)
class LogConfig:
    """Effective configuration of one Log. Immutable: ``update`` returns a new one."""

    segment_bytes: int = 1024 * 1024 * 1024
    segment_ms: int = 7 * 24 * 3600 * 1000
    segment_jitter_ms: int = 0
    segment_index_bytes: int = 10 * 1024 * 1024
    retention_ms: int = 7 * 24 * 3600 * 1000
    retention_bytes: int = -1
    cleanup_policy: str = "delete"
    delete_retention_ms: int = 24 * 3600 * 1000
    min_cleanable_dirty_ratio: float = 0.5
    min_compaction_lag_ms: int = 0
    index_interval_bytes: int = 4096
    flush_messages: int | None = None
    flush_ms: int | None = None
    message_timestamp_type: str = "CreateTime"
    max_message_bytes: int = 1024 * 1024 + 12

    # ------------------------------------------------------------------ derived

    # derived flags, computed once (read on every append)
    compact: bool = dataclasses.field(init=False, repr=False, compare=False, default=False)
    delete: bool = dataclasses.field(init=False, repr=False, compare=False, default=True)
    log_append_time: bool = dataclasses.field(init=False, repr=False, compare=False, default=False)

    def __post_init__(self) -> None:
        policies = self.cleanup_policy.split(",")
        object.__setattr__(self, "compact", "compact" in policies)
        object.__setattr__(self, "delete", "delete" in policies)
        object.__setattr__(self, "log_append_time", self.message_timestamp_type == "LogAppendTime")

    # ------------------------------------------------------------------ building

    @classmethod
    def from_dict(cls, config: Mapping[str, Any] | None = None, **kwargs: Any) -> LogConfig:
        return cls().update(config, **kwargs)

    def update(self, config: Mapping[str, Any] | None = None, **kwargs: Any) -> LogConfig:
        """A copy with the given keys changed (snake_case or Kafka's dotted names)."""
        changes: dict[str, Any] = {}
        for key, value in {**dict(config or {}), **kwargs}.items():
            name = key.replace(".", "_")
            if name not in LOG_CONFIG_KEYS:
                raise InvalidConfigurationError(f"unknown log config {key!r}")
            changes[name] = _coerce(name, value)
        new = dataclasses.replace(self, **changes)
        new._validate()
        return new

    def _validate(self) -> None:
        def at_least(name: str, lo: float) -> None:
            if getattr(self, name) < lo:
                raise InvalidConfigurationError(
                    f"{name.replace('_', '.')} must be >= {lo}, got {getattr(self, name)!r}"
                )

        at_least("segment_bytes", 14)
        if self.segment_bytes > INT_MAX:
            raise InvalidConfigurationError("segment.bytes must fit in an int32 (positions do)")
        at_least("segment_ms", 1)
        at_least("segment_jitter_ms", 0)
        at_least("segment_index_bytes", 12)
        at_least("retention_ms", -1)
        at_least("retention_bytes", -1)
        at_least("delete_retention_ms", 0)
        at_least("min_compaction_lag_ms", 0)
        at_least("index_interval_bytes", 0)
        at_least("max_message_bytes", 0)
        if not 0.0 <= self.min_cleanable_dirty_ratio <= 1.0:
            raise InvalidConfigurationError("min.cleanable.dirty.ratio must be within [0, 1]")
        if self.message_timestamp_type not in ("CreateTime", "LogAppendTime"):
            raise InvalidConfigurationError(
                "message.timestamp.type must be CreateTime or LogAppendTime, "
                f"got {self.message_timestamp_type!r}"
            )
        for name in ("flush_messages", "flush_ms"):
            v = getattr(self, name)
            if v is not None and v < (1 if name == "flush_messages" else 0):
                raise InvalidConfigurationError(f"{name.replace('_', '.')} out of range: {v}")


LOG_CONFIG_KEYS: frozenset[str] = frozenset(f.name for f in dataclasses.fields(LogConfig) if f.init)
"""Every keyword ``Log(path, **config)`` and ``Log.update_config`` accept."""


def _coerce(name: str, value: Any) -> Any:
    if name == "cleanup_policy":
        parts: Iterable[str]
        if isinstance(value, str):
            parts = value.split(",")
        elif isinstance(value, Iterable):
            parts = value
        else:
            raise InvalidConfigurationError(f"cleanup.policy must be a string, got {value!r}")
        cleaned = sorted({str(p).strip().lower() for p in parts if str(p).strip()})
        if not cleaned or any(p not in ("compact", "delete") for p in cleaned):
            raise InvalidConfigurationError(
                f"cleanup.policy must be delete, compact or both, got {value!r}"
            )
        return ",".join(cleaned)
    if name == "message_timestamp_type":
        return str(value)
    if name in ("flush_messages", "flush_ms"):
        if value is None:
            return None
        v = _int(name, value)
        return None if v >= LONG_MAX else v
    if name == "min_cleanable_dirty_ratio":
        try:
            return float(value)
        except (TypeError, ValueError):
            raise InvalidConfigurationError(f"{name} must be a number, got {value!r}") from None
    return _int(name, value)


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidConfigurationError(f"{name} must be an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidConfigurationError(f"{name} must be an integer, got {value!r}") from None
