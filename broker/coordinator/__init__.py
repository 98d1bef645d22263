"""Consumer group coordination: the GroupCoordinator and the __consumer_offsets topic.

The broker constructs ``GroupCoordinator(broker)`` and awaits ``start()`` / ``stop()``;
handlers reach it as ``broker.group_coordinator``.
"""

from broker.coordinator.coordinator import GroupCoordinator, JoinResult, SyncResult
from broker.coordinator.group import GroupState

__all__ = ["GroupCoordinator", "GroupState", "JoinResult", "SyncResult"]
