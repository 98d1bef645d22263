"""Kafka wire protocol codecs: request headers, kio request/response entities, and our own
zero-copy Fetch response framing.

Request and response bodies are decoded/encoded by kio (generated from Kafka's JSON
schemas); kio also knows each version's header version (flexible or not, and the
ApiVersions quirk of a v0 response header). Fetch responses are framed here by hand so that
the record bytes are never Python objects: a ``RawResponse`` is a list of header byte
strings and ``FetchSlice`` file ranges the connection sends with sendfile(2).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

from kio.index import KioIndexError, load_request_schema
from kio.schema.errors import ErrorCode
from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1
from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2
from kio.serial import entity_reader, entity_writer

from broker.request_bounds import bounded_body, skip_tagged_fields
from broker.request_bounds import encode_uvarint as _uvarint

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_HEAD = struct.Struct(">hhi")  # api_key, api_version, correlation_id

# A few error codes used outside handlers.
NONE = 0
UNSUPPORTED_VERSION = 35
INVALID_REQUEST = 42


class ProtocolError(Exception):
    """A frame that cannot be understood; the connection is closed after logging it."""


class CloseConnection(Exception):
    """Raised by a handler to close the connection after the earlier responses (acks=0
    Produce failures: the producer only notices a closed connection)."""


@dataclass(slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    body_offset: int  # where the request body starts within the frame


def error_code(code: int) -> ErrorCode:
    """kio's ErrorCode enum member for a numeric Kafka error code."""
    return _error_code(code)


@cache
def _error_code(code: int) -> ErrorCode:
    try:
        return ErrorCode(code)
    except ValueError:
        return ErrorCode.unknown_server_error


def _extra_schemas() -> dict[tuple[int, int], tuple[type, type]]:
    """Schemas kio no longer ships (old admin versions, broker/handlers/_legacy_schemas.py:
    ``LEGACY[(api_key, version)] = (request class, response class)``)."""
    try:
        from broker.handlers._legacy_schemas import LEGACY
    except ImportError:
        return {}
    return LEGACY


@cache
def request_schema(api_key: int, api_version: int) -> Any | None:
    """Request class for (api_key, version) from kio (or the legacy table), else None."""
    try:
        return load_request_schema(api_key, api_version)
    except (KioIndexError, ImportError, AttributeError, ValueError):
        extra = _extra_schemas().get((api_key, api_version))
        return extra[0] if extra else None


@cache
def response_schema(api_key: int, api_version: int) -> Any | None:
    from kio.index import load_response_schema

    try:
        return load_response_schema(api_key, api_version)
    except (KioIndexError, ImportError, AttributeError, ValueError):
        extra = _extra_schemas().get((api_key, api_version))
        return extra[1] if extra else None


@cache
def _reader(schema: type) -> Any:
    return entity_reader(schema)


@cache
def _writer(schema: type) -> Any:
    return entity_writer(schema)


def parse_request_header(frame: bytes | bytearray | memoryview) -> RequestHeader:
    """Parse a request header (v1 or v2, chosen by the API version as Kafka does).

    For an (api_key, version) kio does not know, the header is read as v1 so the caller
    still learns the correlation id and client id to answer or log with.
    """
    if len(frame) < _HEAD.size:
        raise ProtocolError(f"request of {len(frame)} bytes is shorter than a header")
    api_key, api_version, correlation_id = _HEAD.unpack_from(frame, 0)
    schema = request_schema(api_key, api_version)
    flexible = schema is not None and schema.__header_schema__ is RequestHeaderV2
    try:
        # v2 is v1 plus a tagged-field section; kio refuses tags it does not know, and the
        # header has none Kafka defines, so every tag there is skipped (KIP-482).
        header, size = _reader(RequestHeaderV1)(frame, 0)
        if flexible:
            if size < len(frame) and frame[size] == 0:  # no tags: the common case
                size += 1
            else:
                size = skip_tagged_fields(frame, size)
    except Exception as exc:  # kio raises SerialError, ValueError, KeyError (unknown tag)...
        if schema is None:
            # An unknown version might use a header layout we cannot read; the fixed part
            # is enough to answer.
            return RequestHeader(api_key, api_version, correlation_id, None, len(frame))
        raise ProtocolError(f"malformed request header: {exc}") from None
    return RequestHeader(api_key, api_version, correlation_id, header.client_id, size)


def decode_request(header: RequestHeader, frame: bytes | bytearray | memoryview) -> Any:
    """Decode the body of a request into its kio entity; raises ProtocolError."""
    schema = request_schema(header.api_key, header.api_version)
    if schema is None:
        raise ProtocolError(f"no schema for api {header.api_key} v{header.api_version}")
    try:
        # kio reserves an array's announced count before reading it (2^31-1 elements: a
        # 16 GiB allocation that aborts the process); refuse counts the frame cannot hold.
        # Tags the schema does not know are skipped (kio would refuse them).
        body, offset = bounded_body(schema, frame, header.body_offset)
        request, _ = _reader(schema)(body, offset)
    except Exception as exc:  # kio raises SerialError, ValueError, KeyError (unknown tag)...
        raise ProtocolError(
            f"malformed {schema.__name__} v{header.api_version}: {type(exc).__name__}: {exc}"
        ) from None
    return request


