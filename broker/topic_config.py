"""Topic-level configuration: Kafka's topic config names, types, defaults and validation.

This module owns the table of topic configs (``retention.ms``, ``cleanup.policy``,
``segment.bytes`` ...), how a string value from a client is parsed and checked (with Kafka's
error wording), how a topic's effective value is resolved from its overrides, the broker's
``log.*`` settings and the built-in defaults, and how the result maps to the keyword arguments
of ``fastlog.Log`` (snake_case: ``retention_ms``, ``segment_bytes`` ...).

Resolution order, as in Kafka: a per-topic override (config source TOPIC_CONFIG), else the
first of the topic config's broker synonyms set explicitly in server.properties or by
``--override`` (STATIC_BROKER_CONFIG), else the broker default (DEFAULT_CONFIG).

The broker config is read through :func:`explicit_broker_value`, which accepts either a plain
mapping of the explicitly set broker properties (tests) or the broker's ``BrokerConfig``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1


class ConfigType(IntEnum):
    """DescribeConfigs ``config_type`` (v3+)."""

    UNKNOWN = 0
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class ConfigSource(IntEnum):
    """DescribeConfigs ``config_source`` (v1+)."""

    UNKNOWN = 0
    TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    DYNAMIC_BROKER_LOGGER_CONFIG = 6


class InvalidConfig(ValueError):
    """A config name or value a client sent is not acceptable (Kafka's INVALID_CONFIG)."""


@dataclass(frozen=True, slots=True)
class Synonym:
    """A broker property a topic config inherits from, and how its value converts."""

    name: str
    scale: int = 1  # broker value * scale = topic value (hours -> ms ...)


@dataclass(frozen=True, slots=True)
class TopicConfigDef:
    name: str
    type: ConfigType
    default: Any
    doc: str
    synonyms: tuple[Synonym, ...] = ()
    log_kwarg: str | None = None  # fastlog.Log keyword, when the storage engine applies it
    at_least: float | None = None
    at_most: float | None = None
    choices: tuple[str, ...] | None = None
    # Who enforces it, for the docs and for the honest answer to "does this do anything?"
    enforced_by: str = "log"
    # A check beyond at_least/at_most/choices: the reason a typed value is refused, or None.
    check: Callable[[Any], str | None] | None = None


def _def(
    name: str, type_: ConfigType, default: Any, doc: str, *synonyms: Synonym | str, **kw: Any
) -> TopicConfigDef:
    syns = tuple(s if isinstance(s, Synonym) else Synonym(s) for s in synonyms)
    return TopicConfigDef(name, type_, default, doc, syns, **kw)


_L, _I, _D, _B, _S, _LIST = (
    ConfigType.LONG,
    ConfigType.INT,
    ConfigType.DOUBLE,
    ConfigType.BOOLEAN,
    ConfigType.STRING,
    ConfigType.LIST,
)
_HOURS = 3_600_000
_MINUTES = 60_000


def _gzip_level(level: int) -> str | None:
    """Deflater's levels 1-9, or -1 for its default (Kafka's CompressionType.GZIP)."""
    if level > 9 or (level < 1 and level != -1):
        return "Value must be between 1 and 9 or equal to -1"
    return None


TOPIC_CONFIGS: dict[str, TopicConfigDef] = {
    d.name: d
    for d in (
        _def(
            "cleanup.policy",
            _LIST,
            ("delete",),
            "'delete' removes old segments by retention; 'compact' keeps the latest record per key.",
            "log.cleanup.policy",
            log_kwarg="cleanup_policy",
            choices=("compact", "delete"),
        ),
        _def(
            "compression.gzip.level",
            _I,
            -1,
            "The compression level to use if compression.type is set to gzip.",
            "compression.gzip.level",
            check=_gzip_level,
            enforced_by="none",  # the core compresses at gzip's default level (see log_validator)
        ),
        _def(
            "compression.lz4.level",
            _I,
            9,
            "The compression level to use if compression.type is set to lz4.",
            "compression.lz4.level",
            at_least=1,
            at_most=17,
            enforced_by="none",
        ),
        _def(
            "compression.type",
            _S,
            "producer",
            "Codec of the stored batches: uncompressed, gzip, snappy, lz4 or zstd (the leader "
            "re-encodes batches sent in another codec), or producer to keep the producer's.",
            "compression.type",
            choices=("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
            enforced_by="broker",
        ),
        _def(
            "compression.zstd.level",
            _I,
            3,
            "The compression level to use if compression.type is set to zstd.",
            "compression.zstd.level",
            at_least=-131072,  # ZSTD_minCLevel(), as Kafka's CompressionType.ZSTD
            at_most=22,
            enforced_by="none",
        ),
        _def(
            "delete.retention.ms",
            _L,
            86_400_000,
            "How long tombstones are kept in a compacted topic.",
            "log.cleaner.delete.retention.ms",
            log_kwarg="delete_retention_ms",
            at_least=0,
        ),
        _def(
            "file.delete.delay.ms",
            _L,
            60_000,
            "Delay before a deleted segment's files are removed.",
            "log.segment.delete.delay.ms",
            at_least=0,
            enforced_by="none",
        ),
        _def(
            "flush.messages",
            _L,
            LONG_MAX,
            "fsync the log after this many messages.",
            "log.flush.interval.messages",
            log_kwarg="flush_messages",
            at_least=1,
        ),
        _def(
            "flush.ms",
            _L,
            LONG_MAX,
            "fsync the log after this many milliseconds.",
            "log.flush.interval.ms",
            "log.flush.scheduler.interval.ms",
            log_kwarg="flush_ms",
            at_least=0,
        ),
        _def(
            "index.interval.bytes",
            _I,
            4096,
            "Bytes of log between two offset index entries.",
            "log.index.interval.bytes",
            log_kwarg="index_interval_bytes",
            at_least=0,
        ),
        _def(
            "max.compaction.lag.ms",
            _L,
            LONG_MAX,
            "Longest time a record stays uncompacted.",
            "log.cleaner.max.compaction.lag.ms",
            at_least=1,
            enforced_by="none",
        ),
        _def(
            "max.message.bytes",
            _I,
            1_048_588,
            "Largest record batch the topic accepts.",
            "message.max.bytes",
            log_kwarg="max_message_bytes",
            at_least=0,
        ),
        _def(
            "message.downconversion.enable",
            _B,
            True,
            "Down-convert batches for old fetchers (not needed: fetch v4+ only).",
            "log.message.downconversion.enable",
            enforced_by="none",
        ),
        _def(
            "message.timestamp.after.max.ms",
            _L,
            LONG_MAX,
            "Largest allowed distance of a CreateTime timestamp into the future.",
            "log.message.timestamp.after.max.ms",
            at_least=0,
            enforced_by="broker",
        ),
        _def(
            "message.timestamp.before.max.ms",
            _L,
            LONG_MAX,
            "Largest allowed distance of a CreateTime timestamp into the past.",
            "log.message.timestamp.before.max.ms",
            at_least=0,
            enforced_by="broker",
        ),
        _def(
            "message.timestamp.difference.max.ms",
            _L,
            LONG_MAX,
            "Deprecated form of message.timestamp.before.max.ms.",
            "log.message.timestamp.difference.max.ms",
            at_least=0,
            enforced_by="broker",
        ),
        _def(
            "message.timestamp.type",
            _S,
            "CreateTime",
            "CreateTime keeps the producer's timestamp; LogAppendTime stamps the broker time.",
            "log.message.timestamp.type",
            log_kwarg="message_timestamp_type",
            choices=("CreateTime", "LogAppendTime"),
        ),
        _def(
            "min.cleanable.dirty.ratio",
            _D,
            0.5,
            "Dirty share of a compacted log that makes the cleaner run.",
            "log.cleaner.min.cleanable.ratio",
            log_kwarg="min_cleanable_dirty_ratio",
            at_least=0,
            at_most=1,
        ),
        _def(
            "min.compaction.lag.ms",
            _L,
            0,
            "Shortest time a record stays uncompacted.",
            "log.cleaner.min.compaction.lag.ms",
            log_kwarg="min_compaction_lag_ms",
            at_least=0,
        ),
        _def(
            "min.insync.replicas",
            _I,
            1,
            "Replicas that must acknowledge an acks=all produce.",
            "min.insync.replicas",
            at_least=1,
            enforced_by="broker",
        ),
        _def(
            "preallocate",
            _B,
            False,
            "Preallocate segment files.",
            "log.preallocate",
            enforced_by="none",
        ),
        _def(
            "retention.bytes",
            _L,
            -1,
            "Largest size of a partition before old segments go; -1 = no limit.",
            "log.retention.bytes",
            log_kwarg="retention_bytes",
        ),
        _def(
            "retention.ms",
            _L,
            604_800_000,
            "Age after which segments are deleted; -1 = keep forever.",
            "log.retention.ms",
            Synonym("log.retention.minutes", _MINUTES),
            Synonym("log.retention.hours", _HOURS),
            log_kwarg="retention_ms",
            at_least=-1,
        ),
        _def(
            "segment.bytes",
            _I,
            1_073_741_824,
            "Size at which a new segment is rolled.",
            "log.segment.bytes",
            log_kwarg="segment_bytes",
            at_least=14,
        ),
        _def(
            "segment.index.bytes",
            _I,
            10_485_760,
            "Size of a segment's offset index.",
            "log.index.size.max.bytes",
            log_kwarg="segment_index_bytes",
            at_least=12,  # one time index entry; the storage engine refuses less
        ),
        _def(
            "segment.jitter.ms",
            _L,
            0,
            "Random jitter subtracted from segment.ms.",
            "log.roll.jitter.ms",
            Synonym("log.roll.jitter.hours", _HOURS),
            log_kwarg="segment_jitter_ms",
            at_least=0,
        ),
        _def(
            "segment.ms",
            _L,
            604_800_000,
            "Age at which a new segment is rolled.",
            "log.roll.ms",
            Synonym("log.roll.hours", _HOURS),
            log_kwarg="segment_ms",
            at_least=1,
        ),
        _def(
            "unclean.leader.election.enable",
            _B,
            False,
            "Allow a replica outside the ISR to become leader.",
            "unclean.leader.election.enable",
            enforced_by="broker",
        ),
    )
}

# Broker properties the topic configs inherit from, with Kafka's defaults. None means "no
# default": the next synonym decides (log.retention.ms unset -> log.retention.hours).
BROKER_DEFAULTS: dict[str, str | None] = {
    "log.cleanup.policy": "delete",
    "compression.type": "producer",
    "compression.gzip.level": "-1",
    "compression.lz4.level": "9",
    "compression.zstd.level": "3",
    "log.cleaner.delete.retention.ms": "86400000",
    "log.segment.delete.delay.ms": "60000",
    "log.flush.interval.messages": str(LONG_MAX),
    "log.flush.interval.ms": None,
    "log.flush.scheduler.interval.ms": str(LONG_MAX),
    "log.index.interval.bytes": "4096",
    "log.cleaner.max.compaction.lag.ms": str(LONG_MAX),
    "message.max.bytes": "1048588",
    "log.message.downconversion.enable": "true",
    "log.message.timestamp.after.max.ms": str(LONG_MAX),
    "log.message.timestamp.before.max.ms": str(LONG_MAX),
    "log.message.timestamp.difference.max.ms": str(LONG_MAX),
    "log.message.timestamp.type": "CreateTime",
    "log.cleaner.min.cleanable.ratio": "0.5",
    "log.cleaner.min.compaction.lag.ms": "0",
    "min.insync.replicas": "1",
    "log.preallocate": "false",
    "log.retention.bytes": "-1",
    "log.retention.ms": None,
    "log.retention.minutes": None,
    "log.retention.hours": "168",
    "log.segment.bytes": "1073741824",
    "log.index.size.max.bytes": "10485760",
    "log.roll.jitter.ms": None,
    "log.roll.jitter.hours": "0",
    "log.roll.ms": None,
    "log.roll.hours": "168",
    "unclean.leader.election.enable": "false",
}


# ----------------------------------------------------------------------------- topic names

MAX_TOPIC_NAME_LENGTH = 249
_LEGAL_TOPIC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})


