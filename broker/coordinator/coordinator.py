"""GroupCoordinator: Kafka's classic consumer group protocol and committed offsets.

Owns every group whose ``__consumer_offsets`` partition this broker leads: the state machine
(Empty -> PreparingRebalance -> CompletingRebalance -> Stable, and Dead), member sessions,
KIP-394 member ids, static membership (KIP-345), generation fencing, and the offsets cache
that mirrors ``__consumer_offsets`` (records.py formats), loaded at start and expired by
offsets.retention.minutes. As in Kafka, ``__consumer_offsets`` is created by the first
FindCoordinator or group request (``ensure_offsets_topic``) with exactly
offsets.topic.replication.factor replicas, never at start with fewer.

Time comes from an injectable clock and every deadline (session timeout, rebalance timeout,
initial rebalance delay, pending member, retention) is checked by ``tick()``; the broker runs
``tick()`` every ``tick_interval`` seconds, unit tests call it after moving the clock. Requests
that must wait (JoinGroup, SyncGroup) await a future the state machine completes.

All state changes happen on the event loop thread without awaiting in between, except around
writes to ``__consumer_offsets``; after such a write the code re-checks that the group is still
in the generation it was writing for, as Kafka does in its store callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kio.schema.errors import ErrorCode

from broker.coordinator import records as rec
from broker.coordinator.group import (
    CommittedOffset,
    GroupMetadata,
    GroupState,
    MemberMetadata,
    member_summary,
)
from broker.coordinator.store import OFFSETS_TOPIC, OffsetsStore, StoreError

log = logging.getLogger("fastlog.coordinator")

# Kafka's defaults for the group coordinator settings (server.properties names).
DEFAULTS: dict[str, int] = {
    "group.min.session.timeout.ms": 6000,
    "group.max.session.timeout.ms": 1800000,
    "group.initial.rebalance.delay.ms": 3000,
    "group.max.size": 2**31 - 1,
    "offsets.topic.num.partitions": 50,
    "offsets.topic.replication.factor": 3,
    "offsets.topic.segment.bytes": 104857600,
    "offsets.retention.minutes": 10080,
    "offsets.retention.check.interval.ms": 600000,
    "offset.metadata.max.bytes": 4096,
}

E = ErrorCode

MAX_STRING_BYTES = 0x7FFF  # strings in __consumer_offsets records carry an int16 length
MAX_CLIENT_ID_PREFIX = 1024


@dataclass(slots=True)
class JoinResult:
    error: ErrorCode
    member_id: str
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    members: list[tuple[str, str | None, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class SyncResult:
    error: ErrorCode
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


@dataclass(slots=True)
class GroupDescription:
    error: ErrorCode
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    members: list[dict[str, Any]]


def _config_value(broker: Any, overrides: Mapping[str, Any] | None, name: str) -> int:
    if overrides and name in overrides:
        return int(overrides[name])
    cfg = getattr(broker, "config", None)
    if cfg is not None:
        try:
            v = cfg.get(name)
        except Exception:  # an unknown key: Kafka's default applies
            v = None
        if v is not None:
            return int(v)
    return DEFAULTS[name]


class GroupCoordinator:
    """Consumer groups and committed offsets; see module docstring."""

    def __init__(
        self,
        broker: Any = None,
        *,
        store: OffsetsStore | None = None,
        time_ms: Callable[[], int] | None = None,
        config: Mapping[str, Any] | None = None,
        tick_interval: float = 0.1,
    ) -> None:
        self.broker = broker
        self.time_ms = time_ms or (lambda: int(time.time() * 1000))
        cfg = {name: _config_value(broker, config, name) for name in DEFAULTS}
        self.min_session_timeout_ms = cfg["group.min.session.timeout.ms"]
        self.max_session_timeout_ms = cfg["group.max.session.timeout.ms"]
        self.initial_rebalance_delay_ms = cfg["group.initial.rebalance.delay.ms"]
        self.max_group_size = cfg["group.max.size"]
        self.num_partitions = cfg["offsets.topic.num.partitions"]
        self.retention_ms = cfg["offsets.retention.minutes"] * 60_000
        self.retention_check_interval_ms = cfg["offsets.retention.check.interval.ms"]
        self.max_metadata_bytes = cfg["offset.metadata.max.bytes"]
        if store is None:
            from broker.coordinator.store import BrokerOffsetsStore

            store = BrokerOffsetsStore(
                broker,
                num_partitions=self.num_partitions,
                replication_factor=cfg["offsets.topic.replication.factor"],
                segment_bytes=cfg["offsets.topic.segment.bytes"],
            )
        self.store = store
        self.tick_interval = tick_interval
        self.groups: dict[str, GroupMetadata] = {}
        self.loaded: set[int] = set()  # __consumer_offsets partitions whose groups we serve
        self.loading: set[int] = set()
        self._tick_task: asyncio.Task | None = None
        self._next_retention_check_ms = 0
        self._next_reconcile_ms = 0
        self._running = False

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Open __consumer_offsets if it exists, load the groups of every local partition,
        start timers. A missing topic is created by the first group request."""
        await self.store.open()
        self.num_partitions = getattr(self.store, "num_partitions", self.num_partitions)
        for p in range(self.num_partitions):
            if self.store.is_local(p):
                await self.load_partition(p)
        md = getattr(self.broker, "metadata", None)
        if md is not None and hasattr(md, "add_listener"):
            md.add_listener(_TopicListener(self))
        self._running = True
        self._next_retention_check_ms = self.time_ms() + self.retention_check_interval_ms
        self._tick_task = asyncio.get_running_loop().create_task(self._tick_loop())

    async def stop(self) -> None:
        self._running = False
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._tick_task
            self._tick_task = None
        # Parked requests get NOT_COORDINATOR, so clients look the coordinator up again.
        for group in self.groups.values():
            for m in group.members.values():
                self._complete_join(m, JoinResult(E.not_coordinator, m.member_id))
                self._complete_sync(m, SyncResult(E.not_coordinator))
        self.groups.clear()
        self.loaded.clear()
        await self.store.close()

    async def _tick_loop(self) -> None:
        while self._running:
            await asyncio.sleep(self.tick_interval)
            try:
                self.tick()
            except Exception:  # a bug in one check must not stop session expiry for all groups
                log.exception("group coordinator tick failed")

    async def load_partition(self, partition: int) -> None:
        """Become coordinator for the groups of one __consumer_offsets partition (replay it)."""
        self._load_partition_now(partition)

    def _load_partition_now(self, partition: int) -> None:
        self.loading.add(partition)
        try:
            offsets: dict[str, dict[tuple[str, int], CommittedOffset]] = {}
            metas: dict[str, rec.GroupValue] = {}
            for key, value in self.store.read_all(partition):
                try:
                    k = rec.decode_key(key)
                    if isinstance(k, rec.OffsetKey):
                        tp = (k.topic, k.partition)
                        if value is None:
                            offsets.get(k.group, {}).pop(tp, None)
                        else:
                            v = rec.decode_offset_value(value)
                            offsets.setdefault(k.group, {})[tp] = CommittedOffset(
                                v.offset,
                                v.leader_epoch,
                                v.metadata,
                                v.commit_timestamp,
                                v.expire_timestamp,
                            )
                    elif value is None:
                        metas.pop(k.group, None)
                    else:
                        metas[k.group] = rec.decode_group_value(value)
                except rec.RecordFormatError as exc:
                    log.warning(
                        "skipping undecodable __consumer_offsets-%d record: %s", partition, exc
                    )
            now = self.time_ms()
            for gid in set(offsets) | set(metas):
                if rec.partition_for(gid, self.num_partitions) != partition:
                    continue
                group = self._group_from_records(gid, metas.get(gid), offsets.get(gid, {}), now)
                if group is not None:
                    self.groups[gid] = group
            self.loaded.add(partition)
        finally:
            self.loading.discard(partition)

    def unload_partition(self, partition: int) -> None:
        """Stop coordinating the groups of a partition (leadership moved elsewhere)."""
        self.loaded.discard(partition)
        for gid in [g for g in self.groups if self._partition(g) == partition]:
            group = self.groups.pop(gid)
            for m in group.members.values():
                self._complete_join(m, JoinResult(E.not_coordinator, m.member_id))
                self._complete_sync(m, SyncResult(E.not_coordinator))

    def _group_from_records(
        self,
        gid: str,
        meta: rec.GroupValue | None,
        offsets: dict[tuple[str, int], CommittedOffset],
        now: int,
    ) -> GroupMetadata | None:
        if meta is None and not offsets:
            return None
        group = GroupMetadata(gid, offsets=offsets)
        if meta is None:
            return group
        group.protocol_type = meta.protocol_type or None
        group.generation_id = meta.generation
        group.protocol_name = meta.protocol
        group.leader_id = meta.leader
        group.current_state_timestamp = meta.current_state_timestamp
        for mv in meta.members:
            m = MemberMetadata(
                member_id=mv.member_id,
                group_instance_id=mv.group_instance_id,
                client_id=mv.client_id,
                client_host=mv.client_host,
                rebalance_timeout_ms=mv.rebalance_timeout_ms,
                session_timeout_ms=mv.session_timeout_ms,
                protocol_type=meta.protocol_type,
                protocols=[(meta.protocol or "", mv.subscription)],
                assignment=mv.assignment,
                last_heartbeat_ms=now,  # members get a full session to find the restarted broker
            )
            group.members[m.member_id] = m
            if m.group_instance_id is not None:
                group.static_members[m.group_instance_id] = m.member_id
        # Kafka loads a group with members as Stable: they keep heartbeating across the restart.
        group.state = GroupState.STABLE if group.members else GroupState.EMPTY
        if group.current_state_timestamp < 0:
            group.current_state_timestamp = now
        return group

    def on_topic_deleted(self, topic: str) -> None:
        """As Kafka: the offsets of a deleted topic go, so a new topic of that name starts
        without them."""
        if not self._running:
            return
        now = self.time_ms()
        for group in list(self.groups.values()):
            gone = [tp for tp in group.offsets if tp[0] == topic]
            if not gone:
                continue
            for tp in gone:
                del group.offsets[tp]
            records: list[tuple[bytes, bytes | None]] = [
                (rec.encode_offset_key(group.group_id, t, p), None) for t, p in gone
            ]
            self._spawn(self._append_quietly(self._partition(group.group_id), records, now))

    def on_offsets_partition_changed(self, partition: int) -> None:
        """Load the groups of a partition that became local, drop those of one that left."""
        if not self._running or partition >= self.num_partitions:
            return
        local = self.store.is_local(partition)
        if local and partition not in self.loaded and partition not in self.loading:
            self._spawn(self.load_partition(partition))
        elif not local and partition in self.loaded:
            self.unload_partition(partition)

    async def _append_quietly(
        self, partition: int, records: list[tuple[bytes, bytes | None]], now: int
    ) -> None:
        try:
            await self.store.append(partition, records, now)
        except StoreError as exc:
            log.warning("writing to __consumer_offsets-%d failed: %s", partition, exc)

    # --- helpers -----------------------------------------------------------------------

    def _partition(self, group_id: str) -> int:
        return rec.partition_for(group_id, self.num_partitions)

    def coordinator_error(self, group_id: str | None) -> ErrorCode:
        """NONE if this broker coordinates group_id now, else the error to answer."""
        if group_id is None or group_id == "" or len(group_id.encode()) > MAX_STRING_BYTES:
            # Too long for the int16-length strings of __consumer_offsets keys.
            return E.invalid_group_id
        err = self.ensure_offsets_topic()
        if err != E.none:
            return err
        p = self._partition(group_id)
        if p in self.loading:
            return E.coordinator_load_in_progress
        if p not in self.loaded:
            return E.not_coordinator
        return E.none

    def ensure_offsets_topic(self) -> ErrorCode:
        """Create __consumer_offsets if it does not exist yet (Kafka does on the first
        FindCoordinator or group request); COORDINATOR_NOT_AVAILABLE while it cannot be
        created with offsets.topic.replication.factor replicas (too few live brokers)."""
        if self.store.exists():
            return E.none
        err = self.store.create()
        if err != E.none:
            return err
        self.on_offsets_topic_created()
        return E.none

    def on_offsets_topic_created(self) -> None:
        """Serve the groups of the new topic's partitions this broker leads. They are empty,
        so they load at once (the request that created the topic is answered from them)."""
        if not self._running:
            return
        self.store.refresh()
        self.num_partitions = getattr(self.store, "num_partitions", self.num_partitions)
        for p in range(self.num_partitions):
            if p not in self.loaded and p not in self.loading and self.store.is_local(p):
                self._load_partition_now(p)

    def partition_for(self, group_id: str) -> int:
        return self._partition(group_id)

    @staticmethod
    def _complete_join(m: MemberMetadata, result: JoinResult) -> None:
        if m.join_future is not None and not m.join_future.done():
            m.join_future.set_result(result)
        m.join_future = None

    @staticmethod
    def _complete_sync(m: MemberMetadata, result: SyncResult) -> None:
        if m.sync_future is not None and not m.sync_future.done():
            m.sync_future.set_result(result)
        m.sync_future = None

    def _new_future(self) -> asyncio.Future:
        return asyncio.get_running_loop().create_future()

    # --- JoinGroup ---------------------------------------------------------------------

    async def join_group(
        self,
        *,
        group_id: str,
        member_id: str,
        group_instance_id: str | None,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
        require_known_member_id: bool,
    ) -> JoinResult:
        err = self.coordinator_error(group_id)
        if err != E.none:
            return JoinResult(err, member_id)
        if not self.min_session_timeout_ms <= session_timeout_ms <= self.max_session_timeout_ms:
            return JoinResult(E.invalid_session_timeout, member_id)
        if any(
            len(x.encode()) > MAX_STRING_BYTES
            for x in (member_id, group_instance_id or "", client_host, protocol_type)
        ) or any(len(name.encode()) > MAX_STRING_BYTES for name, _ in protocols):
            return JoinResult(E.invalid_request, member_id)
        if rebalance_timeout_ms < 0:  # JoinGroup v0 has none: Kafka uses the session timeout
            rebalance_timeout_ms = session_timeout_ms
        is_unknown = member_id == ""
        group = self.groups.get(group_id)
        if group is None:
            if not is_unknown:
                return JoinResult(E.unknown_member_id, member_id)
            group = GroupMetadata(group_id, current_state_timestamp=self.time_ms())
            self.groups[group_id] = group
        if group.state == GroupState.DEAD:
            return JoinResult(E.coordinator_not_available, member_id)
        if not group.supports_protocols(protocol_type, [n for n, _ in protocols]):
            return JoinResult(E.inconsistent_group_protocol, member_id)
        args = dict(
            group_instance_id=group_instance_id,
            client_id=client_id,
            client_host=client_host,
            session_timeout_ms=session_timeout_ms,
            rebalance_timeout_ms=rebalance_timeout_ms,
            protocol_type=protocol_type,
            protocols=protocols,
        )
        if is_unknown:
            # The client id prefix is capped so a member id always fits a record string.
            new_id = f"{client_id[:MAX_CLIENT_ID_PREFIX]}-{uuid.uuid4()}"
            if group_instance_id is not None:
                old_id = group.static_members.get(group_instance_id)
                if old_id is not None and old_id in group.members:
                    return await self._replace_static_member(group, old_id, new_id, **args)
            elif require_known_member_id:
                if len(group.members) + len(group.pending_members) >= self.max_group_size:
                    return JoinResult(E.group_max_size_reached, "")
                # KIP-394: hand out the id first; the member comes back with it.
                group.pending_members[new_id] = self.time_ms() + session_timeout_ms
                return JoinResult(E.member_id_required, new_id)
            if len(group.members) >= self.max_group_size:
                return JoinResult(E.group_max_size_reached, "")
            return await self._add_member_and_rebalance(group, new_id, **args)

        if member_id in group.pending_members:
            if group.is_static_member_fenced(member_id, group_instance_id):
                return JoinResult(E.fenced_instance_id, member_id)
            return await self._add_member_and_rebalance(group, member_id, **args)
        if group.is_static_member_fenced(member_id, group_instance_id):
            return JoinResult(E.fenced_instance_id, member_id)
        m = group.members.get(member_id)
        if m is None:
            return JoinResult(E.unknown_member_id, member_id)
        if group.state == GroupState.PREPARING_REBALANCE:
            return await self._update_member_and_rebalance(group, m, **args)
        if group.state == GroupState.COMPLETING_REBALANCE:
            if m.matches(protocols):
                # A retried JoinGroup of this generation: answer as the join answered.
                m.last_heartbeat_ms = self.time_ms()
                return self._join_result(group, m)
            return await self._update_member_and_rebalance(group, m, **args)
        if group.state == GroupState.STABLE:
            if group.is_leader(member_id) or not m.matches(protocols):
                return await self._update_member_and_rebalance(group, m, **args)
            m.last_heartbeat_ms = self.time_ms()
            return self._join_result(group, m)
        return JoinResult(E.unknown_member_id, member_id)

    def _join_result(self, group: GroupMetadata, m: MemberMetadata) -> JoinResult:
        members = []
        if group.is_leader(m.member_id):
            members = [
                (x.member_id, x.group_instance_id, x.metadata_for(group.protocol_name))
                for x in group.members.values()
            ]
        return JoinResult(
            E.none,
            m.member_id,
            group.generation_id,
            group.protocol_type,
            group.protocol_name,
            group.leader_id or "",
            members,
        )

    async def _add_member_and_rebalance(
        self, group: GroupMetadata, member_id: str, **args: Any
    ) -> JoinResult:
        now = self.time_ms()
        m = MemberMetadata(member_id=member_id, last_heartbeat_ms=now, **args)
        m.join_future = fut = self._new_future()
        if group.is_empty():
            # The first member decides what kind of group this is (consumer, connect ...).
            group.protocol_type = m.protocol_type
        group.members[member_id] = m
        group.pending_members.pop(member_id, None)
        if m.group_instance_id is not None:
            group.static_members[m.group_instance_id] = member_id
        if group.leader_id is None or group.leader_id not in group.members:
            group.leader_id = member_id
        group.new_member_added = True
        self._prepare_rebalance(group, f"adding member {member_id}")
        self._maybe_complete_join(group)
        return await fut

    async def _update_member_and_rebalance(
        self, group: GroupMetadata, m: MemberMetadata, **args: Any
    ) -> JoinResult:
        # A duplicate JoinGroup replaces the parked one; the old request gets an answer that
        # makes a client rejoin, so no coroutine waits forever.
        self._complete_join(m, JoinResult(E.rebalance_in_progress, m.member_id))
        m.rebalance_timeout_ms = args["rebalance_timeout_ms"]
        m.session_timeout_ms = args["session_timeout_ms"]
        m.protocols = args["protocols"]
        m.client_id = args["client_id"]
        m.client_host = args["client_host"]
        m.last_heartbeat_ms = self.time_ms()
        m.join_future = fut = self._new_future()
        self._prepare_rebalance(group, f"member {m.member_id} rejoined")
        self._maybe_complete_join(group)
        return await fut

    async def _replace_static_member(
        self, group: GroupMetadata, old_id: str, new_id: str, **args: Any
    ) -> JoinResult:
        """A known group.instance.id joins with a fresh member id (KIP-345): the restarted
        process takes over the old member's place, in a Stable group without a rebalance."""
        m = group.members.pop(old_id)
        old_leader = group.leader_id
        # Whoever still holds the old id is a zombie of the same instance: fence it now.
        self._complete_join(m, JoinResult(E.fenced_instance_id, old_id))
        self._complete_sync(m, SyncResult(E.fenced_instance_id))
        old_state = (m.member_id, m.protocols, m.rebalance_timeout_ms, m.session_timeout_ms)
        m.member_id = new_id
        m.protocols = args["protocols"]
        m.rebalance_timeout_ms = args["rebalance_timeout_ms"]
        m.session_timeout_ms = args["session_timeout_ms"]
        m.client_id = args["client_id"]
        m.client_host = args["client_host"]
        m.last_heartbeat_ms = self.time_ms()
        group.members[new_id] = m
        group.static_members[args["group_instance_id"]] = new_id
        if group.leader_id == old_id:
            group.leader_id = new_id
        group.pending_sync.discard(old_id)

        if group.state == GroupState.STABLE:
            if group.protocol_name in group.candidate_protocols() and (
                group.select_protocol() == group.protocol_name
            ):
                generation = group.generation_id
                err = await self._store_group(group)
                if err != E.none:
                    # Undo: the old id stays the member, this join fails.
                    if group.members.get(new_id) is m:
                        del group.members[new_id]
                        m.member_id, m.protocols, m.rebalance_timeout_ms, m.session_timeout_ms = (
                            old_state
                        )
                        group.members[old_id] = m
                        group.static_members[args["group_instance_id"]] = old_id
                        if group.leader_id == new_id:
                            group.leader_id = old_id
                    return JoinResult(err, "")
                # The old leader id comes back so a restarted leader does not assign again:
                # a Stable group would not pass a new assignment on.
                return JoinResult(
                    E.none,
                    new_id,
                    generation,
                    group.protocol_type,
                    group.protocol_name,
                    old_leader or "",
                    [],
                )
            return await self._update_member_and_rebalance(group, m, **args)
        if group.state == GroupState.COMPLETING_REBALANCE:
            # The leader may have been sent the old id; only a new rebalance gives the new id
            # an assignment.
            return await self._update_member_and_rebalance(group, m, **args)
        # PreparingRebalance (Empty/Dead cannot hold members): wait for the join to complete.
        return await self._update_member_and_rebalance(group, m, **args)

    def _prepare_rebalance(self, group: GroupMetadata, reason: str) -> None:
        if group.state == GroupState.PREPARING_REBALANCE:
            return
        now = self.time_ms()
        if group.state == GroupState.COMPLETING_REBALANCE:
            # Assignments of the aborted generation are void; parked syncs must rejoin.
            for m in group.members.values():
                m.assignment = b""
                self._complete_sync(m, SyncResult(E.rebalance_in_progress))
        if group.state == GroupState.EMPTY and self.initial_rebalance_delay_ms > 0:
            # Kafka's InitialDelayedJoin: give more members the chance to arrive before the
            # first generation, extending by the delay while members keep coming.
            delay = min(self.initial_rebalance_delay_ms, group.max_rebalance_timeout_ms())
            group.initial_delay_until_ms = now + delay
            group.initial_delay_remaining_ms = max(group.max_rebalance_timeout_ms() - delay, 0)
            group.new_member_added = False
        else:
            group.initial_delay_until_ms = None
        group.rebalance_deadline_ms = now + group.max_rebalance_timeout_ms()
        group.pending_sync.clear()
        log.info(
            "group %s: preparing to rebalance (generation %d): %s",
            group.group_id,
            group.generation_id,
            reason,
        )
        group.transition(GroupState.PREPARING_REBALANCE, now)

    def _maybe_complete_join(self, group: GroupMetadata) -> None:
        if group.state != GroupState.PREPARING_REBALANCE:
            return
        if group.initial_delay_until_ms is not None:
            return  # tick() ends the initial delay
        if group.all_members_joined() or self.time_ms() >= group.rebalance_deadline_ms:
            self._complete_join_phase(group)

    def _complete_join_phase(self, group: GroupMetadata) -> None:
        now = self.time_ms()
        for m in [m for m in group.members.values() if not m.awaiting_join]:
            # Members that did not rejoin within the rebalance timeout leave the group.
            self._remove_member(group, m)
        group.generation_id += 1
        group.pending_sync.clear()
        if not group.members:
            group.protocol_name = None
            group.leader_id = None
            group.transition(GroupState.EMPTY, now)
            log.info("group %s: empty at generation %d", group.group_id, group.generation_id)
            self._spawn(self._store_group(group))
            return
        group.protocol_name = group.select_protocol()
        if group.leader_id not in group.members:
            group.leader_id = next(iter(group.members))
        group.transition(GroupState.COMPLETING_REBALANCE, now)
        group.sync_deadline_ms = now + group.max_rebalance_timeout_ms()
        group.pending_sync = set(group.members)
        log.info(
            "group %s: generation %d with %d members, protocol %s, leader %s",
            group.group_id,
            group.generation_id,
            len(group.members),
            group.protocol_name,
            group.leader_id,
        )
        for m in group.members.values():
            m.last_heartbeat_ms = now
            self._complete_join(m, self._join_result(group, m))

    def _remove_member(self, group: GroupMetadata, m: MemberMetadata) -> None:
        self._complete_join(m, JoinResult(E.unknown_member_id, m.member_id))
        self._complete_sync(m, SyncResult(E.unknown_member_id))
        group.members.pop(m.member_id, None)
        group.pending_sync.discard(m.member_id)
        if m.group_instance_id is not None and group.static_members.get(m.group_instance_id) == (
            m.member_id
        ):
            del group.static_members[m.group_instance_id]
        if group.leader_id == m.member_id:
            group.leader_id = next(iter(group.members), None)

    def _remove_member_and_update_group(
        self, group: GroupMetadata, m: MemberMetadata, reason: str
    ) -> None:
        self._remove_member(group, m)
        if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._prepare_rebalance(group, reason)
        self._maybe_complete_join(group)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    # --- SyncGroup ---------------------------------------------------------------------

    async def sync_group(
        self,
        *,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        protocol_type: str | None,
        protocol_name: str | None,
        assignments: Mapping[str, bytes],
    ) -> SyncResult:
        err = self.coordinator_error(group_id)
        if err != E.none:
            return SyncResult(err)
        group = self.groups.get(group_id)
        if group is None or group.state == GroupState.DEAD:
            return SyncResult(E.unknown_member_id)
        if group.is_static_member_fenced(member_id, group_instance_id):
            return SyncResult(E.fenced_instance_id)
        m = group.members.get(member_id)
        if m is None:
            return SyncResult(E.unknown_member_id)
        if generation_id != group.generation_id:
            return SyncResult(E.illegal_generation)
        if (protocol_type is not None and protocol_type != group.protocol_type) or (
            protocol_name is not None and protocol_name != group.protocol_name
        ):
            return SyncResult(E.inconsistent_group_protocol)
        if group.state == GroupState.PREPARING_REBALANCE:
            return SyncResult(E.rebalance_in_progress)
        m.last_heartbeat_ms = self.time_ms()
        if group.state == GroupState.STABLE:
            group.pending_sync.discard(member_id)
            return self._sync_result(group, m)
        if group.state != GroupState.COMPLETING_REBALANCE:
            return SyncResult(E.unknown_member_id)

        self._complete_sync(m, SyncResult(E.rebalance_in_progress))
        m.sync_future = fut = self._new_future()
        group.pending_sync.discard(member_id)
        if group.is_leader(member_id):
            generation = group.generation_id
            plan = {mid: bytes(assignments.get(mid, b"")) for mid in group.members}
            err = await self._store_group(group, plan)
            if group.state == GroupState.COMPLETING_REBALANCE and group.generation_id == generation:
                if err != E.none:
                    for x in group.members.values():
                        x.assignment = b""
                        self._complete_sync(x, SyncResult(err))
                    self._prepare_rebalance(group, "storing the group assignment failed")
                else:
                    for x in group.members.values():
                        x.assignment = plan.get(x.member_id, b"")
                    group.transition(GroupState.STABLE, self.time_ms())
                    for x in group.members.values():
                        if x.awaiting_sync:
                            self._complete_sync(x, self._sync_result(group, x))
        return await fut

    def _sync_result(self, group: GroupMetadata, m: MemberMetadata) -> SyncResult:
        return SyncResult(E.none, group.protocol_type, group.protocol_name, m.assignment)

    # --- Heartbeat / LeaveGroup --------------------------------------------------------

    def heartbeat(
        self, *, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None
    ) -> ErrorCode:
        err = self.coordinator_error(group_id)
        if err != E.none:
            return err
        group = self.groups.get(group_id)
        if group is None:
            return E.unknown_member_id
        if group.state == GroupState.DEAD:
            return E.coordinator_not_available
        if group.is_static_member_fenced(member_id, group_instance_id):
            return E.fenced_instance_id
        m = group.members.get(member_id)
        if m is None or group.state == GroupState.EMPTY:
            return E.unknown_member_id
        if generation_id != group.generation_id:
            return E.illegal_generation
        m.last_heartbeat_ms = self.time_ms()
        if group.state == GroupState.PREPARING_REBALANCE:
            return E.rebalance_in_progress
        return E.none

    def leave_group(
        self, *, group_id: str, members: list[tuple[str, str | None]]
    ) -> tuple[ErrorCode, list[tuple[str, str | None, ErrorCode]]]:
        """members: (member_id, group_instance_id); member_id "" names a static member by
        its instance id alone (KIP-345 admin removal)."""
        err = self.coordinator_error(group_id)
        if err != E.none:
            return err, [(mid, iid, err) for mid, iid in members]
        group = self.groups.get(group_id)
        if group is None:
            return E.unknown_member_id, [(mid, iid, E.unknown_member_id) for mid, iid in members]
        if group.state == GroupState.DEAD:
            return E.coordinator_not_available, [
                (mid, iid, E.coordinator_not_available) for mid, iid in members
            ]
        results = []
        for member_id, instance_id in members:
            if instance_id is not None:
                current = group.static_members.get(instance_id)
                if current is None:
                    results.append((member_id, instance_id, E.unknown_member_id))
                    continue
                if member_id and member_id != current:
                    results.append((member_id, instance_id, E.fenced_instance_id))
                    continue
                member_id = current
            elif member_id in group.pending_members:
                del group.pending_members[member_id]
                self._maybe_complete_join(group)
                results.append((member_id, instance_id, E.none))
                continue
            m = group.members.get(member_id)
            if m is None:
                results.append((member_id, instance_id, E.unknown_member_id))
                continue
            self._remove_member_and_update_group(group, m, f"member {member_id} left the group")
            results.append((member_id, instance_id, E.none))
        return E.none, results

    # --- timers ------------------------------------------------------------------------

    def tick(self) -> None:
        """Check every deadline against the clock: sessions, rebalances, retention."""
        now = self.time_ms()
        for group in list(self.groups.values()):
            for mid, deadline in list(group.pending_members.items()):
                if now >= deadline:
                    del group.pending_members[mid]
                    self._maybe_complete_join(group)
            for m in list(group.members.values()):
                # Members parked in JoinGroup/SyncGroup are bounded by the rebalance timeout.
                if m.awaiting_join or m.awaiting_sync:
                    continue
                if now >= m.last_heartbeat_ms + m.session_timeout_ms:
                    self._remove_member_and_update_group(
                        group,
                        m,
                        f"member {m.member_id} session timed out "
                        f"({m.session_timeout_ms} ms without heartbeat)",
                    )
            if group.state == GroupState.PREPARING_REBALANCE:
                if group.initial_delay_until_ms is not None and now >= group.initial_delay_until_ms:
                    if group.new_member_added and group.initial_delay_remaining_ms > 0:
                        d = min(self.initial_rebalance_delay_ms, group.initial_delay_remaining_ms)
                        group.initial_delay_remaining_ms -= d
                        group.initial_delay_until_ms = now + d
                        group.new_member_added = False
                    else:
                        group.initial_delay_until_ms = None
                        group.rebalance_deadline_ms = now + group.max_rebalance_timeout_ms()
                self._maybe_complete_join(group)
            elif (
                group.state == GroupState.COMPLETING_REBALANCE
                and group.pending_sync
                and now >= group.sync_deadline_ms
            ):
                for mid in list(group.pending_sync):
                    m = group.members.get(mid)
                    if m is not None:
                        self._remove_member(group, m)
                self._prepare_rebalance(group, "members did not sync within the rebalance timeout")
                self._maybe_complete_join(group)
        if now >= self._next_reconcile_ms:
            # Safety net for a missed leadership event: serve exactly the partitions we lead.
            self._next_reconcile_ms = now + 1000
            for p in range(self.num_partitions):
                self.on_offsets_partition_changed(p)
        if now >= self._next_retention_check_ms:
            self._next_retention_check_ms = now + self.retention_check_interval_ms
            self._spawn(self.expire_offsets())

    async def expire_offsets(self) -> int:
        """offsets.retention.minutes: drop expired offsets (KIP-211 rules); returns how many."""
        now = self.time_ms()
        removed = 0
        for group in list(self.groups.values()):
            if self._partition(group.group_id) not in self.loaded:
                continue
            expired: list[tuple[str, int]] = []
            if group.state == GroupState.EMPTY:
                if group.protocol_type is None:
                    # Standalone consumers: each offset ages from its own commit.
                    expired = [
                        tp
                        for tp, o in group.offsets.items()
                        if self._offset_expired(o, o.commit_timestamp, now)
                    ]
                else:
                    # A consumer group's offsets age from the moment the group became empty.
                    base = group.current_state_timestamp
                    expired = [
                        tp for tp, o in group.offsets.items() if self._offset_expired(o, base, now)
                    ]
            elif group.state == GroupState.STABLE:
                subscribed = group.subscribed_topics()
                if subscribed is not None:
                    expired = [
                        tp
                        for tp, o in group.offsets.items()
                        if tp[0] not in subscribed
                        and self._offset_expired(o, o.commit_timestamp, now)
                    ]
            if not expired:
                continue
            records: list[tuple[bytes, bytes | None]] = [
                (rec.encode_offset_key(group.group_id, t, p), None) for t, p in expired
            ]
            drop_group = group.state == GroupState.EMPTY and len(expired) == len(group.offsets)
            if drop_group and group.protocol_type is not None:
                records.append((rec.encode_group_key(group.group_id), None))
            try:
                await self.store.append(self._partition(group.group_id), records, now)
            except StoreError as exc:
                log.warning("expiring offsets of group %s failed: %s", group.group_id, exc)
                continue
            for tp in expired:
                group.offsets.pop(tp, None)
            removed += len(expired)
            if drop_group and group.state == GroupState.EMPTY and not group.offsets:
                group.transition(GroupState.DEAD, now)
                self.groups.pop(group.group_id, None)
            log.info("group %s: expired %d offsets", group.group_id, len(expired))
        return removed

    def _offset_expired(self, o: CommittedOffset, base_ms: int, now: int) -> bool:
        if o.expire_timestamp >= 0:  # an explicit retention_time of an old OffsetCommit
            return now >= o.expire_timestamp
        return base_ms >= 0 and now >= base_ms + self.retention_ms

    # --- persistence -------------------------------------------------------------------

    async def _store_group(
        self, group: GroupMetadata, assignments: Mapping[str, bytes] | None = None
    ) -> ErrorCode:
        members = [
            rec.MemberValue(
                m.member_id,
                m.group_instance_id,
                m.client_id,
                m.client_host,
                m.rebalance_timeout_ms,
                m.session_timeout_ms,
                m.metadata_for(group.protocol_name),
                (assignments or {}).get(m.member_id, m.assignment),
            )
            for m in group.members.values()
        ]
        value = rec.GroupValue(
            group.protocol_type or "",
            group.generation_id,
            group.protocol_name,
            group.leader_id,
            group.current_state_timestamp,
            members,
        )
        try:
            await self.store.append(
                self._partition(group.group_id),
                [(rec.encode_group_key(group.group_id), rec.encode_group_value(value))],
                self.time_ms(),
            )
        except StoreError as exc:
            log.warning("storing group %s failed: %s", group.group_id, exc)
            return exc.error_code
        return E.none

    # --- OffsetCommit / OffsetFetch ----------------------------------------------------

    async def commit_offsets(
        self,
        *,
        group_id: str,
        member_id: str,
        generation_id: int,
        group_instance_id: str | None,
        offsets: Mapping[tuple[str, int], tuple[int, int, str | None]],
        retention_ms: int = -1,
    ) -> dict[tuple[str, int], ErrorCode]:
        """offsets: (topic, partition) -> (offset, leader_epoch, metadata)."""

        def all_(err: ErrorCode) -> dict[tuple[str, int], ErrorCode]:
            return dict.fromkeys(offsets, err)

        err = self.coordinator_error(group_id)
        if err != E.none:
            return all_(err)
        group = self.groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                return all_(E.illegal_generation)
            # A consumer that only uses Kafka to store offsets (no group management).
            group = GroupMetadata(group_id, current_state_timestamp=self.time_ms())
            self.groups[group_id] = group
        if group.state == GroupState.DEAD:
            return all_(E.coordinator_not_available)
        if group.is_static_member_fenced(member_id, group_instance_id):
            return all_(E.fenced_instance_id)
        if not (generation_id < 0 and group.state == GroupState.EMPTY):
            if group.state == GroupState.COMPLETING_REBALANCE:
                return all_(E.rebalance_in_progress)
            m = group.members.get(member_id)
            if m is None:
                return all_(E.unknown_member_id)
            if generation_id != group.generation_id:
                return all_(E.illegal_generation)
            m.last_heartbeat_ms = self.time_ms()

        now = self.time_ms()
        result: dict[tuple[str, int], ErrorCode] = {}
        to_store: dict[tuple[str, int], CommittedOffset] = {}
        for tp, (offset, epoch, metadata) in offsets.items():
            md = metadata or ""
            if len(md.encode()) > min(self.max_metadata_bytes, MAX_STRING_BYTES):
                result[tp] = E.offset_metadata_too_large
                continue
            expire = now + retention_ms if retention_ms >= 0 else -1
            to_store[tp] = CommittedOffset(offset, epoch, md, now, expire)
        if to_store:
            recs = [
                (
                    rec.encode_offset_key(group_id, t, p),
                    rec.encode_offset_value(
                        rec.OffsetValue(o.offset, o.leader_epoch, o.metadata, o.commit_timestamp)
                    ),
                )
                for (t, p), o in to_store.items()
            ]
            try:
                await self.store.append(self._partition(group_id), recs, now)
            except StoreError as exc:
                for tp in to_store:
                    result[tp] = exc.error_code
                return result
            current = self.groups.get(group_id)
            if current is not None:
                current.offsets.update(to_store)
            for tp in to_store:
                result[tp] = E.none
        return result

    def fetch_offsets(
        self, group_id: str, partitions: Iterable[tuple[str, int]] | None
    ) -> tuple[ErrorCode, dict[tuple[str, int], CommittedOffset | None]]:
        """partitions None: every committed offset of the group."""
        err = self.coordinator_error(group_id)
        if err != E.none:
            return err, {}
        group = self.groups.get(group_id)
        stored = group.offsets if group is not None else {}
        if partitions is None:
            return E.none, dict(stored)
        return E.none, {tp: stored.get(tp) for tp in partitions}

    # --- ListGroups / DescribeGroups / DeleteGroups / OffsetDelete ----------------------

    def list_groups(self, states: Iterable[str] = ()) -> list[tuple[str, str, str]]:
        """(group_id, protocol_type, state) of every group we coordinate."""
        wanted = {s.lower() for s in states}
        out = []
        for g in self.groups.values():
            if self._partition(g.group_id) not in self.loaded or g.state == GroupState.DEAD:
                continue
            if wanted and g.state.value.lower() not in wanted:
                continue
            out.append((g.group_id, g.protocol_type or "", g.state.value))
        return out

    def describe_group(self, group_id: str) -> GroupDescription:
        err = self.coordinator_error(group_id)
        if err != E.none:
            return GroupDescription(err, group_id, "", "", "", [])
        g = self.groups.get(group_id)
        if g is None:
            return GroupDescription(E.none, group_id, GroupState.DEAD.value, "", "", [])
        # As Kafka: subscriptions and assignments only when they are settled (Stable).
        stable = g.state == GroupState.STABLE
        members = [member_summary(m, g.protocol_name, stable) for m in g.members.values()]
        return GroupDescription(
            E.none,
            group_id,
            g.state.value,
            g.protocol_type or "",
            (g.protocol_name or "") if stable else "",
            members,
        )

    async def delete_groups(self, group_ids: Iterable[str]) -> dict[str, ErrorCode]:
        out: dict[str, ErrorCode] = {}
        for gid in group_ids:
            err = self.coordinator_error(gid)
            if err != E.none:
                out[gid] = err
                continue
            g = self.groups.get(gid)
            if g is None or g.state == GroupState.DEAD:
                out[gid] = E.group_id_not_found
                continue
            if g.state != GroupState.EMPTY:
                out[gid] = E.non_empty_group
                continue
            records: list[tuple[bytes, bytes | None]] = [
                (rec.encode_offset_key(gid, t, p), None) for t, p in g.offsets
            ]
            records.append((rec.encode_group_key(gid), None))
            try:
                await self.store.append(self._partition(gid), records, self.time_ms())
            except StoreError as exc:
                out[gid] = exc.error_code
                continue
            g.transition(GroupState.DEAD, self.time_ms())
            if self.groups.get(gid) is g:
                del self.groups[gid]
            out[gid] = E.none
        return out

    async def delete_offsets(
        self, group_id: str, partitions: Iterable[tuple[str, int]]
    ) -> tuple[ErrorCode, dict[tuple[str, int], ErrorCode]]:
        parts = list(partitions)
        err = self.coordinator_error(group_id)
        if err != E.none:
            return err, {}
        g = self.groups.get(group_id)
        if g is None or g.state == GroupState.DEAD:
            return E.group_id_not_found, {}
        if g.state != GroupState.EMPTY and g.protocol_type != "consumer":
            return E.non_empty_group, {}
        subscribed: set[str] = set()
        if g.state != GroupState.EMPTY:
            subscribed = g.subscribed_topics() or set()
        result: dict[tuple[str, int], ErrorCode] = {}
        deletable = []
        for tp in parts:
            if tp[0] in subscribed:
                result[tp] = E.group_subscribed_to_topic
            else:
                result[tp] = E.none
                if tp in g.offsets:
                    deletable.append(tp)
        if deletable:
            try:
                await self.store.append(
                    self._partition(group_id),
                    [(rec.encode_offset_key(group_id, t, p), None) for t, p in deletable],
                    self.time_ms(),
                )
            except StoreError as exc:
                return exc.error_code, {}
            for tp in deletable:
                g.offsets.pop(tp, None)
        return E.none, result


