"""A Jepsen-style history checker for Kafka-like logs (after Jepsen's kafka workload).

A history holds what clients saw during a run:
- sends: every record a producer tried to write (unique value, partition, send order), with
  its outcome: acknowledged (and at which offset), failed, or unknown (no answer);
- polls: every (partition, offset, value) a consumer received;
- final: each partition's whole log read back at the end.

``check`` reports the anomalies:
- lost: acknowledged records missing from the final log (or at another offset than the one
  acknowledged);
- duplicated: a value present more than once in the final log;
- reordered: two records sent in order to one partition, found in the opposite order;
- inconsistent: one (partition, offset) seen holding two different values anywhere in the
  history (acks, polls, final read), e.g. a consumer that read a tail later truncated;
- unexpected: values in the log that no producer sent.

``unavailability`` measures the longest time without any acknowledgement (overall, or of
one partition).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field


@dataclass(slots=True)
class Send:
    value: bytes
    partition: int
    seq: int  # send order within the partition
    sent_at: float
    acked: bool = False
    failed: str | None = None
    offset: int = -1
    answered_at: float = 0.0


@dataclass
class History:
    sends: dict[bytes, Send] = field(default_factory=dict)
    polls: list[tuple[int, int, bytes, float]] = field(default_factory=list)
    final: dict[int, list[tuple[int, bytes]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sent(self, value: bytes, partition: int, seq: int) -> None:
        with self.lock:
            self.sends[value] = Send(value, partition, seq, time.monotonic())

    def answered(self, value: bytes, offset: int, error: str | None) -> None:
        with self.lock:
            s = self.sends[value]
            s.answered_at = time.monotonic()
            if error is None:
                s.acked, s.offset = True, offset
            else:
                s.failed = error

    def polled(self, partition: int, offset: int, value: bytes) -> None:
        with self.lock:
            self.polls.append((partition, offset, value, time.monotonic()))


@dataclass
class Report:
    lost: list[Send] = field(default_factory=list)
    moved: list[tuple[Send, int]] = field(default_factory=list)  # acked at X, found at Y
    duplicated: dict[bytes, list[tuple[int, int]]] = field(default_factory=dict)
    reordered: list[tuple[int, bytes, bytes]] = field(default_factory=list)
    inconsistent: list[tuple[int, int, set[bytes]]] = field(default_factory=list)
    unexpected: list[tuple[int, int, bytes]] = field(default_factory=list)
    acked: int = 0
    failed: int = 0
    unknown: int = 0
    final_records: int = 0
    polled: int = 0

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.moved
            or self.duplicated
            or self.reordered
            or self.inconsistent
            or self.unexpected
        )

    def summary(self) -> str:
        return (
            f"acked {self.acked}, failed {self.failed}, unknown {self.unknown}, "
            f"final {self.final_records}, polled {self.polled}; lost {len(self.lost)}, "
            f"moved {len(self.moved)}, duplicated {len(self.duplicated)}, "
            f"reordered {len(self.reordered)}, inconsistent {len(self.inconsistent)}, "
            f"unexpected {len(self.unexpected)}"
        )

    def details(self, limit: int = 10) -> str:
        parts = [self.summary()]
        for name in ("lost", "moved", "reordered", "inconsistent", "unexpected"):
            items = getattr(self, name)
            if items:
                parts.append(f"{name}: {items[:limit]}")
        if self.duplicated:
            parts.append(f"duplicated: {list(self.duplicated.items())[:limit]}")
        return "\n".join(parts)


def check(h: History) -> Report:
    r = Report()
    sends = h.sends
    r.acked = sum(1 for s in sends.values() if s.acked)
    r.failed = sum(1 for s in sends.values() if s.failed is not None)
    r.unknown = len(sends) - r.acked - r.failed
    r.polled = len(h.polls)

    # Where each value sits in the final logs.
    found: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
    for partition, records in h.final.items():
        for offset, value in records:
            found[value].append((partition, offset))
            r.final_records += 1
            if value not in sends:
                r.unexpected.append((partition, offset, value))
    r.duplicated = {v: where for v, where in found.items() if len(where) > 1}

    for s in sends.values():
        if not s.acked:
            continue
        where = found.get(s.value)
        if not where:
            r.lost.append(s)
        elif (s.partition, s.offset) not in where:
            r.moved.append((s, where[0][1]))

    # Per-partition order: offsets must grow with send order.
    for partition, records in h.final.items():
        last_seq, last_value = -1, b""
        for _, value in records:
            s = sends.get(value)
            if s is None or s.partition != partition:
                continue
            if s.seq < last_seq:
                r.reordered.append((partition, last_value, value))
            last_seq, last_value = s.seq, value

    # One offset, one value: acks, polls and the final read must agree.
    claims: dict[tuple[int, int], set[bytes]] = defaultdict(set)
    for s in sends.values():
        if s.acked:
            claims[(s.partition, s.offset)].add(s.value)
    for partition, offset, value, _ in h.polls:
        claims[(partition, offset)].add(value)
    for partition, records in h.final.items():
        for offset, value in records:
            claims[(partition, offset)].add(value)
    r.inconsistent = sorted((p, o, vs) for (p, o), vs in claims.items() if len(vs) > 1)
    return r


def unavailability(
    h: History, start: float, end: float | None = None, partition: int | None = None
) -> float:
    """Longest stretch between ``start`` and ``end`` (monotonic seconds) without any
    acknowledgement (of ``partition``, or of any partition): how long writers could not make
    progress."""
    end = end if end is not None else time.monotonic()
    acks = sorted(
        s.answered_at
        for s in h.sends.values()
        if s.acked and start <= s.answered_at and (partition is None or s.partition == partition)
    )
    acks = [t for t in acks if t <= end]
    points = [start, *acks, end] if acks else [start, end]
    return max(b - a for a, b in zip(points, points[1:], strict=False))