class InvalidTopicName(ValueError):
    """A topic name Kafka's Topic.validate refuses (INVALID_TOPIC_EXCEPTION)."""


def validate_topic_name(name: str | None) -> None:
    """Kafka's rules: 1-249 characters of [a-zA-Z0-9._-], and not "." or ".."."""
    if not name:
        raise InvalidTopicName("Topic name is illegal, it can't be empty")
    if name in (".", ".."):
        raise InvalidTopicName('Topic name cannot be "." or ".."')
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        raise InvalidTopicName(
            f"Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LENGTH} "
            f"characters, topic name: {name}"
        )
    if not set(name) <= _LEGAL_TOPIC_CHARS:
        raise InvalidTopicName(
            f'Topic name "{name}" is illegal, it contains a character other than '
            "ASCII alphanumerics, '.', '_' and '-'"
        )


def collision_key(name: str) -> str:
    """Topics that differ only in '.' versus '_' collide in metric names; Kafka refuses both."""
    return name.replace(".", "_")


# ----------------------------------------------------------------------------- parsing


def _fail(name: str, value: object, why: str) -> InvalidConfig:
    return InvalidConfig(f"Invalid value {value} for configuration {name}: {why}")


def _parse_int(d: TopicConfigDef, raw: str, lo: int, hi: int, tname: str) -> int:
    try:
        if "_" in raw:  # Python reads 1_000 as a number; Kafka (Long.parseLong) does not
            raise ValueError(raw)
        v = int(raw.strip())
    except ValueError:
        raise _fail(d.name, raw, f"Not a number of type {tname}") from None
    if not lo <= v <= hi:
        raise _fail(d.name, raw, f"Not a number of type {tname}")
    return v


