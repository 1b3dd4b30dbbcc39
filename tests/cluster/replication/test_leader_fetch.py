"""check_replica_fetch / record_replica_fetch: Kafka's checks on a follower's Fetch."""

from __future__ import annotations

import pytest
from kio.schema.errors import ErrorCode

from cluster.log import LogConfig, PartitionLog
from cluster.replication.leader import LeaderPartition, ReplicationConfig
from cluster.replication.leader_fetch import check_replica_fetch, record_replica_fetch
from cluster.replication.state import PartitionAssignment
from tests.cluster.log.helpers import make_batch


@pytest.fixture
def setup(tmp_path):
    log = PartitionLog.open(tmp_path / "t-0", LogConfig())
    log.append([make_batch(4)], leader_epoch=1, now_ms=1)  # epoch 1: [0, 4)
    log.append([make_batch(3, tag=1)], leader_epoch=3, now_ms=1)  # epoch 3: [4, 7)
    rec = PartitionAssignment(1, 3, (1, 2), (1, 2, 3), 9)
    lp = LeaderPartition.become_leader("t", 0, 1, rec, ReplicationConfig(1000, 2),
                                       log_end_offset=7, high_watermark=4, now_ms=1000)
    yield lp, log
    log.close()


def check(lp, log, *, replica=2, cle=3, offset=7, lfe=3):
    return check_replica_fetch(lp, log, replica_id=replica, current_leader_epoch=cle,
                               fetch_offset=offset, last_fetched_epoch=lfe)


def test_in_sync_fetch_reads_and_moves_the_follower(setup):
    lp, log = setup
    c = check(lp, log)
    assert c.read and c.leader_log_end == 7
    moved, proposal = record_replica_fetch(lp, c, replica_id=2, fetch_offset=7, now_ms=1001)
    assert moved and lp.high_watermark == 7 and proposal is None


def test_epochs_fenced_as_kafka(setup):
    lp, log = setup
    assert check(lp, log, cle=2).error_code == ErrorCode.fenced_leader_epoch
    assert check(lp, log, cle=4).error_code == ErrorCode.unknown_leader_epoch
    assert check(lp, log, cle=-1).read  # no epoch given: not checked (old clients)
    assert check(lp, log, replica=7).error_code == ErrorCode.not_leader_or_follower
    assert check(None, log).error_code == ErrorCode.not_leader_or_follower


def test_diverging_epoch(setup):
    lp, log = setup
    # fetched epoch 1 up to 6, but epoch 1 ended at 4 here
    assert check(lp, log, offset=6, lfe=1).diverging_epoch == (1, 4)
    # epoch 2 never led here: the largest below is 1, ending at 4
    assert check(lp, log, offset=5, lfe=2).diverging_epoch == (1, 4)
    # follower exactly at the end of epoch 1: no divergence
    assert check(lp, log, offset=4, lfe=1).read
    # a follower ahead of the leader in the current epoch
    assert check(lp, log, offset=9, lfe=3).diverging_epoch == (3, 7)
    c = check(lp, log, offset=6, lfe=1)
    with pytest.raises(ValueError):
        record_replica_fetch(lp, c, replica_id=2, fetch_offset=6, now_ms=1)


def test_out_of_range(setup):
    lp, log = setup
    assert check(lp, log, offset=8, lfe=-1).error_code == ErrorCode.offset_out_of_range
    assert check(lp, log, offset=3, lfe=7).error_code == ErrorCode.offset_out_of_range  # epoch unknown