def encode_request(request: Any, correlation_id: int, client_id: str | None = "fastlog") -> bytes:
    """A size-prefixed request frame (for tests and tools speaking to a broker)."""
    schema = type(request)
    buf = io.BytesIO()
    buf.write(b"\0\0\0\0")
    hdr_schema = schema.__header_schema__
    _writer(hdr_schema)(
        buf,
        hdr_schema(
            request_api_key=schema.__api_key__,
            request_api_version=schema.__version__,
            correlation_id=correlation_id,
            client_id=client_id,
        ),
    )
    _writer(schema)(buf, request)
    data = buf.getbuffer()
    _I32.pack_into(data, 0, len(data) - 4)
    del data
    return buf.getvalue()


def encode_response(response: Any, correlation_id: int) -> bytes:
    """A size-prefixed response frame: header (v0 or v1, as kio's schema says) + body."""
    schema = type(response)
    buf = io.BytesIO()
    buf.write(b"\0\0\0\0")
    buf.write(_I32.pack(correlation_id))
    if schema.__header_schema__.__flexible__:
        buf.write(b"\0")  # no tagged fields in the response header
    _writer(schema)(buf, response)
    data = buf.getbuffer()
    _I32.pack_into(data, 0, len(data) - 4)
    del data
    return buf.getvalue()


def decode_response(frame: bytes, api_key: int, api_version: int) -> tuple[int, Any]:
    """Decode a response frame (without the size prefix): (correlation_id, entity)."""
    schema = response_schema(api_key, api_version)
    if schema is None:
        raise ProtocolError(f"no response schema for api {api_key} v{api_version}")
    (correlation_id,) = _I32.unpack_from(frame, 0)
    offset = 4
    try:
        if schema.__header_schema__.__flexible__:
            offset = skip_tagged_fields(frame, offset)  # none defined: all skipped
        # as decode_request: no abort on a peer's lie, unknown tags skipped
        body, offset = bounded_body(schema, frame, offset)
    except ValueError as exc:
        raise ProtocolError(f"malformed {schema.__name__} v{api_version}: {exc}") from None
    response, _ = _reader(schema)(body, offset)
    return correlation_id, response


# --------------------------------------------------------------------------------------
# Zero-copy responses


class FileRange(Protocol):
    """What ``fastlog.log.FetchSlice`` provides; the connection sends it with sendfile."""

    fd: int
    position: int
    length: int


@dataclass(slots=True)
class RawResponse:
    """A response framed by hand: ``parts`` are byte strings and file ranges, sent in
    order after a 4-byte size prefix that ``frame()`` computes."""

    parts: list[bytes | FileRange] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(len(p) if isinstance(p, bytes | bytearray) else p.length for p in self.parts)

    def framed_parts(self) -> list[bytes | FileRange]:
        """The parts with the size prefix merged into the first byte string, and adjacent
        byte strings joined (fewer writes)."""
        out: list[bytes | FileRange] = []
        pending = bytearray(_I32.pack(self.size))
        for part in self.parts:
            if isinstance(part, bytes | bytearray):
                pending += part
            else:
                if pending:
                    out.append(bytes(pending))
                    pending = bytearray()
                if part.length:
                    out.append(part)
        if pending:
            out.append(bytes(pending))
        return out

    def in_memory_frame(self) -> bytes | None:
        """The whole frame as bytes when every part is in memory (no file range), else None."""
        parts = self.parts
        if len(parts) == 1 and isinstance(parts[0], bytes):
            return _I32.pack(len(parts[0])) + parts[0]
        if all(isinstance(p, bytes | bytearray) for p in parts):
            body = b"".join(parts)  # type: ignore[arg-type]
            return _I32.pack(len(body)) + body
        return None

    def to_bytes(self) -> bytes:
        """Materialise the whole frame (tests only; reads the file ranges)."""
        import os

        out = bytearray()
        for part in self.framed_parts():
            if isinstance(part, bytes | bytearray):
                out += part
            else:
                out += os.pread(part.fd, part.length, part.position)
        return bytes(out)


def _string(value: str, flexible: bool) -> bytes:
    raw = value.encode()
    if flexible:
        return _uvarint(len(raw) + 1) + raw
    return _I16.pack(len(raw)) + raw


def _array_len(n: int | None, flexible: bool) -> bytes:
    if flexible:
        return _uvarint(0 if n is None else n + 1)
    return _I32.pack(-1 if n is None else n)


@dataclass(slots=True)
class FetchPartition:
    """One partition of a Fetch response. ``records`` is a file range, bytes, or None
    (written as zero-length records: librdkafka rejects a null record set)."""

    index: int
    error_code: int = 0
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    aborted_transactions: Sequence[tuple[int, int]] | None = None  # (producer_id, first_offset)
    preferred_read_replica: int = -1
    records: bytes | FileRange | None = None


