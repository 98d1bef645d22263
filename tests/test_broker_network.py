"""Framing, ApiVersions and connection handling against a live broker, on raw sockets.

``RawClient`` (also used by the other broker tests) speaks the wire protocol with kio
entities, so every check here sees exactly the bytes the broker sends.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

import pytest
from kio.index import load_request_schema
from kio.schema.api_versions.v0.request import ApiVersionsRequest as ApiVersionsV0
from kio.schema.api_versions.v3.request import ApiVersionsRequest as ApiVersionsV3

from broker.protocol import decode_response, encode_request, make


class RawClient:
    def __init__(self, bootstrap: str, timeout: float = 10.0) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.correlation = 0

    def close(self) -> None:
        self.sock.close()

    def send_frame(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, request: Any, correlation_id: int | None = None) -> int:
        if correlation_id is None:
            self.correlation += 1
            correlation_id = self.correlation
        self.sock.sendall(encode_request(request, correlation_id, "raw-test"))
        return correlation_id

    def _read_exact(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed by broker")
            out += chunk
        return bytes(out)

    def read_frame(self) -> bytes:
        (size,) = struct.unpack(">i", self._read_exact(4))
        return self._read_exact(size)

    def receive(self, request: Any) -> tuple[int, Any]:
        frame = self.read_frame()
        return decode_response(frame, request.__api_key__, request.__version__)

    def call(self, request: Any) -> Any:
        cid = self.send(request)
        got, response = self.receive(request)
        assert got == cid
        return response

    def is_closed(self, timeout: float = 5.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False


def request(api_key: int, version: int, **fields: Any) -> Any:
    return make(load_request_schema(api_key, version), **fields)


def api_versions_request(version: int) -> Any:
    return request(18, version, client_software_name="raw-test", client_software_version="1.0")


@pytest.fixture
def client(broker):
    c = RawClient(broker.bootstrap)
    yield c
    c.close()


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_api_versions_every_version(client: RawClient, version: int) -> None:
    response = client.call(api_versions_request(version))
    assert response.error_code.value == 0
    ranges = {a.api_key: (a.min_version, a.max_version) for a in response.api_keys}
    assert ranges[18] == (0, 3)
    assert ranges[3] == (0, 12)
    from broker.handlers import discover

    assert ranges == {k: (m.MIN_VERSION, m.MAX_VERSION) for k, m in discover().items()}


def test_api_versions_v3_response_header_is_v0(client: RawClient) -> None:
    client.send(api_versions_request(3), correlation_id=77)
    frame = client.read_frame()
    # v0 header: correlation id then directly the body (error code int16), no tagged fields
    assert struct.unpack_from(">ih", frame, 0) == (77, 0)


def test_api_versions_unknown_version_answers_v0_with_ranges(client: RawClient) -> None:
    # ApiVersions v4 is not served: the broker answers UNSUPPORTED_VERSION in v0 form.
    client.send(api_versions_request(4), correlation_id=5)
    frame = client.read_frame()
    correlation, response = decode_response(frame, 18, 0)
    assert correlation == 5
    assert response.error_code.value == 35
    assert any(a.api_key == 18 and a.max_version == 3 for a in response.api_keys)
    # the connection stays usable
    assert client.call(ApiVersionsV0()).error_code.value == 0


def test_api_versions_v3_bad_software_name(client: RawClient) -> None:
    bad = ApiVersionsV3(client_software_name="-bad name", client_software_version="1")
    assert client.call(bad).error_code.value == 42


def test_pipelined_responses_in_request_order(client: RawClient) -> None:
    reqs = []
    for i in range(50):
        version = i % 4
        reqs.append((client.send(api_versions_request(version)), version))
        reqs.append(
            (
                client.send(
                    request(
                        3,
                        12,
                        topics=(),
                        allow_auto_topic_creation=False,
                        include_topic_authorized_operations=False,
                    )
                ),
                None,
            )
        )
    for cid, version in reqs:
        if version is None:
            got, _ = decode_response(client.read_frame(), 3, 12)
        else:
            got, _ = decode_response(client.read_frame(), 18, version)
        assert got == cid


def test_hostile_size_prefix_refused(broker) -> None:
    c = RawClient(broker.bootstrap)
    c.send_frame(struct.pack(">i", 2**31 - 1))  # 2 GiB announced, nothing allocated
    assert c.is_closed()
    c.close()
    c = RawClient(broker.bootstrap)
    c.send_frame(struct.pack(">i", -5))
    assert c.is_closed()
    c.close()
    # everyone else is still served
    c = RawClient(broker.bootstrap)
    assert c.call(ApiVersionsV0()).error_code.value == 0
    c.close()


def test_size_limit_is_configurable(make_broker) -> None:
    b = make_broker({"socket.request.max.bytes": "1000"})
    c = RawClient(b.bootstrap)
    c.send_frame(struct.pack(">i", 1001) + b"\0" * 100)
    assert c.is_closed()
    c.close()
    c = RawClient(b.bootstrap)
    assert c.call(ApiVersionsV0()).error_code.value == 0
    c.close()


def test_unknown_api_and_malformed_close_only_that_connection(broker) -> None:
    good = RawClient(broker.bootstrap)
    assert good.call(ApiVersionsV0()).error_code.value == 0
    # unknown API key 999
    bad = RawClient(broker.bootstrap)
    body = struct.pack(">hhi", 999, 0, 1) + struct.pack(">h", 1) + b"x"
    bad.send_frame(struct.pack(">i", len(body)) + body)
    assert bad.is_closed()
    bad.close()
    # Metadata v9 with a truncated body
    bad = RawClient(broker.bootstrap)
    body = struct.pack(">hhi", 3, 9, 2) + struct.pack(">h", 1) + b"x" + b"\0" + b"\x05"
    bad.send_frame(struct.pack(">i", len(body)) + body)
    assert bad.is_closed()
    bad.close()
    # a frame shorter than a header
    bad = RawClient(broker.bootstrap)
    bad.send_frame(struct.pack(">i", 3) + b"\0\0\0")
    assert bad.is_closed()
    bad.close()
    assert good.call(ApiVersionsV0()).error_code.value == 0
    good.close()


def test_responses_before_a_malformed_request_still_arrive(broker) -> None:
    c = RawClient(broker.bootstrap)
    frames = encode_request(ApiVersionsV0(), 1, "x") + encode_request(ApiVersionsV0(), 2, "x")
    body = struct.pack(">hhi", 3, 9, 3) + b"\xff"
    c.send_frame(frames + struct.pack(">i", len(body)) + body)
    assert decode_response(c.read_frame(), 18, 0)[0] == 1
    assert decode_response(c.read_frame(), 18, 0)[0] == 2
    assert c.is_closed()
    c.close()


def test_split_frames_across_packets(client: RawClient) -> None:
    data = encode_request(ApiVersionsV0(), 9, "slow")
    for i in range(len(data)):
        client.send_frame(data[i : i + 1])
        time.sleep(0.001)
    assert decode_response(client.read_frame(), 18, 0)[0] == 9


def test_nothing_after_a_malformed_request_is_processed(broker) -> None:
    """A request behind a malformed one in the same packet is not executed (its response
    could never be sent)."""
    from test_broker_produce import batch, fetch_request, produce_request

    c = RawClient(broker.bootstrap)
    bad = struct.pack(">hhi", 3, 9, 3) + b"\xff"
    good = encode_request(produce_request(9, "after-malformed", 0, batch([b"ghost"])), 4, "x")
    c.send_frame(struct.pack(">i", len(bad)) + bad + good)
    assert c.is_closed()
    c.close()
    c = RawClient(broker.bootstrap)
    r = c.call(fetch_request(12, "after-malformed", 0, 0))
    p = r.responses[0].partitions[0]
    assert p.error_code.value == 3 or p.high_watermark == 0
    c.close()


def test_idle_connections_are_closed(make_broker) -> None:
    b = make_broker({"connections.max.idle.ms": "500"})
    idle = RawClient(b.bootstrap)
    assert idle.call(ApiVersionsV0()).error_code.value == 0
    assert idle.is_closed(timeout=10)
    idle.close()


def test_shutdown_during_long_poll(make_broker) -> None:
    from test_broker_produce import batch, fetch_request, produce_request

    b = make_broker()
    c = RawClient(b.bootstrap)
    c.call(produce_request(9, "parked", 0, batch([b"v"])))
    c.send(fetch_request(12, "parked", 0, 1, max_wait_ms=60000, min_bytes=1))
    time.sleep(0.3)
    c.sock.settimeout(0.2)
    with pytest.raises(TimeoutError):
        c.sock.recv(1)  # parked: no answer yet
    started = time.monotonic()
    assert b.stop() == 0
    assert time.monotonic() - started < 15  # the parked fetch does not hold the shutdown
    c.close()
