"""Consumer groups end to end: real brokers, real clients (confluent-kafka, kafka-python,
aiokafka) in separate processes, real time.

Each consumer runs as a subprocess of this very file (``python test_groups_e2e.py worker ...``)
and reports what happens to it as JSON lines: assignments, revocations, records. So a
consumer can be killed with SIGKILL like a crashed process, and the test sees exactly which
records every member received.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

JS_DIR = Path(__file__).parent / "js"
HAVE_KAFKAJS = shutil.which("node") is not None and (JS_DIR / "node_modules" / "kafkajs").is_dir()
_kafkajs = pytest.param(
    "kafkajs", marks=pytest.mark.skipif(not HAVE_KAFKAJS, reason="node/kafkajs not installed")
)
# kafkajs 2.2 has no group.instance.id: it takes part in every test but the static one.
CLIENTS = ["confluent", "kafka-python", "aiokafka", _kafkajs]
STATIC_CLIENTS = ["confluent", "kafka-python", "aiokafka"]

# The kafkajs consumer, speaking the same JSON-lines events as _worker below.
KAFKAJS_WORKER = r"""
const { Kafka, logLevel } = require('kafkajs')
const [bootstrap, group, topic, commit] = process.argv.slice(2)
const emit = (event, extra) => process.stdout.write(JSON.stringify({ event, ...extra }) + '\n')
const kafka = new Kafka({ clientId: 'kafkajs-groups', brokers: [bootstrap], logLevel: logLevel.NOTHING,
                          retry: { initialRetryTime: 100, retries: 20 } })
// kafkajs heartbeats between fetches: a short long-poll lets it notice a rebalance promptly.
const consumer = kafka.consumer({ groupId: group, sessionTimeout: 6000, rebalanceTimeout: 10000,
                                  heartbeatInterval: 500, metadataMaxAge: 2000, maxWaitTimeInMs: 500 })
