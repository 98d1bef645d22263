"""Connections: size-prefixed frames, dispatch to handlers, in-order pipelined responses.

One ``KafkaConnection`` (an asyncio BufferedProtocol on uvloop) per client socket. The
socket is read into a reused 64 KiB read-ahead buffer; a frame that does not fit there is
read straight into a buffer of its own (taken from a small server-wide pool: decoding copies
what it keeps, so the buffer is given back once its request is decoded, unless a view of it
is still alive). Each request frame starts a task right away (pipelining: a long-polling
Fetch does not hold up the requests behind it), and a per-connection writer sends the
responses strictly in request order. Zero-copy Fetch responses (``RawResponse``) are sent
with sendfile(2) on a dup of the socket's fd, after the transport's own buffer has drained;
uvloop has no ``loop.sendfile``.

Limits: a size prefix above socket.request.max.bytes (or negative) closes the connection
before anything is buffered for it; a large frame's buffer starts at 1 MiB and doubles as
its bytes arrive, never sized by the prefix alone; at most MAX_IN_FLIGHT requests per
connection are read ahead (reading pauses beyond that).
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import errno
import logging
import os
import socket
import struct
import time
from typing import TYPE_CHECKING, Any

from broker.handlers import RequestContext
from broker.protocol import (
    CloseConnection,
    ProtocolError,
    RawResponse,
    decode_request,
    encode_response,
    parse_request_header,
)
from fastlog._core import sendfile_chunk

if TYPE_CHECKING:
    from broker.server import Broker

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 64
MIN_INFLIGHT_BYTES = 16 << 20
WRITE_HIGH_WATER = 1 << 20
WRITE_LOW_WATER = 1 << 18
READ_AHEAD = 64 << 10
LARGE_FRAME_START = 1 << 20  # a large frame's buffer starts here and doubles as bytes arrive
MALLOC_MMAP_THRESHOLD = 8 << 20  # blocks below this come from the heap, not mmap
MALLOC_TRIM_THRESHOLD = 64 << 20  # free heap kept before it is returned to the kernel
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
FRAME_BUFFERS_KEPT = 8  # spare large-frame buffers kept by the server (not per connection)
FRAME_BUFFER_KEEP_MAX = 4 << 20
_I32 = struct.Struct(">i")
_CLOSE = object()  # response slot value: close the connection after earlier responses


def tune_allocator() -> None:
    """Keep freed request-sized blocks in the process (glibc only; elsewhere a no-op).

    Every Produce request allocates a few blocks of its size (kio's copy of the records,
    the writable copy offsets are assigned in). With glibc's defaults the heap top is given
    back to the kernel as soon as a megabyte is free, so each request page-faults its
    blocks in again: that, not the copy, was most of the cost of a copy in the profile.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD)


