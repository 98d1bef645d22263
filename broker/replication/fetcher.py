"""ReplicaFetcherManager and ReplicaFetcher: followers copying their leaders' logs.

One ReplicaFetcher task per leader broker fetches every partition this broker follows
from it, over one connection to the leader's registered listener:

1. truncation (KIP-101): a partition that just became a follower asks the leader
   OffsetForLeaderEpoch (v4, replica_id = our node id) for the end of its latest local
   epoch and truncates its log, leader-epoch cache and producer state there, never by
   high watermark;
2. fetching: Fetch v12 with replica_id = our node id from the log end offset; the batches
   are appended as the leader wrote them (``Log.append_batches(assign_offsets=False)``),
   their epochs go to the leader-epoch cache, their producer ids and sequences to the
   producer state (so an idempotent producer is deduplicated by a new leader too), and
   the high watermark is the leader's, capped by the local log end offset.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import logging
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from broker.protocol import decode_response, encode_request
from broker.replication.state import PartitionReplication, follower_truncation_offset
from fastlog.errors import FastlogError

if TYPE_CHECKING:
    from broker.replication.manager import ReplicationManager

log = logging.getLogger(__name__)

FETCH_VERSION = 12
OFFSET_FOR_LEADER_EPOCH_VERSION = 4
OFFSET_OUT_OF_RANGE = 1
_I32 = struct.Struct(">i")
RETRY_ERRORS_BACKOFF_S = 0.5


class LeaderConnection:
    """One request at a time over a plain Kafka connection to the leader."""

    def __init__(self, host: str, port: int, client_id: str) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ids = itertools.count(1)

    async def request(self, req: Any, timeout: float) -> Any:
        if self._writer is None:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), timeout
            )
        assert self._reader is not None
        corr = next(self._ids) & 0x7FFFFFFF
        self._writer.write(encode_request(req, corr, self.client_id))
        await self._writer.drain()
        size = _I32.unpack(await asyncio.wait_for(self._reader.readexactly(4), timeout))[0]
        frame = await asyncio.wait_for(self._reader.readexactly(size), timeout)
        got, resp = decode_response(frame, type(req).__api_key__, type(req).__version__)
        if got != corr:
            raise ConnectionError(f"correlation id {got} answers request {corr}")
        return resp

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


@dataclass(slots=True)
class FetchState:
    partition: Any
    needs_truncation: bool = True
    delayed_until: float = 0.0


class ReplicaFetcher:
    """Fetches the partitions this broker follows from one leader."""

    def __init__(self, manager: ReplicaFetcherManager, leader_id: int) -> None:
        self.manager = manager
        self.leader_id = leader_id
        self.node_id = manager.node_id
        self.partitions: dict[tuple[str, int], FetchState] = {}
        self.conn: LeaderConnection | None = None
        self.changed = asyncio.Event()
        self.task: asyncio.Task[None] = asyncio.get_running_loop().create_task(self.run())

    def add(self, p: Any) -> None:
        self.partitions[(p.topic, p.index)] = FetchState(p)
        self.changed.set()

    def remove(self, key: tuple[str, int]) -> None:
        self.partitions.pop(key, None)

    def reconnect(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close(self) -> None:
        self.task.cancel()
        self.reconnect()

    # -- main loop -----------------------------------------------------------------------
    async def run(self) -> None:
        backoff = self.manager.backoff_s
        while True:
            try:
                if not self.partitions:
                    self.changed.clear()
                    await self.changed.wait()
                    continue
                if self.conn is None:
                    info = self.manager.metadata.broker(self.leader_id)
                    if info is None:
                        await asyncio.sleep(backoff)
                        continue
                    self.conn = LeaderConnection(
                        info.host, info.port, f"fastlog-replica-{self.node_id}"
                    )
                await self._truncate()
                await self._fetch()
            except asyncio.CancelledError:
                raise
            except (
                OSError,
                EOFError,
                TimeoutError,
                ConnectionError,
                asyncio.IncompleteReadError,
            ) as exc:
                log.info("fetcher of leader %d: %s; reconnecting", self.leader_id, exc)
                self.reconnect()
                await asyncio.sleep(backoff)
            except Exception:
                log.exception("fetcher of leader %d failed; retrying", self.leader_id)
                self.reconnect()
                await asyncio.sleep(backoff)

    def _ready(self, loop_time: float) -> list[FetchState]:
        return [s for s in self.partitions.values() if s.delayed_until <= loop_time]

    async def _truncate(self) -> None:
        from kio.schema.offset_for_leader_epoch.v4.request import (
            OffsetForLeaderEpochRequest,
            OffsetForLeaderPartition,
            OffsetForLeaderTopic,
        )

        loop = asyncio.get_running_loop()
        todo = [s for s in self._ready(loop.time()) if s.needs_truncation]
        if not todo:
            return
        by_topic: dict[str, list[FetchState]] = {}
        requested: dict[tuple[str, int], int] = {}
        for s in todo:
            p = s.partition
            r: PartitionReplication = p.replication
            epoch = r.cache.latest_epoch
            if epoch < 0:
                s.needs_truncation = False  # nothing with an epoch here: fetch from our end
                continue
            requested[(p.topic, p.index)] = epoch
            by_topic.setdefault(p.topic, []).append(s)
        if not by_topic:
            return
        req = OffsetForLeaderEpochRequest(
            replica_id=self.node_id,
            topics=tuple(
                OffsetForLeaderTopic(
                    topic=t,
                    partitions=tuple(
                        OffsetForLeaderPartition(
                            partition=s.partition.index,
                            current_leader_epoch=s.partition.leader_epoch,
                            leader_epoch=requested[(t, s.partition.index)],
                        )
                        for s in states
                    ),
                )
                for t, states in by_topic.items()
            ),
        )
        resp = await self.conn.request(req, self.manager.request_timeout_s)  # type: ignore[union-attr]
        for t in resp.topics:
            for part in t.partitions:
                s = self.partitions.get((t.topic, part.partition))
                if s is None or not s.needs_truncation:
                    continue
                code = int(part.error_code.value)
                if code:
                    s.delayed_until = loop.time() + RETRY_ERRORS_BACKOFF_S
                    log.info(
                        "%s: OffsetForLeaderEpoch from leader %d: error %d; retrying",
                        s.partition,
                        self.leader_id,
                        code,
                    )
                    continue
                self._apply_truncation(
                    s, requested[(t.topic, part.partition)], part.leader_epoch, part.end_offset
                )

    def _apply_truncation(
        self, s: FetchState, requested: int, leader_epoch: int, end_offset: int
    ) -> None:
        p = s.partition
        r: PartitionReplication = p.replication
        leo = p.log.end_offset
        target = follower_truncation_offset(r.cache, leo, requested, leader_epoch, end_offset, r.hw)
        target = max(target, 0)
        if target < leo:
            log.warning(
                "%s: truncating %d record(s) from %d to %d (leader %d: epoch %d ends at %d)",
                p,
                leo - target,
                leo,
                target,
                self.leader_id,
                leader_epoch,
                end_offset,
            )
            truncate_partition(p, target)
        s.needs_truncation = False

    async def _fetch(self) -> None:
        from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic

        loop = asyncio.get_running_loop()
        ready = [s for s in self._ready(loop.time()) if not s.needs_truncation]
        if not ready:
            await asyncio.sleep(min(RETRY_ERRORS_BACKOFF_S, self.manager.backoff_s))
            return
        by_topic: dict[str, list[FetchState]] = {}
        for s in ready:
            by_topic.setdefault(s.partition.topic, []).append(s)
        m = self.manager
        req = FetchRequest(
            cluster_id=None,
            replica_id=self.node_id,
            max_wait=datetime.timedelta(milliseconds=m.fetch_wait_max_ms),
            min_bytes=1,
            max_bytes=m.fetch_response_max_bytes,
            isolation_level=0,
            session_id=0,
            session_epoch=-1,
            topics=tuple(
                FetchTopic(
                    topic=t,
                    partitions=tuple(
                        FetchPartition(
                            partition=s.partition.index,
                            current_leader_epoch=s.partition.leader_epoch,
                            fetch_offset=s.partition.log.end_offset,
                            last_fetched_epoch=-1,
                            log_start_offset=s.partition.log.start_offset,
                            partition_max_bytes=m.fetch_max_bytes,
                        )
                        for s in states
                    ),
                )
                for t, states in by_topic.items()
            ),
            forgotten_topics_data=(),
            rack_id="",
        )
        sent = {(s.partition.topic, s.partition.index): s.partition.log.end_offset for s in ready}
        timeout = m.request_timeout_s + m.fetch_wait_max_ms / 1000
        resp = await self.conn.request(req, timeout)  # type: ignore[union-attr]
        if int(resp.error_code.value):
            log.info("fetch from leader %d: error %d", self.leader_id, resp.error_code.value)
            await asyncio.sleep(RETRY_ERRORS_BACKOFF_S)
            return
        for t in resp.responses:
            for pd in t.partitions:
                key = (t.topic, pd.partition_index)
                s = self.partitions.get(key)
                if s is None or s.needs_truncation:
                    continue
                p = s.partition
                if p.log.end_offset != sent.get(key):
                    continue  # truncated or re-added meanwhile
                code = int(pd.error_code.value)
                if code == OFFSET_OUT_OF_RANGE:
                    self._out_of_range(s, pd)
                    continue
                if code:
                    s.delayed_until = loop.time() + RETRY_ERRORS_BACKOFF_S
                    log.debug("%s: fetch error %d from leader %d", p, code, self.leader_id)
                    continue
                try:
                    self._append(p, pd)
                except OSError as exc:
                    # disk full, I/O error: the log dir goes offline, no retrying into it
                    from broker.log_dirs import log_dir_failed

                    log.warning("%s: cannot append from leader %d: %s", p, self.leader_id, exc)
                    log_dir_failed(self.manager.replication.broker.replica_manager, exc, p)
                except FastlogError as exc:
                    # e.g. batches that do not follow our end: find the divergence again
                    log.warning("%s: cannot append from leader %d: %s", p, self.leader_id, exc)
                    s.needs_truncation = True
                    s.delayed_until = loop.time() + RETRY_ERRORS_BACKOFF_S

    def _append(self, p: Any, pd: Any) -> None:
        from fastlog import _core

        r: PartitionReplication = p.replication
        records = pd.records
        if records:
            buf = bytearray(records)
            batches = _core.scan_batches(buf, validate_crc=False, stop_at_corruption=True)
            leo = p.log.end_offset
            # whole batches only (a response may end in a partial one), none we already have
            batches = [b for b in batches if b.base_offset + b.last_offset_delta >= leo]
            if batches:
                if batches[0].base_offset < leo:
                    # our log ends inside the leader's batch: take the leader's whole batch
                    truncate_partition(p, batches[0].base_offset)
                start = batches[0].position
                end = batches[-1].position + batches[-1].size
                data = bytearray(buf[start:end])
                info = p.log.append_batches(data, assign_offsets=False)
                r.cache.assign_batches(info.batches)
                p.producer_state.update_from_batches(info.batches)
                p.producer_state.map_end_offset = p.log.end_offset
        if pd.log_start_offset > p.log.start_offset:
            try:
                p.log.delete_before(min(pd.log_start_offset, p.log.end_offset))
                r.cache.truncate_from_start(p.log.start_offset)
            except Exception as exc:  # noqa: BLE001 - retention catches up later
                log.debug("%s: cannot follow the leader's log start: %s", p, exc)
        r.set_follower_high_watermark(pd.high_watermark)
        p.notify_append()

    def _out_of_range(self, s: FetchState, pd: Any) -> None:
        p = s.partition
        leader_start = int(pd.log_start_offset)
        leo = p.log.end_offset
        if leader_start > leo:
            # The leader no longer has what follows our end (retention): start over there.
            log.warning(
                "%s: leader %d starts at %d, past our end %d: resetting the log",
                p,
                self.leader_id,
                leader_start,
                leo,
            )
            reset_partition(p, leader_start)
        else:
            s.needs_truncation = True  # our end is past the leader's: truncate by epoch


def truncate_partition(p: Any, offset: int) -> None:
    """Truncate a follower's log, its leader-epoch cache, HW and producer state."""
    p.log.truncate_to(offset)
    r: PartitionReplication = p.replication
    r.cache.truncate_from_end(offset)
    r.hw = min(r.hw, offset)
    p.producer_state.truncate_and_reload(p.log.start_offset, p.log.end_offset, p.read_batches)