consumer.on(consumer.events.GROUP_JOIN, (e) => {
  const parts = (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b)
  emit('assigned', { partitions: parts })
  emit('owned', { partitions: parts })
})
let stopping = false
process.on('SIGTERM', async () => {
  if (stopping) return
  stopping = true
  await consumer.disconnect()
  emit('closed', {})
  process.exit(0)
})
const main = async () => {
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      emit('record', { partition, offset: Number(message.offset), value: message.value.toString() })
      if (commit === 'commit') {
        try {
          await consumer.commitOffsets([{ topic, partition, offset: String(Number(message.offset) + 1) }])
        } catch (err) {
          emit('commit_failed', { error: String(err) })  // a rebalance: kafkajs rejoins
        }
      }
    },
  })
}
main().catch((err) => { process.stderr.write(String(err) + '\n'); process.exit(1) })
"""


def _kafkajs_script() -> Path:
    path = Path(tempfile.gettempdir()) / f"fastlog-groups-kafkajs-{os.getpid()}.js"
    if not path.exists():
        path.write_text(KAFKAJS_WORKER)
    return path


SESSION_TIMEOUT_MS = 6000
BROKER_OVERRIDES = {"group.initial.rebalance.delay.ms": "300", "num.partitions": "6"}


# --------------------------------------------------------------------------- the worker


def _emit(event: str, **kw: object) -> None:
    print(json.dumps({"event": event, **kw}), flush=True)


def _worker(
    client: str, bootstrap: str, group: str, topic: str, instance: str, commit: str, strategy: str
) -> None:
    stop = threading.Event()
    owned: list[int] | None = None

    def report_owned(partitions: list[int]) -> None:
        # The partitions the client holds right now, whatever the rebalance protocol.
        nonlocal owned
        if partitions != owned:
            owned = partitions
            _emit("owned", partitions=partitions)

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    instance_id = instance or None
    do_commit = commit == "commit"
    if client == "confluent":
        from confluent_kafka import Consumer

        conf = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": 500,
            "topic.metadata.refresh.interval.ms": 2000,
        }
        if instance_id:
            conf["group.instance.id"] = instance_id
        if strategy != "default":
            conf["partition.assignment.strategy"] = strategy
        if os.environ.get("GROUPS_TEST_RDKAFKA_DEBUG"):  # librdkafka's own trace, on stderr
            conf["debug"] = os.environ["GROUPS_TEST_RDKAFKA_DEBUG"]
        c = Consumer(conf)
        c.subscribe(
            [topic],
            on_assign=lambda _c, ps: _emit("assigned", partitions=sorted(p.partition for p in ps)),
            on_revoke=lambda _c, ps: _emit("revoked", partitions=sorted(p.partition for p in ps)),
        )
        while not stop.is_set():
            m = c.poll(0.2)
            report_owned(sorted(p.partition for p in c.assignment()))
            if m is None or m.error():
                continue
            _emit("record", partition=m.partition(), offset=m.offset(), value=m.value().decode())
            if do_commit:
                try:
                    c.commit(message=m, asynchronous=False)
                except Exception as exc:  # e.g. UNKNOWN_MEMBER_ID after a failover: rejoin
                    _emit("commit_failed", error=str(exc))
        c.close()
    elif client == "kafka-python":
        from kafka import ConsumerRebalanceListener, KafkaConsumer

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):  # noqa: ANN001
                _emit("revoked", partitions=sorted(tp.partition for tp in revoked))

            def on_partitions_assigned(self, assigned):  # noqa: ANN001
                _emit("assigned", partitions=sorted(tp.partition for tp in assigned))

        kw = {"group_instance_id": instance_id} if instance_id else {}
        c = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=500,
            metadata_max_age_ms=2000,
            **kw,
        )
        c.subscribe([topic], listener=Listener())
        while not stop.is_set():
            batches = c.poll(timeout_ms=200)
            report_owned(sorted(tp.partition for tp in c.assignment()))
            for tp, msgs in batches.items():
                for m in msgs:
                    _emit("record", partition=tp.partition, offset=m.offset, value=m.value.decode())
            if batches and do_commit:
                try:
                    c.commit()
                except Exception as exc:  # CommitFailedError during a rebalance
                    _emit("commit_failed", error=str(exc))
        c.close()
    elif client == "aiokafka":
        import asyncio

        from aiokafka import AIOKafkaConsumer
        from aiokafka.abc import ConsumerRebalanceListener as AIOListener

        class AListener(AIOListener):
            def on_partitions_revoked(self, revoked):  # noqa: ANN001
                _emit("revoked", partitions=sorted(tp.partition for tp in revoked))

            def on_partitions_assigned(self, assigned):  # noqa: ANN001
                _emit("assigned", partitions=sorted(tp.partition for tp in assigned))

        async def run() -> None:
            kw = {"group_instance_id": instance_id} if instance_id else {}
            c = AIOKafkaConsumer(
                bootstrap_servers=bootstrap,
                group_id=group,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
                session_timeout_ms=SESSION_TIMEOUT_MS,
                heartbeat_interval_ms=500,
                metadata_max_age_ms=2000,
                **kw,
            )
            c.subscribe([topic], listener=AListener())
            await c.start()
            try:
                while not stop.is_set():
                    batches = await c.getmany(timeout_ms=200)
                    report_owned(sorted(tp.partition for tp in c.assignment()))
                    for tp, msgs in batches.items():
                        for m in msgs:
                            _emit(
                                "record",
                                partition=tp.partition,
                                offset=m.offset,
                                value=m.value.decode(),
                            )
                    if batches and do_commit:
                        try:
                            await c.commit()
                        except Exception as exc:  # CommitFailedError during a rebalance
                            _emit("commit_failed", error=str(exc))
            finally:
                await c.stop()

        asyncio.run(run())
    else:
        raise SystemExit(f"unknown client {client}")
    _emit("closed")


# --------------------------------------------------------------------------- test side


class Worker:
    """A consumer subprocess and the events it reported."""

    def __init__(
        self,
        client: str,
        bootstrap: str,
        group: str,
        topic: str,
        instance: str = "",
        commit: bool = False,
        strategy: str = "default",
    ) -> None:
        cmd = [
            sys.executable,
            __file__,
            "worker",
            client,
            bootstrap,
            group,
            topic,
            instance,
            "commit" if commit else "nocommit",
            strategy,
        ]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if client == "kafkajs":
            commit_arg = "commit" if commit else "nocommit"
            cmd = ["node", str(_kafkajs_script()), bootstrap, group, topic, commit_arg]
            env["NODE_PATH"] = str(JS_DIR / "node_modules")
        # GROUPS_TEST_STDERR_DIR keeps each worker's stderr for debugging.
        err_dir = os.environ.get("GROUPS_TEST_STDERR_DIR")
        stderr: Any = subprocess.DEVNULL
        if err_dir:
            stderr = open(Path(err_dir) / f"worker-{group}-{time.monotonic_ns()}.err", "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, env=env, text=True)
        if err_dir:
            stderr.close()
        self.events: list[dict] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                self.events.append(ev)

    def snapshot(self) -> list[dict]:
        with self._lock:
            return list(self.events)

    def assignment(self) -> set[int]:
        """The partitions the consumer last reported holding."""
        current: set[int] = set()
        for ev in self.snapshot():
            if ev["event"] == "owned":
                current = set(ev["partitions"])
        return current

    def count(self, kind: str) -> int:
        return sum(1 for ev in self.snapshot() if ev["event"] == kind)

    def records(self) -> list[dict]:
        return [ev for ev in self.snapshot() if ev["event"] == "record"]

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if cond():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def split_evenly(workers: list[Worker], n_partitions: int) -> bool:
    sets = [w.assignment() for w in workers]
    if any(not s for s in sets):
        return False
    union: set[int] = set().union(*sets)
    return union == set(range(n_partitions)) and sum(len(s) for s in sets) == n_partitions


def produce(bootstrap: str, topic: str, n: int, tag: str, partitions: int = 6) -> set[str]:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    values = set()
    for i in range(n):
        v = f"{tag}-{i}"
        p.produce(topic, value=v.encode(), partition=i % partitions)
        values.add(v)
    assert p.flush(15) == 0
    return values


def create_topic(bootstrap: str, topic: str, partitions: int = 6) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    a = AdminClient({"bootstrap.servers": bootstrap})
    for f in a.create_topics([NewTopic(topic, partitions, 1)]).values():
        f.result(15)


@pytest.fixture(scope="module")
def group_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from support import BrokerProcess, free_port

    d = tmp_path_factory.mktemp("groups") / "data"
    d.mkdir()
    b = BrokerProcess(d, free_port(), dict(BROKER_OVERRIDES)).start()
    yield b
    b.stop()


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for w in started:
        if w.proc.poll() is None:
            w.kill()


def describe_json(bootstrap: str, group: str) -> dict:
    """What `fastlog groups describe GROUP --json` reports."""
    from click.testing import CliRunner

    from broker.tools.groups import groups

    r = CliRunner().invoke(groups, ["describe", group, "--json", "-b", bootstrap, "--timeout", "5"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


@pytest.mark.parametrize("client", CLIENTS)
def test_three_consumers_split_partitions_and_see_every_record_once(
    client: str, group_broker, workers: list[Worker]
) -> None:
    bs = group_broker.bootstrap
    topic, group = f"split-{client}", f"g-split-{client}"
    create_topic(bs, topic)
    workers += [Worker(client, bs, group, topic, commit=True) for _ in range(3)]
    wait_until(lambda: split_evenly(workers, 6), 40, "three members to split 6 partitions")
    assert all(len(w.assignment()) == 2 for w in workers)
    values = produce(bs, topic, 60, "r")
    wait_until(lambda: sum(len(w.records()) for w in workers) >= 60, 30, "all records consumed")
    time.sleep(0.5)  # a duplicate would show up now
    seen = [r["value"] for w in workers for r in w.records()]
    assert sorted(seen) == sorted(values)  # every record exactly once
    for w in workers:  # each member only read its own partitions
        assert {r["partition"] for r in w.records()} <= w.assignment()

    # describe: the three members, their partitions, and no lag once everything is committed
    def caught_up() -> bool:
        parts = describe_json(bs, group)["partitions"]
        return len(parts) == 6 and all(p["lag"] == 0 for p in parts)

    wait_until(caught_up, 20, "committed offsets to reach the log end")
    d = describe_json(bs, group)
    assert d["state"] == "Stable" and len(d["members"]) == 3
    assert sorted(sorted(p for _, p in m["assignment"]) for m in d["members"]) == sorted(
        sorted(w.assignment()) for w in workers
    )
    assert all(m["host"] == "/127.0.0.1" for m in d["members"])
    assert [(p["partition"], p["committed_offset"], p["end_offset"]) for p in d["partitions"]] == [
        (i, 10, 10) for i in range(6)
    ]
    owners = {p["partition"]: p["member_id"] for p in d["partitions"]}
    for m in d["members"]:
        assert {p for _, p in m["assignment"]} == {
            i for i, o in owners.items() if o == m["member_id"]
        }


def test_cooperative_sticky_rebalance_keeps_partitions(group_broker, workers: list[Worker]) -> None:
    """librdkafka's cooperative-sticky assignor: survivors keep what they had and only gain."""
    bs = group_broker.bootstrap
    topic, group = "coop", "g-coop"
    create_topic(bs, topic)
    workers += [
        Worker("confluent", bs, group, topic, strategy="cooperative-sticky") for _ in range(3)
    ]
    wait_until(lambda: split_evenly(workers, 6), 40, "three members to split 6 partitions")
    assert describe_json(bs, group)["assignor"] == "cooperative-sticky"
    victim, survivors = workers[0], workers[1:]
    before = [w.assignment() for w in survivors]
    marks = [len(w.snapshot()) for w in survivors]
    victim.kill()
    wait_until(lambda: split_evenly(survivors, 6), SESSION_TIMEOUT_MS / 1000 + 10, "takeover")
    for w, had, mark in zip(survivors, before, marks, strict=True):
        assert had <= w.assignment()  # nothing taken away
        revoked = [
            ev for ev in w.snapshot()[mark:] if ev["event"] == "revoked" and ev["partitions"]
        ]
        assert revoked == []
    values = produce(bs, topic, 18, "coop")
    wait_until(
        lambda: {r["value"] for w in survivors for r in w.records()} >= values,
        30,
        "records consumed",
    )


