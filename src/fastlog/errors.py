"""Errors of the fastlog storage engine.

Owns the exception hierarchy users catch. The Cython core defines ``CoreError`` and its
``CorruptRecordError`` / ``InvalidRecordError``; they are re-exported here unchanged, so an
error raised deep inside ``_core`` is the same class a user catches as
``fastlog.CorruptRecordError``. ``FastlogError`` *is* the core's base class: every error of
the module (core or storage layer) is caught by ``except fastlog.FastlogError``.
"""

from __future__ import annotations

from fastlog._core import CoreError, CorruptRecordError, InvalidRecordError

FastlogError = CoreError
"""Base of every error fastlog raises (an alias of ``fastlog._core.CoreError``)."""


class LogLockedError(FastlogError):
    """Another process (or another open ``Log`` in this one) holds the log's lock file."""


class OffsetOutOfRangeError(FastlogError):
    """An offset below the log start offset or above the log end offset (OFFSET_OUT_OF_RANGE)."""


class RecordTooLargeError(FastlogError):
    """A batch larger than max.message.bytes, or a set larger than segment.bytes."""


class InvalidConfigurationError(FastlogError, ValueError):
    """An unknown config key or a value outside its valid range."""


class ReadOnlyLogError(FastlogError):
    """A change asked of a Log opened with read_only=True."""


class LogClosedError(FastlogError):
    """The log was closed (or deleted) while it was being used."""


__all__ = [
    "CoreError",
    "CorruptRecordError",
    "FastlogError",
    "InvalidConfigurationError",
    "InvalidRecordError",
    "LogClosedError",
    "LogLockedError",
    "OffsetOutOfRangeError",
    "ReadOnlyLogError",
    "RecordTooLargeError",
]
