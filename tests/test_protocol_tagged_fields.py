"""Unknown tagged fields (KIP-482) in requests are skipped, as Kafka's receivers do.

A newer client may send tags this broker does not know, in the request header's tagged
fields, in the body's and in any nested struct's: the request must be served exactly as
if they were absent, never refused. Known tags (Fetch v12 ClusterId) keep their values.
Tagged fields announcing more bytes than the frame holds stay refused
(tests/test_hostile_framing.py covers the huge counts and sizes).

The frames are built by kio, then the empty tagged-field section (one zero byte) of the
header, the body or a nested struct (found by encoding that struct alone) is replaced by
one carrying unknown tags.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import random
import struct
import uuid
from typing import Any

import pytest
from kio.index import load_request_schema
from kio.serial import entity_writer
from test_broker_network import RawClient, api_versions_request, request
from test_broker_produce import fetch_request, produce_request
from test_hostile_framing import _uvarint as uvarint
from test_hostile_support import raw_batch, tiny_record

from broker.protocol import (
    ProtocolError,
    decode_request,
    encode_request,
    nested,
    parse_request_header,
    request_schema,
)


def tag(number: int, value: bytes) -> bytes:
    return uvarint(number) + uvarint(len(value)) + value


def section(*tags: bytes) -> bytes:
    return uvarint(len(tags)) + b"".join(tags)


# One unknown tag with a few bytes; and several, one of them with a 300-byte value (a
# two-byte size varint) and one with a high tag number (a multi-byte tag varint).
UNKNOWN = section(tag(1000, b"abc"))
SEVERAL = section(tag(7, b""), tag(1000, b"x" * 300), tag(2**31 - 1, b"\x01\x02"))


def header_tags_at(body: bytes) -> int:
    """Where the request header's tagged-field section starts (after the int16 client id)."""
    (n,) = struct.unpack_from(">h", body, 8)
    return 10 + max(n, 0)


def encoded(entity: Any) -> bytes:
    buf = io.BytesIO()
    entity_writer(type(entity))(buf, entity)
    return buf.getvalue()


def nested_tags_at(body: bytes, entity: Any) -> int:
    """Where ``entity``'s own tagged-field section is within ``body`` (its last byte)."""
    raw = encoded(entity)
    assert body.count(raw) == 1, "the nested struct must be unique in the frame"
    return body.index(raw) + len(raw) - 1


def splice(body: bytes, at: int, tags: bytes) -> bytes:
    """``body`` with its empty tagged-field section at ``at`` replaced by ``tags``."""
    assert body[at] == 0, f"no empty tagged-field section at byte {at}"
    return body[:at] + tags + body[at + 1 :]


def variants(req: Any, inner: Any, tags: bytes = UNKNOWN) -> dict[str, bytes]:
    """The request (without size prefix) with ``tags`` in the header, at the end of the
    body, in the nested struct ``inner``, and in all three at once."""
    body = encode_request(req, 1, "tagged")[4:]
    h = header_tags_at(body)
    n = nested_tags_at(body, inner)
    t = len(body) - 1
    assert h < n <= t  # n == t: no nested struct (ApiVersions), the body stands in
    everywhere = splice(body, t, tags)
    if n < t:
        everywhere = splice(everywhere, n, tags)
    everywhere = splice(everywhere, h, tags)
    return {
        "plain": body,
        "header": splice(body, h, tags),
        "body": splice(body, t, tags),
        "nested": splice(body, n, tags),
        "everywhere": everywhere,
    }


# --------------------------------------------------------------------------------------
# The requests of the brief: one per flexible API a client uses first.


def _api_versions() -> tuple[Any, Any]:
    # ApiVersions v3 has no nested struct: its top level stands in for it
    req = api_versions_request(3)
    return req, req


def _metadata(topic: str) -> tuple[Any, Any]:
    cls = load_request_schema(3, 12)
    t = nested(cls, "MetadataRequestTopic")(topic_id=uuid.UUID(int=0), name=topic)
    req = cls(
        topics=(t,), allow_auto_topic_creation=True, include_topic_authorized_operations=False
    )
    return req, t


def _produce(topic: str) -> tuple[Any, Any]:
    req = produce_request(9, topic, 0, raw_batch(tiny_record(value=b"tagged")))
    return req, req.topic_data[0].partition_data[0]


def _fetch(topic: str) -> tuple[Any, Any]:
    req = fetch_request(12, topic, 0, 0)
    return req, req.topics[0].partitions[0]


def _join_group(group: str) -> tuple[Any, Any]:
    cls = load_request_schema(11, 6)
    proto = nested(cls, "JoinGroupRequestProtocol")(name="range", metadata=b"\0\1tagged")
    req = request(
        11,
        6,
        group_id=group,
        session_timeout=datetime.timedelta(seconds=10),
        rebalance_timeout=datetime.timedelta(seconds=10),
        member_id="",
        group_instance_id=None,
        protocol_type="consumer",
        protocols=(proto,),
    )
    return req, proto


