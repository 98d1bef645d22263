"""Replication (cluster mode): leader epochs, followers fetching from leaders, the high
watermark, ISR changes and acks=all. See docs/replication.md.

``ReplicationManager`` (manager.py) is the broker's entry point; ``PartitionReplication``
(state.py) the per-partition bookkeeping; ``ReplicaFetcherManager`` (fetcher.py) the
followers' fetch tasks.
"""

from broker.replication.manager import ReplicationManager

__all__ = ["ReplicationManager"]
