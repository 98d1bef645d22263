"""What goes on the wire, independent of any client: a raw ApiVersions probe, and the codec
librdkafka really sends for a requested one given the broker's advertised versions."""

from __future__ import annotations

import socket
import struct


def api_versions(bootstrap: str, timeout: float = 10.0) -> dict[int, tuple[int, int]]:
    """The broker's advertised ApiVersions (v0 request): api key -> (min, max)."""
    host, port = bootstrap.rsplit(":", 1)
    client_id = b"fastlog-tests"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack_from(">i", buf)[0]:
            chunk = s.recv(65536)
            assert chunk, "broker closed the connection during ApiVersions"
            buf += chunk
    corr, error, n = struct.unpack_from(">ihi", buf, 4)
    assert corr == 1 and error == 0, (corr, error)
    out = {}
    for i in range(n):
        key, lo, hi = struct.unpack_from(">hhh", buf, 14 + 6 * i)
        out[key] = (lo, hi)
    return out


def librdkafka_sends_codec(bootstrap: str, librdkafka_version: tuple[int, ...], codec: str) -> str:
    """The codec a librdkafka producer really puts on the wire for `codec`.

    librdkafka before 2.11.1 keeps gzip, snappy and lz4 only if the broker's Produce range
    reaches down to v0 (rd_kafka_msgset_writer_select_MsgVersion asks whether Produce is
    supported within [0, 0]); otherwise it logs "Broker does not support compression type"
    and sends the batch uncompressed. zstd needs Produce v7 (and Fetch v10) in any version.
    """
    if codec in ("gzip", "snappy", "lz4") and librdkafka_version < (2, 11, 1):
        produce_min = api_versions(bootstrap)[0][0]
        return codec if produce_min == 0 else "none"
    return codec
