"""AlterConfigs (API key 33), versions 0-2: the legacy, whole-set config update.

Behavior:
- TOPIC resources: the given configs REPLACE the topic's overrides (configs left out of the
  request return to their inherited value; a null value removes one), as in Kafka. They are
  validated as a whole first (INVALID_CONFIG, nothing changed) and take effect on the live
  logs. An unknown topic gives UNKNOWN_TOPIC_OR_PARTITION.
- BROKER resources: broker settings are static here (server.properties / --override), so
  any change gives INVALID_REQUEST; BROKER_LOGGER is IncrementalAlterConfigs-only in Kafka
  and gives INVALID_REQUEST too.
- A resource named twice gives INVALID_REQUEST; validate_only changes nothing.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

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

API_KEY = 33
MIN_VERSION = 0
MAX_VERSION = 2


def _alter(ctx: Any, resource: Any, validate_only: bool) -> None:
    names = [c.name for c in resource.configs]
    dup = duplicates(names)
    if dup:
        raise AdminError(
            ErrorCode.invalid_request, f"Duplicate config name(s): {', '.join(sorted(dup))}"
        )
    if resource.resource_type == RESOURCE_TOPIC:
        resources.topic_overrides(ctx, resource.resource_name)  # existence and name checks
        new = {c.name: c.value for c in resource.configs if c.value is not None}
        resources.set_topic_overrides(ctx, resource.resource_name, new, validate_only)
    elif resource.resource_type == RESOURCE_BROKER:
        resources.check_broker_name(ctx, resource.resource_name)
        if names:
            raise AdminError(
                ErrorCode.invalid_request,
                "Cannot update these configs dynamically: " + ", ".join(sorted(names)),
            )
    elif resource.resource_type == RESOURCE_BROKER_LOGGER:
        raise AdminError(
            ErrorCode.invalid_request,
            "AlterConfigs does not support BROKER_LOGGER; use IncrementalAlterConfigs",
        )
    else:
        raise AdminError(
            ErrorCode.invalid_request, f"Unsupported resource type {resource.resource_type}"
        )


async def handle(ctx: Any, request: Any) -> Any:
    types = responses(API_KEY, "alter_configs", ctx.api_version)
    results = resources.alter_each(ctx, request, _alter, types.AlterConfigsResourceResponse)
    return build(types.AlterConfigsResponse, throttle_time=NO_THROTTLE, responses=results)