def parse_value(name: str, raw: str | None) -> Any:
    """Parse and validate one topic config value sent as a string; return the typed value."""
    d = TOPIC_CONFIGS.get(name)
    if d is None:
        raise InvalidConfig(f"Unknown topic config name: {name}")
    if raw is None:
        raise InvalidConfig(f"Null value not supported for topic configs: {name}")
    value: Any
    if d.type is ConfigType.LONG:
        value = _parse_int(d, raw, -(2**63), LONG_MAX, "LONG")
    elif d.type is ConfigType.INT:
        value = _parse_int(d, raw, -(2**31), INT_MAX, "INT")
    elif d.type is ConfigType.DOUBLE:
        try:
            if "_" in raw:
                raise ValueError(raw)
            value = float(raw.strip())
        except ValueError:
            raise _fail(name, raw, "Not a number of type DOUBLE") from None
        if math.isnan(value):
            raise _fail(name, raw, "Not a number of type DOUBLE")
    elif d.type is ConfigType.BOOLEAN:
        s = raw.strip().lower()
        if s not in ("true", "false"):
            raise _fail(name, raw, "Expected value to be either true or false")
        value = s == "true"
    elif d.type is ConfigType.LIST:
        items = tuple(x.strip() for x in raw.split(",") if x.strip())
        if not items:
            raise _fail(name, raw, "Empty list")
        if d.choices is not None:
            for item in items:
                if item not in d.choices:
                    raise _fail(name, raw, f"String must be one of: {', '.join(d.choices)}")
        value = tuple(dict.fromkeys(items))  # de-duplicated, order kept
    else:
        value = raw.strip()
        if d.choices is not None and value not in d.choices:
            raise _fail(name, raw, f"String must be one of: {', '.join(d.choices)}")
    if d.at_least is not None and value < d.at_least:
        raise _fail(name, raw, f"Value must be at least {_num(d.at_least)}")
    if d.at_most is not None and value > d.at_most:
        raise _fail(name, raw, f"Value must be no more than {_num(d.at_most)}")
    if d.check is not None and (why := d.check(value)) is not None:
        raise _fail(name, raw, why)
    return value


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def format_value(name: str, value: Any) -> str:
    """The string form Kafka shows for a typed value (lists comma-joined, booleans lower case)."""
    d = TOPIC_CONFIGS[name]
    if d.type is ConfigType.LIST:
        return ",".join(value)
    if d.type is ConfigType.BOOLEAN:
        return "true" if value else "false"
    return str(value)


