"""Broker metrics for Prometheus: Kafka's main broker metrics on an HTTP /metrics endpoint.

Owns the metric definitions (prometheus-client), the few hooks the request path calls, the
collector that reads broker state at scrape time, and the HTTP server. The broker starts the
server when ``metrics.port`` is set: -1 (the default) disables metrics, 0 picks a free port
(logged), any other value is the port; ``metrics.host`` (default: all interfaces) is the address.

Hooks (cheap: cached label children, no locks; the broker calls them from its event loop):

    metrics.observe_request(ctx, seconds)      # a Broker.request_observers entry
    metrics.record_request(api_key, seconds)   # the same without a RequestContext
    metrics.record_produce(topic, partition, messages, nbytes)     # appended to the log
    metrics.record_fetch(topic, partition, nbytes)                 # sent to a consumer/follower

Gauges computed from broker state on each scrape (the collector, not the hooks): open
connections, partition count, leader count, under-replicated partitions, log size / start /
end offset and high watermark per partition, consumer group lag per (group, topic,
partition) and group members.

Names follow Prometheus conventions; docs/tools.md maps each to its Kafka MBean.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# Kafka's API names by key, for the "api" label (as Kafka's RequestMetrics "request" tag)
API_NAMES: dict[int, str] = {
    0: "Produce",
    1: "Fetch",
    2: "ListOffsets",
    3: "Metadata",
    4: "LeaderAndIsr",
    5: "StopReplica",
    6: "UpdateMetadata",
    7: "ControlledShutdown",
    8: "OffsetCommit",
    9: "OffsetFetch",
    10: "FindCoordinator",
    11: "JoinGroup",
    12: "Heartbeat",
    13: "LeaveGroup",
    14: "SyncGroup",
    15: "DescribeGroups",
    16: "ListGroups",
    17: "SaslHandshake",
    18: "ApiVersions",
    19: "CreateTopics",
    20: "DeleteTopics",
    21: "DeleteRecords",
    22: "InitProducerId",
    23: "OffsetForLeaderEpoch",
    24: "AddPartitionsToTxn",
    25: "AddOffsetsToTxn",
    26: "EndTxn",
    27: "WriteTxnMarkers",
    28: "TxnOffsetCommit",
    29: "DescribeAcls",
    30: "CreateAcls",
    31: "DeleteAcls",
    32: "DescribeConfigs",
    33: "AlterConfigs",
    34: "AlterReplicaLogDirs",
    35: "DescribeLogDirs",
    36: "SaslAuthenticate",
    37: "CreatePartitions",
    38: "CreateDelegationToken",
    39: "RenewDelegationToken",
    40: "ExpireDelegationToken",
    41: "DescribeDelegationToken",
    42: "DeleteGroups",
    43: "ElectLeaders",
    44: "IncrementalAlterConfigs",
    45: "AlterPartitionReassignments",
    46: "ListPartitionReassignments",
    47: "OffsetDelete",
    48: "DescribeClientQuotas",
    49: "AlterClientQuotas",
    50: "DescribeUserScramCredentials",
    51: "AlterUserScramCredentials",
    55: "DescribeQuorum",
    56: "AlterPartition",
    57: "UpdateFeatures",
    60: "DescribeCluster",
    61: "DescribeProducers",
    65: "DescribeTransactions",
    66: "ListTransactions",
    67: "AllocateProducerIds",
    68: "ConsumerGroupHeartbeat",
}

# request latency buckets (seconds): sub-millisecond produce up to long-polling fetches
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)

DISABLED = -1


def api_name(api_key: int) -> str:
    return API_NAMES.get(api_key, f"Api{api_key}")


class BrokerMetrics:
    """The metrics of one broker: its own registry, so several brokers (tests) never clash."""

    def __init__(
        self, broker: Any | None = None, registry: CollectorRegistry | None = None
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.bytes_in = Counter(
            "fastlog_topic_bytes_in",
            "Bytes appended to the log by producers, per topic.",
            ["topic"],
            registry=r,
        )
        self.bytes_out = Counter(
            "fastlog_topic_bytes_out",
            "Record bytes sent in Fetch responses, per topic.",
            ["topic"],
            registry=r,
        )
        self.messages_in = Counter(
            "fastlog_topic_messages_in",
            "Records appended to the log by producers, per topic.",
            ["topic"],
            registry=r,
        )
        self.requests = Counter(
            "fastlog_requests", "Requests handled, per API.", ["api"], registry=r
        )
        self.request_seconds = Histogram(
            "fastlog_request_duration_seconds",
            "Time from a request's arrival to its response being queued, per API.",
            ["api"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._api: dict[int, tuple[Any, Any]] = {}
        self._topic_in: dict[str, tuple[Any, Any]] = {}
        self._topic_out: dict[str, Any] = {}
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None
        if broker is not None:
            r.register(BrokerStateCollector(broker))
            metadata = getattr(broker, "metadata", None)
            if metadata is not None and hasattr(metadata, "add_listener"):
                metadata.add_listener(_TopicEvents(self))

    # -- hooks on the request path ----------------------------------------------------------

    def observe_request(self, ctx: Any, seconds: float) -> None:
        """Broker.request_observers hook: ctx is the handler's RequestContext."""
        self.record_request(ctx.api_key, seconds)

    def record_request(self, api_key: int, seconds: float) -> None:
        children = self._api.get(api_key)
        if children is None:
            name = api_name(api_key)
            children = self._api[api_key] = (
                self.requests.labels(name),
                self.request_seconds.labels(name),
            )
        children[0].inc()
        children[1].observe(seconds)

    def record_produce(self, topic: str, partition: int, messages: int, nbytes: int) -> None:
        children = self._topic_in.get(topic)
        if children is None:
            children = self._topic_in[topic] = (
                self.bytes_in.labels(topic),
                self.messages_in.labels(topic),
            )
        children[0].inc(nbytes)
        children[1].inc(messages)

    def record_fetch(self, topic: str, partition: int, nbytes: int) -> None:
        child = self._topic_out.get(topic)
        if child is None:
            child = self._topic_out[topic] = self.bytes_out.labels(topic)
        child.inc(nbytes)

    def forget_topic(self, topic: str) -> None:
        """Drop a deleted topic's series so /metrics does not report it forever."""
        for metric, cache in (
            (self.bytes_in, self._topic_in),
            (self.messages_in, None),
            (self.bytes_out, self._topic_out),
        ):
            try:
                metric.remove(topic)
            except KeyError:
                pass
            if cache is not None:
                cache.pop(topic, None)

    # -- HTTP endpoint --------------------------------------------------------------------------

    def start_http(self, port: int, host: str = "") -> int:
        """Serve /metrics on (host, port) from a daemon thread; returns the bound port."""
        server, thread = start_http_server(port, addr=host or "0.0.0.0", registry=self.registry)
        self._server, self._thread = server, thread
        self.port = server.server_address[1]
        return self.port

    def stop_http(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._thread = None


class _TopicEvents:
    """MetadataListener: a deleted topic's counters go with it."""

    def __init__(self, metrics: BrokerMetrics) -> None:
        self.metrics = metrics

    def on_topic_deleted(self, topic: Any) -> None:
        self.metrics.forget_topic(topic.name)

    def on_topic_created(self, topic: Any) -> None:
        pass

    def on_partitions_added(self, topic: Any, old_count: int) -> None:
        pass

    def on_topic_configs_changed(self, topic: Any) -> None:
        pass


def metrics_port_from_config(config: Any) -> int:
    """``metrics.port`` from a BrokerConfig (or any mapping-like ``.get``); -1 if unset."""
    value = _config_get(config, "metrics.port")
    if value is None or value == "":
        return DISABLED
    port = int(value)
    if port < -1 or port > 65535:
        raise ValueError(
            f"metrics.port must be -1 (off), 0 (any free port) or a port number, got {port}"
        )
    return port


def _config_get(config: Any, name: str) -> Any:
    try:
        return config.get(name)
    except (KeyError, AttributeError):
        return None


def start_from_config(broker: Any, config: Any, default_host: str = "") -> BrokerMetrics | None:
    """What the broker calls at start: a BrokerMetrics serving HTTP, or None if disabled
    (a broker without metrics pays nothing: its call sites test ``broker.metrics is not None``).
    """
    try:
        port = metrics_port_from_config(config)
    except ValueError as exc:
        # OSError: what the broker's command line reports as a one-line start failure
        raise OSError(errno.EINVAL, str(exc)) from None
    if port == DISABLED:
        return None
    host = _config_get(config, "metrics.host") or default_host
    metrics = BrokerMetrics(broker)
    try:
        bound = metrics.start_http(port, host)
    except OSError as exc:
        raise OSError(
            exc.errno, f"cannot serve metrics on {host or '0.0.0.0'}:{port}: {exc.strerror}"
        ) from None
    log.info("metrics: serving Prometheus /metrics on %s:%d", host or "0.0.0.0", bound)
    return metrics


# --------------------------------------------------------------------------- broker state


class BrokerStateCollector(Collector):
    """Reads partitions and groups from the live broker at scrape time.

    Runs on the HTTP server's thread while the event loop mutates the same dicts: every
    container is copied with list() first (a C-level copy that holds the GIL), and a scrape
    that still races with a change is retried rather than failing.
    """

    def __init__(self, broker: Any) -> None:
        self.broker = broker

    def describe(self) -> Iterable[Any]:
        return []  # values are dynamic; skip the collect() prometheus-client would run to describe

    def collect(self) -> Iterator[Any]:
        for _attempt in range(3):
            try:
                families = self._families()
            except RuntimeError:  # "dictionary changed size during iteration"
                continue
            yield from families
            return

    def _families(self) -> list[Any]:
        node_id = getattr(self.broker, "node_id", None)
        partitions = GaugeMetricFamily(
            "fastlog_partitions", "Partitions with a replica on this broker."
        )
        leaders = GaugeMetricFamily("fastlog_leader_partitions", "Partitions this broker leads.")
        under = GaugeMetricFamily(
            "fastlog_under_replicated_partitions",
            "Led partitions whose ISR is smaller than their replica set.",
        )
        size = GaugeMetricFamily(
            "fastlog_log_size_bytes",
            "Bytes of a partition's log on disk.",
            labels=["topic", "partition"],
        )
        start = GaugeMetricFamily(
            "fastlog_log_start_offset",
            "First offset of a partition's log.",
            labels=["topic", "partition"],
        )
        end = GaugeMetricFamily(
            "fastlog_log_end_offset",
            "Log end offset of a partition.",
            labels=["topic", "partition"],
        )
        hw = GaugeMetricFamily(
            "fastlog_high_watermark",
            "High watermark of a led partition.",
            labels=["topic", "partition"],
        )
        connections = GaugeMetricFamily("fastlog_connections", "Open client connections.")
        server = getattr(self.broker, "server", None)
        connections.add_metric([], len(getattr(server, "connections", ()) or ()))
        n_parts = n_leaders = n_under = 0
        hws: dict[tuple[str, int], int] = {}
        for (topic, index), part in _partitions(self.broker):
            n_parts += 1
            labels = [topic, str(index)]
            plog = getattr(part, "log", None)
            if plog is not None:
                _add(size, labels, lambda plog=plog: plog.size_bytes)
                _add(start, labels, lambda plog=plog: plog.start_offset)
                _add(end, labels, lambda plog=plog: plog.end_offset)
            if _is_leader(part, node_id):
                n_leaders += 1
                try:
                    mark = getattr(part, "high_watermark", None)
                except Exception:  # noqa: BLE001 - its log closed under the scrape
                    mark = None
                if mark is not None:
                    hws[(topic, index)] = mark
                    hw.add_metric(labels, mark)
                replicas = _sized(part, "replicas", "assigned_replicas")
                isr = _sized(part, "isr", "in_sync_replicas")
                if replicas is not None and isr is not None and isr < replicas:
                    n_under += 1
        partitions.add_metric([], n_parts)
        leaders.add_metric([], n_leaders)
        under.add_metric([], n_under)
        return [
            connections,
            partitions,
            leaders,
            under,
            size,
            start,
            end,
            hw,
            *self._group_families(hws),
        ]

    def _group_families(self, hws: dict[tuple[str, int], int]) -> list[Any]:
        lag = GaugeMetricFamily(
            "fastlog_consumer_group_lag",
            "High watermark minus the group's committed offset (partitions this broker leads).",
            labels=["group", "topic", "partition"],
        )
        members = GaugeMetricFamily(
            "fastlog_consumer_group_members", "Members of a consumer group.", labels=["group"]
        )
        coordinator = getattr(self.broker, "group_coordinator", None)
        groups = getattr(coordinator, "groups", None)
        if isinstance(groups, dict):
            for group_id, group in list(groups.items()):
                members.add_metric([group_id], len(getattr(group, "members", ()) or ()))
                for (topic, index), committed in list(getattr(group, "offsets", {}).items()):
                    mark = hws.get((topic, index))
                    offset = getattr(committed, "offset", committed)
                    if mark is not None and isinstance(offset, int) and offset >= 0:
                        lag.add_metric([group_id, topic, str(index)], max(0, mark - offset))
        return [lag, members]


def _add(family: GaugeMetricFamily, labels: list[str], read: Any) -> None:
    try:
        family.add_metric(labels, read())
    except Exception:  # noqa: BLE001 - a log closed or deleted under the scrape: skip it this time
        pass


def _sized(part: Any, *names: str) -> int | None:
    for name in names:
        value = getattr(part, name, None)
        if value is not None:
            return len(value)
    return None


def _is_leader(part: Any, node_id: Any) -> bool:
    flag = getattr(part, "is_leader", None)
    if flag is not None:
        return bool(flag() if callable(flag) else flag)
    leader = getattr(part, "leader_id", getattr(part, "leader", None))
    return leader is None or leader == node_id


def _partitions(broker: Any) -> list[tuple[tuple[str, int], Any]]:
    """(topic, index) -> Partition pairs of the broker's ReplicaManager."""
    rm = getattr(broker, "replica_manager", None)
    if rm is None:
        return []
    table = getattr(rm, "partitions", None)
    if callable(table):
        table = table()
    if isinstance(table, dict):
        out = []
        for key, part in list(table.items()):
            if isinstance(key, tuple):
                out.append(((key[0], int(key[1])), part))
            else:
                out.append(((part.topic, int(part.partition)), part))
        return out
    if table is not None:
        return [((p.topic, int(p.partition)), p) for p in list(table)]
    return []