@pytest.mark.parametrize("client", CLIENTS)
def test_killed_consumer_partitions_move_within_session_timeout(
    client: str, group_broker, workers: list[Worker]
) -> None:
    bs = group_broker.bootstrap
    topic, group = f"kill-{client}", f"g-kill-{client}"
    create_topic(bs, topic)
    workers += [Worker(client, bs, group, topic) for _ in range(3)]
    wait_until(lambda: split_evenly(workers, 6), 40, "three members to split 6 partitions")
    victim, survivors = workers[0], workers[1:]
    victim.kill()
    took = wait_until(
        lambda: split_evenly(survivors, 6), SESSION_TIMEOUT_MS / 1000 + 10, "survivors to take over"
    )
    print(f"{client}: partitions of the killed member moved after {took:.1f} s")
    # The session timeout (6 s) plus a heartbeat interval and the survivors' rejoin.
    assert took < SESSION_TIMEOUT_MS / 1000 + 5
    values = produce(bs, topic, 30, "after-kill")
    wait_until(
        lambda: {r["value"] for w in survivors for r in w.records()} >= values,
        30,
        "survivors to read every partition",
    )


@pytest.mark.parametrize("client", CLIENTS)
def test_group_resumes_from_committed_offsets_after_broker_restart(
    client: str, make_broker, workers: list[Worker]
) -> None:
    b = make_broker(dict(BROKER_OVERRIDES))
    topic, group = f"resume-{client}", f"g-resume-{client}"
    create_topic(b.bootstrap, topic)
    first = produce(b.bootstrap, topic, 30, "first")
    w = Worker(client, b.bootstrap, group, topic, commit=True)
    workers.append(w)
    wait_until(lambda: {r["value"] for r in w.records()} >= first, 40, "first batch consumed")
    time.sleep(0.5)  # let the last commit land
    w.stop()
    assert w.count("closed") == 1
    b.restart()
    second = produce(b.bootstrap, topic, 30, "second")
    w2 = Worker(client, b.bootstrap, group, topic, commit=True)
    workers.append(w2)
    wait_until(lambda: {r["value"] for r in w2.records()} >= second, 40, "second batch consumed")
    time.sleep(0.5)
    # The restarted group starts at the committed offsets: nothing of the first batch again.
    assert {r["value"] for r in w2.records()} == second
    assert len(w2.records()) == 30


