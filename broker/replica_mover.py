"""Moving a replica between this broker's log directories (AlterReplicaLogDirs, KIP-113).

Owns the future replica of a partition being moved: a second log in the target directory
(``<topic>-<partition>.<id>-future``, Kafka's name) that a task fills with copies of the
current log's batches, offsets and bytes unchanged, in a worker thread, while the partition
goes on serving from its current log. Once the copy has caught up, the swap runs on the
event loop in one go (so no append, produce or replica fetch lands in between): the last
batches are copied, the producer state snapshot, leader-epoch-checkpoint and
partition.metadata follow, the future directory takes the partition's name in the target
directory, the Partition switches to it, and the old directory is renamed
``<topic>-<partition>.<id>-delete`` and removed a few seconds later (Fetch responses still
being sent from its files finish first).

If the current log is truncated (a follower's divergence), its start moves past the copy
(retention, DeleteRecords) or its last copied batch no longer matches, the copy starts again.
A move is dropped when the partition is deleted or goes offline, when the broker stops, or
when another AlterReplicaLogDirs sends the partition elsewhere. A write failure in the target
directory takes that directory offline (broker/log_dirs.py) and drops the move. Leftover
``-future`` and ``-delete`` directories (a broker stopped during a move) are removed at start
(broker.log_dirs.remove_leftovers): the move does not resume, the partition stays where it
was.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import os
import shutil
import types
import uuid
from pathlib import Path
from typing import Any

from fastlog import _core
from fastlog.errors import OffsetOutOfRangeError

log = logging.getLogger(__name__)

FUTURE_SUFFIX = "-future"
DELETE_SUFFIX = "-delete"
CHUNK_BYTES = 1 << 20
SWAP_LAG_BYTES = 4 << 20  # copied synchronously on the event loop at the swap, at most
DELETE_DELAY_S = 5.0
SIDE_FILES = ("leader-epoch-checkpoint", "partition.metadata")


def _digest(data: bytes | bytearray | memoryview) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


class FutureReplica:
    """The copy of one partition in its target log dir."""

    def __init__(self, partition: Any, target: Any, log_: Any, path: Path) -> None:
        self.partition = partition
        self.log_dir = target
        self.log = log_
        self.path = path
        self.task: asyncio.Task[None] | None = None
        self.last_batch: tuple[int, int, bytes] | None = None  # base offset, size, digest

    @property
    def offset_lag(self) -> int:
        return max(self.partition.log.end_offset - self.log.end_offset, 0)


class ReplicaMover:
    """The moves in progress of one ReplicaManager."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager
        self.moves: dict[tuple[str, int], FutureReplica] = {}
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def _copier(self) -> concurrent.futures.ThreadPoolExecutor:
        # Own threads, one per log dir (Kafka's num.replica.alter.log.dirs.threads default):
        # many moves never hold up the default executor the ZooKeeper calls use.
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max(1, len(self.manager.log_dirs)), thread_name_prefix="log-dir-mover"
            )
        return self._pool

    # -- requests ------------------------------------------------------------------------
    def move(self, p: Any, target: Any) -> None:
        """Start moving ``p`` to ``target`` (a broker.log_dirs.LogDir), replacing a move
        elsewhere; nothing to do when it is already there or on its way."""
        key = (p.topic, p.index)
        current = self.moves.get(key)
        if current is not None and current.log_dir is target:
            return
        if current is not None:
            self.cancel(key)
        if p.log_dir is target:
            return
        name = f"{p.topic}-{p.index}.{uuid.uuid4().hex}{FUTURE_SUFFIX}"
        path = target.path / name
        future_log = self.manager._log_class()(path, **self.manager.log_kwargs(dict(p.configs)))
        fut = FutureReplica(p, target, future_log, path)
        self.moves[key] = fut
        fut.task = asyncio.get_running_loop().create_task(self._run(fut))
        log.info("%s: moving from %s to %s", p, p.log_dir.path, target.path)

    def cancel(self, key: tuple[str, int]) -> None:
        fut = self.moves.pop(key, None)
        if fut is None:
            return
        if fut.task is not None and fut.task is not asyncio.current_task():
            fut.task.cancel()
        self._discard(fut)

    def close(self) -> None:
        """Broker shutdown: drop every move (the partitions stay where they are)."""
        for key in list(self.moves):
            self.cancel(key)
        if self._pool is not None:
            self._pool.shutdown(wait=True)  # a copy still running finishes its chunk
            self._pool = None

    def _discard(self, fut: FutureReplica) -> None:
        try:
            fut.log.delete()
        except Exception as exc:  # noqa: BLE001 - a failed target dir: removed at next start
            log.warning("cannot remove %s: %s", fut.path, exc)

    # -- copying -------------------------------------------------------------------------
    async def _run(self, fut: FutureReplica) -> None:
        p = fut.partition
        key = (p.topic, p.index)
        try:
            while True:
                if p.deleted or p.offline or fut.log_dir.offline:
                    log.info("%s: move to %s dropped", p, fut.log_dir.path)
                    self.cancel(key)
                    return
                loop = asyncio.get_running_loop()
                lag = await loop.run_in_executor(self._copier(), self._copy, fut, CHUNK_BYTES)
                if lag <= SWAP_LAG_BYTES and self._swap(fut):
                    return
                if lag == 0:
                    await asyncio.sleep(0.05)  # caught up but the swap had to wait
        except asyncio.CancelledError:
            raise
        except OSError as exc:
            from broker.log_dirs import log_dir_failed

            log.error("%s: move to %s failed: %s", p, fut.log_dir.path, exc)
            self.cancel(key)
            log_dir_failed(self.manager, exc, types.SimpleNamespace(log_dir=fut.log_dir))
        except Exception:
            log.exception("%s: move to %s failed", p, fut.log_dir.path)
            self.cancel(key)

    def _restart(self, fut: FutureReplica) -> None:
        """Start the copy again at the current log's first batch."""
        cur = fut.partition.log
        start = cur.start_offset
        base = start
        head = cur.read_bytes(start, 1)
        if head:
            base = _core.scan_batches(head, validate_crc=False)[0].base_offset
        fut.log.truncate_fully_and_start_at(base)
        fut.last_batch = None

    def _in_step(self, fut: FutureReplica) -> bool:
        """The copy is a prefix of the current log (checked on its last copied batch)."""
        cur = fut.partition.log
        if fut.last_batch is None:
            # Nothing copied since the (re)start: in step only with nothing to copy.
            end = fut.log.end_offset
            return end == cur.end_offset and end >= cur.start_offset
        if fut.log.end_offset > cur.end_offset:
            return False  # the current log was truncated below the copy
        base, size, digest = fut.last_batch
        try:
            data = cur.read_bytes(base, size)
        except OffsetOutOfRangeError:
            return False  # retention or DeleteRecords moved the start past it
        return len(data) >= size and _digest(memoryview(data)[:size]) == digest

    def _copy(self, fut: FutureReplica, max_bytes: int) -> int:
        """Copy up to ``max_bytes`` of whole batches; returns about how many bytes are
        still to copy (0 once the copy ends where the current log ends)."""
        cur = fut.partition.log
        if not self._in_step(fut):
            self._restart(fut)
        try:
            data = cur.read_bytes(max(fut.log.end_offset, cur.start_offset), max_bytes)
        except OffsetOutOfRangeError:
            fut.last_batch = None  # the start moved meanwhile: again next time
            return max(cur.size_bytes, 1)
        if data:
            buf = bytearray(data)
            batches = _core.scan_batches(buf, validate_crc=False, stop_at_corruption=True)
            end = fut.log.end_offset
            batches = [b for b in batches if b.last_offset >= end]
            if batches and batches[0].base_offset < end:
                fut.last_batch = None  # out of step (a concurrent truncation): again
                return max(cur.size_bytes, 1)
            if batches:
                first, last = batches[0], batches[-1]
                fut.log.append_batches(
                    buf[first.position : last.position + last.size], assign_offsets=False
                )
                tail = memoryview(buf)[last.position : last.position + last.size]
                fut.last_batch = (last.base_offset, last.size, _digest(tail))
        if fut.log.end_offset >= cur.end_offset:
            return 0
        return max(cur.size_bytes - fut.log.size_bytes, 1)

    # -- swap ----------------------------------------------------------------------------
    def _swap(self, fut: FutureReplica) -> bool:
        """On the event loop, in one go: finish the copy and make it the partition's log.
        False when it cannot happen now (the copy fell behind or out of step)."""
        p = fut.partition
        cur = p.log
        budget = 2 * SWAP_LAG_BYTES  # bound on what the event loop copies itself
        while fut.log.end_offset < cur.end_offset:
            end, size = fut.log.end_offset, fut.log.size_bytes
            self._copy(fut, CHUNK_BYTES)
            budget -= fut.log.size_bytes - size
            if fut.log.end_offset <= end or budget < 0:
                return False
        if not self._in_step(fut) or fut.log.end_offset != cur.end_offset:
            return False
        if cur.start_offset > fut.log.start_offset:
            fut.log.delete_before(cur.start_offset)
        try:
            p.take_producer_snapshot()
        except OSError as exc:  # the source dir: the state is rebuilt from the log instead
            log.warning("%s: no producer snapshot before the move: %s", p, exc)
        # Side files first, while both directories are intact: nothing changed on failure.
        for name in os.listdir(p.path):
            if name.endswith(".snapshot") or name in SIDE_FILES:
                shutil.copy2(Path(p.path) / name, fut.path / name)
        fut.log.close()
        final = fut.log_dir.path / Path(p.path).name
        old_path, old_log, old_dir = Path(p.path), cur, p.log_dir
        trash = old_path.with_name(f"{old_path.name}.{uuid.uuid4().hex}{DELETE_SUFFIX}")
        # Until the old directory is renamed away, any failure leaves the partition where
        # it was (the future log goes back to its name and the caller drops it).
        os.rename(fut.path, final)
        try:
            new_log = self.manager.open_log(final, p.configs)
        except Exception:
            os.rename(final, fut.path)
            raise
        try:
            os.rename(old_path, trash)
        except OSError:
            new_log.close()
            os.rename(final, fut.path)
            raise
        self.moves.pop((p.topic, p.index), None)
        self.manager.replace_log(p, new_log, fut.log_dir)
        log.info("%s: moved from %s to %s", p, old_dir.path, fut.log_dir.path)
        asyncio.get_running_loop().call_later(DELETE_DELAY_S, self._delete_later, old_log, trash)
        return True

    @staticmethod
    def _delete_later(old_log: Any, trash: Path) -> None:
        def remove() -> None:
            try:
                old_log.close()
            except Exception as exc:  # noqa: BLE001 - it is being deleted anyway
                log.debug("closing the moved-away log %s: %s", trash, exc)
            shutil.rmtree(trash, ignore_errors=True)

        asyncio.get_running_loop().run_in_executor(None, remove)
