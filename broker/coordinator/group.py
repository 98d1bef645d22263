"""One consumer group's state as the GroupCoordinator keeps it: GroupState, MemberMetadata, GroupMetadata.

Plain data plus the small decisions that depend only on it (protocol selection, which members
have rejoined, the summaries DescribeGroups and ListGroups report). Everything that moves a
group between states lives in coordinator.py, so the state machine reads in one place.
"""

from __future__ import annotations

import asyncio
import enum
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


class GroupState(enum.Enum):
    """Kafka's classic group states; .value is the name DescribeGroups and ListGroups report."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(slots=True)
class CommittedOffset:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp: int
    expire_timestamp: int = -1


@dataclass(eq=False, slots=True)
class MemberMetadata:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: list[
        tuple[str, bytes]
    ]  # (assignor name, subscription), in the member's preference order
    assignment: bytes = b""
    last_heartbeat_ms: int = 0
    # A JoinGroup / SyncGroup request parked until the rebalance step completes.
    join_future: asyncio.Future | None = None
    sync_future: asyncio.Future | None = None

    @property
    def awaiting_join(self) -> bool:
        return self.join_future is not None and not self.join_future.done()

    @property
    def awaiting_sync(self) -> bool:
        return self.sync_future is not None and not self.sync_future.done()

    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]

    def metadata_for(self, protocol: str | None) -> bytes:
        for name, meta in self.protocols:
            if name == protocol:
                return meta
        return b""

    def matches(self, protocols: list[tuple[str, bytes]]) -> bool:
        return self.protocols == protocols

    def vote(self, candidates: set[str]) -> str:
        for name in self.protocol_names():
            if name in candidates:
                return name
        raise ValueError("member supports none of the candidate protocols")


@dataclass(eq=False)
class GroupMetadata:
    group_id: str
    state: GroupState = GroupState.EMPTY
    protocol_type: str | None = None
    protocol_name: str | None = None
    generation_id: int = 0
    leader_id: str | None = None
    members: dict[str, MemberMetadata] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)  # group.instance.id -> member id
    # KIP-394: member ids handed out with MEMBER_ID_REQUIRED -> deadline to come back (ms)
    pending_members: dict[str, int] = field(default_factory=dict)
    offsets: dict[tuple[str, int], CommittedOffset] = field(default_factory=dict)
    current_state_timestamp: int = -1
    # Rebalance bookkeeping
    rebalance_deadline_ms: int = 0
    initial_delay_until_ms: int | None = None
    initial_delay_remaining_ms: int = 0
    new_member_added: bool = False
    pending_sync: set[str] = field(default_factory=set)
    sync_deadline_ms: int = 0

    # --- queries ------------------------------------------------------------------------

    def is_empty(self) -> bool:
        return not self.members

    def has(self, member_id: str) -> bool:
        return member_id in self.members

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id == member_id

    def all_members_joined(self) -> bool:
        return not self.pending_members and all(m.awaiting_join for m in self.members.values())

    def max_rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def candidate_protocols(self) -> set[str]:
        members = list(self.members.values())
        if not members:
            return set()
        common = set(members[0].protocol_names())
        for m in members[1:]:
            common &= set(m.protocol_names())
        return common

    def supports_protocols(self, protocol_type: str, names: list[str]) -> bool:
        if self.is_empty():
            return bool(protocol_type) and bool(names)
        # A group with members accepts a joiner only if at least one protocol stays common.
        return self.protocol_type == protocol_type and bool(self.candidate_protocols() & set(names))

    def select_protocol(self) -> str:
        """Each member votes for its most preferred common protocol; most votes wins."""
        candidates = self.candidate_protocols()
        if not candidates:
            raise ValueError("no protocol common to all members")
        votes = Counter(m.vote(candidates) for m in self.members.values())
        return max(votes.items(), key=lambda kv: kv[1])[0]

    def is_static_member_fenced(self, member_id: str, group_instance_id: str | None) -> bool:
        if group_instance_id is None:
            return False
        current = self.static_members.get(group_instance_id)
        return current is not None and current != member_id

    def subscribed_topics(self) -> set[str] | None:
        """Topics the members subscribe to (consumer protocol), None if not decodable."""
        if self.protocol_type != "consumer" or not self.protocol_name:
            return None
        topics: set[str] = set()
        for m in self.members.values():
            parsed = parse_subscription_topics(m.metadata_for(self.protocol_name))
            if parsed is None:
                return None
            topics.update(parsed)
        return topics

    def transition(self, state: GroupState, now_ms: int) -> None:
        self.state = state
        self.current_state_timestamp = now_ms


def parse_subscription_topics(data: bytes) -> list[str] | None:
    """Topics of a ConsumerProtocolSubscription (any version: topics come first)."""
    try:
        pos = 2  # version int16
        (n,) = struct.unpack_from(">i", data, pos)
        pos += 4
        if n < 0 or n > len(data):
            return None
        topics = []
        for _ in range(n):
            (ln,) = struct.unpack_from(">h", data, pos)
            pos += 2
            if ln < 0 or pos + ln > len(data):
                return None
            topics.append(data[pos : pos + ln].decode())
            pos += ln
        return topics
    except (struct.error, UnicodeDecodeError):
        return None


def parse_assignment(data: bytes) -> list[tuple[str, list[int]]] | None:
    """(topic, partitions) of a ConsumerProtocolAssignment, None if not decodable."""
    if not data:
        return []
    try:
        pos = 2
        (n,) = struct.unpack_from(">i", data, pos)
        pos += 4
        out: list[tuple[str, list[int]]] = []
        for _ in range(max(n, 0)):
            (ln,) = struct.unpack_from(">h", data, pos)
            pos += 2
            topic = data[pos : pos + ln].decode()
            pos += ln
            (np_,) = struct.unpack_from(">i", data, pos)
            pos += 4
            parts = list(struct.unpack_from(f">{max(np_, 0)}i", data, pos))
            pos += 4 * max(np_, 0)
            out.append((topic, parts))
        return out
    except (struct.error, UnicodeDecodeError):
        return None


def member_summary(m: MemberMetadata, protocol: str | None, with_data: bool) -> dict[str, Any]:
    return {
        "member_id": m.member_id,
        "group_instance_id": m.group_instance_id,
        "client_id": m.client_id,
        "client_host": m.client_host,
        "member_metadata": m.metadata_for(protocol) if with_data else b"",
        "member_assignment": m.assignment if with_data else b"",
    }