@pytest.mark.parametrize("client", STATIC_CLIENTS)
def test_static_member_restarts_without_rebalance(
    client: str, group_broker, workers: list[Worker]
) -> None:
    bs = group_broker.bootstrap
    topic, group = f"static-{client}", f"g-static-{client}"
    create_topic(bs, topic)
    a = Worker(client, bs, group, topic, instance="member-a")
    b = Worker(client, bs, group, topic, instance="member-b")
    workers += [a, b]
    wait_until(lambda: split_evenly([a, b], 6), 40, "two static members to split 6 partitions")
    before_a, before_b = a.assignment(), b.assignment()
    assigns_a, revokes_a = a.count("assigned"), a.count("revoked")
    rebalances = group_broker.output().count(f"group {group}: preparing to rebalance")
    b.kill()  # no LeaveGroup: a crash, or a rolling restart
    b2 = Worker(client, bs, group, topic, instance="member-b")
    workers.append(b2)
    wait_until(lambda: b2.assignment() == before_b, 30, "the restarted static member's partitions")
    time.sleep(1.5)  # several heartbeats: a rebalance would have reached member-a by now
    assert a.count("assigned") == assigns_a and a.count("revoked") == revokes_a
    assert a.assignment() == before_a
    assert group_broker.output().count(f"group {group}: preparing to rebalance") == rebalances
    values = produce(bs, topic, 12, "static")
    wait_until(
        lambda: {r["value"] for w in (a, b2) for r in w.records()} >= values, 30, "records consumed"
    )


