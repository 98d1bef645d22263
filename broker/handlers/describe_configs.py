"""DescribeConfigs (API key 32), versions 0-4.

Behavior:
- TOPIC resources: every topic config (or the requested keys; unknown keys are left out)
  with its effective value and source: TOPIC_CONFIG for an override, STATIC_BROKER_CONFIG
  when inherited from a log.* setting given to the broker, DEFAULT_CONFIG otherwise.
  Synonyms (v1+, when asked) list the override and the broker settings in precedence order.
  An unknown topic gives UNKNOWN_TOPIC_OR_PARTITION, an illegal name INVALID_TOPIC_EXCEPTION.
- BROKER resources: this broker's settings, read-only, sensitive ones without a value; the
  "" resource (dynamic cluster defaults) is empty. Another broker id gives INVALID_REQUEST.
- BROKER_LOGGER resources: the broker's loggers and their levels.
- v0 answers is_default instead of a source; v3+ adds the config type and, on request, its
  documentation.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i8

from broker import topic_config
from broker.handlers import _config_resources as resources
from broker.handlers._admin_common import (
    NO_THROTTLE,
    RESOURCE_BROKER,
    RESOURCE_BROKER_LOGGER,
    RESOURCE_TOPIC,
    AdminError,
    Responses,
    build,
    responses,
)
from broker.handlers._config_resources import Entry

API_KEY = 32
MIN_VERSION = 0
MAX_VERSION = 4


def topic_entries(ctx: Any, name: str, keys: Any) -> list[Entry]:
    try:
        topic_config.validate_topic_name(name)
    except topic_config.InvalidTopicName as exc:
        raise AdminError(ErrorCode.invalid_topic_exception, str(exc)) from None
    info = ctx.broker.metadata.topic(name)
    if info is None:
        raise AdminError(
            ErrorCode.unknown_topic_or_partition, f"The topic '{name}' does not exist."
        )
    resolved = topic_config.describe(info.configs, ctx.broker.config, keys)
    return [
        Entry(
            name=r.name,
            value=r.value,
            source=r.source,
            type=r.definition.type if r.definition else topic_config.ConfigType.STRING,
            read_only=False,
            sensitive=False,
            doc=r.definition.doc if r.definition else None,
            synonyms=r.synonyms,
        )
        for r in resolved
    ]


def _entries(ctx: Any, resource: Any) -> list[Entry]:
    keys = resource.configuration_keys
    if resource.resource_type == RESOURCE_TOPIC:
        return topic_entries(ctx, resource.resource_name, keys)
    if resource.resource_type == RESOURCE_BROKER:
        entries = resources.broker_entries(ctx, resource.resource_name)
    elif resource.resource_type == RESOURCE_BROKER_LOGGER:
        entries = resources.logger_entries(ctx, resource.resource_name)
    else:
        raise AdminError(
            ErrorCode.invalid_request, f"Unsupported resource type {resource.resource_type}"
        )
    if keys is not None:  # null lists every key; an empty list none (Kafka's protocol)
        wanted = set(keys)
        entries = [e for e in entries if e.name in wanted]
    return entries


def _render(types: Responses, request: Any, version: int, e: Entry) -> Any:
    synonyms = ()
    if version >= 1 and request.include_synonyms:
        synonyms = tuple(
            build(
                types.DescribeConfigsSynonym, name=s.name, value=s.value, source=i8(int(s.source))
            )
            for s in e.synonyms
        )
    include_doc = version >= 3 and bool(getattr(request, "include_documentation", False))
    return build(
        types.DescribeConfigsResourceResult,
        name=e.name,
        value=e.value,
        read_only=e.read_only,
        is_default=e.source is topic_config.ConfigSource.DEFAULT_CONFIG,
        config_source=i8(int(e.source)),
        is_sensitive=e.sensitive,
        synonyms=synonyms,
        config_type=i8(int(e.type)),
        documentation=e.doc if include_doc else None,
    )


async def handle(ctx: Any, request: Any) -> Any:
    version = ctx.api_version
    types = responses(API_KEY, "describe_configs", version)
    results = []
    for resource in request.resources:
        error, message, configs = ErrorCode.none, None, ()
        try:
            configs = tuple(_render(types, request, version, e) for e in _entries(ctx, resource))
        except AdminError as exc:
            error, message = exc.error, exc.message
        except topic_config.InvalidConfig as exc:  # a broker log.* value that does not parse
            error, message = ErrorCode.invalid_config, str(exc)
        results.append(
            build(
                types.DescribeConfigsResult,
                error_code=error,
                error_message=message,
                resource_type=resource.resource_type,
                resource_name=resource.resource_name,
                configs=configs,
            )
        )
    return build(types.DescribeConfigsResponse, throttle_time=NO_THROTTLE, results=tuple(results))
