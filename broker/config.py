"""Broker configuration: Kafka's server.properties keys, their defaults and types.

Owns parsing of the properties file syntax, ``--override key=value`` pairs, typed access
(``config.get("num.partitions")`` or ``config.num_partitions``), and the mapping from
broker-level log defaults (``log.retention.ms``...); topic-level configs are resolved against them by
``broker.topic_config``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LONG_MAX = 2**63 - 1


class ConfigError(ValueError):
    """A configuration value that cannot be used (bad type, bad listener...)."""


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("true", "1", "yes", "on"):
        return True
    if v in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"not a boolean: {value!r}")


def _list(value: str) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()]


def _opt_int(value: str) -> int | None:
    return None if value.strip() in ("", "null", "None") else int(value)


@dataclass(frozen=True, slots=True)
class Key:
    name: str
    type: Any  # callable str -> value
    default: Any
    doc: str = ""


# Kafka's broker keys the broker understands; others are accepted, kept as strings, warned about.
KEYS: dict[str, Key] = {
    k.name: k
    for k in [
        Key("listeners", _list, ["PLAINTEXT://127.0.0.1:9092"], "Where the broker listens."),
        Key(
            "advertised.listeners", _list, None, "Addresses given to clients (default: listeners)."
        ),
        Key("log.dirs", _list, ["./data"], "Data directory (the first one is used)."),
        Key("log.dir", str, None, "Alias of log.dirs when log.dirs is unset."),
        Key("node.id", int, 0, "This broker's id."),
        Key("broker.id", int, None, "Alias of node.id."),
        Key("broker.rack", str, None, "Rack of this broker."),
        Key("cluster.id", str, None, "Cluster id (generated and stored on first start)."),
        Key("num.partitions", int, 1, "Partitions of an auto-created topic."),
        Key("default.replication.factor", int, 1, "Replication factor of an auto-created topic."),
        Key("auto.create.topics.enable", _bool, True, "Create unknown topics on Metadata/Produce."),
        Key("delete.topic.enable", _bool, True, "Allow DeleteTopics."),
        Key("message.max.bytes", int, 1048588, "Largest record batch accepted."),
        Key(
            "compression.type",
            str,
            "producer",
            "Codec of stored batches (uncompressed, gzip, snappy, lz4, zstd; producer: as sent).",
        ),
        Key("compression.gzip.level", int, -1, "gzip level when compression.type is gzip."),
        Key("compression.lz4.level", int, 9, "lz4 level when compression.type is lz4."),
        Key("compression.zstd.level", int, 3, "zstd level when compression.type is zstd."),
        Key("socket.request.max.bytes", int, 104857600, "Largest request frame accepted."),
        Key("connections.max.idle.ms", int, 600000, "Idle connections are closed after this."),
        Key("log.segment.bytes", int, 1073741824, "Segment size."),
        Key("log.roll.ms", _opt_int, None, "Roll a segment after this age."),
        Key("log.roll.hours", int, 168, "Roll a segment after this age (hours)."),
        Key("log.retention.ms", _opt_int, None, "Retention by time (-1: forever)."),
        Key("log.retention.minutes", _opt_int, None, "Retention by time in minutes."),
        Key("log.retention.hours", int, 168, "Retention by time in hours."),
        Key("log.retention.bytes", int, -1, "Retention by size per partition (-1: none)."),
        Key("log.retention.check.interval.ms", int, 300000, "How often retention runs."),
        Key("log.cleanup.policy", _list, ["delete"], "delete, compact or both."),
        Key("log.cleaner.enable", _bool, True, "Run the log cleaner for compacted topics."),
        Key("log.cleaner.backoff.ms", int, 15000, "How often the cleaner looks for work."),
        Key("log.cleaner.delete.retention.ms", int, 86400000, "How long tombstones live."),
        Key("log.cleaner.min.cleanable.ratio", float, 0.5, "Dirty ratio that triggers cleaning."),
        Key("log.index.interval.bytes", int, 4096, "Bytes between offset index entries."),
        Key("log.index.size.max.bytes", int, 10485760, "Maximum index file size."),
        Key("log.flush.interval.messages", int, LONG_MAX, "fsync after this many messages."),
        Key("log.flush.interval.ms", _opt_int, None, "fsync after this many ms."),
        Key("log.message.timestamp.type", str, "CreateTime", "CreateTime or LogAppendTime."),
        Key(
            "log.message.timestamp.before.max.ms",
            int,
            LONG_MAX,
            "CreateTime timestamps further in the past are INVALID_TIMESTAMP.",
        ),
        Key(
            "log.message.timestamp.after.max.ms",
            int,
            LONG_MAX,
            "CreateTime timestamps further in the future are INVALID_TIMESTAMP.",
        ),
        Key(
            "log.message.timestamp.difference.max.ms",
            int,
            LONG_MAX,
            "Deprecated form of log.message.timestamp.before.max.ms.",
        ),
        Key("min.insync.replicas", int, 1, "Replicas that must have a record for acks=-1."),
        Key("producer.id.expiration.ms", int, 86400000, "Idle producer state expires after this."),
        Key("transactional.id.expiration.ms", int, 604800000, "Idle transactional ids expire."),
        Key("offsets.topic.num.partitions", int, 50, "Partitions of __consumer_offsets."),
        Key(
            "offsets.topic.replication.factor",
            int,
            3,
            "Replicas of __consumer_offsets (Kafka's default; single-node mode uses 1).",
        ),
        Key("offsets.retention.minutes", int, 10080, "Committed offsets retention."),
        Key(
            "group.initial.rebalance.delay.ms", int, 3000, "Delay of a new group's first rebalance."
        ),
        Key("group.min.session.timeout.ms", int, 6000, "Smallest session timeout allowed."),
        Key("group.max.session.timeout.ms", int, 1800000, "Largest session timeout allowed."),
        Key("replica.lag.time.max.ms", int, 30000, "A follower behind this long leaves the ISR."),
        Key("replica.fetch.wait.max.ms", int, 500, "Longest wait of a follower's fetch."),
        Key("replica.fetch.max.bytes", int, 1048576, "Bytes per partition per follower fetch."),
        Key("replica.fetch.response.max.bytes", int, 10485760, "Bytes per follower fetch."),
        Key("replica.fetch.backoff.ms", int, 1000, "Wait after a failed follower fetch."),
        Key("replica.socket.timeout.ms", int, 30000, "Follower request timeout."),
        Key(
            "zookeeper.connect",
            str,
            None,
            "HOST:PORT[,HOST:PORT...][/chroot]: cluster mode, metadata in ZooKeeper.",
        ),
        Key("zookeeper.session.timeout.ms", int, 18000, "ZooKeeper session timeout."),
        Key(
            "zookeeper.connection.timeout.ms",
            _opt_int,
            None,
            "Wait this long for ZooKeeper at start (default: the session timeout).",
        ),
        Key(
            "unclean.leader.election.enable",
            _bool,
            False,
            "Elect a leader outside the ISR when no ISR member is alive (may lose data).",
        ),
        Key(
            "auto.leader.rebalance.enable",
            _bool,
            True,
            "The controller moves leadership back to preferred replicas (cluster mode).",
        ),
        Key(
            "leader.imbalance.check.interval.seconds",
            int,
            300,
            "How often the controller checks leader balance.",
        ),
        Key(
            "leader.imbalance.per.broker.percentage",
            int,
            10,
            "Share of a broker's preferred partitions led elsewhere that triggers a rebalance.",
        ),
        Key(
            "controlled.shutdown.enable",
            _bool,
            True,
            "On SIGTERM, move leadership to other brokers before stopping (cluster mode).",
        ),
        Key(
            "auto.leader.rebalance.enable",
            _bool,
            True,
            "The controller restores preferred leaders when brokers are imbalanced.",
        ),
        Key(
            "leader.imbalance.check.interval.seconds",
            int,
            300,
            "How often the controller checks leader imbalance.",
        ),
        Key(
            "leader.imbalance.per.broker.percentage",
            int,
            10,
            "Share of a broker's preferred partitions led elsewhere that triggers a rebalance.",
        ),
        Key("metadata.store", str, "embedded", "embedded (a file under the data dir)."),
        Key("metrics.port", int, -1, "Prometheus /metrics port (-1 off, 0 any free port)."),
        Key("metrics.host", str, None, "Address of the metrics endpoint."),
    ]
}


def parse_properties(text: str) -> dict[str, str]:
    """Parse Java properties syntax: ``key=value`` / ``key: value``, ``#``/``!`` comments,
    backslash line continuations."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line[0] in "#!":
            continue
        while line.endswith("\\") and not line.endswith("\\\\"):
            line = line[:-1]
            if i < len(lines):
                line += lines[i].strip()
                i += 1
        sep = min((p for p in (line.find("="), line.find(":")) if p >= 0), default=-1)
        if sep < 0:
            parts = line.split(None, 1)
            key, value = parts[0], parts[1] if len(parts) > 1 else ""
        else:
            key, value = line[:sep].strip(), line[sep + 1 :].strip()
        out[key] = value
    return out


