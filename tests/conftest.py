"""Shared fixtures: live broker processes the tests start themselves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import BrokerProcess, free_port


@pytest.fixture
def make_broker(tmp_path: Path) -> Iterator:
    """Factory: make_broker(overrides={...}) -> started BrokerProcess; all stopped at teardown."""
    started: list[BrokerProcess] = []

    def _make(
        overrides: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
        data_dir: Path | None = None,
    ) -> BrokerProcess:
        d = data_dir or tmp_path / f"data-{len(started)}"
        d.mkdir(parents=True, exist_ok=True)
        b = BrokerProcess(d, free_port(), dict(overrides or {}), list(extra_args or []))
        started.append(b)
        return b.start()

    yield _make
    for b in started:
        b.stop()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """One broker per test module (auto topic creation on, 3 partitions by default)."""
    d = tmp_path_factory.mktemp("broker") / "data"
    d.mkdir()
    b = BrokerProcess(d, free_port(), {"num.partitions": "3"}).start()
    yield b
    b.stop()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Multi-broker fault tests race real timeouts (ZooKeeper sessions, elections) on 2 shared
    cores; one in a few hundred runs has lost such a race. They may run twice more before
    they fail. Every other test runs once."""
    for item in items:
        if item.get_closest_marker("cluster") is not None:
            item.add_marker(pytest.mark.flaky(reruns=2, reruns_delay=1))
