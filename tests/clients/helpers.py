"""Small helpers shared by the client compatibility tests (the live `broker` fixture comes from
tests/conftest.py)."""

from __future__ import annotations

import time
import uuid

import pytest

from .drivers import DRIVERS, Driver


def now_ms() -> int:
    return int(time.time() * 1000)


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def by_client(drivers: list[Driver] | None = None):
    """Parametrize a test over clients, ids being the client names."""
    chosen = DRIVERS if drivers is None else drivers
    return pytest.mark.parametrize("client", chosen, ids=[d.name for d in chosen])
