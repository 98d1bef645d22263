"""Unit tests of broker/config.py and the CLI option precedence (broker/server_cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.config import (
    BrokerConfig,
    ConfigError,
    parse_listener,
    parse_override,
    parse_properties,
)
from broker.server_cli import build_config


def test_properties_syntax() -> None:
    text = """
# comment
! another comment
num.partitions=3
log.dirs : /var/kafka
auto.create.topics.enable = false
listeners=PLAINTEXT://0.0.0.0:9093,\\
  SSL://0.0.0.0:9094
key.without.separator value
"""
    props = parse_properties(text)
    assert props["num.partitions"] == "3"
    assert props["log.dirs"] == "/var/kafka"
    assert props["auto.create.topics.enable"] == "false"
    assert props["listeners"] == "PLAINTEXT://0.0.0.0:9093,SSL://0.0.0.0:9094"
    assert props["key.without.separator"] == "value"


def test_typed_access_and_defaults() -> None:
    c = BrokerConfig({"num.partitions": "4", "auto.create.topics.enable": "false"})
    assert c.num_partitions == 4
    assert c.get("num.partitions") == 4
    assert c.auto_create_topics_enable is False
    assert c.socket_request_max_bytes == 100 * 1024 * 1024
    assert c.message_max_bytes == 1048588
    assert c.retention_ms == 168 * 3600 * 1000
    assert BrokerConfig({"log.retention.minutes": "2"}).retention_ms == 120000
    assert BrokerConfig({"log.retention.ms": "-1"}).retention_ms == -1
    assert c.node_id == 0
    assert BrokerConfig({"broker.id": "7"}).node_id == 7
    with pytest.raises(AttributeError):
        _ = c.no_such_key


def test_bad_values_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="num.partitions"):
        BrokerConfig({"num.partitions": "many"})
    with pytest.raises(ConfigError, match="boolean"):
        BrokerConfig({"auto.create.topics.enable": "maybe"})
    with pytest.raises(ConfigError):
        BrokerConfig({"listeners": "localhost:9092"})
    with pytest.raises(ConfigError):
        BrokerConfig({"listeners": "PLAINTEXT://localhost:99999"})
    with pytest.raises(ConfigError):
        BrokerConfig({"socket.request.max.bytes": "0"})
    with pytest.raises(ConfigError):
        parse_override("novalue")


def test_listener_parsing() -> None:
    assert parse_listener("PLAINTEXT://127.0.0.1:9092").port == 9092
    assert parse_listener("plaintext://[::1]:9092").host == "::1"
    assert parse_listener("PLAINTEXT://:9092").host == ""


def test_cli_precedence(tmp_path: Path) -> None:
    props = tmp_path / "server.properties"
    props.write_text(
        "listeners=PLAINTEXT://127.0.0.2:9999\nlog.dirs=/from/file\nnum.partitions=2\n"
    )
    c = build_config(str(props), ("num.partitions=5",), None, None, None)
    assert c.num_partitions == 5  # override beats file
    assert c.listener.host == "127.0.0.2" and c.listener.port == 9999  # file kept
    assert str(c.data_dir) == "/from/file"
    c = build_config(str(props), (), str(tmp_path / "d"), None, 1234)
    assert c.listener.port == 1234 and c.listener.host == "127.0.0.2"
    assert c.data_dir == tmp_path / "d"
    d = build_config(None, (), None, None, None)
    assert d.listener.host == "127.0.0.1" and d.listener.port == 9092
    assert str(d.data_dir) == "data"


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        build_config(str(tmp_path / "nope.properties"), (), None, None, None)


def test_log_kwargs_use_broker_defaults_and_topic_overrides() -> None:
    c = BrokerConfig({"log.segment.bytes": "1048576", "log.retention.hours": "1"})
    kw = c.log_kwargs({"retention.ms": "5000"})
    assert kw["segment_bytes"] == 1048576
    assert kw["retention_ms"] == 5000
    assert c.log_kwargs({})["retention_ms"] == 3600000