_FETCH_PART = struct.Struct(">ihqq")  # index, error, high watermark, last stable offset
_I64 = struct.Struct(">q")
_ABORTED = struct.Struct(">qq")


def encode_fetch_response(
    version: int,
    correlation_id: int,
    topics: Iterable[tuple[str, Sequence[FetchPartition]]],
    *,
    throttle_time_ms: int = 0,
    error: int = 0,
    session_id: int = 0,
) -> RawResponse:
    """Frame a Fetch response v4-v12 by hand (layout of Kafka's FetchResponse.json)."""
    if not 4 <= version <= 12:
        raise ValueError(f"Fetch v{version} is not framed by this writer")
    flexible = version >= 12
    parts: list[bytes | FileRange] = []
    head = bytearray(_I32.pack(correlation_id))
    if flexible:
        head += b"\0"  # response header v1 tagged fields
    head += _I32.pack(throttle_time_ms)
    if version >= 7:
        head += _I16.pack(error) + _I32.pack(session_id)
    topics = list(topics)
    head += _array_len(len(topics), flexible)
    for name, partitions in topics:
        head += _string(name, flexible)
        head += _array_len(len(partitions), flexible)
        for p in partitions:
            head += _FETCH_PART.pack(p.index, p.error_code, p.high_watermark, p.last_stable_offset)
            if version >= 5:
                head += _I64.pack(p.log_start_offset)
            aborted = p.aborted_transactions
            head += _array_len(None if aborted is None else len(aborted), flexible)
            for producer_id, first_offset in aborted or ():
                head += _ABORTED.pack(producer_id, first_offset)
                if flexible:
                    head += b"\0"
            if version >= 11:
                head += _I32.pack(p.preferred_read_replica)
            records = p.records
            length = (
                0
                if records is None
                else (len(records) if isinstance(records, bytes | bytearray) else records.length)
            )
            head += _uvarint(length + 1) if flexible else _I32.pack(length)
            if length:
                if isinstance(records, bytes | bytearray):
                    head += records
                else:
                    parts.append(bytes(head))
                    head = bytearray()
                    parts.append(records)  # type: ignore[arg-type]
            if flexible:
                head += b"\0"  # partition tagged fields
        if flexible:
            head += b"\0"  # topic tagged fields
    if flexible:
        head += b"\0"  # response tagged fields
    parts.append(bytes(head))
    return RawResponse(parts)


# --------------------------------------------------------------------------------------
# Building kio entities across versions


def make(cls: type, **fields: Any) -> Any:
    """Instantiate kio entity ``cls`` with the given fields, dropping the ones its version
    does not have (one handler builds responses for every version)."""
    names = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return cls(**{k: v for k, v in fields.items() if k in names})


def nested(cls: type, name: str) -> type:
    """A nested entity class of the same schema module (e.g. MetadataResponseTopic)."""
    import sys

    return getattr(sys.modules[cls.__module__], name)


def has_field(cls: type, name: str) -> bool:
    return name in cls.__dataclass_fields__  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------
# Produce responses: the hot path's answer, framed by hand (kio's generic writer costs
# about as much as the append itself); checked byte for byte against kio in the tests.

_PRODUCE_PART = struct.Struct(">ihq")  # index, error code, base offset


def _nullable_string(value: str | None, flexible: bool) -> bytes:
    if value is None:
        return b"\0" if flexible else b"\xff\xff"
    return _string(value, flexible)


def encode_produce_response(
    version: int,
    correlation_id: int,
    topics: Iterable[tuple[str, Sequence[tuple[int, int, int, int, int, str | None]]]],
    throttle_time_ms: int = 0,
) -> RawResponse:
    """Produce response v3-v9. ``topics``: (name, [(index, error code, base offset,
    log append time, log start offset, error message)])."""
    if not 3 <= version <= 9:
        raise ValueError(f"Produce v{version} is not framed by this writer")
    flexible = version >= 9
    out = bytearray(_I32.pack(correlation_id))
    if flexible:
        out += b"\0"
    topics = list(topics)
    out += _array_len(len(topics), flexible)
    for name, partitions in topics:
        out += _string(name, flexible)
        out += _array_len(len(partitions), flexible)
        for index, code, base_offset, append_time, start_offset, message in partitions:
            out += _PRODUCE_PART.pack(index, code, base_offset)
            out += _I64.pack(append_time)
            if version >= 5:
                out += _I64.pack(start_offset)
            if version >= 8:
                out += _array_len(0, flexible)  # record_errors
                out += _nullable_string(message, flexible)
            if flexible:
                out += b"\0"
        if flexible:
            out += b"\0"
    out += _I32.pack(throttle_time_ms)
    if flexible:
        out += b"\0"
    return RawResponse([bytes(out)])
