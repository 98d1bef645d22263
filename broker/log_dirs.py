"""Log directory failure on this broker (Kafka's LogDirFailureChannel and
ReplicaManager.handleLogDirFailure, KIP-112).

Owns what the broker does when a write into its data directory fails with an I/O error
(ENOSPC on a full disk, EIO, EROFS): the directory goes offline, once. Every partition
living there (a broker has one log dir) is marked offline: it stops leading (pending
acks=all produces fail instead of being acknowledged), its replica fetcher is removed (no
more appends into the failed directory, and no fetches that would let a leader count it back
into the ISR), and later leadership changes leave it alone. Produce to it answers
KAFKA_STORAGE_ERROR, a retriable error: clients refresh metadata and go to the new leader.
The metadata store is then told (``log_dir_failed``: in ZooKeeper mode a log dir event
notification, on which the controller elects other leaders and drops this broker from the
ISRs). No new partition opens in the failed directory; when a later partition state still
names this broker leader or ISR member (a topic created since, with this broker first in its
assignment), the broker leaves it as in a controlled shutdown (versioned writes that move
leadership to another ISR member and drop it from the ISR).

Unlike Kafka, which halts a broker whose every log dir failed, the broker stays up: it keeps
its registration, serves its group coordination and metadata, and the directory comes back
with a restart once space is freed (log recovery drops any torn tail).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


def is_offline(manager: Any) -> bool:
    return bool(getattr(manager, "log_dir_offline", False))


def log_dir_failed(manager: Any, exc: BaseException) -> None:
    """Take the data directory of ``manager`` (a ReplicaManager) offline after ``exc``."""
    if is_offline(manager):
        return
    manager.log_dir_offline = True
    partitions = list(manager.partitions.values())
    log.error(
        "log directory %s offline after a failed write (%s): its %d partition(s) stop here",
        manager.data_dir,
        exc,
        len(partitions),
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
    failed = getattr(metadata, "log_dir_failed", None)
    if failed is not None:
        try:
            failed(str(exc))
        except Exception:
            log.exception("cannot announce the log directory failure")
    if getattr(metadata, "controller", None) is not None:
        metadata.add_listener(_StayOut(manager))


class _StayOut:
    """MetadataListener of a broker whose log dir is offline: leaves any partition that
    still names it leader or ISR member (in ZooKeeper mode, through the controller's
    controlled-shutdown writes, run off the event loop: they are blocking ZooKeeper calls)."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager
        self.node_id: int = manager.broker.node_id
        self._running = False
        self._again = False

    def on_partition_state_changed(self, topic: Any, index: int) -> None:
        info = topic.partitions.get(index)
        if info is None or (info.leader != self.node_id and self.node_id not in info.isr):
            return
        if self._running:
            self._again = True  # after the current pass
            return
        self._leave()

    def _leave(self) -> None:
        controller = getattr(self.manager.broker.metadata, "controller", None)
        if controller is None:
            return
        self._running, self._again = True, False
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(None, controller.controlled_shutdown, self.node_id)
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
            self._leave()
