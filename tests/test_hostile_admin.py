"""Admin and auto-creation requests that would exhaust the broker's file descriptors.

Every partition holds open files (its active segment and indexes, its lock). Past the
process's open-file limit the broker cannot accept connections or append, and with the
partitions recorded in its metadata it cannot even start again. One CreateTopics request,
or one Metadata request auto-creating topics, needs no authentication: the broker must
refuse what it could not open (INVALID_PARTITIONS) and keep serving.
"""

from __future__ import annotations

import datetime
import os
import resource
from collections.abc import Iterator

import pytest
from kio.index import load_request_schema
from support import BrokerProcess, free_port
from test_hostile_support import Witness, connect, honest_after, read_frame

from broker.protocol import decode_response, encode_request, make, nested

NOFILE = 3000  # the broker's limit in this test: room for a few hundred partitions
INVALID_PARTITIONS = 37


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    d = tmp_path_factory.mktemp("hostile-admin") / "data"
    d.mkdir()
    b = BrokerProcess(d, free_port(), {"num.partitions": "1"}).start()
    resource.prlimit(b.proc.pid, resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
    yield b
    b.stop()


def call(broker: BrokerProcess, req):
    with connect(broker, timeout=60) as s:
        s.sendall(encode_request(req, 3, "admin-attacker"))
        return decode_response(read_frame(s), req.__api_key__, req.__version__)[1]


def create_topics(broker: BrokerProcess, name: str, partitions: int):
    cls = load_request_schema(19, 5)
    topic = make(
        nested(cls, "CreatableTopic"),
        name=name,
        num_partitions=partitions,
        replication_factor=1,
        assignments=(),
        configs=(),
    )
    r = call(
        broker,
        make(cls, topics=(topic,), timeout=datetime.timedelta(seconds=30), validate_only=False),
    )
    return r.topics[0]


def open_files(broker: BrokerProcess) -> int:
    return len(os.listdir(f"/proc/{broker.proc.pid}/fd"))


def topic_exists(broker: BrokerProcess, name: str) -> bool:
    cls = load_request_schema(3, 9)
    req = make(
        cls,
        topics=(make(nested(cls, "MetadataRequestTopic"), name=name),),
        allow_auto_topic_creation=False,
        include_cluster_authorized_operations=False,
        include_topic_authorized_operations=False,
    )
    return call(broker, req).topics[0].error_code.value == 0


def test_create_topics_beyond_the_open_file_limit(target: BrokerProcess) -> None:
    witness = Witness(target.bootstrap)
    witness.produce(5, tag="before")
    t = create_topics(target, "fd-bomb", 30_000)
    assert t.error_code.value == INVALID_PARTITIONS, t
    assert "open files" in (t.error_message or "")
    assert not topic_exists(target, "fd-bomb")
    assert open_files(target) < NOFILE // 2
    honest_after(target, witness)


def test_create_partitions_beyond_the_open_file_limit(target: BrokerProcess) -> None:
    witness = Witness(target.bootstrap)
    witness.produce(5, tag="before")
    assert create_topics(target, "grows", 1).error_code.value == 0
    cls = load_request_schema(37, 3)
    topic = make(nested(cls, "CreatePartitionsTopic"), name="grows", count=30_000, assignments=None)
    r = call(
        target,
        make(cls, topics=(topic,), timeout=datetime.timedelta(seconds=30), validate_only=False),
    )
    assert r.results[0].error_code.value == INVALID_PARTITIONS, r.results[0]
    assert open_files(target) < NOFILE // 2
    honest_after(target, witness)


def test_auto_creation_stops_at_the_open_file_limit(target: BrokerProcess) -> None:
    """One Metadata request naming 1000 unknown topics with auto-creation on: the broker
    creates what it can hold, answers the rest with an error, and stays up."""
    witness = Witness(target.bootstrap)
    witness.produce(5, tag="before")
    cls = load_request_schema(3, 9)
    names = [f"auto-{i:04d}" for i in range(1000)]
    req = make(
        cls,
        topics=tuple(make(nested(cls, "MetadataRequestTopic"), name=n) for n in names),
        allow_auto_topic_creation=True,
        include_cluster_authorized_operations=False,
        include_topic_authorized_operations=False,
    )
    r = call(target, req)
    codes = [t.error_code.value for t in r.topics]
    assert INVALID_PARTITIONS in codes or any(c != 0 for c in codes)
    assert open_files(target) < NOFILE
    honest_after(target, witness)