def parse_override(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise ConfigError(f"--override expects key=value, got {item!r}")
    key, value = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--override expects key=value, got {item!r}")
    return key, value.strip()


@dataclass(frozen=True, slots=True)
class Listener:
    name: str
    host: str
    port: int


def parse_listener(spec: str) -> Listener:
    """``PLAINTEXT://host:port`` (host may be empty for all interfaces, IPv6 in brackets)."""
    if "://" not in spec:
        raise ConfigError(f"listener must look like NAME://host:port, got {spec!r}")
    name, rest = spec.split("://", 1)
    host, sep, port = rest.rpartition(":")
    if not sep:
        raise ConfigError(f"listener has no port: {spec!r}")
    host = host.strip("[]")
    try:
        p = int(port)
    except ValueError:
        raise ConfigError(f"listener port is not a number: {spec!r}") from None
    if not 0 <= p <= 65535:
        raise ConfigError(f"listener port out of range: {spec!r}")
    return Listener(name.upper(), host, p)


class BrokerConfig:
    """The broker's effective configuration (defaults < file < overrides)."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._raw: dict[str, str] = dict(values or {})
        self._values: dict[str, Any] = {}
        for key, raw in self._raw.items():
            spec = KEYS.get(key)
            if spec is None:
                self._values[key] = raw
                continue
            try:
                self._values[key] = spec.type(raw)
            except (ValueError, ConfigError) as exc:
                raise ConfigError(f"{key}={raw!r}: {exc}") from None
        self._validate()

    @classmethod
    def load(
        cls, path: str | Path | None = None, overrides: Iterable[tuple[str, str]] = ()
    ) -> BrokerConfig:
        values: dict[str, str] = {}
        if path is not None:
            try:
                values.update(parse_properties(Path(path).read_text()))
            except OSError as exc:
                raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        for k, v in overrides:
            values[k] = v
        unknown = sorted(k for k in values if k not in KEYS)
        if unknown:
            log.warning("config keys not used by this broker: %s", ", ".join(unknown))
        return cls(values)

    def _validate(self) -> None:
        for spec in self.listeners:
            parse_listener(spec)
        for spec in self.get("advertised.listeners") or []:
            parse_listener(spec)
        if self.socket_request_max_bytes <= 0:
            raise ConfigError("socket.request.max.bytes must be positive")
        if self.num_partitions <= 0:
            raise ConfigError("num.partitions must be positive")
        if self.message_max_bytes <= 0:
            raise ConfigError("message.max.bytes must be positive")
        if self.get("log.message.timestamp.type") not in ("CreateTime", "LogAppendTime"):
            raise ConfigError("log.message.timestamp.type must be CreateTime or LogAppendTime")
        from broker.topic_config import InvalidConfig, check_broker_config

        try:  # the log.* defaults every topic inherits (broker/topic_config.py)
            check_broker_config(self)
        except InvalidConfig as exc:
            raise ConfigError(str(exc)) from None

    # -- access ------------------------------------------------------------------------
    def get(self, name: str, default: Any = None) -> Any:
        if name in self._values:
            return self._values[name]
        spec = KEYS.get(name)
        if spec is not None:
            return spec.default
        return default

    def is_set(self, name: str) -> bool:
        return name in self._values

    def items(self) -> dict[str, Any]:
        """Every known key with its effective value, plus unknown keys that were given."""
        out = {k: self.get(k) for k in KEYS}
        out.update(self._values)
        return out

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        key = _ATTR_TO_KEY.get(attr)
        if key is None:
            raise AttributeError(f"BrokerConfig has no key for attribute {attr!r}")
        return self.get(key)

    def with_overrides(self, **kv: str) -> BrokerConfig:
        values = dict(self._raw)
        values.update(kv)
        return BrokerConfig(values)

    # -- derived values ----------------------------------------------------------------
    @property
    def node_id(self) -> int:
        if "node.id" not in self._values and self._values.get("broker.id") is not None:
            return int(self._values["broker.id"])
        return int(self.get("node.id"))

    @property
    def data_dir(self) -> Path:
        dirs = self._values.get("log.dirs")
        if not dirs and self._values.get("log.dir"):
            dirs = [self._values["log.dir"]]
        return Path((dirs or KEYS["log.dirs"].default)[0])

    @property
    def listener(self) -> Listener:
        return parse_listener(self.listeners[0])

    @property
    def advertised_listener(self) -> Listener:
        adv = self.get("advertised.listeners")
        listener = parse_listener(adv[0]) if adv else self.listener
        if listener.host in ("", "0.0.0.0", "::"):
            # Clients cannot connect to the wildcard address; Kafka advertises the host name.
            import socket

            listener = Listener(listener.name, socket.gethostname(), listener.port)
        return listener

    @property
    def retention_ms(self) -> int:
        for key, scale in (("log.retention.ms", 1), ("log.retention.minutes", 60000)):
            v = self._values.get(key)
            if v is not None:
                return v if v < 0 else v * scale
        return int(self.get("log.retention.hours")) * 3600000

    @property
    def segment_ms(self) -> int:
        v = self._values.get("log.roll.ms")
        if v is not None:
            return v
        return int(self.get("log.roll.hours")) * 3600000

    @property
    def explicit(self) -> dict[str, str]:
        """Keys set explicitly (file, overrides, shortcuts) as their raw strings."""
        return dict(self._raw)

    def log_kwargs(self, topic_configs: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Keyword arguments for ``fastlog.Log``: broker values overlaid by topic configs
        (resolution in broker.topic_config, as Kafka's DescribeConfigs shows it)."""
        from broker import topic_config

        return topic_config.log_kwargs(dict(topic_configs or {}), self)


_ATTR_TO_KEY = {k.replace(".", "_"): k for k in KEYS}