class _TopicListener:
    """MetadataListener: tells the coordinator about deleted topics."""

    def __init__(self, coordinator: GroupCoordinator) -> None:
        self.coordinator = coordinator

    def on_topic_deleted(self, topic: Any) -> None:
        try:
            self.coordinator.on_topic_deleted(topic.name)
        except Exception:  # never break the metadata change for the other listeners
            log.exception("dropping offsets of deleted topic %s failed", topic.name)

    def on_topic_created(self, topic: Any) -> None:
        """__consumer_offsets created by another broker, or by an admin's CreateTopics."""
        if topic.name != OFFSETS_TOPIC:
            return
        try:
            asyncio.get_running_loop().call_soon(self._created)
        except RuntimeError:
            self._created()

    def _created(self) -> None:
        try:
            self.coordinator.on_offsets_topic_created()
        except Exception:
            log.exception("taking over the partitions of the new %s failed", OFFSETS_TOPIC)

    def on_partition_state_changed(self, topic: Any, index: int) -> None:
        """Cluster mode: leadership of a __consumer_offsets partition moved here or away."""
        if topic.name != OFFSETS_TOPIC:
            return
        try:
            # Later on the loop: listeners registered before us (replication) apply the new
            # leadership first, whatever order the store calls us in.
            asyncio.get_running_loop().call_soon(self._changed, index)
        except RuntimeError:  # no running loop (a synchronous caller): act now
            self._changed(index)

    def _changed(self, index: int) -> None:
        try:
            self.coordinator.on_offsets_partition_changed(index)
        except Exception:
            log.exception("reacting to a leader change of %s-%d failed", OFFSETS_TOPIC, index)

    def __getattr__(self, name: str) -> Any:
        # Other metadata events (topic created, configs changed, brokers changed ...) do not
        # concern the coordinator.
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)
