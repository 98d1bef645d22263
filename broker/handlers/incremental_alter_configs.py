"""IncrementalAlterConfigs (API key 44), versions 0-1.

Behavior:
- TOPIC resources: SET (0) sets an override, DELETE (1) removes it (the value falls back to
  the broker's), APPEND (2) and SUBTRACT (3) add or remove items of a LIST config
  (cleanup.policy) starting from its effective value. All operations of a resource are
  validated together and applied at once, on the live logs; a bad value or unknown name
  gives INVALID_CONFIG and changes nothing. An unknown topic gives
  UNKNOWN_TOPIC_OR_PARTITION; an unknown operation INVALID_REQUEST.
- BROKER_LOGGER resources: SET a logger's level (TRACE, DEBUG, INFO, WARN, ERROR, FATAL, OFF)
  or DELETE it to inherit its parent's.
- BROKER resources: settings are static here, so any change gives INVALID_REQUEST.
- A resource named twice gives INVALID_REQUEST; validate_only changes nothing.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from broker import topic_config
from broker.handlers import _config_resources as resources
from broker.handlers._admin_common import (
    NO_THROTTLE,
    RESOURCE_BROKER,
    RESOURCE_BROKER_LOGGER,
    RESOURCE_TOPIC,
    AdminError,
    build,
    duplicates,
    responses,
)

API_KEY = 44
MIN_VERSION = 0
MAX_VERSION = 1


def _alter(ctx: Any, resource: Any, validate_only: bool) -> None:
    ops = [(c.name, int(c.config_operation), c.value) for c in resource.configs]
    dup = duplicates(name for name, _, _ in ops)
    if dup:
        raise AdminError(
            ErrorCode.invalid_request, f"Duplicate config name(s): {', '.join(sorted(dup))}"
        )
    bad = [f"{name}:{op}" for name, op, _ in ops if op not in (0, 1, 2, 3)]
    if bad:
        raise AdminError(
            ErrorCode.invalid_request, f"Unknown config operation(s): {', '.join(bad)}"
        )
    if resource.resource_type == RESOURCE_TOPIC:
        name = resource.resource_name
        current = resources.topic_overrides(ctx, name)
        try:
            new = topic_config.apply_incremental(current, ops, ctx.broker.config)
        except topic_config.InvalidConfig as exc:
            raise AdminError(ErrorCode.invalid_config, str(exc)) from None
        resources.set_topic_overrides(ctx, name, new, validate_only)
    elif resource.resource_type == RESOURCE_BROKER_LOGGER:
        resources.alter_loggers(ctx, resource.resource_name, ops, validate_only)
    elif resource.resource_type == RESOURCE_BROKER:
        resources.check_broker_name(ctx, resource.resource_name)
        if ops:
            raise AdminError(
                ErrorCode.invalid_request,
                "Cannot update these configs dynamically: "
                + ", ".join(sorted(n for n, _, _ in ops)),
            )
    else:
        raise AdminError(
            ErrorCode.invalid_request, f"Unsupported resource type {resource.resource_type}"
        )


async def handle(ctx: Any, request: Any) -> Any:
    types = responses(API_KEY, "incremental_alter_configs", ctx.api_version)
    results = resources.alter_each(ctx, request, _alter, types.AlterConfigsResourceResponse)
    return build(
        types.IncrementalAlterConfigsResponse, throttle_time=NO_THROTTLE, responses=results
    )
