"""FollowerPartition on real PartitionLogs: request fields, appends as-is, divergence,
errors, high watermark and log start learned from the leader."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.log import LogConfig, PartitionLog
from cluster.replication.follower import FetchState, FollowerPartition
from cluster.replication.state import PartitionAssignment
from tests.cluster.log.helpers import make_batch, read_all


def rec(leader=1, epoch=3) -> PartitionAssignment:
    return PartitionAssignment(leader, epoch, (1, 2), (1, 2), 4)


def logs(tmp_path):
    return (PartitionLog.open(tmp_path / "leader" / "t-0", LogConfig()),
            PartitionLog.open(tmp_path / "follower" / "t-0", LogConfig()))


def answer(fp, leader_log, **kw):
    fields = fp.fetch_request_fields(1 << 20)
    data = leader_log.read(fields["fetch_offset"], 1 << 20) if fields["fetch_offset"] < leader_log.log_end_offset else b""
    args = dict(error_code=0, high_watermark=leader_log.log_end_offset,
                log_start_offset=leader_log.log_start_offset, records=data, diverging_epoch=None, now_ms=1)
    args.update(kw)
    return fp.on_fetch_response(**args)


def test_request_fields_and_appends_keep_offsets_and_epochs(tmp_path):
    lead, fol = logs(tmp_path)
    lead.append([make_batch(3, tag=1)], leader_epoch=1, now_ms=1)
    lead.append([make_batch(2, tag=2)], leader_epoch=3, now_ms=1)
    fp = FollowerPartition("t", 0, 2, 9, rec(), fol)
    assert fp.fetch_request_fields(100) == {
        "partition": 0, "current_leader_epoch": 3, "fetch_offset": 0, "last_fetched_epoch": -1,
        "log_start_offset": 0, "partition_max_bytes": 100}
    assert fp.replica_state() == {"replica_id": 2, "replica_epoch": 9}
    applied = answer(fp, lead, high_watermark=4)
    assert applied.state is FetchState.FETCHING and applied.appended_batches == 2
    assert applied.high_watermark_moved and fp.high_watermark == 4
    assert read_all(fol) == read_all(lead)
    assert [h.partition_leader_epoch for h in fol.iter_batch_headers()] == [1, 3]
    assert fp.fetch_request_fields(100)["last_fetched_epoch"] == 3
    assert fp.fetch_request_fields(100)["fetch_offset"] == 5


def test_partial_tail_is_left_for_the_next_fetch(tmp_path):
    lead, fol = logs(tmp_path)
    lead.append([make_batch(1, tag=1)], leader_epoch=0, now_ms=1)
    lead.append([make_batch(1, tag=2)], leader_epoch=0, now_ms=1)
    data = lead.read(0, 1 << 20)
    fp = FollowerPartition("t", 0, 2, 1, rec(), fol)
    applied = answer(fp, lead, records=data[:-5])
    assert applied.appended_batches == 1 and fol.log_end_offset == 1


def test_corrupt_batch_fails_the_partition_and_writes_nothing(tmp_path):
    lead, fol = logs(tmp_path)
    lead.append([make_batch(2)], leader_epoch=0, now_ms=1)
    data = bytearray(lead.read(0, 1 << 20))
    data[-1] ^= 0xFF
    fp = FollowerPartition("t", 0, 2, 1, rec(), fol)
    assert answer(fp, lead, records=bytes(data)).state is FetchState.FAILED
    assert fol.log_end_offset == 0 and not fp.ready()


def test_high_watermark_is_capped_by_own_end_and_never_decreases(tmp_path):
    lead, fol = logs(tmp_path)
    lead.append([make_batch(5)], leader_epoch=0, now_ms=1)
    fp = FollowerPartition("t", 0, 2, 1, rec(), fol)
    answer(fp, lead, high_watermark=100)
    assert fp.high_watermark == 5
    answer(fp, lead, high_watermark=2, records=b"")
    assert fp.high_watermark == 5


def test_diverging_epoch_known_here_truncates_to_the_leaders_end(tmp_path):
    lead, fol = logs(tmp_path)
    for log in (lead, fol):
        log.append([make_batch(3, tag=1)], leader_epoch=1, now_ms=1)
    fol.append([make_batch(4, tag=9)], leader_epoch=1, now_ms=1)  # tail the leader lacks
    lead.append([make_batch(2, tag=2)], leader_epoch=2, now_ms=1)
    fp = FollowerPartition("t", 0, 2, 1, rec(epoch=2), fol)
    applied = answer(fp, lead, records=b"", diverging_epoch=(1, 3))
    assert applied.truncated_to == 3 and fol.log_end_offset == 3
    answer(fp, lead)
    assert read_all(fol) == read_all(lead)


def test_diverging_epoch_unknown_here_takes_two_rounds(tmp_path):
    """The follower's last epoch (5) never existed on the leader, which answers with its
    largest epoch below (2, ending at 6); the follower only knows epochs 1 and 5, so it
    first cuts back to the end of its epoch 1, then asks again."""
    lead, fol = logs(tmp_path)
    for log in (lead, fol):
        log.append([make_batch(4, tag=1)], leader_epoch=1, now_ms=1)
    lead.append([make_batch(2, tag=2)], leader_epoch=2, now_ms=1)
    fol.append([make_batch(3, tag=7)], leader_epoch=5, now_ms=1)
    lead.begin_leader_epoch(6)  # the leader of epoch 6, nothing written in it yet
    assert lead.end_offset_for_epoch(5) == (2, 6)
    fp = FollowerPartition("t", 0, 2, 1, rec(epoch=6), fol)
    first = answer(fp, lead, records=b"", diverging_epoch=lead.end_offset_for_epoch(5))
    assert first.truncated_to == 4 and fol.latest_epoch == 1
    fields = fp.fetch_request_fields(1)
    assert (fields["fetch_offset"], fields["last_fetched_epoch"]) == (4, 1)
    answer(fp, lead)
    assert read_all(fol) == read_all(lead)


def test_errors_decide_what_comes_next(tmp_path):
    lead, fol = logs(tmp_path)
    fp = FollowerPartition("t", 0, 2, 1, rec(), fol)
    for code, state in [(ErrorCode.fenced_leader_epoch, FetchState.AWAITING_METADATA),
                        (ErrorCode.not_leader_or_follower, FetchState.AWAITING_METADATA),
                        (ErrorCode.unknown_leader_epoch, FetchState.BACKOFF),
                        (ErrorCode.offset_out_of_range, FetchState.NEEDS_OFFSETS)]:
        fp.state = FetchState.FETCHING
        assert answer(fp, lead, error_code=code).state is state
    fp.state = FetchState.AWAITING_METADATA
    fp.become_follower(rec(epoch=2))  # older record: ignored
    assert fp.state is FetchState.AWAITING_METADATA
    fp.become_follower(PartitionAssignment(3, 4, (3, 2), (1, 2, 3), 5))
    assert fp.ready() and fp.leader == 3 and fp.fetch_request_fields(1)["current_leader_epoch"] == 4


def test_leader_offsets_after_out_of_range(tmp_path):
    lead, fol = logs(tmp_path)
    fol.append([make_batch(10)], leader_epoch=0, now_ms=1)
    fp = FollowerPartition("t", 0, 2, 1, rec(), fol)
    assert fp.on_leader_offsets(0, 4).truncated_to == 4 and fol.log_end_offset == 0  # whole batch goes
    fp.on_leader_offsets(20, 30)
    assert (fol.log_start_offset, fol.log_end_offset, fp.high_watermark) == (20, 20, 20)


def test_log_start_follows_the_leader(tmp_path):
    lead, fol = logs(tmp_path)
    lead.append([make_batch(3)], leader_epoch=0, now_ms=1)
    lead.append([make_batch(3, tag=1)], leader_epoch=0, now_ms=1)
    fp = FollowerPartition("t", 0, 2, 1, rec(), fol)
    answer(fp, lead)
    lead.delete_records_before(3)
    answer(fp, lead)
    assert fol.log_start_offset == 3