def normalize(configs: Mapping[str, str | None]) -> dict[str, str]:
    """Validate topic overrides; return them in canonical string form. Raises InvalidConfig.

    Values the storage engine would refuse (its own LogConfig checks) are refused here too,
    so a topic never holds a config its logs cannot open with.
    """
    typed = {name: parse_value(name, raw) for name, raw in configs.items()}
    _check_storage(typed)
    return {name: format_value(name, value) for name, value in typed.items()}


def _check_storage(typed: Mapping[str, Any]) -> None:
    try:
        from fastlog.config import LogConfig
        from fastlog.errors import InvalidConfigurationError
    except ImportError:  # storage engine without LogConfig: our own checks stand alone
        return
    kw = {
        TOPIC_CONFIGS[n].log_kwarg: _log_value(TOPIC_CONFIGS[n], v)
        for n, v in typed.items()
        if TOPIC_CONFIGS[n].log_kwarg
    }
    try:
        LogConfig.from_dict(kw)
    except InvalidConfigurationError as exc:
        raise InvalidConfig(str(exc)) from None


# ----------------------------------------------------------------------------- broker side


def explicit_broker_value(broker_config: Any, name: str) -> str | None:
    """The value of broker property ``name`` if it was set explicitly (file or override).

    Accepts a mapping of the explicit properties (tests), or the broker's BrokerConfig, whose
    ``is_set(name)`` says whether a property was given and ``get(name)`` its typed value.
    """
    if broker_config is None:
        return None
    if isinstance(broker_config, Mapping):
        v = broker_config.get(name)
        return None if v is None else _broker_str(v)
    is_set = getattr(broker_config, "is_set", None)
    if callable(is_set):
        if not is_set(name):
            return None
        v = broker_config.get(name)
        return None if v is None else _broker_str(v)
    explicit = getattr(broker_config, "explicit", None)
    if isinstance(explicit, Mapping):
        v = explicit.get(name)
        return None if v is None else _broker_str(v)
    return None


