"""The Broker object and its lifecycle: start, serve, shut down cleanly.

The Broker ties the pieces together: configuration, the metadata store, the
ReplicaManager (partitions and their logs), the handler registry, the listener, the
group coordinator hook, and the periodic log maintenance (retention, compaction, producer
state snapshots). Handlers reach everything through ``ctx.broker``; the attributes they
use are listed in docs/internals.md ("Broker object").
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from broker import handlers as handler_registry
from broker import log_dirs
from broker.config import BrokerConfig
from broker.log_dirs import CLEAN_SHUTDOWN_FILE, LOCK_FILE, LogDir, LogDirError  # noqa: F401
from broker.metadata import BrokerInfo, EmbeddedMetadataStore, MetadataStore, TopicInfo
from broker.network import KafkaServer
from broker.protocol import RequestHeader
from broker.replica import ReplicaManager

log = logging.getLogger(__name__)


class BrokerError(Exception):
    """The broker cannot start (data dir locked, bad metadata...)."""


class Broker:
    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.node_id: int = config.node_id
        try:
            # log.dirs (JBOD): every entry is used; the first also holds the embedded metadata.
            self.log_dirs: list[LogDir] = [LogDir(p) for p in log_dirs.configured_paths(config)]
        except LogDirError as exc:
            raise BrokerError(str(exc)) from None
        self.data_dir: Path = self.log_dirs[0].path
        listener = config.listener
        self.host, self.port = listener.host, listener.port
        adv = config.advertised_listener
        self.advertised_host: str = adv.host
        self.advertised_port: int = adv.port
        self._advertise_bound_port = adv.port == 0 or (
            not config.get("advertised.listeners") and listener.port == 0
        )
        self.metadata: MetadataStore = self._make_metadata_store()
        self.cluster_id: str = self.metadata.cluster_id
        self.replica_manager = ReplicaManager(self)
        self.handlers: dict[int, ModuleType] = handler_registry.discover()
        self.group_coordinator: Any = None
        self.transaction_coordinator: Any = None
        self.metrics: Any = None  # broker.metrics.BrokerMetrics when metrics.port is set
        self.producer_id_manager: Any = None
        # Called with (ctx, seconds) after each request is handled (metrics hook).
        self.request_observers: list[Callable[[Any, float], None]] = []
        self.server: KafkaServer | None = None
        self.started_at = time.time()
        self.clean_start = False
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def _make_metadata_store(self) -> MetadataStore:
        kind = self.config.get("metadata.store")
        connect = self.config.get("zookeeper.connect")
        if connect:
            # Cluster mode (issue 5): imported here so kazoo is needed only in a cluster.
            from broker.metadata import MetadataError
            from broker.metadata.zookeeper import ZooKeeperMetadataStore

            try:
                return ZooKeeperMetadataStore(
                    connect,
                    self.node_id,
                    session_timeout_ms=int(self.config.get("zookeeper.session.timeout.ms")),
                    connection_timeout_ms=self.config.get("zookeeper.connection.timeout.ms"),
                    cluster_id=self.config.get("cluster.id"),
                    broker_config=self.config,
                )
            except MetadataError as exc:
                raise BrokerError(str(exc)) from None
        if kind != "embedded":
            raise BrokerError(f"metadata.store={kind!r} is not available (only 'embedded')")
        try:
            return EmbeddedMetadataStore(
                self.data_dir, node_id=self.node_id, cluster_id=self.config.get("cluster.id")
            )
        except OSError as exc:
            # Single-node mode keeps the topics in the first log dir: without it nothing is
            # known (as a KRaft broker without its metadata.log.dir).
            raise BrokerError(
                f"the first log dir {self.data_dir} holds the cluster metadata and cannot be "
                f"used: {exc}"
            ) from None

    # -- handler helpers ----------------------------------------------------------------
    def api_version_ranges(self) -> list[tuple[int, int, int]]:
        """(api_key, min, max) of every registered handler, as ApiVersions advertises."""
        return sorted((k, m.MIN_VERSION, m.MAX_VERSION) for k, m in self.handlers.items())

    def unsupported_api_versions_response(self, header: RequestHeader) -> bytes:
        from broker.handlers.api_versions import unsupported_version_response

        return unsupported_version_response(self, header.correlation_id)

    def observe_request(self, ctx: Any, seconds: float) -> None:
        for observer in self.request_observers:
            try:
                observer(ctx, seconds)
            except Exception:  # noqa: BLE001 - a metrics bug must not break serving
                log.exception("request observer failed")

    # -- topics -------------------------------------------------------------------------
    def create_topic(
        self,
        name: str,
        partitions: int = -1,
        replication_factor: int = -1,
        configs: Mapping[str, str | None] | None = None,
        *,
        validate_only: bool = False,
    ) -> TopicInfo:
        """Create a topic with broker defaults for -1 partitions / replication factor.
        Raises broker.metadata errors or broker.topic_config.InvalidConfig."""
        from broker import topic_config

        if partitions == -1:
            partitions = int(self.config.get("num.partitions"))
        if replication_factor == -1:
            replication_factor = int(self.config.get("default.replication.factor"))
        normalized = topic_config.normalize(dict(configs or {}))
        return self.metadata.create_topic(
            name, partitions, replication_factor, normalized, validate_only=validate_only
        )

    def auto_create_topic(self, name: str) -> TopicInfo | None:
        """Create ``name`` with the defaults if auto.create.topics.enable; None otherwise.
        Raises InvalidTopicError for an illegal name."""
        from broker.metadata import TopicAlreadyExistsError

        if not self.config.get("auto.create.topics.enable"):
            return None
        try:
            return self.create_topic(name)
        except TopicAlreadyExistsError:
            return self.metadata.topic(name)

    # -- lifecycle ------------------------------------------------------------------------
    def _prepare_log_dirs(self) -> None:
        """Lock every log dir, check their meta.properties, take the clean-shutdown markers
        (broker/log_dirs.py); BrokerError when one cannot be used."""
        try:
            # a directory failing with an I/O error goes offline, the others are used
            log_dirs.open_log_dirs(self.log_dirs, self.cluster_id, self.node_id)
        except LogDirError as exc:
            raise BrokerError(str(exc)) from None
        self.clean_start = log_dirs.take_clean_shutdown_markers(self.log_dirs)

    async def start(self) -> None:
        self._prepare_log_dirs()
        try:
            self.replica_manager.start(clean_shutdown=self.clean_start)
        except LogDirError as exc:
            raise BrokerError(str(exc)) from None
        self.server = KafkaServer(self, self.host, self.port)
        await self.server.start()
        if self._advertise_bound_port:
            self.advertised_port = self.server.port
        self.port = self.server.port
        self.metadata.register_broker(
            BrokerInfo(
                self.node_id,
                self.advertised_host,
                self.advertised_port,
                self.config.get("broker.rack"),
            )
        )
        log_dirs.started(self.replica_manager)
        await self._start_coordinator()
        from broker.reassignment import install as install_reassignment

        install_reassignment(self)  # reassignment, elections, logs of moved-away replicas
        self._start_metrics()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._maintenance_loop()))

    def _start_metrics(self) -> None:
        try:
            from broker import metrics
        except ImportError:
            return
        self.metrics = metrics.start_from_config(self, self.config, default_host=self.host)
        if self.metrics is not None:
            self.request_observers.append(self.metrics.observe_request)

    async def _start_coordinator(self) -> None:
        """Hook for broker/coordinator: GroupCoordinator(broker) with start()/stop().

        A coordinator that fails to import or start is logged loudly and left out: the
        data path (produce, fetch) keeps working; group APIs answer
        COORDINATOR_NOT_AVAILABLE from their handlers when group_coordinator is None.
        """
        try:
            from broker.coordinator import GroupCoordinator  # type: ignore[attr-defined]
        except ImportError as exc:
            if exc.name and exc.name.startswith("broker.coordinator"):
                log.info("no group coordinator available (broker.coordinator not importable)")
                return
            log.exception("group coordinator unavailable")
            return
        except Exception:
            log.exception("group coordinator unavailable")
            return
        coordinator = GroupCoordinator(self)
        start = getattr(coordinator, "start", None)
        try:
            if start is not None:
                result = start()
                if asyncio.iscoroutine(result):
                    await result
        except Exception:
            log.exception("group coordinator failed to start; consumer groups unavailable")
            return
        self.group_coordinator = coordinator

    async def _maintenance_loop(self) -> None:
        """Retention, compaction and producer-state snapshots, off the request path."""
        retention_every = int(self.config.get("log.retention.check.interval.ms")) / 1000
        cleaner_every = int(self.config.get("log.cleaner.backoff.ms")) / 1000
        snapshot_every = 30.0
        now = time.monotonic()
        next_retention = now + min(retention_every, 30.0)
        next_clean = now + cleaner_every
        next_snapshot = now + snapshot_every
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            try:
                if now >= next_retention:
                    next_retention = now + retention_every
                    await self.replica_manager.enforce_retention()
                if now >= next_clean and self.config.get("log.cleaner.enable"):
                    next_clean = now + cleaner_every
                    await self.replica_manager.maybe_compact()
                if now >= next_snapshot:
                    next_snapshot = now + snapshot_every
                    self.replica_manager.take_producer_snapshots()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("log maintenance failed; retrying later")

    async def stop(self) -> None:
        """Clean shutdown: stop accepting, finish, flush and close logs, leave the marker."""
        if self._stopping:
            return
        self._stopping = True
        if self.config.get("controlled.shutdown.enable"):
            # Cluster mode: leadership moves to other brokers while this one still answers
            # (clients get NOT_LEADER_OR_FOLLOWER and go to the new leader).
            try:
                await asyncio.get_running_loop().run_in_executor(
                    None, self.metadata.controlled_shutdown
                )
            except Exception:
                log.exception("controlled shutdown failed")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.replica_manager.quiesce()
        if self.server is not None:
            await self.server.stop()
        if self.group_coordinator is not None:
            stop = getattr(self.group_coordinator, "stop", None)
            if stop is not None:
                try:
                    result = stop()
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    log.exception("group coordinator stop failed")
        if self.metrics is not None:
            try:
                self.metrics.stop_http()
            except Exception:
                log.exception("metrics stop failed")
        clean = self.replica_manager.close()
        self.metadata.close()
        if clean:
            log_dirs.leave_clean_shutdown_markers(self.log_dirs)
        for d in self.log_dirs:
            d.unlock()

    def ready_line(self) -> str:
        return (
            f"fastlog broker {self.node_id} ready: listener PLAINTEXT://{self.host or '0.0.0.0'}:"
            f"{self.port} (advertised {self.advertised_host}:{self.advertised_port}), "
            f"data dir {', '.join(str(d.path) for d in self.log_dirs)}, cluster {self.cluster_id}"
        )


async def serve(config: BrokerConfig, ready: Callable[[Broker], None] | None = None) -> None:
    """Run a broker until SIGTERM or SIGINT."""
    broker = Broker(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await broker.start()
    except BaseException:
        await broker.stop()
        raise
    if ready is not None:
        ready(broker)
    else:
        print(broker.ready_line(), flush=True)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await broker.stop()
        print("fastlog broker stopped", file=sys.stderr, flush=True)


def run(config: BrokerConfig) -> None:
    import uvloop

    from broker.network import tune_allocator

    tune_allocator()
    uvloop.run(serve(config))
