"""__consumer_offsets record formats and the group -> partition mapping (Kafka's, byte for byte)."""

from __future__ import annotations

import struct

import pytest

from broker.coordinator import records as rec


def test_java_string_hash_matches_java() -> None:
    # Values of java.lang.String.hashCode()
    assert rec.java_string_hash("") == 0
    assert rec.java_string_hash("a") == 97
    assert rec.java_string_hash("hello") == 99162322
    assert rec.java_string_hash("Aa") == rec.java_string_hash("BB") == 2112
    assert rec.java_string_hash("polygenelubricants") == -(2**31)
    # Outside the BMP Java hashes UTF-16 surrogate pairs.
    assert rec.java_string_hash("\U0001f600") == 0xD83D * 31 + 0xDE00


def test_partition_for_uses_abs_mod() -> None:
    assert rec.partition_for("hello", 50) == 99162322 % 50
    # Integer.MIN_VALUE: Utils.abs maps it to 0
    assert rec.partition_for("polygenelubricants", 50) == 0
    neg = "my-group-" + "x" * 7
    h = rec.java_string_hash(neg)
    assert rec.partition_for(neg, 50) == abs(h) % 50


def test_offset_key_bytes() -> None:
    key = rec.encode_offset_key("g", "t", 3)
    assert key == b"\x00\x01" + b"\x00\x01g" + b"\x00\x01t" + b"\x00\x00\x00\x03"
    assert rec.decode_key(key) == rec.OffsetKey("g", "t", 3)
    # version 0 keys (old brokers) have the same layout
    assert rec.decode_key(b"\x00\x00" + key[2:]) == rec.OffsetKey("g", "t", 3)


def test_group_key_bytes() -> None:
    key = rec.encode_group_key("grp")
    assert key == b"\x00\x02\x00\x03grp"
    assert rec.decode_key(key) == rec.GroupKey("grp")


def test_offset_value_v3_layout_and_round_trip() -> None:
    v = rec.OffsetValue(
        offset=42, leader_epoch=7, metadata="meta ☃", commit_timestamp=1700000000000
    )
    data = rec.encode_offset_value(v)
    md = "meta ☃".encode()
    assert data == struct.pack(">hqih", 3, 42, 7, len(md)) + md + struct.pack(">q", 1700000000000)
    assert rec.decode_offset_value(data) == v


def test_offset_value_older_versions() -> None:
    v0 = struct.pack(">hqh", 0, 5, 2) + b"md" + struct.pack(">q", 11)
    assert rec.decode_offset_value(v0) == rec.OffsetValue(5, -1, "md", 11, -1)
    v1 = struct.pack(">hqh", 1, 5, 0) + struct.pack(">qq", 11, 99)
    assert rec.decode_offset_value(v1) == rec.OffsetValue(5, -1, "", 11, 99)


def test_group_value_v3_round_trip() -> None:
    gv = rec.GroupValue(
        protocol_type="consumer",
        generation=4,
        protocol="range",
        leader="m1",
        current_state_timestamp=123,
        members=[
            rec.MemberValue("m1", "inst-1", "client", "/127.0.0.1", 30000, 6000, b"sub", b"asg"),
            rec.MemberValue("m2", None, "client", "/127.0.0.1", 30000, 6000, b"", b""),
        ],
    )
    data = rec.encode_group_value(gv)
    assert data[:2] == b"\x00\x03"
    assert rec.decode_group_value(data) == gv


def test_group_value_v0_decodes() -> None:
    def s(x: bytes) -> bytes:
        return struct.pack(">h", len(x)) + x

    v0 = (
        struct.pack(">h", 0)
        + s(b"consumer")
        + struct.pack(">i", 2)
        + s(b"range")
        + s(b"m1")
        + struct.pack(">i", 1)
        + s(b"m1")
        + s(b"cid")
        + s(b"host")
        + struct.pack(">i", 10000)
        + struct.pack(">i", 3)
        + b"sub"
        + struct.pack(">i", 0)
    )
    gv = rec.decode_group_value(v0)
    assert gv.generation == 2 and gv.protocol == "range" and gv.current_state_timestamp == -1
    assert gv.members == [rec.MemberValue("m1", None, "cid", "host", 10000, 10000, b"sub", b"")]


@pytest.mark.parametrize(
    "blob",
    [b"", b"\x00", b"\x00\x09\x00\x01g", b"\x00\x01\x00\x05g", b"\x00\x03\x00\x01x\x00\x00"],
)
def test_garbage_is_a_format_error(blob: bytes) -> None:
    with pytest.raises(rec.RecordFormatError):
        k = rec.decode_key(blob)
        rec.decode_group_value(blob) if isinstance(k, rec.GroupKey) else rec.decode_offset_value(
            blob
        )