def _broker_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | tuple):
        return ",".join(str(x) for x in v)
    return str(v)


@dataclass(slots=True)
class SynonymValue:
    name: str
    value: str | None
    source: ConfigSource


@dataclass(slots=True)
class ResolvedConfig:
    """One topic config as DescribeConfigs shows it."""

    name: str
    value: str
    typed: Any
    source: ConfigSource
    synonyms: list[SynonymValue] = field(default_factory=list)
    definition: TopicConfigDef | None = None

    @property
    def is_default(self) -> bool:
        return self.source is ConfigSource.DEFAULT_CONFIG


def _convert_synonym(d: TopicConfigDef, syn: Synonym, raw: str) -> Any:
    """Broker value -> typed topic value; a malformed broker value is a broker config error."""
    try:
        typed = parse_value(d.name, raw) if syn.scale == 1 else int(raw.strip())
    except (InvalidConfig, ValueError) as exc:
        raise InvalidConfig(f"broker property {syn.name}={raw!r}: {exc}") from None
    if syn.scale != 1:
        typed = -1 if typed < 0 else typed * syn.scale
    return typed


def resolve(name: str, overrides: Mapping[str, str], broker_config: Any = None) -> ResolvedConfig:
    """Effective value of topic config ``name`` given the topic's overrides and the broker."""
    d = TOPIC_CONFIGS[name]
    synonyms: list[SynonymValue] = []
    chosen: tuple[Any, ConfigSource] | None = None
    if name in overrides:
        typed = parse_value(name, overrides[name])
        synonyms.append(SynonymValue(name, format_value(name, typed), ConfigSource.TOPIC_CONFIG))
        chosen = (typed, ConfigSource.TOPIC_CONFIG)
    # Explicit broker settings come before any default, whatever the synonym order.
    for syn in d.synonyms:
        raw = explicit_broker_value(broker_config, syn.name)
        if raw is not None:
            synonyms.append(SynonymValue(syn.name, raw, ConfigSource.STATIC_BROKER_CONFIG))
            if chosen is None:
                chosen = (_convert_synonym(d, syn, raw), ConfigSource.STATIC_BROKER_CONFIG)
    for syn in d.synonyms:
        raw = BROKER_DEFAULTS.get(syn.name)
        if raw is not None:
            synonyms.append(SynonymValue(syn.name, raw, ConfigSource.DEFAULT_CONFIG))
            if chosen is None:
                chosen = (_convert_synonym(d, syn, raw), ConfigSource.DEFAULT_CONFIG)
    if chosen is None:
        chosen = (d.default, ConfigSource.DEFAULT_CONFIG)
    typed, source = chosen
    return ResolvedConfig(name, format_value(name, typed), typed, source, synonyms, d)