def reset_partition(p: Any, start: int) -> None:
    """Empty a follower's log so that it starts at ``start`` (beyond its end)."""
    p.log.truncate_fully_and_start_at(start)
    r: PartitionReplication = p.replication
    r.cache.clear()
    r.hw = start
    p.producer_state.truncate_and_reload(p.log.start_offset, p.log.end_offset, p.read_batches)


class ReplicaFetcherManager:
    """One ReplicaFetcher per leader broker; partitions move between them as leaders
    change."""

    def __init__(self, replication: ReplicationManager) -> None:
        self.replication = replication
        broker = replication.broker
        self.node_id = broker.node_id
        self.metadata = broker.metadata
        from broker.replication.manager import _config

        self.backoff_s = int(_config(broker, "replica.fetch.backoff.ms", 1000)) / 1000
        self.fetch_wait_max_ms = int(_config(broker, "replica.fetch.wait.max.ms", 500))
        self.fetch_max_bytes = int(_config(broker, "replica.fetch.max.bytes", 1048576))
        self.fetch_response_max_bytes = int(
            _config(broker, "replica.fetch.response.max.bytes", 10485760)
        )
        self.request_timeout_s = int(_config(broker, "replica.socket.timeout.ms", 30000)) / 1000
        self.fetchers: dict[int, ReplicaFetcher] = {}

    def add_partition(self, p: Any, leader_id: int) -> None:
        f = self.fetchers.get(leader_id)
        if f is None:
            f = self.fetchers[leader_id] = ReplicaFetcher(self, leader_id)
        f.add(p)

    def remove_partition(self, topic: str, index: int) -> None:
        for f in self.fetchers.values():
            f.remove((topic, index))

    def brokers_changed(self) -> None:
        live = {b.node_id for b in self.metadata.brokers()}
        for leader_id, f in self.fetchers.items():
            if leader_id not in live:
                f.reconnect()

    def close(self) -> None:
        for f in self.fetchers.values():
            f.close()
        self.fetchers.clear()
