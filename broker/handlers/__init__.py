"""Registry of API handlers: one module per API key in this package.

Each handler module declares, at module level:

    API_KEY: int            # Kafka API key
    MIN_VERSION: int        # lowest version served
    MAX_VERSION: int        # highest version served (ApiVersions advertises exactly this range)
    async def handle(ctx: RequestContext, request) -> response | None

``request`` is the kio request entity of the negotiated version; ``handle`` returns the
kio response entity of the same version (or a ``broker.protocol.RawResponse`` for
hand-framed responses such as Fetch's zero-copy writer, or None for acks=0 Produce).
Modules are discovered automatically, so adding an API is adding a file.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any


@dataclass(slots=True)
class RequestContext:
    """What a handler knows about the request it serves."""

    broker: Any  # broker.server.Broker
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    connection: Any = None  # broker.network connection object (peer address, etc.)
    extra: dict[str, Any] = field(default_factory=dict)


def discover(strict: bool = False) -> dict[int, ModuleType]:
    """Import every handler module of this package; map API key -> module.

    A module that fails to import is logged and left out (ApiVersions then does not
    advertise it), so one broken API never takes the broker down; ``strict`` re-raises.
    """
    handlers: dict[int, ModuleType] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"{__name__}.{info.name}")
        except Exception:
            if strict:
                raise
            logging.getLogger(__name__).exception("handler module %s failed to import", info.name)
            continue
        key = getattr(module, "API_KEY", None)
        if key is None:
            continue
        if key in handlers:
            raise RuntimeError(
                f"API key {key} handled twice: {handlers[key].__name__}, {module.__name__}"
            )
        handlers[key] = module
    return handlers
