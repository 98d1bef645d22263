"""OffsetForLeaderEpoch (API 23) on a live single-node broker, and its leader-epoch-checkpoint."""

from __future__ import annotations

import pytest
from test_broker_network import RawClient, request
from test_broker_produce import batch, partition_response, produce_request


@pytest.fixture
def client(broker):
    c = RawClient(broker.bootstrap)
    yield c
    c.close()


def epoch_request(version: int, topic: str, leader_epoch: int, current: int = -1, part: int = 0):
    from kio.index import load_request_schema

    from broker.protocol import make, nested

    if version < 2:  # kio dropped v0-1: broker/replication/legacy.py has them
        from broker.replication import legacy

        cls = legacy.EPOCH_LEGACY[(23, version)][0]
        pcls, tcls = legacy.OffsetForLeaderPartitionV0, legacy.OffsetForLeaderTopicV0
    else:
        cls = load_request_schema(23, version)
        pcls = nested(cls, "OffsetForLeaderPartition")
        tcls = nested(cls, "OffsetForLeaderTopic")
    return make(
        cls,
        replica_id=-1,
        topics=(
            make(
                tcls,
                topic=topic,
                partitions=(
                    make(
                        pcls,
                        partition=part,
                        current_leader_epoch=current,
                        leader_epoch=leader_epoch,
                    ),
                ),
            ),
        ),
    )


def answer(client: RawClient, req) -> tuple[int, int, int]:
    (t,) = client.call(req).topics
    (p,) = t.partitions
    return int(p.error_code.value), getattr(p, "leader_epoch", -1), p.end_offset


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_offset_for_leader_epoch(client: RawClient, broker, version: int) -> None:
    topic = f"epochs-v{version}"
    for _ in range(3):
        r = client.call(produce_request(9, topic, 0, batch([b"a", b"b"])))
        assert partition_response(r).error_code.value == 0
    # v0 has no epoch in the answer (reads back as the default -1)
    epoch0 = 0 if version >= 1 else -1
    # the single node leads epoch 0 from offset 0: epoch 0 ends at the log end offset
    assert answer(client, epoch_request(version, topic, 0)) == (0, epoch0, 6)
    # an epoch newer than any known: undefined
    assert answer(client, epoch_request(version, topic, 4)) == (0, -1, -1)
    if version >= 2:
        assert answer(client, epoch_request(version, topic, 0, current=0)) == (0, 0, 6)
        assert answer(client, epoch_request(version, topic, 0, current=2))[0] == 75
    assert answer(client, epoch_request(version, "no-such-topic-here", 0, part=0))[0] == 3
    assert answer(client, epoch_request(version, topic, 0, part=99))[0] == 3
    checkpoint = broker.data_dir / f"{topic}-0" / "leader-epoch-checkpoint"
    assert checkpoint.read_text() == "0\n1\n0 0\n"


def test_api_versions_advertises_offset_for_leader_epoch(client: RawClient) -> None:
    r = client.call(request(18, 3, client_software_name="raw-test", client_software_version="1"))
    (k,) = [k for k in r.api_keys if k.api_key == 23]
    assert (k.min_version, k.max_version) == (0, 4)


def test_damaged_or_missing_checkpoint_is_rebuilt_from_the_log(make_broker) -> None:
    b = make_broker()
    c = RawClient(b.bootstrap)
    try:
        for _ in range(2):
            r = c.call(produce_request(9, "rebuild", 0, batch([b"a", b"b", b"c"])))
            assert partition_response(r).error_code.value == 0
    finally:
        c.close()
    checkpoint = b.data_dir / "rebuild-0" / "leader-epoch-checkpoint"
    for damage in ("0\n5\n0 0\n", None):
        b.stop()
        if damage is None:
            checkpoint.unlink()
        else:
            checkpoint.write_text(damage)
        b.start()
        c = RawClient(b.bootstrap)
        try:
            assert answer(c, epoch_request(4, "rebuild", 0)) == (0, 0, 6)
        finally:
            c.close()
        assert checkpoint.read_text() == "0\n1\n0 0\n"
