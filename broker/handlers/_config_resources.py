"""Config resources other than topics, shared by DescribeConfigs and the two AlterConfigs.

Owns how the broker's own settings (resource type BROKER) and its loggers (BROKER_LOGGER)
look as config entries: name, value, source, type, read-only, sensitive. Broker settings
come from server.properties and ``--override`` and are read-only at runtime; logger levels
are Python ``logging`` levels under Kafka's level names and can be changed live.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kio.schema.errors import ErrorCode

from broker.handlers._admin_common import AdminError, build, duplicates
from broker.topic_config import ConfigSource, ConfigType, SynonymValue


@dataclass(slots=True)
class Entry:
    """One config entry as DescribeConfigs shows it, whatever the resource."""

    name: str
    value: str | None
    source: ConfigSource
    type: ConfigType = ConfigType.STRING
    read_only: bool = True
    sensitive: bool = False
    doc: str | None = None
    synonyms: list[SynonymValue] = field(default_factory=list)


# ------------------------------------------------------------------------------- broker


def check_broker_name(ctx: Any, name: str) -> None:
    """A BROKER resource names this broker's id, or "" for the cluster-wide defaults."""
    if name == "":
        return
    if name != str(ctx.broker.node_id):
        raise AdminError(
            ErrorCode.invalid_request,
            f"Unexpected broker id, expected {ctx.broker.node_id} or empty string, "
            f"but received {name}",
        )


def _sensitive(name: str) -> bool:
    n = name.lower()
    return "password" in n or "secret" in n or n.endswith("jaas.config")


def _broker_type(name: str, value: Any, spec: Any) -> ConfigType:
    if isinstance(value, bool):
        return ConfigType.BOOLEAN
    if isinstance(value, list | tuple):
        return ConfigType.LIST
    if isinstance(value, float):
        return ConfigType.DOUBLE
    if isinstance(value, int) or (spec is not None and spec.type is int):
        return ConfigType.LONG if name.endswith((".ms", ".bytes", ".messages")) else ConfigType.INT
    if _sensitive(name):
        return ConfigType.PASSWORD
    return ConfigType.STRING


def _broker_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def broker_entries(ctx: Any, name: str) -> list[Entry]:
    """Every broker setting (given or default) of this broker; none for the "" resource,
    which holds only dynamic cluster-wide defaults, and this broker has none."""
    check_broker_name(ctx, name)
    if name == "":
        return []
    config = ctx.broker.config
    try:
        from broker.config import KEYS
    except ImportError:
        KEYS = {}  # noqa: N806
    items = config.items() if hasattr(config, "items") else {}
    out = []
    for key in sorted(items):
        value = items[key]
        spec = KEYS.get(key)
        is_set = config.is_set(key) if hasattr(config, "is_set") else False
        source = ConfigSource.STATIC_BROKER_CONFIG if is_set else ConfigSource.DEFAULT_CONFIG
        sensitive = _sensitive(key)
        text = None if sensitive else _broker_str(value)
        out.append(
            Entry(
                name=key,
                value=text,
                source=source,
                type=_broker_type(key, value, spec),
                read_only=True,
                sensitive=sensitive,
                doc=getattr(spec, "doc", None) or None,
                synonyms=[SynonymValue(key, text, source)],
            )
        )
    return out


# ------------------------------------------------------------------------------- loggers

# Kafka's log4j level names and the Python levels they stand for.
KAFKA_LEVELS: dict[str, int] = {
    "ALL": 1,
    "TRACE": 5,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "OFF": logging.CRITICAL + 1,
}
_LEVEL_NAMES = {v: k for k, v in KAFKA_LEVELS.items()}
ROOT_LOGGER = "root"


def _level_name(level: int) -> str:
    if level in _LEVEL_NAMES:
        return _LEVEL_NAMES[level]
    return logging.getLevelName(level)


def _loggers() -> dict[str, logging.Logger]:
    out = {ROOT_LOGGER: logging.getLogger()}
    for name, obj in sorted(logging.root.manager.loggerDict.items()):
        if isinstance(obj, logging.Logger):
            out[name] = obj
    return out


def logger_entries(ctx: Any, name: str) -> list[Entry]:
    check_broker_name(ctx, name)
    out = []
    for lname, logger in _loggers().items():
        explicit = lname == ROOT_LOGGER or logger.level != logging.NOTSET
        out.append(
            Entry(
                name=lname,
                value=_level_name(logger.getEffectiveLevel()),
                source=ConfigSource.DYNAMIC_BROKER_LOGGER_CONFIG
                if explicit
                else ConfigSource.DEFAULT_CONFIG,
                read_only=False,
            )
        )
    return out


