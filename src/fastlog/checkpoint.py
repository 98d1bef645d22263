"""Checkpoint files and durable file-set changes.

Owns Kafka's offset-checkpoint text format (``recovery-point-offset-checkpoint``,
``log-start-offset-checkpoint``, ``cleaner-offset-checkpoint``): a version line (0), a count
line, then ``topic partition offset`` lines. Writes go to a temp file that is fsynced, renamed
over the old one, and the directory fsynced, so a crash leaves either the old or the new file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from fastlog.errors import CorruptRecordError

CHECKPOINT_VERSION = 0


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make renames, creations and deletions inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, sync: bool = True) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if sync:
        fsync_dir(path.parent)


def topic_partition_of(log_dir: Path) -> tuple[str, int]:
    """Kafka names a partition's directory ``topic-N``; other names count as partition 0."""
    m = re.fullmatch(r"(.+)-(\d+)", log_dir.name)
    name, part = (m.group(1), int(m.group(2))) if m else (log_dir.name, 0)
    return re.sub(r"\s", "_", name), part


class OffsetCheckpointFile:
    """Kafka's ``topic partition offset`` checkpoint file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, offsets: Mapping[tuple[str, int], int], *, sync: bool = True) -> None:
        lines = [str(CHECKPOINT_VERSION), str(len(offsets))]
        lines += [f"{t} {p} {o}" for (t, p), o in sorted(offsets.items())]
        write_atomic(self.path, ("\n".join(lines) + "\n").encode(), sync=sync)

    def read(self) -> dict[tuple[str, int], int]:
        """The entries; {} if the file does not exist. A malformed file raises."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {}
        lines = text.splitlines()
        try:
            version, count = int(lines[0]), int(lines[1])
            if version != CHECKPOINT_VERSION or len(lines) < 2 + count:
                raise ValueError
            out: dict[tuple[str, int], int] = {}
            for line in lines[2 : 2 + count]:
                topic, part, off = line.rsplit(" ", 2)
                out[(topic, int(part))] = int(off)
            return out
        except (ValueError, IndexError):
            raise CorruptRecordError(f"malformed checkpoint file {self.path}") from None

    def read_single(self) -> int | None:
        """The offset of a per-log checkpoint (one entry), or None if absent/unreadable."""
        try:
            entries = self.read()
        except CorruptRecordError:
            return None
        return max(entries.values()) if entries else None
