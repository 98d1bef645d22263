"""The broker's log directories (Kafka's ``log.dirs``, JBOD) and their failure (Kafka's
LogDirFailureChannel and ReplicaManager.handleLogDirFailure, KIP-112).

Owns, per directory: its lock (``.lock``), its ``meta.properties`` (cluster.id and node.id,
which must agree across every directory and with the broker), finding the partitions that
live there at start (the same partition in two directories refuses the start, as Kafka's
"Duplicate log directories found"), where a new partition goes (the online directory with
the fewest partitions, ties in ``log.dirs`` order: Kafka's default placement), and what
happens when a write into it fails with an I/O error (ENOSPC on a full disk, EIO, EROFS).

A failed directory goes offline, once. Only the partitions living there are marked offline:
they stop leading (pending acks=all produces fail instead of being acknowledged), their
replica fetchers are removed (no more appends into the failed directory, and no fetches that
would let a leader count this replica back into the ISR), and later leadership changes leave
them alone. Produce to them answers KAFKA_STORAGE_ERROR, a retriable error: clients refresh
metadata and go to the new leader. Partitions in the other directories keep serving, and new
partitions open there.

In ZooKeeper mode, while other directories are online, the broker moves leadership of the
failed directory's partitions to other ISR members and leaves their ISRs itself (the
controller's controlled-shutdown writes, for those partitions only); Kafka's controller
learns the same from LeaderAndIsr responses, which this project does not have. Once every
directory has failed, the metadata store is told (``log_dir_failed``: a log dir event
notification, on which the controller treats the broker as dead for leadership and ISRs).
In both cases, a later partition state that still names this broker leader or ISR member of
a partition it cannot serve is left again in the same way.

A directory that cannot be used at start (missing and not creatable, not a directory, an
I/O error locking it, reading its meta.properties or listing it) is offline from the start,
as Kafka's LogManager does (KIP-112): the broker starts with the others and logs why. The
partitions assigned here that are not found in the online directories may be in it: they are
not created anew elsewhere (Kafka's getOrCreateLog refuses a partition that is not new while
a log dir is offline) but stay offline, KAFKA_STORAGE_ERROR, until a restart with the
directory repaired. Only when every directory is unusable does the start fail (Kafka: "none
of the specified log dirs ... can be created or validated"). Configuration errors still refuse
the start: directories that disagree, a partition in two of them, a directory named twice or
locked by another broker.

Unlike Kafka, which halts a broker whose every log dir failed, the broker stays up: it keeps
its registration, serves its group coordination and metadata, and the directory comes back
with a restart once space is freed (log recovery drops any torn tail).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
META_PROPERTIES = "meta.properties"
CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
# Kafka error codes this module answers with
UNKNOWN_TOPIC_OR_PARTITION = 3
KAFKA_STORAGE_ERROR = 56
# Kafka names a partition's directory <topic>-<partition>; topic names are [a-zA-Z0-9._-]+.
# Kafka's other directories (``...-delete``, ``...-future``, ``...-stray``) never match.
_PARTITION_DIR = re.compile(r"([a-zA-Z0-9._-]+)-([0-9]+)")


class LogDirError(Exception):
    """The log directories cannot be used as configured: the broker refuses to start."""


class LogDirUnusable(LogDirError):
    """An I/O failure of one directory at start: it goes offline, the others are used."""


class LogDir:
    """One entry of ``log.dirs``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offline = False
        self.error: str | None = None  # why it went offline
        self._lock_fd = -1

    def __repr__(self) -> str:
        return f"LogDir({self.path}{', offline' if self.offline else ''})"

    def __str__(self) -> str:
        return str(self.path)

    def lock(self) -> None:
        """Create the directory and take its exclusive lock (one broker per directory).
        LogDirUnusable on an I/O failure, LogDirError when another broker holds it."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LogDirUnusable(f"log directory {self.path} is not usable: {exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LogDirError(f"data dir {self.path} is in use by another broker process") from None
        except OSError as exc:
            os.close(fd)
            raise LogDirUnusable(f"log directory {self.path} cannot be locked: {exc}") from None
        self._lock_fd = fd

    def fail_at_start(self, reason: str) -> None:
        """Offline from the start (an I/O failure): the broker starts without it."""
        self.offline, self.error = True, reason
        self.unlock()
        log.error("%s: the log directory is offline, the broker starts without it", reason)

    @property
    def locked(self) -> bool:
        return self._lock_fd >= 0

    def unlock(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def volume_bytes(self) -> tuple[int, int]:
        """(total, usable) bytes of the filesystem holding the directory, as Kafka's
        FileStore total and usable space; (-1, -1) when it cannot be read."""
        try:
            st = os.statvfs(self.path)
        except OSError:
            return -1, -1
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


# -- configuration and start -------------------------------------------------------------
def configured_paths(config: Any) -> list[Path]:
    """The absolute paths of ``log.dirs`` (comma-separated), else ``log.dir``, else the
    default; a directory named twice is an error."""
    raw: Any
    if config.is_set("log.dirs") and config.get("log.dirs"):
        raw = config.get("log.dirs")
    elif config.get("log.dir"):
        raw = [config.get("log.dir")]
    else:
        raw = config.get("log.dirs")
    if isinstance(raw, str):
        raw = [p.strip() for p in raw.split(",") if p.strip()]
    out: list[Path] = []
    for entry in raw:
        path = Path(entry).expanduser().resolve()
        if path in out:
            raise LogDirError(f"log.dirs names {path} twice")
        out.append(path)
    if not out:
        raise LogDirError("log.dirs is empty")
    return out


def _read_properties(path: Path) -> dict[str, str] | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        # Kafka: an IOException reading meta.properties takes that log dir offline.
        raise LogDirUnusable(f"cannot read {path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise LogDirError(f"cannot read {path}: {exc}") from None
    props: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        props[key.strip()] = value.strip()
    return props


def check_meta_properties(dirs: Sequence[LogDir], cluster_id: str, node_id: int) -> None:
    """Every directory's meta.properties must name the same cluster.id and node.id (Kafka
    reads ``broker.id`` too), and those must be the broker's; directories without one get
    it written. A directory whose file cannot be read or written (an I/O error) goes
    offline instead."""
    seen: dict[str, tuple[str, Path]] = {}
    missing: list[LogDir] = []
    for d in dirs:
        if d.offline:
            continue
        path = d.path / META_PROPERTIES
        try:
            props = _read_properties(path)
        except LogDirUnusable as exc:
            d.fail_at_start(str(exc))
            continue
        if props is None:
            missing.append(d)
            continue
        stored = {"cluster.id": props.get("cluster.id"), "node.id": props.get("node.id")}
        if stored["node.id"] is None:
            stored["node.id"] = props.get("broker.id")
        for key, value in stored.items():
            if value is None:
                continue
            first = seen.setdefault(key, (value, path))
            if first[0] != value:
                raise LogDirError(
                    f"the log directories disagree: {first[1]} has {key} {first[0]}, "
                    f"{path} has {key} {value} (they belong to different brokers or "
                    "clusters; remove the directory that does not belong here)"
                )
    if "cluster.id" in seen and seen["cluster.id"][0] != cluster_id:
        value, path = seen["cluster.id"]
        raise LogDirError(f"{path} has cluster.id {value}, the metadata store {cluster_id}")
    if "node.id" in seen:
        value, path = seen["node.id"]
        try:
            stored_node = int(value)
        except ValueError:
            raise LogDirError(f"{path} has a node.id that is not a number: {value!r}") from None
        if stored_node != node_id:
            raise LogDirError(f"{path} has node.id {value}, config says {node_id}")
    from broker.metadata.embedded import atomic_write

    for d in missing:
        try:
            atomic_write(
                d.path / META_PROPERTIES,
                f"#\n#fastlog broker\nversion=1\ncluster.id={cluster_id}\n"
                f"node.id={node_id}\n".encode(),
            )
        except OSError as exc:
            d.fail_at_start(f"cannot write {d.path / META_PROPERTIES}: {exc}")


def open_log_dirs(dirs: Sequence[LogDir], cluster_id: str, node_id: int) -> None:
    """Lock every directory and check their meta.properties; one that fails with an I/O
    error goes offline (logged), LogDirError when none is left or on a configuration error
    (another broker's lock, directories that disagree)."""
    for d in dirs:
        try:
            d.lock()
        except LogDirUnusable as exc:
            d.fail_at_start(str(exc))
    check_meta_properties(dirs, cluster_id, node_id)
    if all(d.offline for d in dirs):
        raise LogDirError(
            "none of the log directories in log.dirs can be used: "
            + "; ".join(d.error or str(d.path) for d in dirs)
        )


def take_clean_shutdown_markers(dirs: Sequence[LogDir]) -> bool:
    """True if every directory was left by a clean shutdown; the markers are removed (they
    mean "clean" only until the broker writes again)."""
    clean = True
    for d in dirs:
        if d.offline:
            continue  # its partitions are not opened
        marker = d.path / CLEAN_SHUTDOWN_FILE
        if not marker.exists():
            clean = False
        try:
            marker.unlink()
        except FileNotFoundError:
            pass
    return clean


def leave_clean_shutdown_markers(dirs: Sequence[LogDir]) -> None:
    for d in dirs:
        if d.offline or not d.locked:
            continue  # a failed dir's logs may have a torn tail; an unlocked one is not ours
        try:
            (d.path / CLEAN_SHUTDOWN_FILE).write_text("")
        except OSError as exc:
            log.warning("cannot mark %s cleanly shut down: %s", d.path, exc)


def find_partitions(dirs: Sequence[LogDir]) -> dict[tuple[str, int], LogDir]:
    """Where each partition directory lives; the same partition in two log directories is
    an error (Kafka refuses to start: "Duplicate log directories found")."""
    found: dict[tuple[str, int], LogDir] = {}
    for d in dirs:
        if d.offline:
            continue
        try:
            entries = sorted(os.scandir(d.path), key=lambda e: e.name)
        except OSError as exc:
            d.fail_at_start(f"cannot list log directory {d.path}: {exc}")
            continue
        for entry in entries:
            m = _PARTITION_DIR.fullmatch(entry.name)
            if m is None or not entry.is_dir():
                continue
            key = (m.group(1), int(m.group(2)))
            other = found.get(key)
            if other is not None:
                raise LogDirError(
                    f"Duplicate log directories found: partition {entry.name} is in both "
                    f"{other.path / entry.name} and {d.path / entry.name}. Delete one of them "
                    "(the copy in the directory that failed most recently is the stale one) "
                    "before starting the broker"
                )
            found[key] = d
    return found


def remove_leftovers(dirs: Sequence[LogDir]) -> None:
    """Remove what a move between log dirs left when the broker stopped during it (Kafka's
    ``-future`` and ``-delete`` directories, broker/replica_mover.py): the move does not
    resume, the partition stays in its current directory."""
    for d in dirs:
        if d.offline:
            continue
        try:
            entries = list(os.scandir(d.path))
        except OSError as exc:
            d.fail_at_start(f"cannot list log directory {d.path}: {exc}")
            continue
        for entry in entries:
            if entry.is_dir() and entry.name.endswith(("-future", "-delete")):
                log.info("removing %s (a log dir move that did not finish)", entry.path)
                shutil.rmtree(entry.path, ignore_errors=True)


def mark_unreachable(
    found: dict[tuple[str, int], LogDir],
    assigned: Iterable[tuple[str, int]],
    dirs: Sequence[LogDir],
) -> int:
    """At start, with a directory offline: the assigned partitions not found in the online
    ones may live in it, so they are recorded in ``found`` as living in an offline
    directory (they stay offline instead of being created empty elsewhere, which would
    shadow their data and make the next start see them twice). Returns how many."""
    offline = next((d for d in dirs if d.offline), None)
    if offline is None:
        return 0
    missing = [key for key in assigned if key not in found]
    for key in missing:
        found[key] = offline
    if missing:
        log.error(
            "%d partition(s) assigned here are not in the online log dirs and stay offline "
            "(they may be in %s)",
            len(missing),
            ", ".join(str(d.path) for d in dirs if d.offline),
        )
    return len(missing)


def pick_log_dir(dirs: Sequence[LogDir], counts: Mapping[LogDir, int]) -> LogDir | None:
    """Where a new partition goes: the online directory with the fewest partitions, the
    first in ``log.dirs`` order on a tie (Kafka's default); None when every one failed."""
    online = [d for d in dirs if not d.offline]
    if not online:
        return None
    return min(online, key=lambda d: counts.get(d, 0))


# -- failure -----------------------------------------------------------------------------
def is_offline(manager: Any) -> bool:
    """Every log directory of ``manager`` (a ReplicaManager) failed."""
    dirs = getattr(manager, "log_dirs", None) or []
    return bool(dirs) and all(d.offline for d in dirs)


def _failed_dir(manager: Any, exc: BaseException, partition: Any) -> LogDir | None:
    d = getattr(partition, "log_dir", None)
    if d is not None:
        return d  # type: ignore[no-any-return]
    dirs = list(getattr(manager, "log_dirs", []))
    name = getattr(exc, "filename", None)
    if name:
        path = Path(os.fsdecode(name)).resolve()
        for candidate in dirs:
            if path == candidate.path or candidate.path in path.parents:
                return candidate
    online = [x for x in dirs if not x.offline]
    return online[0] if len(online) == 1 else None


def log_dir_failed(manager: Any, exc: BaseException, partition: Any = None) -> None:
    """A write into the log directory of ``partition`` (a broker.replica.Partition) failed
    with ``exc``: take that directory of ``manager`` (a ReplicaManager) offline. Without a
    partition the directory is found from the file the error names; when that is not known
    either, every directory goes offline (a broker that cannot tell which disk failed stops
    trusting all of them)."""
    d = _failed_dir(manager, exc, partition)
    failing = [d] if d is not None else [x for x in manager.log_dirs if not x.offline]
    failing = [x for x in failing if not x.offline]
    if not failing:
        return
    partitions = []
    for fd in failing:
        fd.offline, fd.error = True, str(exc)
        here = [p for p in manager.partitions.values() if getattr(p, "log_dir", None) is fd]
        partitions += here
        log.error(
            "log directory %s offline after a failed write (%s): its %d partition(s) stop here",
            fd.path,
            exc,
            len(here),
        )
    replication = getattr(manager, "replication", None)
    fetchers = getattr(replication, "fetchers", None)
    for p in partitions:
        p.offline = True
        if fetchers is not None:
            fetchers.remove_partition(p.topic, p.index)
        r = getattr(p, "replication", None)
        if r is not None:
            r.become_follower(-1)  # no longer leads: waiting acks=all produces fail
        p.notify_append()  # long polls and ack waiters re-check
    metadata = manager.broker.metadata
    every = is_offline(manager)
    if every:
        failed = getattr(metadata, "log_dir_failed", None)
        if failed is not None:
            try:
                failed(str(exc))
            except Exception:
                log.exception("cannot announce the log directory failure")
    if getattr(metadata, "controller", None) is None:
        return
    stay_out = getattr(manager, "_log_dir_stay_out", None)
    if stay_out is None:
        stay_out = manager._log_dir_stay_out = _StayOut(manager)
        metadata.add_listener(stay_out)
    if not every:
        # Kafka's controller learns which replicas are offline from LeaderAndIsr responses;
        # here the broker moves leadership of these partitions away itself.
        stay_out.leave()


def cannot_serve(manager: Any, topic: str, index: int) -> bool:
    """This broker cannot host ``topic``-``index``: its log directory failed, or was
    offline from the start (or every directory did, so no new partition can open)."""
    if is_offline(manager):
        return True
    p = manager.partitions.get((topic, index))
    if p is not None:
        return bool(getattr(p, "offline", False))
    d = getattr(manager, "_found", {}).get((topic, index))
    return d is not None and bool(d.offline)


def unavailable_error(manager: Any, topic: str, index: int, partition: Any = None) -> int:
    """The error code for a partition that is not here to serve (``partition`` None) or is
    offline: KAFKA_STORAGE_ERROR (56) when its log dir is offline, else
    UNKNOWN_TOPIC_OR_PARTITION (3). One answer for Produce, Fetch and ListOffsets."""
    offline = partition is not None and bool(getattr(partition, "offline", False))
    if offline or cannot_serve(manager, topic, index):
        return KAFKA_STORAGE_ERROR
    return UNKNOWN_TOPIC_OR_PARTITION


def any_offline(manager: Any) -> bool:
    return any(d.offline for d in getattr(manager, "log_dirs", None) or ())


def started(manager: Any) -> None:
    """After the start of ``manager`` (a ReplicaManager), in ZooKeeper mode with a
    directory offline from the start: leave the partitions it cannot serve that name it
    leader or ISR member, as after a failure at run time."""
    metadata = manager.broker.metadata
    if not any_offline(manager) or getattr(metadata, "controller", None) is None:
        return
    stay_out = getattr(manager, "_log_dir_stay_out", None)
    if stay_out is None:
        stay_out = manager._log_dir_stay_out = _StayOut(manager)
        metadata.add_listener(stay_out)
    stay_out.leave()


class _StayOut:
    """MetadataListener of a broker with a failed log directory: leaves any partition it
    cannot serve that still names it leader or ISR member (in ZooKeeper mode, through the
    controller's controlled-shutdown writes, run off the event loop: they are blocking
    ZooKeeper calls)."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager
        self.node_id: int = manager.broker.node_id
        self._running = False
        self._again = False

    def on_partition_state_changed(self, topic: Any, index: int) -> None:
        info = topic.partitions.get(index)
        if info is None or (info.leader != self.node_id and self.node_id not in info.isr):
            return
        if not cannot_serve(self.manager, topic.name, index):
            return
        self.leave()

    def leave(self) -> None:
        if self._running:
            self._again = True  # after the current pass
            return
        controller = getattr(self.manager.broker.metadata, "controller", None)
        if controller is None:
            return
        self._running, self._again = True, False
        if is_offline(self.manager):
            partitions: Iterable[tuple[str, int]] | None = None  # all of them
        else:
            partitions = {
                key for key, p in self.manager.partitions.items() if getattr(p, "offline", False)
            }
            # partitions offline since the start (in a directory that was not usable)
            partitions |= {key for key, d in self.manager._found.items() if d.offline}
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(
            None, lambda: controller.controlled_shutdown(self.node_id, partitions=partitions)
        )
        fut.add_done_callback(self._done)

    def _done(self, fut: asyncio.Future[Any]) -> None:
        self._running = False
        exc = fut.exception()
        if exc is not None:
            log.warning("cannot leave the partitions of the offline log dir: %s", exc)
        else:
            moved = fut.result()
            if moved:
                log.info("offline log dir: moved leadership of %d partition(s) away", len(moved))
        if self._again:
            self.leave()
