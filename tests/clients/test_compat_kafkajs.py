"""kafkajs 2.2.4 beyond produce/consume: the admin calls (createTopics with configEntries and
validateOnly, createPartitions, fetchTopicMetadata, fetchTopicOffsets(ByTimestamp),
describe/alterConfigs, deleteTopicRecords, list/describe/delete groups, fetch/reset/setOffsets),
the group consumer's seek/pause/resume and eachBatch with manual resolveOffset and
commitOffsetsIfNecessary, and sendBatch to two topics with acks 0/1/-1 and every codec kafkajs
can load (gzip built in, snappy and lz4 from npm). Each scenario is one run of
tests/js/compat.js against a broker shared by the module."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from support import BrokerProcess, free_port

from .ondisk import read_batches

JS_DIR = Path(__file__).resolve().parent.parent / "js"


@pytest.fixture(scope="module")
def jsbroker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    if shutil.which("node") is None or not (JS_DIR / "node_modules" / "kafkajs").is_dir():
        pytest.skip("node or tests/js/node_modules missing (scripts/test.sh installs them)")
    d = tmp_path_factory.mktemp("jsbroker") / "data"
    d.mkdir()
    # no initial rebalance delay: kafkajs's consumers join several groups one after the other
    b = BrokerProcess(d, free_port(), {"group.initial.rebalance.delay.ms": "0"}).start()
    yield b
    b.stop()


def run(broker: BrokerProcess, scenario: str) -> dict:
    prefix = f"js{scenario}-{uuid.uuid4().hex[:8]}"
    proc = subprocess.run(
        ["node", str(JS_DIR / "compat.js"), scenario, broker.bootstrap, prefix],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=JS_DIR,
        env=dict(os.environ, KAFKAJS_NO_PARTITIONER_WARNING="1"),
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout)
    out["prefix"] = prefix
    return out


def test_admin(jsbroker) -> None:
    out = run(jsbroker, "admin")
    # validateOnly checks and creates nothing; a bad config fails the validation
    assert out["validateOnly"] is True and out["afterValidateOnly"] is False
    assert out["validateOnlyBad"]["error"] == "INVALID_CONFIG"
    assert out["create"] is True
    assert out["assigned"] == [[0, [0]], [1, [0]]]  # replicaAssignment as given
    assert out["assignedBadBroker"]["error"] == "INVALID_REPLICA_ASSIGNMENT"
    assert out["configs"] == {
        "cleanup.policy": ["compact", False],
        "max.message.bytes": ["30000", False],
        "retention.ms": ["604800000", True],
    }
    assert out["brokerConfigs"] == ["num.partitions"]
    assert out["alterValidateOnly"] == "604800000"  # validateOnly changed nothing
    assert out["shrink"]["error"] == "INVALID_PARTITIONS"
    assert out["metadata"] == [[p, 0, [0], [0], 0] for p in range(4)]
    assert out["metadataMissing"]["error"] == "UNKNOWN_TOPIC_OR_PARTITION"
    # [partition, low, high, offset]: 5 records on partition 3, which createPartitions added
    assert out["offsets"] == [[0, "0", "0", "0"], [1, "0", "0", "0"], [2, "0", "0", "0"],
                              [3, "0", "5", "5"]]  # fmt: skip
    # first record with timestamp >= base + 2500 is offset 3; past the last: the end
    assert out["byTimestamp"] == {"0": "0", "1": "0", "2": "0", "3": "3"}
    assert out["byTimestampLate"]["3"] == "5"
    assert out["byTimestampNone"]["3"] == "5"
    # DeleteRecords: refused on a compacted topic (as Kafka), then low watermark 2, past the
    # high watermark OFFSET_OUT_OF_RANGE, -1 means up to the high watermark
    assert out["deleteRecordsCompacted"]["error"] == "POLICY_VIOLATION"
    assert out["alter"]["resources"][0]["errorCode"] == 0
    assert out["deleteRecords"] == ["2", "5"]
    assert out["deleteRecordsPastEnd"]["error"] == "OFFSET_OUT_OF_RANGE"
    assert out["deleteRecordsToEnd"] == ["5", "5"]
    # [name, value, source]: the topic has no override, the broker default is the synonym
    assert out["synonyms"] == [["log.segment.bytes", "1073741824", 5]]
    assert out["reassign"] == {"topics": []}  # to the replicas it has: done at once
    assert out["createAcls"]["error"] == "KafkaJSServerDoesNotSupportApiKey"
    assert out["deleteTopics"] == []


def test_groups(jsbroker) -> None:
    out = run(jsbroker, "groups")
    group = f"{out['prefix']}-group"
    assert out["seen"] == 6
    assert out["listGroups"] == [{"groupId": group, "protocolType": "consumer"}]
    assert out["describeGroups"] == [
        {
            "groupId": group,
            "state": "Stable",
            "protocolType": "consumer",
            "protocol": "RoundRobinAssigner",
            "members": 1,
            "errorCode": 0,
        }
    ]
    assert out["fetchOffsets"] == [[0, "4"], [1, "2"]]
    assert out["deleteNonEmpty"]["error"] == "NON_EMPTY_GROUP"
    assert out["describeEmpty"] == "Empty"
    # kafkajs commits -2 (earliest) through a consumer of the group; the broker keeps it as is
    assert out["resetEarliest"] == [[0, "-2"], [1, "-2"]]
    assert out["setOffsets"] == [[0, "1"], [1, "-2"]]
    # a new member resumes at 1 on partition 0 and, -2 being no offset to kafkajs, at the
    # beginning (fromBeginning) on partition 1
    assert out["resumed"] == [[0, 1, "a1"], [0, 2, "a2"], [0, 3, "a3"], [1, 0, "b0"], [1, 1, "b1"]]
    assert out["delete"] == [{"groupId": group, "errorCode": 0}]
    assert out["fetchAfterDelete"] == [[0, "-1"], [1, "-1"]]
    assert out["deleteMissing"]["error"] == "GROUP_ID_NOT_FOUND"


def test_consumer_seek_pause_resume_each_batch(jsbroker) -> None:
    out = run(jsbroker, "consumer")
    topic = f"{out['prefix']}-cons"
    assert out["first"] == {"p0": list(range(10)), "p1": [0, 1, 2, 3]}
    assert out["paused"] == [{"topic": topic, "partitions": [1]}]
    assert out["p1WhilePaused"] == [0, 1, 2, 3]  # 4 and 5 were produced while paused
    assert out["afterSeek"] == [7, 8, 9, 10]
    assert out["afterResume"] == [4, 5]
    # eachBatch got partition 0's records as one batch; only 0..4 were resolved and committed
    [batch] = out["batches"]
    assert batch == {"first": "0", "last": "10", "hw": "11", "offsets": list(range(11))}
    assert out["batchCommitted"] == [[0, "5"], [1, "-1"]]


def test_producer_send_batch_acks_and_codecs(jsbroker) -> None:
    out = run(jsbroker, "producer")
    codecs = out["codecs"]
    assert codecs[:3] == ["none", "gzip", "snappy"]  # lz4 needs its native build
    topics = [f"{out['prefix']}-pa", f"{out['prefix']}-pb"]
    expected = []
    base = 0
    for acks in (0, 1, -1):
        for codec in codecs:
            label = f"acks{acks}-{codec}"
            if acks == 0:
                assert out[label] == []  # no response with acks=0
            else:
                assert out[label] == [[t, 0, 0, str(base)] for t in topics], label
            for t in topics:
                expected += [
                    [t, base + i, f"{label}-k{i}", f"{label}-{t}-{i}-" + "x" * 100, str(i)]
                    for i in range(3)
                ]
            base += 3
    assert out["offsets"] == {t: str(base) for t in topics}
    assert out["read"] == sorted(expected, key=lambda r: (r[0], r[1]))
    # stored as sent: one batch per send and topic, in the codec kafkajs chose ...
    for t in topics:
        stored = [(b.base_offset, b.records_count, b.codec) for b in read_batches(
            jsbroker.data_dir, t, 0)]  # fmt: skip
        assert stored == [(3 * i, 3, codec) for i, codec in enumerate(codecs * 3)]
    # ... and what kafkajs compressed another client reads back byte for byte
    c = Consumer({"bootstrap.servers": jsbroker.bootstrap, "group.id": out["prefix"]})
    c.assign([TopicPartition(topics[0], 0, 0)])
    got = []
    deadline = time.monotonic() + 15
    while len(got) < base and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            got.append([topics[0], m.offset(), m.key().decode(), m.value().decode(),
                        dict(m.headers())["h"].decode()])  # fmt: skip
    c.close()
    assert got == [r for r in expected if r[0] == topics[0]]


def test_transactional_producer_is_refused_cleanly(jsbroker) -> None:
    """kafkajs looks up the transaction coordinator, gets a non-retriable error and fails at
    once (kafkajs names it KafkaJSGroupCoordinatorNotFound), instead of retrying."""
    out = run(jsbroker, "transaction")
    assert out["transaction"]["error"] == "KafkaJSGroupCoordinatorNotFound"
    assert out["ms"] < 5000
    assert out["after"] is True
    assert jsbroker.proc.poll() is None
