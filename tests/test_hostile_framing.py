"""Hostile framing against a live broker: size prefixes, headers, unknown APIs and versions,
absurd lengths and counts, idle and pipelining connections, and a client that never reads.

Every test attacks a real broker process over loopback, then checks that the attacker got
the protocol's error or a closed connection, that the broker is alive and an honest
confluent-kafka client still produces and reads back every acknowledged record, and that
the broker's peak resident memory grew by a bounded amount (VmHWM, not a timing).
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Iterator

import pytest
from kio.schema.api_versions.v0.request import ApiVersionsRequest as ApiVersionsV0
from support import BrokerProcess, free_port
from test_broker_network import request
from test_broker_produce import fetch_request, produce_request
from test_hostile_support import (
    MB,
    MemoryProbe,
    Witness,
    assert_alive,
    cap_address_space,
    connect,
    frame,
    header_v1,
    header_v2,
    honest_after,
    is_closed,
    read_frame,
)

from broker.protocol import decode_response, encode_request
from fastlog import _core

MAX_REQUEST = 100 * MB  # socket.request.max.bytes default
UNSUPPORTED_VERSION = 35


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    d = tmp_path_factory.mktemp("hostile-framing") / "data"
    d.mkdir()
    b = BrokerProcess(d, free_port(), {"num.partitions": "1"}).start()
    cap_address_space(b)
    yield b
    b.stop()


@pytest.fixture
def witness(target: BrokerProcess) -> Witness:
    w = Witness(target.bootstrap)
    w.produce(10, tag="before")
    return w


def api_versions_ok(broker: BrokerProcess) -> None:
    with connect(broker) as s:
        s.sendall(encode_request(ApiVersionsV0(), 7, "probe"))
        cid, response = decode_response(read_frame(s), 18, 0)
        assert (cid, response.error_code.value) == (7, 0)


# -- size prefixes (CVE-2022-34917) ---------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [2**31 - 1, 2 * 1024**3 - 1, MAX_REQUEST + 1, -1, -(2**31), -4],
    ids=["2GiB", "2GiB-1", "max+1", "minus1", "int32-min", "minus4"],
)
def test_size_prefix_out_of_range_closes_before_allocating(
    target: BrokerProcess, witness: Witness, size: int
) -> None:
    probe = MemoryProbe(target.proc.pid)
    socks = []
    # Twenty attackers at once: had the broker allocated what they announce it would need
    # 40 GiB; then each keeps sending body bytes into a connection that must be closed.
    for _ in range(20):
        s = connect(target)
        s.sendall(struct.pack(">i", size) + b"\0" * 4096)
        socks.append(s)
    for s in socks:
        assert is_closed(s)
        s.close()
    probe.assert_bounded()
    honest_after(target, witness)


def test_size_prefix_just_at_the_limit_is_read_not_refused(target: BrokerProcess) -> None:
    """socket.request.max.bytes itself is allowed (Kafka refuses only above it): a prefix
    of exactly the limit followed by a short body is waited for, not refused."""
    with connect(target) as s:
        s.sendall(struct.pack(">i", MAX_REQUEST) + b"\0" * 100)
        assert not is_closed(s, timeout=1.0)
    assert_alive(target)


def test_promised_frames_trickled_then_dropped_allocate_nothing_up_front(
    target: BrokerProcess, witness: Witness
) -> None:
    """Thirty connections each promise a 90 MB request (within the limit), then trickle
    bytes: no buffer of the promised size may be allocated (2.7 GB if it were)."""
    probe = MemoryProbe(target.proc.pid)
    socks = [connect(target) for _ in range(30)]
    for s in socks:
        s.sendall(struct.pack(">i", 90 * MB) + struct.pack(">hhi", 0, 9, 1))
    for _ in range(20):
        for s in socks:
            s.sendall(b"\0" * 512)
        time.sleep(0.02)
    # the broker still serves others while those frames are pending
    api_versions_ok(target)
    probe.assert_bounded(100 * MB)
    for s in socks[:15]:
        s.close()  # abrupt close mid-frame
    for s in socks[15:]:
        s.shutdown(socket.SHUT_WR)  # half-close mid-frame: the broker must let go too
        assert is_closed(s)
        s.close()
    probe.assert_bounded(100 * MB)
    honest_after(target, witness)


# -- headers --------------------------------------------------------------------------------

TRUNCATED_HEADERS = {
    "empty": b"",
    "one-byte": b"\0",
    "api-key-only": struct.pack(">h", 18),
    "no-correlation": struct.pack(">hh", 3, 1),
    "half-client-id-length": struct.pack(">hhib", 3, 1, 1, 0),
    "client-id-cut": struct.pack(">hhih", 3, 1, 1, 10) + b"abc",
    "flexible-no-tag-buffer": header_v1(3, 9, 1),  # v2 header without its tagged fields
}


@pytest.mark.parametrize("body", TRUNCATED_HEADERS.values(), ids=TRUNCATED_HEADERS.keys())
def test_truncated_header_closes_the_connection(
    target: BrokerProcess, witness: Witness, body: bytes
) -> None:
    with connect(target) as s:
        s.sendall(frame(body))
        assert is_closed(s)
    honest_after(target, witness)


ABSURD_CLIENT_IDS = {
    # int16 length far beyond the frame
    "len-32767": struct.pack(">hhih", 3, 1, 5, 32767) + b"x" * 10,
    # negative lengths other than -1 (null)
    "len-minus2": struct.pack(">hhih", 3, 1, 5, -2) + b"x" * 10,
    "len-min": struct.pack(">hhih", 3, 1, 5, -32768),
    # flexible header (Metadata v9): client id is still an int16 string, then tagged fields
    "flex-len-32767": struct.pack(">hhih", 3, 9, 5, 32767) + b"\0" * 3,
    # a real 32767-byte client id is legal: it must be answered, not crash anything
}


@pytest.mark.parametrize("body", ABSURD_CLIENT_IDS.values(), ids=ABSURD_CLIENT_IDS.keys())
def test_absurd_client_id_length_closes_the_connection(
    target: BrokerProcess, witness: Witness, body: bytes
) -> None:
    with connect(target) as s:
        s.sendall(frame(body))
        assert is_closed(s)
    honest_after(target, witness)


def test_longest_legal_client_id_is_served(target: BrokerProcess) -> None:
    with connect(target) as s:
        s.sendall(encode_request(ApiVersionsV0(), 11, "c" * 32767))
        cid, response = decode_response(read_frame(s), 18, 0)
        assert (cid, response.error_code.value) == (11, 0)
    with connect(target) as s:
        # not valid UTF-8: the broker may refuse (close) but must not die
        s.sendall(frame(struct.pack(">hhih", 18, 0, 12, 4) + b"\xff\xfe\xfd\xfc"))
        try:
            read_frame(s)
        except (ConnectionError, TimeoutError):
            pass
    assert_alive(target)


def test_huge_tagged_fields_in_flexible_headers_and_bodies(
    target: BrokerProcess, witness: Witness
) -> None:
    """KIP-482 tagged fields announcing enormous counts and sizes: refused, nothing
    allocated for them."""
    probe = MemoryProbe(target.proc.pid)
    uvarint = _uvarint
    cases = [
        # header tag count 2^31-1
        header_v1(3, 9, 1) + uvarint(2**31 - 1),
        # header: one tag of size 2^31-1 with 3 bytes behind it
        header_v1(3, 9, 1) + uvarint(1) + uvarint(0) + uvarint(2**31 - 1) + b"abc",
        # header: one tag of size 2^35 (a 5-byte varint that overflows int32)
        header_v1(3, 9, 1) + uvarint(1) + uvarint(0) + uvarint(2**35) + b"abc",
        # header: a varint that never ends
        header_v1(3, 9, 1) + b"\xff" * 12,
        # Metadata v9 body: topics null (0), allow auto (1), two bools, then body tags with a
        # huge size
        header_v2(3, 9, 1) + b"\0" + b"\1\0\0" + uvarint(1) + uvarint(7) + uvarint(2**31 - 1),
        # ApiVersions v3 body: compact strings, then tag count 2^32-1
        header_v2(18, 3, 1) + uvarint(2) + b"x" + uvarint(2) + b"1" + uvarint(2**32 - 1),
        # ApiVersions v3: compact string of length 2^31-2 with nothing behind it
        header_v2(18, 3, 1) + uvarint(2**31 - 1) + b"x",
    ]
    for body in cases:
        with connect(target) as s:
            s.sendall(frame(body))
            # ApiVersions may answer with an error instead of closing; either is fine
            s.settimeout(10)
            try:
                data = read_frame(s)
            except ConnectionError:
                continue
            if body[:2] == struct.pack(">h", 18):
                cid, response = decode_response(data, 18, 0)
                assert response.error_code.value != 0
            else:
                pytest.fail(f"answered a malformed request {body!r}")
    probe.assert_bounded()
    honest_after(target, witness)


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def test_array_counts_of_2_31_minus_1(target: BrokerProcess, witness: Witness) -> None:
    """Arrays announcing 2^31-1 elements in a few bytes of body: refused without
    reserving room for them (16 GiB of pointers each)."""
    probe = MemoryProbe(target.proc.pid)
    big = struct.pack(">i", 2**31 - 1)
    cases = [
        # Metadata v1: topics array
        header_v1(3, 1, 1) + big + b"\0\1a",
        # Metadata v9 (compact array: n+1 as uvarint)
        header_v2(3, 9, 1) + _uvarint(2**31) + b"\0" * 8,
        # Produce v3: transactional id null, acks, timeout, topic_data count
        header_v1(0, 3, 1) + b"\xff\xff" + struct.pack(">hi", 1, 1000) + big,
        # Produce v3: one topic whose partition_data count lies
        header_v1(0, 3, 1)
        + b"\xff\xff"
        + struct.pack(">hi", 1, 1000)
        + struct.pack(">i", 1)
        + struct.pack(">h", 1)
        + b"t"
        + big,
        # Fetch v4: topics count
        header_v1(1, 4, 1) + struct.pack(">iiiib", -1, 0, 0, 1 << 20, 0) + big,
        # ListOffsets v1: topics count
        header_v1(2, 1, 1) + struct.pack(">i", -1) + big,
        # Produce v9: compact topic_data count 2^32-1 (uvarint of n+1)
        header_v2(0, 9, 1) + b"\0" + struct.pack(">hi", 1, 1000) + _uvarint(2**32 - 1),
        # a negative count other than null (-1)
        header_v1(3, 1, 1) + struct.pack(">i", -7),
    ]
    for body in cases:
        with connect(target) as s:
            s.sendall(frame(body))
            assert is_closed(s), body
    probe.assert_bounded()
    honest_after(target, witness)


# -- unknown APIs and versions --------------------------------------------------------------


@pytest.mark.parametrize(
    "api_key,version",
    [(9999, 0), (-1, 0), (32767, 32767), (3, 99), (3, -1), (0, 10), (0, -1), (1, 3), (1, 99)],
    ids=lambda v: str(v),
)
def test_unknown_api_or_unsupported_version_closes(
    target: BrokerProcess, witness: Witness, api_key: int, version: int
) -> None:
    """Kafka closes the connection for an API or version it does not serve (except
    ApiVersions, answered in v0 form); the responses before it are still sent."""
    with connect(target) as s:
        s.sendall(
            encode_request(ApiVersionsV0(), 1, "x")
            + frame(header_v1(api_key, version, 2) + b"\0" * 16)
            + encode_request(ApiVersionsV0(), 3, "x")
        )
        cid, _ = decode_response(read_frame(s), 18, 0)
        assert cid == 1
        assert is_closed(s)  # and request 3 was not answered
    honest_after(target, witness)


@pytest.mark.parametrize("version", [4, 99, 32767, -1])
def test_api_versions_unsupported_version_answers_in_v0(
    target: BrokerProcess, version: int
) -> None:
    with connect(target) as s:
        # a flexible-looking body the broker cannot parse: it must answer from the fixed part
        s.sendall(frame(header_v2(18, version, 41) + b"\xff" * 9))
        cid, response = decode_response(read_frame(s), 18, 0)
        assert cid == 41
        assert response.error_code.value == UNSUPPORTED_VERSION
        assert any(a.api_key == 18 for a in response.api_keys)
    assert_alive(target)


# -- connections ------------------------------------------------------------------------------


def test_500_idle_connections_then_an_honest_client(
    target: BrokerProcess, witness: Witness
) -> None:
    probe = MemoryProbe(target.proc.pid)
    idle = []
    try:
        for i in range(500):
            s = connect(target)
            if i % 2:
                s.sendall(b"\0\0")  # half a size prefix, then nothing
            idle.append(s)
        api_versions_ok(target)
        honest_after(target, witness)
        probe.assert_bounded(100 * MB)
    finally:
        for s in idle:
            s.close()
    api_versions_ok(target)


def test_many_pipelined_requests_answered_in_order(target: BrokerProcess, witness: Witness) -> None:
    """300 requests of mixed APIs written back to back, including long-polling Fetches
    that finish late: every response comes back, in request order, to the right id."""
    topic = "pipelined-hostile"
    kinds = []
    payload = bytearray()
    for i in range(300):
        cid = 1000 + i
        k = i % 5
        if k == 0:
            req = ApiVersionsV0()
        elif k == 1:
            req = request(
                3,
                12,
                topics=None,
                allow_auto_topic_creation=False,
                include_topic_authorized_operations=False,
            )
        elif k == 2:
            batch = _core.build_batch([(b"k", b"v%d" % i, None, None)])
            req = produce_request(9, topic, 0, batch)
        elif k == 3:
            # a long poll that waits its full 200 ms (nothing that high is ever written)
            req = fetch_request(12, topic, 0, 0, max_wait_ms=200, min_bytes=10 << 20)
        else:
            req = fetch_request(4, topic, 0, 0)
        kinds.append((cid, req))
        payload += encode_request(req, cid, "pipeline")
    with connect(target, timeout=30) as s:
        s.sendall(payload)
        for cid, req in kinds:
            got, response = decode_response(read_frame(s), req.__api_key__, req.__version__)
            assert got == cid
            if req.__api_key__ == 0:
                p = response.responses[0].partition_responses[0]
                assert p.error_code.value == 0
    honest_after(target, witness)


def test_client_that_never_reads_its_responses(target: BrokerProcess, witness: Witness) -> None:
    """A client pipelines requests with large in-memory responses and never reads: the
    broker must stop reading from it (back-pressure) rather than buffer the responses."""
    # Metadata v1 for 2000 unknown topics (no auto-creation): ~60 kB of response each.
    names = [f"nope-{i:05d}-" + "x" * 20 for i in range(2000)]
    req = request(3, 4, topics=[request_topic(n) for n in names], allow_auto_topic_creation=False)
    one = encode_request(req, 1, "no-reader")
    probe = MemoryProbe(target.proc.pid)
    s = connect(target)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.setblocking(False)
    sent = 0
    deadline = time.monotonic() + 8.0
    stalled_since = None
    while time.monotonic() < deadline:
        _, writable, _ = select.select([], [s], [], 0.2)
        if not writable:
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > 1.5:
                break  # the broker stopped reading: back-pressure reached us
            continue
        stalled_since = None
        try:
            sent += s.send(one * 8)
        except BlockingIOError:
            continue
    requests_sent = sent // len(one)
    # Had the broker kept reading it would hold every response: bound what it took in.
    assert requests_sent < 2000, f"broker read {requests_sent} requests without a reader"
    probe.assert_bounded()
    assert_alive(target)
    api_versions_ok(target)  # other connections are served meanwhile
    s.close()
    honest_after(target, witness)


def request_topic(name: str):
    from kio.index import load_request_schema

    from broker.protocol import make, nested

    cls = nested(load_request_schema(3, 4), "MetadataRequestTopic")
    return make(cls, name=name)


def test_malformed_request_is_logged_once_with_the_client_id(target: BrokerProcess) -> None:
    client_id = "hostile-logged-7f3a"
    with connect(target) as s:
        # Metadata v9 whose topics array runs past the frame, behind a valid header
        s.sendall(frame(header_v2(3, 9, 77, client_id) + _uvarint(5) + b"\0"))
        assert is_closed(s)
    deadline = time.monotonic() + 5
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = [ln for ln in target.output().splitlines() if client_id in ln]
        if lines:
            break
        time.sleep(0.05)
    assert len(lines) == 1, lines
    assert_alive(target)


def test_array_bounds_walk_accepts_every_valid_request() -> None:
    """broker/request_bounds.py runs before every decode: it must never refuse a valid
    request (an honest client would lose its connection). Random valid requests of every
    served API and version walk exactly to the end of their frame."""
    import random

    from test_fuzz import random_entity

    from broker.handlers import discover
    from broker.protocol import parse_request_header, request_schema
    from broker.request_bounds import _walk, plan_for

    rng = random.Random(20261126)
    walked = 0
    for key, module in sorted(discover().items()):
        for version in range(module.MIN_VERSION, module.MAX_VERSION + 1):
            schema = request_schema(key, version)
            for _ in range(10):
                try:
                    data = encode_request(random_entity(rng, schema), 1, "walk")[4:]
                except Exception:  # noqa: BLE001 - a random value kio cannot encode
                    continue
                header = parse_request_header(data)
                assert _walk(plan_for(schema), data, header.body_offset, len(data)) == len(data)
                walked += 1
    assert walked > 1000


def test_response_with_a_lying_array_count_is_refused_not_aborting() -> None:
    """A follower decodes its leader's Fetch responses with the same codec: a response
    announcing 2^32-2 topics must raise ProtocolError, not abort the process (checked in
    a child process, since an abort would take the test runner down)."""
    import subprocess
    import sys

    code = (
        "import struct\n"
        "from broker.protocol import ProtocolError, decode_response\n"
        "frame = struct.pack('>i', 9) + b'\\0' + struct.pack('>ihi', 0, 0, 0)"
        " + b'\\xff\\xff\\xff\\xff\\x0f'\n"
        "try:\n"
        "    decode_response(frame, 1, 12)\n"
        "except ProtocolError as exc:\n"
        "    print('refused:', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "refused:" in out.stdout