class KafkaConnection(asyncio.BufferedProtocol):
    def __init__(self, server: KafkaServer) -> None:
        self.server = server
        self.broker: Broker = server.broker
        self.max_request = int(self.broker.config.get("socket.request.max.bytes"))
        self.transport: asyncio.Transport | None = None
        self.peer: str = "?"
        self.client_id: str | None = None
        # Read-ahead buffer for small frames (many per read); a frame too large for it is
        # read into its own bytearray (self._frame) so that its body is never copied.
        self._rbuf = bytearray(READ_AHEAD)
        self._rview = memoryview(self._rbuf)
        self._rlen = 0
        self._frame: bytearray | None = None
        self._frame_fill = 0
        self._frame_target = 0  # the size of the large frame being read into self._frame
        self._decoded: bytearray | None = None  # a large frame's buffer, decoded, to give back
        self._slots: collections.deque[asyncio.Future[Any]] = collections.deque()
        # Request bytes read but not yet answered: reading pauses above a bound, so a client
        # pipelining large requests cannot make the broker hold more than about two of them.
        self._slot_bytes: collections.deque[int] = collections.deque()
        self._inflight_bytes = 0
        self._frame_size = 0
        self.max_inflight_bytes = max(self.max_request, MIN_INFLIGHT_BYTES)
        self._slot_ready = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = False
        self._reading_paused = False
        self._closed_input = False
        self._writer_task: asyncio.Task[None] | None = None
        self._dup_fd = -1
        self.last_active = time.monotonic()

    # -- asyncio.BufferedProtocol ----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER, low=WRITE_LOW_WATER)
        self._writer_task = asyncio.get_running_loop().create_task(self._writer())
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.server.connections.discard(self)
        self._writable.set()
        self._slot_ready.set()
        for slot in self._slots:
            if not slot.done():
                slot.cancel()
        if self._writer_task is not None and not self._writer_task.done():
            self._writer_task.cancel()
        if self._dup_fd >= 0:
            try:
                asyncio.get_running_loop().remove_writer(self._dup_fd)
            except Exception:  # noqa: BLE001 - the loop may be closing
                pass
            os.close(self._dup_fd)
            self._dup_fd = -1

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def get_buffer(self, sizehint: int) -> memoryview:
        # The kernel copies straight into the large frame being filled, or into the
        # read-ahead buffer behind the bytes already there.
        if self._decoded is not None:
            # uvloop holds the buffer it read into until it asks for the next one: only
            # now can a decoded frame's buffer pass the pool's no-views-left check.
            self.server.give_back_frame_buffer(self._decoded)
            self._decoded = None
        frame = self._frame
        if frame is not None:
            fill = self._frame_fill
            target = self._frame_target
            if fill == len(frame):
                # Grown as bytes arrive, never to the announced size up front: a client
                # announcing socket.request.max.bytes and sending nothing costs little.
                frame += bytes(min(len(frame), target - fill))
            return memoryview(frame)[fill:target]
        return self._rview[self._rlen :]

    def buffer_updated(self, nbytes: int) -> None:
        if self._closed:
            return
        self.last_active = time.monotonic()
        frame = self._frame
        if frame is not None:
            self._frame_fill += nbytes
            if self._frame_fill < self._frame_target:
                return
            self._frame = None
            self._frame_size = size = self._frame_target
            view = memoryview(frame)[:size].toreadonly()  # kio wants a read-only buffer
            ok = self._dispatch_guarded(view)
            view.release()
            self._decoded = frame
            if ok:
                self._maybe_pause_reading()
            return
        self._rlen += nbytes
        self._split_frames()

    def _split_frames(self) -> None:
        """Dispatch every complete frame in the read-ahead buffer; keep a partial one."""
        rbuf = self._rbuf
        n = self._rlen
        pos = 0
        while n - pos >= 4:
            (size,) = _I32.unpack_from(rbuf, pos)
            if size < 0 or size > self.max_request:
                # Refused before buffering the body: CVE-2022-34917 style memory exhaustion.
                log.warning(
                    "closing %s: request size %d outside 0..socket.request.max.bytes (%d)",
                    self.peer,
                    size,
                    self.max_request,
                )
                self._rlen = 0
                self.abort()
                return
            end = pos + 4 + size
            if end > n:
                if 4 + size > len(rbuf):
                    # Too large for the read-ahead buffer: it gets a buffer of its own that
                    # the rest of it is read into directly.
                    have = n - pos - 4
                    frame = self.server.take_frame_buffer(min(size, max(LARGE_FRAME_START, have)))
                    frame[:have] = self._rview[pos + 4 : n]
                    self._frame = frame
                    self._frame_fill = have
                    self._frame_target = size
                    self._rlen = 0
                    self._maybe_pause_reading()
                    return
                break
            self._frame_size = size
            # One copy of a small frame out of the read-ahead buffer, which is reused.
            if not self._dispatch_guarded(bytes(self._rview[pos + 4 : end])):
                return
            pos = end
        if pos:
            rest = n - pos
            if rest:
                rbuf[:rest] = rbuf[pos:n]
            self._rlen = rest
        self._maybe_pause_reading()

    def _dispatch_guarded(self, frame: bytes | memoryview) -> bool:
        """Dispatch one frame; False when nothing more may be read from this connection."""
        try:
            self._dispatch(frame)
        except Exception:  # a bug here must cost this connection only
            log.exception("closing %s: cannot dispatch a request", self.peer)
            self._rlen = 0
            self.abort()
            return False
        if self._closed:
            return False
        if self._closed_input:
            # Nothing after a refused request is processed (its response would never be
            # sent): drop the rest of what was read.
            self._rlen = 0
            self._frame = None
            return False
        return True

    def _maybe_pause_reading(self) -> None:
        if not self._reading_paused and (
            len(self._slots) >= MAX_IN_FLIGHT or self._inflight_bytes >= self.max_inflight_bytes
        ):
            self._reading_paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]

    def eof_received(self) -> bool | None:
        # Keep the socket half-open until the in-flight responses are written.
        self._push_slot(_CLOSE)
        self._closed_input = True
        return True

    # -- requests ------------------------------------------------------------------------
    def _push_slot(self, value: Any) -> asyncio.Future[Any]:
        fut = asyncio.get_running_loop().create_future()
        if value is not None:
            fut.set_result(value)
        self._slots.append(fut)
        self._slot_bytes.append(self._frame_size)
        self._inflight_bytes += self._frame_size
        self._frame_size = 0
        self._slot_ready.set()
        return fut

    def _dispatch(self, frame: bytes | memoryview) -> None:
        try:
            header = parse_request_header(frame)
        except ProtocolError as exc:
            log.warning("closing %s: %s", self.peer, exc)
            self._push_slot(_CLOSE)
            self._closed_for_input()
            return
        self.client_id = header.client_id if header.client_id is not None else self.client_id
        handler = self.broker.handlers.get(header.api_key)
        if handler is None or not (
            handler.MIN_VERSION <= header.api_version <= handler.MAX_VERSION
        ):
            if header.api_key == 18:  # ApiVersions: answer in v0 form with our ranges
                slot = self._push_slot(None)
                slot.set_result(self.broker.unsupported_api_versions_response(header))
                return
            log.warning(
                "closing %s (client %r): unsupported api %d version %d",
                self.peer,
                header.client_id,
                header.api_key,
                header.api_version,
            )
            self._push_slot(_CLOSE)
            self._closed_for_input()
            return
        try:
            request = decode_request(header, frame)
        except ProtocolError as exc:
            log.warning("closing %s (client %r): %s", self.peer, header.client_id, exc)
            self._push_slot(_CLOSE)
            self._closed_for_input()
            return
        slot = self._push_slot(None)
        ctx = RequestContext(
            broker=self.broker,
            api_key=header.api_key,
            api_version=header.api_version,
            correlation_id=header.correlation_id,
            client_id=header.client_id,
            connection=self,
        )
        task = asyncio.get_running_loop().create_task(self._handle(handler, ctx, request, slot))
        self.server.tasks.add(task)
        task.add_done_callback(self.server.tasks.discard)

    def _closed_for_input(self) -> None:
        """Stop reading; earlier responses still go out before the close."""
        self._closed_input = True
        if self.transport is not None and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()

    async def _handle(
        self, handler: Any, ctx: RequestContext, request: Any, slot: asyncio.Future[Any]
    ) -> None:
        started = time.perf_counter()
        try:
            response = await handler.handle(ctx, request)
        except asyncio.CancelledError:
            if not slot.done():
                slot.cancel()
            raise
        except CloseConnection as exc:
            log.info("closing %s (client %r): %s", self.peer, ctx.client_id, exc)
            if not slot.done():
                slot.set_result(_CLOSE)
            return
        except Exception:
            log.exception(
                "api %d v%d from %s (client %r) failed; closing the connection",
                ctx.api_key,
                ctx.api_version,
                self.peer,
                ctx.client_id,
            )
            if not slot.done():
                slot.set_result(_CLOSE)
            return
        if slot.done():
            return
        try:
            if response is None:
                slot.set_result(None)  # acks=0 Produce: no response at all
            elif isinstance(response, RawResponse):
                frame = response.in_memory_frame()
                slot.set_result(response if frame is None else frame)
            else:
                slot.set_result(encode_response(response, ctx.correlation_id))
        except Exception:
            log.exception("cannot encode the response to api %d v%d", ctx.api_key, ctx.api_version)
            slot.set_result(_CLOSE)
        self.broker.observe_request(ctx, time.perf_counter() - started)

    # -- responses -----------------------------------------------------------------------
    async def _writer(self) -> None:
        try:
            while not self._closed:
                if not self._slots:
                    self._slot_ready.clear()
                    await self._slot_ready.wait()
                    continue
                slot = self._slots[0]
                try:
                    value = await slot
                except asyncio.CancelledError:
                    if self._closed:
                        return
                    value = _CLOSE
                self._slots.popleft()
                self._inflight_bytes -= self._slot_bytes.popleft()
                if (
                    self._reading_paused
                    and len(self._slots) < MAX_IN_FLIGHT // 2
                    and self._inflight_bytes < self.max_inflight_bytes // 2
                ):
                    if not self._closed_input:
                        self._reading_paused = False
                        self.transport.resume_reading()  # type: ignore[union-attr]
                if value is None:
                    continue
                if value is _CLOSE:
                    self.close()
                    return
                if not self._writable.is_set():
                    await self._writable.wait()
                    if self._closed:
                        return
                if isinstance(value, RawResponse):
                    await self._send_raw(value)
                else:
                    self.transport.write(value)  # type: ignore[union-attr]
        except (ConnectionError, OSError) as exc:
            log.info("connection %s lost while writing: %s", self.peer, exc)
            self.abort()
        except asyncio.CancelledError:
            pass

    async def _drain_all(self) -> None:
        """Wait until the transport has handed every buffered byte to the kernel."""
        t = self.transport
        assert t is not None
        while t.get_write_buffer_size() > 0:
            if self._closed:
                raise ConnectionResetError("connection closed")
            t.set_write_buffer_limits(high=0, low=0)  # pause_writing now, resume at empty
            try:
                if self._writable.is_set():
                    await asyncio.sleep(0.001)  # no pause came: poll rather than spin
                else:
                    await self._writable.wait()
            finally:
                if not self._closed:
                    t.set_write_buffer_limits(high=WRITE_HIGH_WATER, low=WRITE_LOW_WATER)

    async def _wait_socket_writable(self) -> None:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        fd = self._dup_fd

        def ready() -> None:
            loop.remove_writer(fd)
            if not fut.done():
                fut.set_result(None)

        loop.add_writer(fd, ready)
        try:
            await fut
        finally:
            if not fut.done():
                loop.remove_writer(fd)

    async def _send_raw(self, response: RawResponse) -> None:
        t = self.transport
        assert t is not None
        for part in response.framed_parts():
            if isinstance(part, bytes | bytearray):
                t.write(part)
                continue
            await self._drain_all()
            if self._dup_fd < 0:
                sock = t.get_extra_info("socket")
                self._dup_fd = os.dup(sock.fileno())
            position, remaining = part.position, part.length
            while remaining > 0:
                if self._closed:
                    raise ConnectionResetError("connection closed")
                try:
                    sent = sendfile_chunk(self._dup_fd, part.fd, position, remaining)
                except OSError as exc:
                    if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                        sent = 0
                    else:
                        raise
                if sent == 0:
                    if position >= part.position + part.length:
                        break
                    await self._wait_socket_writable()
                    continue
                position += sent
                remaining -= sent
            if remaining > 0:
                # The file ended early (truncated underneath us): the frame cannot be
                # completed, so the client must see a broken connection, not garbage.
                raise ConnectionResetError("segment shorter than the fetch slice")

    # -- closing -------------------------------------------------------------------------
    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        self._closed = True
        if self.transport is not None:
            self.transport.abort()


