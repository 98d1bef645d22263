"""Unit tests of broker/protocol.py: request headers, kio round trips, and the hand-framed
Fetch response checked byte for byte against kio's own encoding of the same response."""

from __future__ import annotations

import datetime
import os
import struct
from pathlib import Path

import pytest
from kio.index import load_request_schema, load_response_schema
from kio.schema.api_versions.v3.request import ApiVersionsRequest

from broker.protocol import (
    FetchPartition,
    ProtocolError,
    RawResponse,
    decode_request,
    decode_response,
    encode_fetch_response,
    encode_request,
    encode_response,
    error_code,
    make,
    nested,
    parse_request_header,
)


def test_header_v2_flexible_and_v1() -> None:
    frame = encode_request(
        ApiVersionsRequest(client_software_name="a", client_software_version="1"), 42, "cid"
    )
    header = parse_request_header(frame[4:])
    assert (header.api_key, header.api_version, header.correlation_id, header.client_id) == (
        18,
        3,
        42,
        "cid",
    )
    req = decode_request(header, frame[4:])
    assert req.client_software_name == "a"
    mreq = make(load_request_schema(3, 4), topics=None, allow_auto_topic_creation=True)
    frame = encode_request(mreq, 7, None)
    header = parse_request_header(frame[4:])
    assert header.client_id is None and header.api_version == 4
    assert decode_request(header, frame[4:]) == mreq


def test_short_and_malformed_frames() -> None:
    with pytest.raises(ProtocolError):
        parse_request_header(b"\0\x03\0")
    frame = struct.pack(">hhi", 3, 9, 1) + b"\0\x05ab"  # client id claims 5 bytes, has 2
    with pytest.raises(ProtocolError):
        parse_request_header(frame)
    frame = struct.pack(">hhih", 3, 4, 1, -1) + b"\x00\x00"  # topics array cut short
    header = parse_request_header(frame)
    with pytest.raises(ProtocolError):
        decode_request(header, frame)


def test_unknown_version_header_still_gives_correlation_id() -> None:
    frame = struct.pack(">hhi", 18, 99, 1234) + b"\xff"
    header = parse_request_header(frame)
    assert header.correlation_id == 1234 and header.api_version == 99


def test_encode_response_header_versions() -> None:
    cls = load_response_schema(18, 3)
    r = make(cls, error_code=error_code(0), api_keys=(), throttle_time=datetime.timedelta(0))
    frame = encode_response(r, 9)
    assert struct.unpack_from(">ii", frame, 0)[1] == 9
    assert decode_response(frame[4:], 18, 3)[1] == r  # ApiVersions v3: v0 header
    mcls = load_response_schema(3, 12)
    m = make(
        mcls,
        throttle_time=datetime.timedelta(0),
        brokers=(),
        cluster_id="c",
        controller_id=0,
        topics=(),
    )
    frame = encode_response(m, 10)
    assert frame[8] == 0  # header v1: empty tagged fields after the correlation id
    assert decode_response(frame[4:], 3, 12) == (10, m)


def _kio_fetch(version: int, correlation_id: int, topics, session_id: int = 0) -> bytes:
    cls = load_response_schema(1, version)
    pcls = nested(cls, "PartitionData")
    tcls = nested(cls, "FetchableTopicResponse")
    acls = nested(cls, "AbortedTransaction")
    entity = make(
        cls,
        throttle_time=datetime.timedelta(0),
        error_code=error_code(0),
        session_id=session_id,
        responses=tuple(
            make(
                tcls,
                topic=name,
                partitions=tuple(
                    make(
                        pcls,
                        partition_index=p.index,
                        error_code=error_code(p.error_code),
                        high_watermark=p.high_watermark,
                        last_stable_offset=p.last_stable_offset,
                        log_start_offset=p.log_start_offset,
                        aborted_transactions=None
                        if p.aborted_transactions is None
                        else tuple(
                            make(acls, producer_id=a, first_offset=b)
                            for a, b in p.aborted_transactions
                        ),
                        preferred_read_replica=p.preferred_read_replica,
                        records=p.records if isinstance(p.records, bytes) else b"",
                    )
                    for p in parts
                ),
            )
            for name, parts in topics
        ),
    )
    return encode_response(entity, correlation_id)


@pytest.mark.parametrize("version", range(4, 13))
def test_fetch_writer_matches_kio(version: int) -> None:
    topics = [
        (
            "alpha",
            [
                FetchPartition(0, 0, 10, 10, 0, None, -1, b"x" * 70),
                FetchPartition(1, 0, 5, 5, 2, [(7, 3), (8, 4)], -1, b""),
            ],
        ),
        ("beta", [FetchPartition(3, 1, -1, -1, -1, [], -1, None)]),
    ]
    ours = encode_fetch_response(version, 99, topics).to_bytes()
    # Our writer sends a null record set as zero-length records (librdkafka rejects -1).
    topics[1][1][0].records = b""
    expected = _kio_fetch(version, 99, topics)
    assert ours == expected


def test_fetch_writer_sends_file_ranges(tmp_path: Path) -> None:
    data = os.urandom(500)
    path = tmp_path / "seg.log"
    path.write_bytes(data)
    with open(path, "rb") as f:

        class Slice:
            fd = f.fileno()
            position = 100
            length = 200

        raw = encode_fetch_response(
            12, 1, [("t", [FetchPartition(0, 0, 1, 1, 0, None, -1, Slice())])]
        )
        assert isinstance(raw, RawResponse)
        parts = raw.framed_parts()
        assert [type(p) for p in parts] == [bytes, Slice, bytes]
        got = raw.to_bytes()
        expected = _kio_fetch(
            12, 1, [("t", [FetchPartition(0, 0, 1, 1, 0, None, -1, data[100:300])])]
        )
        assert got == expected
        assert struct.unpack(">i", got[:4])[0] == raw.size == len(got) - 4


@pytest.mark.parametrize("version", range(3, 10))
def test_produce_writer_matches_kio(version: int) -> None:
    from broker.protocol import encode_produce_response

    topics = [
        ("alpha", [(0, 0, 42, -1, 0, None), (1, 2, -1, -1, -1, "corrupt")]),
        ("beta", [(5, 0, 7, 1_700_000_000_123, 3, None)]),
    ]
    ours = encode_produce_response(version, 77, topics).to_bytes()
    cls = load_response_schema(0, version)
    pcls, tcls = nested(cls, "PartitionProduceResponse"), nested(cls, "TopicProduceResponse")
    entity = make(
        cls,
        throttle_time=datetime.timedelta(0),
        responses=tuple(
            make(
                tcls,
                name=name,
                partition_responses=tuple(
                    make(
                        pcls,
                        index=i,
                        error_code=error_code(e),
                        base_offset=o,
                        log_append_time=None
                        if t < 0
                        else datetime.datetime.fromtimestamp(t / 1000, tz=datetime.UTC),
                        log_start_offset=s,
                        record_errors=(),
                        error_message=m,
                    )
                    for i, e, o, t, s, m in parts
                ),
            )
            for name, parts in topics
        ),
    )
    assert ours == encode_response(entity, 77)
