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
ISRs).

Unlike Kafka, which halts a broker whose every log dir failed, the broker stays up: it keeps
its registration, serves its group coordination and metadata, and the directory comes back
with a restart once space is freed (log recovery drops any torn tail).
"""

from __future__ import annotations

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
    failed = getattr(manager.broker.metadata, "log_dir_failed", None)
    if failed is not None:
        try:
            failed(str(exc))
        except Exception:
            log.exception("cannot announce the log directory failure")
