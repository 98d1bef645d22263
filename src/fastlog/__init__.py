"""fastlog: an importable, Kafka-format commit log with a Cython core.

Public API: Log, Record and the error types. See docs/storage.md, "Embedded API".
"""

from fastlog import _core  # noqa: F401  (a failed compile is a failed import, by design)
from fastlog.cleaner import CleanerStats, LogCleaner
from fastlog.config import LOG_CONFIG_KEYS, LogConfig
from fastlog.errors import (
    CoreError,
    CorruptRecordError,
    FastlogError,
    InvalidConfigurationError,
    InvalidRecordError,
    LogClosedError,
    LogLockedError,
    OffsetOutOfRangeError,
    ReadOnlyLogError,
    RecordTooLargeError,
)
from fastlog.index import OffsetIndex, TimeIndex
from fastlog.log import Log
from fastlog.records import AppendInfo, FetchSlice, Record
from fastlog.segment import FileRecords, LogSegment

__all__ = [
    "LOG_CONFIG_KEYS",
    "AppendInfo",
    "CleanerStats",
    "CoreError",
    "CorruptRecordError",
    "FastlogError",
    "FetchSlice",
    "FileRecords",
    "InvalidConfigurationError",
    "InvalidRecordError",
    "Log",
    "LogCleaner",
    "LogClosedError",
    "LogConfig",
    "LogLockedError",
    "LogSegment",
    "OffsetIndex",
    "OffsetOutOfRangeError",
    "ReadOnlyLogError",
    "Record",
    "RecordTooLargeError",
    "TimeIndex",
    "__version__",
]
__version__ = "0.1.0"
