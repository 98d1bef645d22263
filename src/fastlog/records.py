"""Value types of the storage API: Record, AppendInfo, FetchSlice; embedded input normalisation.

``Record`` (the core's type) is what ``Log.read`` yields. ``AppendInfo`` and ``FetchSlice``
are what the broker gets from ``Log.append_batches`` and ``Log.read_slice``.
``to_core_records`` turns the embedded API's loose input (bytes, (key, value) tuples ...) into
the 4-tuples ``_core.build_batch`` encodes, with a clear error for anything else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastlog import _core
from fastlog.errors import InvalidRecordError

Header = tuple[str, bytes | None]
CoreRecord = tuple[bytes | None, bytes | None, Sequence[Header] | None, int]

_BYTES_LIKE = (bytes, bytearray, memoryview)


# One record of the log, as read back: offset, timestamp, key, value, headers. Made in the core
# (a compact object that unpacks, indexes and compares as the 5-tuple it replaced, see _core.pyi),
# because Log.read makes one per record and that allocation is most of the cost of reading.
Record = _core.Record


@dataclass(slots=True)
class AppendInfo:
    """Result of ``Log.append_batches``: where the batches landed."""

    first_offset: int
    last_offset: int
    max_timestamp: int
    offset_of_max_timestamp: int
    log_append_time: int
    batches: list[Any] = field(default_factory=list)  # list[_core.BatchInfo], offsets assigned
    log_start_offset: int = 0


@dataclass(slots=True)
class FetchSlice:
    """A run of whole batches inside one segment file, for sendfile(2).

    ``file`` keeps the segment's file descriptor open: hold a reference to it until the
    bytes are sent (a segment deleted by retention meanwhile stays readable until then).
    """

    file: Any  # fastlog.segment.FileRecords
    fd: int
    position: int
    length: int
    first_offset: int  # base offset of the first batch in the slice

    def read(self) -> bytes:
        """The slice's bytes, copied (tests, non-sendfile paths)."""
        return self.file.read(self.position, self.length)


def _check_value(what: str, i: int, v: Any) -> None:
    if v is not None and not isinstance(v, _BYTES_LIKE):
        raise InvalidRecordError(
            f"record {i}: {what} must be bytes, bytearray, memoryview or None, "
            f"got {type(v).__name__}"
        )


def _check_headers(i: int, headers: Any) -> list[Header] | None:
    if headers is None:
        return None
    out: list[Header] = []
    try:
        for h in headers:
            name, value = h
            if not isinstance(name, str):
                raise InvalidRecordError(
                    f"record {i}: header names must be str, got {type(name).__name__}"
                )
            _check_value("header value", i, value)
            out.append((name, value))
    except (TypeError, ValueError):
        raise InvalidRecordError(
            f"record {i}: headers must be a sequence of (str, bytes | None) pairs"
        ) from None
    return out


def _check_timestamp(i: int, ts: Any, default: int) -> int:
    if ts is None:
        return default
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise InvalidRecordError(f"record {i}: timestamp must be int milliseconds or None")
    if not -1 <= ts < 2**63:
        raise InvalidRecordError(f"record {i}: timestamp {ts} out of range")
    return ts


def normalize_one(i: int, item: Any, now_ms: int) -> CoreRecord:
    """One embedded-API item -> (key, value, headers, timestamp). Slow path: validates."""
    if item is None or isinstance(item, _BYTES_LIKE):
        return (None, item, None, now_ms)
    if isinstance(item, tuple):
        n = len(item)
        if 2 <= n <= 4:
            key, value = item[0], item[1]
            _check_value("key", i, key)
            _check_value("value", i, value)
            headers = _check_headers(i, item[2]) if n > 2 else None
            ts = _check_timestamp(i, item[3], now_ms) if n > 3 else now_ms
            return (key, value, headers, ts)
        raise InvalidRecordError(
            f"record {i}: a tuple must be (key, value[, headers[, timestamp]]), got {n} items"
        )
    raise InvalidRecordError(
        f"record {i}: expected bytes, None or a (key, value[, headers[, timestamp]]) tuple, "
        f"got {type(item).__name__}"
    )


def _core_takes_bare_values() -> bool:
    try:
        _core.build_batch([b"x"])
    except Exception:
        return False
    return True


CORE_TAKES_BARE_VALUES = _core_takes_bare_values()


def to_core_records(items: Iterable[Any], now_ms: int, *, validate: bool = False) -> list[Any]:
    """Embedded ``append_batch`` input -> build_batch input.

    The common case (plain bytes values) is one comprehension (or nothing at all, when the
    core takes bare values) and the core checks the types; ``validate=True`` (the retry after
    the core refused the input) goes item by item, producing the error message for bad input.
    """
    if not isinstance(items, (list, tuple)):
        if isinstance(items, (*_BYTES_LIKE, str)):
            raise InvalidRecordError("append_batch takes a sequence of records, not one value")
        items = list(items)
    if not validate and items and type(items[0]) is bytes:
        if CORE_TAKES_BARE_VALUES:
            return items  # type: ignore[return-value]
        return [(None, v, None, now_ms) for v in items]
    return [normalize_one(i, item, now_ms) for i, item in enumerate(items)]


def rebuild_batches(records: Sequence[tuple[Any, ...]], info: Any) -> bytes:
    """Re-encode some records of one batch, keeping their offsets.

    ``records``: decoded (offset, timestamp, key, value, headers) tuples in offset order, a
    subset of the batch ``info`` describes. The core's build_batch numbers records
    consecutively, so each run of consecutive offsets becomes one batch based at its first
    offset; producer id/epoch, sequence (shifted to the run), flags, compression, timestamp
    type and leader epoch are carried over. Used by the cleaner and by truncate_to.
    """
    out: list[bytes] = []
    run: list[CoreRecord] = []
    run_start = prev = -2
    for off, ts, key, value, headers in records:
        if off != prev + 1 and run:
            out.append(_build_run(run, run_start, info))
            run = []
        if not run:
            run_start = off
        run.append((key, value, headers, ts))
        prev = off
    if run:
        out.append(_build_run(run, run_start, info))
    return b"".join(out)


def _build_run(run: list[CoreRecord], base_offset: int, info: Any) -> bytes:
    seq = info.base_sequence
    if seq >= 0:
        seq = (seq + base_offset - info.base_offset) % 2**31
    return _core.build_batch(
        run,
        base_offset=base_offset,
        compression=info.compression,
        producer_id=info.producer_id,
        producer_epoch=info.producer_epoch,
        base_sequence=seq,
        is_transactional=info.is_transactional,
        is_control=False,
        partition_leader_epoch=info.partition_leader_epoch,
        timestamp_type=info.timestamp_type,
    )