def _offset_commit(group: str, topic: str) -> tuple[Any, Any]:
    cls = load_request_schema(8, 8)
    p = nested(cls, "OffsetCommitRequestPartition")(
        partition_index=0, committed_offset=1, committed_leader_epoch=-1, committed_metadata="m"
    )
    t = nested(cls, "OffsetCommitRequestTopic")(name=topic, partitions=(p,))
    req = cls(
        group_id=group,
        generation_id_or_member_epoch=-1,
        member_id="",
        group_instance_id=None,
        topics=(t,),
    )
    return req, p


def _error_codes(value: Any) -> list[int]:
    """Every error_code in a response, depth first (what 'answered normally' compares)."""
    out: list[int] = []
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if f.name == "error_code":
                out.append(int(v.value if hasattr(v, "value") else v))
            else:
                out += _error_codes(v)
    elif isinstance(value, tuple):
        for v in value:
            out += _error_codes(v)
    return out


CASES = ["api_versions", "metadata", "produce", "fetch", "join_group", "offset_commit"]


def _case(name: str, suffix: str) -> tuple[Any, Any]:
    topic = f"tagged-{suffix}"
    return {
        "api_versions": _api_versions,
        "metadata": lambda: _metadata(topic),
        "produce": lambda: _produce(topic),
        "fetch": lambda: _fetch(topic),
        "join_group": lambda: _join_group(f"group-{suffix}"),
        "offset_commit": lambda: _offset_commit(f"group-oc-{suffix}", topic),
    }[name]()


def _send(client: RawClient, body: bytes, req: Any) -> Any:
    client.send_frame(struct.pack(">i", len(body)) + body)
    cid, response = client.receive(req)
    assert cid == 1
    return response


@pytest.fixture
def client(broker):
    c = RawClient(broker.bootstrap)
    yield c
    c.close()


@pytest.mark.parametrize("tags", [UNKNOWN, SEVERAL], ids=["one-tag", "several-tags"])
@pytest.mark.parametrize("name", CASES)
def test_unknown_tags_are_skipped_by_the_broker(
    broker, client: RawClient, name: str, tags: bytes
) -> None:
    """Each variant is answered on the same connection, with the error codes of the plain
    request, and the connection stays usable."""
    suffix = f"{name}-{len(tags)}"
    req, inner = _case(name, suffix)
    frames = variants(req, inner, tags)
    if name in ("fetch", "offset_commit"):  # let the topic exist first
        preq = _produce(f"tagged-{suffix}")[0]
        _send(client, encode_request(preq, 1, "t")[4:], preq)
    expected = _error_codes(_send(client, frames["plain"], req))
    for where in ("header", "body", "nested", "everywhere"):
        got = _error_codes(_send(client, frames[where], req))
        assert got == expected, (where, got, expected)
    assert client.call(api_versions_request(3)).error_code.value == 0
    assert not client.is_closed(timeout=0.2)


def test_produced_records_behind_unknown_tags_are_stored(broker, client: RawClient) -> None:
    """A Produce v9 with unknown tags everywhere appends its batch; a Fetch v12 with unknown
    tags everywhere (and the known ClusterId tag) reads it back."""
    topic = "tagged-roundtrip"
    req, inner = _produce(topic)
    _send(client, variants(req, inner)["plain"], req)  # creates the topic
    resp = _send(client, variants(req, inner)["everywhere"], req)
    part = resp.responses[0].partition_responses[0]
    assert (part.error_code.value, part.base_offset) == (0, 1)
    freq, finner = _fetch(topic)
    body = variants(freq, finner)["everywhere"]
    # the body's section: the known ClusterId between two unknown tags
    cluster = tag(0, uvarint(len(b"some-cluster") + 1) + b"some-cluster")
    assert body.endswith(UNKNOWN)
    body = body[: -len(UNKNOWN)] + section(tag(5, b""), cluster, tag(1000, b"abc"))
    assert decode_request(parse_request_header(body), body).cluster_id == "some-cluster"
    fresp = _send(client, body, freq)
    records = fresp.responses[0].partitions[0].records
    assert records.count(b"tagged") == 2


# --------------------------------------------------------------------------------------
# The codec alone (no broker): every flexible request version served, random content.


def _flexible_served() -> list[tuple[int, int]]:
    from broker.handlers import discover

    out = []
    for key, module in sorted(discover().items()):
        for version in range(module.MIN_VERSION, module.MAX_VERSION + 1):
            schema = request_schema(key, version)
            if schema is not None and schema.__flexible__:
                out.append((key, version))
    return out