def alter_loggers(
    ctx: Any, name: str, ops: Iterable[tuple[str, int, str | None]], validate_only: bool
) -> None:
    """Apply IncrementalAlterConfigs to loggers: SET a level, DELETE to inherit the parent's."""
    check_broker_name(ctx, name)
    if name == "":
        raise AdminError(ErrorCode.invalid_request, "Logger levels are set per broker id")
    plan: list[tuple[logging.Logger, int]] = []
    for lname, op, value in ops:
        logger = logging.getLogger() if lname == ROOT_LOGGER else logging.getLogger(lname)
        if op == 0:  # SET
            level = KAFKA_LEVELS.get((value or "").upper())
            if level is None:
                raise AdminError(
                    ErrorCode.invalid_config,
                    f"Cannot set the log level of {lname} to {value} as it is not a supported "
                    f"log level. Valid log levels are {', '.join(KAFKA_LEVELS)}",
                )
            plan.append((logger, level))
        elif op == 1:  # DELETE
            if lname == ROOT_LOGGER:
                raise AdminError(
                    ErrorCode.invalid_request,
                    "Removing the log level of the root logger is not allowed",
                )
            plan.append((logger, logging.NOTSET))
        else:
            raise AdminError(
                ErrorCode.invalid_request, f"{lname}: APPEND and SUBTRACT do not apply to loggers"
            )
    if validate_only:
        return
    for logger, level in plan:
        logger.setLevel(level)
        logging.getLogger(__name__).info(
            "logger %s level set to %s", logger.name, _level_name(level)
        )


# ------------------------------------------------------------------------------- topics


def topic_overrides(ctx: Any, name: str) -> dict[str, str]:
    """The topic's current overrides; AdminError for an illegal or unknown topic."""
    from broker import topic_config

    try:
        topic_config.validate_topic_name(name)
    except topic_config.InvalidTopicName as exc:
        raise AdminError(ErrorCode.invalid_topic_exception, str(exc)) from None
    info = ctx.broker.metadata.topic(name)
    if info is None:
        raise AdminError(
            ErrorCode.unknown_topic_or_partition, f"The topic '{name}' does not exist."
        )
    return dict(info.configs)


def set_topic_overrides(
    ctx: Any, name: str, overrides: dict[str, str], validate_only: bool
) -> None:
    """Store a topic's new overrides and make them take effect on its live logs.

    The metadata store announces the change to its listeners (the ReplicaManager applies it
    to each partition's Log); the effective values are checked first, so a combination the
    storage engine refuses is answered as INVALID_CONFIG and nothing changes.
    """
    from broker import topic_config

    try:
        topic_config.normalize(overrides)
        kwargs = topic_config.log_kwargs(overrides, ctx.broker.config)
        _check_log_kwargs(kwargs)
    except topic_config.InvalidConfig as exc:
        raise AdminError(ErrorCode.invalid_config, str(exc)) from None
    if validate_only:
        return
    ctx.broker.metadata.set_topic_configs(name, overrides)
    logging.getLogger(__name__).info(
        "topic %s configs set to %s (client %s)", name, overrides, ctx.client_id
    )


def _check_log_kwargs(kwargs: dict[str, Any]) -> None:
    from broker.topic_config import InvalidConfig

    try:
        from fastlog.config import LogConfig
        from fastlog.errors import InvalidConfigurationError
    except ImportError:
        return
    try:
        LogConfig.from_dict(kwargs)
    except InvalidConfigurationError as exc:
        raise InvalidConfig(str(exc)) from None


# ------------------------------------------------------------------- alter requests


def alter_each(
    ctx: Any, request: Any, alter: Callable[[Any, Any, bool], None], result_type: type
) -> tuple[Any, ...]:
    """The per-resource results of an AlterConfigs or IncrementalAlterConfigs request.

    A resource named twice gets INVALID_REQUEST (each time); every other one goes to
    ``alter(ctx, resource, validate_only)``, whose AdminError is that resource's error.
    """
    dup = duplicates((r.resource_type, r.resource_name) for r in request.resources)
    results = []
    for resource in request.resources:
        error, message = ErrorCode.none, None
        if (resource.resource_type, resource.resource_name) in dup:
            error, message = ErrorCode.invalid_request, "Duplicate resource in request"
        else:
            try:
                alter(ctx, resource, bool(request.validate_only))
            except AdminError as exc:
                error, message = exc.error, exc.message
        results.append(
            build(
                result_type,
                error_code=error,
                error_message=message,
                resource_type=resource.resource_type,
                resource_name=resource.resource_name,
            )
        )
    return tuple(results)
