"""sendfile_chunk against real sockets: blocking, non-blocking (the EAGAIN path), errors."""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastlog import _core

SIZE = 8 * 1024 * 1024


@pytest.fixture(scope="module")
def segment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, bytes]]:
    data = os.urandom(SIZE)
    path = tmp_path_factory.mktemp("sendfile") / "00000000000000000000.log"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    yield fd, data
    os.close(fd)


def drain(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n > 0:
        chunk = sock.recv(min(n, 1 << 20))
        assert chunk, "peer closed early"
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def test_blocking_socket_sends_the_whole_slice(segment) -> None:
    # 3 MB exceeds the socket buffers: sendfile blocks until the reader thread drains, which it
    # can only do because the C loop runs without the GIL (else this test would hang)
    fd, data = segment
    a, b = socket.socketpair()
    with a, b:
        received: list[bytes] = []
        reader = threading.Thread(target=lambda: received.append(drain(b, 3_000_001)))
        reader.start()
        assert _core.sendfile_chunk(a.fileno(), fd, 12345, 3_000_001) == 3_000_001
        reader.join(timeout=30)
        assert received[0] == data[12345 : 12345 + 3_000_001]


def test_non_blocking_socket_returns_short_on_eagain(segment) -> None:
    fd, data = segment
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        offset, left, got = 100, SIZE - 200, bytearray()
        calls = short = 0
        while left:
            n = _core.sendfile_chunk(a.fileno(), fd, offset, left)
            calls += 1
            assert 0 <= n <= left
            if n < left:
                short += 1  # the socket buffer filled: EAGAIN ended the C loop, no exception
                # as the broker would: wait for the peer to read, then for writability
                got += b.recv(1 << 20)
                select.select([], [a], [], 5)
            offset += n
            left -= n
        b.setblocking(False)
        while True:
            try:
                chunk = b.recv(1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                break
            got += chunk
        assert short >= 1 and calls > 1
        assert bytes(got) == data[100 : SIZE - 100]


def test_full_socket_returns_zero(segment) -> None:
    fd, _ = segment
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        while True:
            try:
                a.send(b"x" * 65536)
            except BlockingIOError:
                break
        assert _core.sendfile_chunk(a.fileno(), fd, 0, 1000) == 0


def test_past_end_of_file_sends_what_there_is(segment) -> None:
    fd, data = segment
    a, b = socket.socketpair()
    with a, b:
        assert _core.sendfile_chunk(a.fileno(), fd, SIZE - 10, 100) == 10
        assert drain(b, 10) == data[-10:]
        assert _core.sendfile_chunk(a.fileno(), fd, SIZE + 10, 100) == 0
        assert _core.sendfile_chunk(a.fileno(), fd, 0, 0) == 0


def test_tcp_socket(segment) -> None:
    fd, data = segment
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        conn, _ = server.accept()
        with client, conn:
            received: list[bytes] = []
            reader = threading.Thread(target=lambda: received.append(drain(conn, SIZE)))
            reader.start()
            assert _core.sendfile_chunk(client.fileno(), fd, 0, SIZE) == SIZE
            reader.join(timeout=30)
            assert received[0] == data


def test_errors_raise_oserror(segment, tmp_path: Path) -> None:
    fd, _ = segment
    a, b = socket.socketpair()
    b.close()
    with a, pytest.raises(OSError) as info:
        _core.sendfile_chunk(a.fileno(), fd, 0, 1 << 20)  # peer gone: EPIPE or ECONNRESET
    assert info.value.errno in (errno.EPIPE, errno.ECONNRESET)
    with pytest.raises(OSError) as info:
        _core.sendfile_chunk(-1, fd, 0, 10)
    assert info.value.errno == errno.EBADF
    with pytest.raises(ValueError):
        _core.sendfile_chunk(1, fd, -1, 10)
    with pytest.raises(ValueError):
        _core.sendfile_chunk(1, fd, 0, -10)