def describe(
    overrides: Mapping[str, str], broker_config: Any = None, names: Iterable[str] | None = None
) -> list[ResolvedConfig]:
    """All (or the named, when known) topic configs, resolved, in name order."""
    wanted = sorted(TOPIC_CONFIGS) if names is None else [n for n in names if n in TOPIC_CONFIGS]
    return [resolve(n, overrides, broker_config) for n in wanted]


def effective(overrides: Mapping[str, str], broker_config: Any = None) -> dict[str, Any]:
    """Typed effective value of every topic config."""
    return {n: resolve(n, overrides, broker_config).typed for n in TOPIC_CONFIGS}


def _log_value(d: TopicConfigDef, typed: Any) -> Any:
    if d.type is ConfigType.LIST:
        return ",".join(typed)
    return typed


def log_kwargs(
    overrides: Mapping[str, str],
    broker_config: Any = None,
    accepted: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``fastlog.Log(path, **kw)`` / ``Log.update_config(**kw)``.

    Every config the storage engine applies is included, with its effective value (so an
    override removed by AlterConfigs falls back to the broker's value on the live log).
    ``accepted`` filters keywords the installed Log does not know.
    """
    out: dict[str, Any] = {}
    for name, d in TOPIC_CONFIGS.items():
        if d.log_kwarg is None or (accepted is not None and not accepted(d.log_kwarg)):
            continue
        out[d.log_kwarg] = _log_value(d, resolve(name, overrides, broker_config).typed)
    return out


# ----------------------------------------------------------------------------- incremental


class AlterOp(IntEnum):
    """IncrementalAlterConfigs ``config_operation``."""

    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


def apply_incremental(
    current: Mapping[str, str],
    ops: Iterable[tuple[str, int, str | None]],
    broker_config: Any = None,
) -> dict[str, str]:
    """Apply IncrementalAlterConfigs operations to a topic's overrides; return new overrides.

    APPEND and SUBTRACT work on LIST configs only and start from the effective value, as
    Kafka does. Raises InvalidConfig (or ValueError for an unknown operation).
    """
    new = dict(current)
    seen: set[str] = set()
    for name, op, raw in ops:
        if name in seen:
            raise InvalidConfig(f"Duplicate config name in request: {name}")
        seen.add(name)
        d = TOPIC_CONFIGS.get(name)
        if d is None:
            raise InvalidConfig(f"Unknown topic config name: {name}")
        try:
            op = AlterOp(op)
        except ValueError:
            raise ValueError(f"Unknown config operation {op} for {name}") from None
        if op is AlterOp.SET:
            new[name] = format_value(name, parse_value(name, raw))
        elif op is AlterOp.DELETE:
            new.pop(name, None)
        else:
            if d.type is not ConfigType.LIST:
                raise InvalidConfig(
                    f"Config value append is not allowed for config key: {name}"
                    if op is AlterOp.APPEND
                    else f"Config value subtract is not allowed for config key: {name}"
                )
            base = list(resolve(name, new, broker_config).typed)
            items = [x.strip() for x in (raw or "").split(",") if x.strip()]
            if op is AlterOp.APPEND:
                merged = base + [x for x in items if x not in base]
            else:
                merged = [x for x in base if x not in items]
            if not merged:
                raise _fail(name, ",".join(merged) or '""', "Empty list")
            new[name] = format_value(name, parse_value(name, ",".join(merged)))
    # the storage engine's own checks (e.g. retention.bytes >= -1) apply to the result too
    return normalize(new)


def check_broker_config(broker_config: Any) -> None:
    """Refuse broker log.* settings that no topic could use (raises InvalidConfig).

    Called when the broker's configuration is loaded, so a bad value stops the broker at
    start with one clear line instead of failing later when a log is opened.
    """
    effective_values: dict[str, Any] = {}
    for name in TOPIC_CONFIGS:
        effective_values[name] = resolve(name, {}, broker_config).typed
    _check_storage(effective_values)