def test_every_flexible_request_decodes_the_same_with_unknown_tags() -> None:
    from test_fuzz import random_entity

    rng = random.Random(482)
    checked = 0
    for key, version in _flexible_served():
        schema = request_schema(key, version)
        for _ in range(5):
            entity = random_entity(rng, schema)
            # the body's own known tags (Fetch ClusterId) are left out: its section must
            # start empty to be spliced (test_known_cluster_id... mixes them)
            entity = dataclasses.replace(
                entity,
                **{f.name: f.default for f in dataclasses.fields(schema) if "tag" in f.metadata},
            )
            try:
                body = encode_request(entity, 1, "codec")[4:]
            except Exception:  # noqa: BLE001 - a random value kio cannot encode
                continue
            plain = decode_request(parse_request_header(body), body)
            h = header_tags_at(body)
            for tagged in (
                splice(body, h, SEVERAL),
                splice(body, len(body) - 1, SEVERAL),
                splice(splice(body, len(body) - 1, UNKNOWN), h, SEVERAL),
            ):
                header = parse_request_header(tagged)
                assert (header.api_key, header.api_version, header.client_id) == (
                    key,
                    version,
                    "codec",
                )
                assert decode_request(header, tagged) == plain, (key, version)
                checked += 1
    assert checked > 300


def test_known_cluster_id_tag_survives_unknown_neighbours() -> None:
    """Fetch v12 ClusterId is tag 0 of the body: kept, whatever unknown tags surround it
    (before or after it in the section)."""
    req, _ = _fetch("t")
    body = encode_request(req, 1, "codec")[4:]
    cluster = tag(0, uvarint(len(b"abc") + 1) + b"abc")
    for tags in (
        section(cluster),
        section(cluster, tag(1000, b"zz")),
        section(tag(5, b""), cluster, tag(1000, b"zz")),
    ):
        tagged = splice(body, len(body) - 1, tags)
        decoded = decode_request(parse_request_header(tagged), tagged)
        assert decoded.cluster_id == "abc"
        assert decoded == dataclasses.replace(req, cluster_id="abc")


def test_nested_unknown_tags_in_every_struct_of_a_produce_request() -> None:
    req, inner = _produce("t")
    frames = variants(req, inner, SEVERAL)
    plain = decode_request(parse_request_header(frames["plain"]), frames["plain"])
    # the topic struct's section too (between the partition's and the body's)
    topic_at = nested_tags_at(frames["plain"], req.topic_data[0])
    frames["topic"] = splice(frames["plain"], topic_at, UNKNOWN)
    for where, body in frames.items():
        assert decode_request(parse_request_header(body), body) == plain, where


UNBOUNDED = {
    # one unknown tag announcing more bytes than the frame has left
    "size-past-end": uvarint(1) + uvarint(1000) + uvarint(2**31 - 1) + b"abc",
    # a tag count that the remaining bytes cannot hold
    "count-past-end": uvarint(2**31 - 1) + tag(1000, b"a"),
    # a varint that never ends
    "endless-varint": uvarint(1) + b"\xff" * 12,
    # a section cut short
    "truncated": uvarint(2) + tag(1000, b"abc"),
}


@pytest.mark.parametrize("tags", UNBOUNDED.values(), ids=UNBOUNDED.keys())
def test_unknown_tags_past_the_frame_stay_refused(tags: bytes) -> None:
    """Skipping is bounded: a tag reaching past the frame is a malformed request, in the
    header, at the end of the body and in a nested struct."""
    req, inner = _produce("t")
    body = encode_request(req, 1, "codec")[4:]
    h = header_tags_at(body)
    n = nested_tags_at(body, inner)
    # at the end of the body, the bad section is the last thing in the frame
    with pytest.raises(ProtocolError):
        bad = splice(body, len(body) - 1, tags)
        decode_request(parse_request_header(bad), bad)
    # header and nested: the bad section is followed by the rest of the request, but the
    # sizes above exceed it
    for at in (h, n):
        bad = splice(body, at, tags)
        with pytest.raises(ProtocolError):
            decode_request(parse_request_header(bad), bad)


def test_responses_skip_unknown_tags_too() -> None:
    """A follower and the tools decode responses with the same codec: unknown tags in the
    response header v1 and the body are skipped there as well."""
    from kio.index import load_response_schema

    from broker.protocol import decode_response, encode_response

    rcls = load_response_schema(3, 12)
    broker_cls = nested(rcls, "MetadataResponseBroker")
    response = rcls(
        throttle_time=datetime.timedelta(0),
        brokers=(broker_cls(node_id=1, host="h", port=9092, rack=None),),
        cluster_id="c",
        controller_id=1,
        topics=(),
    )
    frame = encode_response(response, 9)[4:]
    assert frame[4] == 0  # the response header's tagged fields
    b = nested_tags_at(frame, response.brokers[0])
    tagged = splice(splice(splice(frame, len(frame) - 1, SEVERAL), b, UNKNOWN), 4, SEVERAL)
    assert decode_response(tagged, 3, 12) == (9, response)
    with pytest.raises(ProtocolError):
        decode_response(splice(frame, 4, UNBOUNDED["size-past-end"]), 3, 12)
