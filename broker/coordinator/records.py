"""Record formats of the internal topic ``__consumer_offsets``, byte for byte as Kafka writes them.

Keys start with an int16 version that names the record type:
  0, 1  OffsetCommitKey   group string, topic string, partition int32
  2     GroupMetadataKey  group string
Values start with an int16 version too; a null value is a tombstone (offset deleted, group
deleted). We write OffsetCommitKey v1 / OffsetCommitValue v3 and GroupMetadataKey v2 /
GroupMetadataValue v3, the versions Kafka 2.x-3.x brokers write, so tools that read Kafka's
topic (kafka-console-consumer's OffsetsMessageFormatter, kcat) read ours, and we read every
older value version a Kafka broker may have left behind.

Also here: which ``__consumer_offsets`` partition holds a group (Java's String.hashCode).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

OFFSET_COMMIT_KEY_VERSION = 1
OFFSET_COMMIT_VALUE_VERSION = 3
GROUP_METADATA_KEY_VERSION = 2
GROUP_METADATA_VALUE_VERSION = 3


class RecordFormatError(ValueError):
    """A key or value of __consumer_offsets that cannot be decoded."""


def java_string_hash(s: str) -> int:
    """Java's String.hashCode: over UTF-16 code units, wrapping at 32 bits (signed)."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - 0x100000000 if h & 0x80000000 else h


def partition_for(group_id: str, num_partitions: int) -> int:
    """Kafka's partitionFor: Utils.abs(groupId.hashCode) % offsets.topic.num.partitions."""
    h = java_string_hash(group_id)
    # Utils.abs maps Integer.MIN_VALUE to 0 rather than overflowing.
    h = 0 if h == -0x80000000 else abs(h)
    return h % num_partitions


# --- primitive writers/readers (Kafka's non-flexible encoding) -------------------------


def _w_str(out: bytearray, s: str | None) -> None:
    if s is None:
        out += struct.pack(">h", -1)
        return
    b = s.encode()
    if len(b) > 0x7FFF:
        raise RecordFormatError("string longer than 32767 bytes")
    out += struct.pack(">h", len(b))
    out += b


def _w_bytes(out: bytearray, b: bytes | None) -> None:
    if b is None:
        out += struct.pack(">i", -1)
        return
    out += struct.pack(">i", len(b))
    out += b


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = memoryview(buf)
        self.pos = 0

    def _take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise RecordFormatError("record truncated")
        v = self.buf[self.pos : self.pos + n]
        self.pos += n
        return v

    def i16(self) -> int:
        return struct.unpack(">h", self._take(2))[0]

    def i32(self) -> int:
        return struct.unpack(">i", self._take(4))[0]

    def i64(self) -> int:
        return struct.unpack(">q", self._take(8))[0]

    def nstr(self) -> str | None:
        n = self.i16()
        if n == -1:
            return None
        try:
            return bytes(self._take(n)).decode()
        except UnicodeDecodeError as exc:
            raise RecordFormatError(f"invalid UTF-8 string: {exc}") from None

    def str(self) -> str:
        s = self.nstr()
        if s is None:
            raise RecordFormatError("null where a string is required")
        return s

    def nbytes(self) -> bytes | None:
        n = self.i32()
        if n == -1:
            return None
        return bytes(self._take(n))


# --- keys -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OffsetKey:
    group: str
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class GroupKey:
    group: str


def encode_offset_key(group: str, topic: str, partition: int) -> bytes:
    out = bytearray(struct.pack(">h", OFFSET_COMMIT_KEY_VERSION))
    _w_str(out, group)
    _w_str(out, topic)
    out += struct.pack(">i", partition)
    return bytes(out)


def encode_group_key(group: str) -> bytes:
    out = bytearray(struct.pack(">h", GROUP_METADATA_KEY_VERSION))
    _w_str(out, group)
    return bytes(out)


def decode_key(key: bytes) -> OffsetKey | GroupKey:
    r = _Reader(key)
    version = r.i16()
    if version in (0, 1):
        return OffsetKey(r.str(), r.str(), r.i32())
    if version == 2:
        return GroupKey(r.str())
    raise RecordFormatError(f"unknown __consumer_offsets key version {version}")


# --- offset commit value ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OffsetValue:
    offset: int
    leader_epoch: int = -1
    metadata: str = ""
    commit_timestamp: int = -1
    expire_timestamp: int = -1  # only value v1 carries it


def encode_offset_value(v: OffsetValue) -> bytes:
    out = bytearray(struct.pack(">hqi", OFFSET_COMMIT_VALUE_VERSION, v.offset, v.leader_epoch))
    _w_str(out, v.metadata)
    out += struct.pack(">q", v.commit_timestamp)
    return bytes(out)


def decode_offset_value(value: bytes) -> OffsetValue:
    r = _Reader(value)
    version = r.i16()
    if version < 0 or version > 3:
        raise RecordFormatError(f"unsupported OffsetCommitValue version {version}")
    offset = r.i64()
    leader_epoch = r.i32() if version >= 3 else -1
    metadata = r.nstr() or ""
    commit_ts = r.i64()
    expire_ts = r.i64() if version == 1 else -1
    return OffsetValue(offset, leader_epoch, metadata, commit_ts, expire_ts)


# --- group metadata value ---------------------------------------------------------------


@dataclass(slots=True)
class MemberValue:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    subscription: bytes
    assignment: bytes


@dataclass(slots=True)
class GroupValue:
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    current_state_timestamp: int = -1
    members: list[MemberValue] = field(default_factory=list)


def encode_group_value(v: GroupValue) -> bytes:
    out = bytearray(struct.pack(">h", GROUP_METADATA_VALUE_VERSION))
    _w_str(out, v.protocol_type)
    out += struct.pack(">i", v.generation)
    _w_str(out, v.protocol)
    _w_str(out, v.leader)
    out += struct.pack(">q", v.current_state_timestamp)
    out += struct.pack(">i", len(v.members))
    for m in v.members:
        _w_str(out, m.member_id)
        _w_str(out, m.group_instance_id)
        _w_str(out, m.client_id)
        _w_str(out, m.client_host)
        out += struct.pack(">ii", m.rebalance_timeout_ms, m.session_timeout_ms)
        _w_bytes(out, m.subscription)
        _w_bytes(out, m.assignment)
    return bytes(out)


def decode_group_value(value: bytes) -> GroupValue:
    r = _Reader(value)
    version = r.i16()
    if version < 0 or version > 3:
        raise RecordFormatError(f"unsupported GroupMetadataValue version {version}")
    protocol_type = r.str()
    generation = r.i32()
    protocol = r.nstr()
    leader = r.nstr()
    state_ts = r.i64() if version >= 2 else -1
    n = r.i32()
    if n < 0 or n > len(value):
        raise RecordFormatError(f"bad member count {n}")
    members = []
    for _ in range(n):
        member_id = r.str()
        instance_id = r.nstr() if version >= 3 else None
        client_id = r.str()
        client_host = r.str()
        rebalance_timeout = r.i32() if version >= 1 else -1
        session_timeout = r.i32()
        subscription = r.nbytes() or b""
        assignment = r.nbytes() or b""
        if rebalance_timeout < 0:
            rebalance_timeout = session_timeout
        members.append(
            MemberValue(
                member_id,
                instance_id,
                client_id,
                client_host,
                rebalance_timeout,
                session_timeout,
                subscription,
                assignment,
            )
        )
    return GroupValue(protocol_type, generation, protocol, leader, state_ts, members)