class KafkaServer:
    """The listener: accepts connections and tracks them for shutdown."""

    def __init__(self, broker: Broker, host: str, port: int) -> None:
        self.broker = broker
        self.host = host
        self.port = port
        self.connections: set[KafkaConnection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.base_events.Server | None = None
        self._idle_task: asyncio.Task[None] | None = None
        # Buffers of large frames, reused: a fresh megabyte per Produce request costs page
        # faults (glibc gives large blocks back to the kernel), more than the copy it saves.
        self._frame_buffers: list[bytearray] = []

    def take_frame_buffer(self, at_least: int) -> bytearray:
        """A buffer for one large request frame, of ``at_least`` bytes or more."""
        pool = self._frame_buffers
        for i in range(len(pool) - 1, -1, -1):
            if len(pool[i]) >= at_least:
                return pool.pop(i)
        # Rounded up so that a spare fits the next request of about the same size.
        return bytearray(max(at_least, LARGE_FRAME_START))

    def give_back_frame_buffer(self, buf: bytearray) -> None:
        """Return a frame's buffer once its request is decoded (decoding copies what it
        keeps); a buffer something still holds a view of is never reused."""
        if len(buf) > FRAME_BUFFER_KEEP_MAX or len(self._frame_buffers) >= FRAME_BUFFERS_KEPT:
            return
        try:
            buf.append(0)  # raises BufferError while any view of it is alive
        except BufferError:
            return
        del buf[-1]
        self._frame_buffers.append(buf)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: KafkaConnection(self),
            self.host or None,
            self.port,
            backlog=1024,
            reuse_address=True,
        )
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]
        self._idle_task = loop.create_task(self._close_idle())

    async def _close_idle(self) -> None:
        idle_ms = int(self.broker.config.get("connections.max.idle.ms"))
        if idle_ms <= 0:
            return
        while True:
            await asyncio.sleep(min(30.0, idle_ms / 1000))
            cutoff = time.monotonic() - idle_ms / 1000
            for conn in list(self.connections):
                if conn.last_active < cutoff and not conn._slots:
                    log.info("closing idle connection %s", conn.peer)
                    conn.close()

    async def stop(self) -> None:
        if self._idle_task is not None:
            self._idle_task.cancel()
        if self._server is not None:
            self._server.close()
        for task in list(self.tasks):
            task.cancel()
        for conn in list(self.connections):
            conn.close()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2)
            except TimeoutError:
                pass