@pytest.mark.parametrize("client", ["confluent", "aiokafka"])
def test_group_survives_broker_kill_without_rebalance(client: str, make_broker, workers) -> None:
    """kill -9 of the broker: committed offsets and the group's generation come back from
    __consumer_offsets, so running consumers carry on where they were, without a rebalance."""
    b = make_broker(dict(BROKER_OVERRIDES))
    topic, group = f"crash-{client}", f"g-crash-{client}"
    create_topic(b.bootstrap, topic)
    w = Worker(client, b.bootstrap, group, topic, commit=True)
    workers.append(w)
    wait_until(lambda: w.assignment() == set(range(6)), 40, "the consumer to own 6 partitions")
    first = produce(b.bootstrap, topic, 30, "before")
    wait_until(lambda: {r["value"] for r in w.records()} >= first, 30, "first batch consumed")
    time.sleep(0.5)
    assigns = w.count("assigned")
    b.kill()
    b.start()
    second = produce(b.bootstrap, topic, 30, "after")
    wait_until(lambda: {r["value"] for r in w.records()} >= second, 40, "second batch consumed")
    time.sleep(1.0)
    assert w.count("assigned") == assigns  # same generation: no rebalance
    values = [r["value"] for r in w.records()]
    assert len(values) == len(set(values)) == 60  # nothing read twice


def test_offsets_retention_expires_offsets_of_empty_groups_only(make_broker, workers) -> None:
    """offsets.retention.minutes on a live broker (0 here, so expiry is due at every check)."""
    from confluent_kafka import Consumer, TopicPartition

    overrides = dict(BROKER_OVERRIDES)
    overrides.update(
        {"offsets.retention.minutes": "0", "offsets.retention.check.interval.ms": "300"}
    )
    b = make_broker(overrides)
    create_topic(b.bootstrap, "ret")

    def committed(group: str) -> list[int]:
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group})
        try:
            return [
                tp.offset
                for tp in c.committed([TopicPartition("ret", p) for p in range(6)], timeout=10)
            ]
        finally:
            c.close()

    w = Worker("confluent", b.bootstrap, "g-ret-active", "ret", commit=True)
    workers.append(w)
    wait_until(lambda: w.assignment() == set(range(6)), 40, "the consumer to own 6 partitions")
    values = produce(b.bootstrap, "ret", 12, "ret")
    wait_until(lambda: {r["value"] for r in w.records()} >= values, 30, "records consumed")
    time.sleep(1.5)  # several expiry checks
    assert committed("g-ret-active") == [2] * 6  # a group with members keeps its offsets
    w.stop()  # leaves: the group is empty now, its offsets are due
    wait_until(
        lambda: committed("g-ret-active") == [-1001] * 6, 15, "offsets of the empty group to expire"
    )
    assert "g-ret-active" not in groups_list_output(b.bootstrap)


def groups_list_output(bootstrap: str) -> str:
    from click.testing import CliRunner

    from broker.tools.groups import groups

    return CliRunner().invoke(groups, ["list", "-b", bootstrap, "--timeout", "5"]).output


def test_commit_metadata_round_trips_across_restart(make_broker) -> None:
    """Metadata strings committed by two different clients come back, also after a restart."""
    from confluent_kafka import Consumer, TopicPartition
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTopicPartition
    from kafka.structs import OffsetAndMetadata

    b = make_broker(dict(BROKER_OVERRIDES))
    create_topic(b.bootstrap, "meta", 2)
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "g-meta-ck"})
    c.commit(offsets=[TopicPartition("meta", 0, 5, metadata="checkpoint ☃ 1")], asynchronous=False)
    c.close()
    k = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id="g-meta-kp", enable_auto_commit=False)
    k.commit({KTopicPartition("meta", 1): OffsetAndMetadata(7, "kafka-python says hi", -1)})
    k.close()
    b.restart()
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "g-meta-ck"})
    (tp,) = c.committed([TopicPartition("meta", 0)], timeout=15)
    c.close()
    assert (tp.offset, tp.metadata) == (5, "checkpoint ☃ 1")
    k = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id="g-meta-kp", enable_auto_commit=False)
    got = k.committed(KTopicPartition("meta", 1), metadata=True)
    k.close()
    assert (got.offset, got.metadata) == (7, "kafka-python says hi")


if __name__ == "__main__" and len(sys.argv) >= 9 and sys.argv[1] == "worker":
    sys.path.insert(0, str(Path(__file__).parent))
    _worker(*sys.argv[2:9])
