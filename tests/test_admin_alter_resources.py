"""The per-resource loop AlterConfigs and IncrementalAlterConfigs share
(broker/handlers/_config_resources.alter_each), every version of both: a resource named
twice is refused each time while the others in the request are applied, results keep the
request's order, and validate_only changes nothing. In-process, with the real metadata
store, each response serialized and parsed back (test_admin_handlers.call)."""

from __future__ import annotations

from typing import Any

import pytest
from kio.schema.errors import ErrorCode
from kio.static.primitive import i8
from test_admin_handlers import broker, call, request_cls  # noqa: F401 - broker is a fixture

from broker.handlers import alter_configs, incremental_alter_configs

TOPIC, BROKER = 2, 4
SET = 0


def _request(
    module: Any, version: int, resources: list[tuple[int, str, dict]], validate_only: bool
):
    """An AlterConfigs or IncrementalAlterConfigs (every config a SET) request."""
    incremental = module is incremental_alter_configs
    name = "incremental_alter_configs" if incremental else "alter_configs"
    m = request_cls(name, module.API_KEY, version)
    op = {"config_operation": i8(SET)} if incremental else {}
    request = m.IncrementalAlterConfigsRequest if incremental else m.AlterConfigsRequest
    return request(
        resources=tuple(
            m.AlterConfigsResource(
                resource_type=i8(t),
                resource_name=n,
                configs=tuple(m.AlterableConfig(name=k, value=v, **op) for k, v in cfg.items()),
            )
            for t, n, cfg in resources
        ),
        validate_only=validate_only,
    )


CASES = [(alter_configs, v) for v in range(0, 3)] + [
    (incremental_alter_configs, v) for v in range(0, 2)
]
IDS = [f"{m.__name__.rsplit('.', 1)[1]}-v{v}" for m, v in CASES]


@pytest.mark.parametrize("module, version", CASES, ids=IDS)
async def test_duplicate_resources_are_refused_and_the_others_applied(
    broker: Any,  # noqa: F811 - the fixture
    module: Any,
    version: int,
) -> None:
    broker.metadata.create_topic("a", 1, 1, {})
    broker.metadata.create_topic("b", 1, 1, {})
    resources = [
        (TOPIC, "a", {"retention.ms": "1000"}),
        (TOPIC, "b", {"retention.ms": "2000"}),
        (BROKER, "0", {}),
        (TOPIC, "a", {"retention.ms": "3000"}),
        (TOPIC, "missing", {"retention.ms": "4000"}),
    ]
    r = await call(broker, module, version, _request(module, version, resources, False))
    got = [(x.resource_type, x.resource_name, x.error_code) for x in r.responses]
    assert got == [
        (TOPIC, "a", ErrorCode.invalid_request),
        (TOPIC, "b", ErrorCode.none),
        (BROKER, "0", ErrorCode.none),
        (TOPIC, "a", ErrorCode.invalid_request),
        (TOPIC, "missing", ErrorCode.unknown_topic_or_partition),
    ]
    assert r.responses[0].error_message == "Duplicate resource in request"
    assert r.responses[1].error_message is None
    assert "missing" in r.responses[4].error_message
    assert broker.metadata.topic_configs("a") == {}
    assert broker.metadata.topic_configs("b") == {"retention.ms": "2000"}


@pytest.mark.parametrize("module, version", CASES, ids=IDS)
async def test_validate_only_checks_and_changes_nothing(
    broker: Any,  # noqa: F811 - the fixture
    module: Any,
    version: int,
) -> None:
    broker.metadata.create_topic("a", 1, 1, {"retention.ms": "10"})
    resources = [
        (TOPIC, "a", {"retention.ms": "99"}),
        (TOPIC, "a2", {"segment.bytes": "1"}),
    ]
    broker.metadata.create_topic("a2", 1, 1, {})
    r = await call(broker, module, version, _request(module, version, resources, True))
    assert [x.error_code for x in r.responses] == [ErrorCode.none, ErrorCode.invalid_config]
    assert broker.metadata.topic_configs("a") == {"retention.ms": "10"}
    assert broker.metadata.topic_configs("a2") == {}
