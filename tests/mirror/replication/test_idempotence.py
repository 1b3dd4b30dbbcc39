"""The translating writer's pure parts: sequences per partition (mirror/replication/
idempotence.py), the batch header rewrite, and the resume check's matching of source
batches against the target's unsynced tail (mirror/replication/resume_check.py)."""

from __future__ import annotations

from cluster.wire import record_batch as rb
from cluster.wire.batch_builder import build_batch
from mirror.replication.idempotence import SEQ_MODULUS, Identity, Sequencer, rewrite
from mirror.replication.resume_check import Tail, landed_batches, records_crc

TP = ("t", 0)


def batch(values: list[bytes], base: int = 0, ts: int = 1_700_000_000_000, **kw) -> memoryview:
    return memoryview(build_batch([(b"k", v, [], ts + i) for i, v in enumerate(values)], base_offset=base, **kw))


def test_a_resent_batch_keeps_its_sequence_and_new_batches_follow_on() -> None:
    s = Sequencer(Identity(7, 0))
    assert s.assign(TP, 100, 3) == 0
    assert s.assign(TP, 103, 2) == 3
    assert s.assign(TP, 100, 3) == 0  # re-sent after a lost reply: same sequence
    assert s.assign(("t", 1), 100, 3) == 0  # sequences are per partition
    s.acknowledged(TP, 100)
    assert s.unacknowledged(TP) == 1
    assert s.assign(TP, 105, 1) == 5
    s.reset(Identity(8, 0))
    assert s.assign(TP, 105, 1) == 0 and s.identity == Identity(8, 0)


def test_sequences_wrap_at_two_to_the_31() -> None:
    s = Sequencer(Identity(1, 0))
    first = s.assign(TP, 0, SEQ_MODULUS - 2)
    assert first == 0 and s.assign(TP, SEQ_MODULUS - 2, 4) == SEQ_MODULUS - 2
    assert s.assign(TP, SEQ_MODULUS + 2, 1) == 2


def test_the_rewrite_sets_producer_fields_and_a_valid_crc_and_keeps_the_records_bytes() -> None:
    src = batch([b"a", b"b", b"c"], base=500, codec=3, producer_id=42, producer_epoch=3,
                base_sequence=9, transactional=True)
    head, body = rewrite(src, Identity(77, 5), 1234)
    out = bytes(head) + bytes(body)
    h = rb.validate(out)  # CRC checked
    assert (h.base_offset, h.producer_id, h.producer_epoch, h.base_sequence) == (0, 77, 5, 1234)
    assert not h.is_transactional and h.compression == 3 and h.records_count == 3
    assert body.obj is src.obj  # the records section is a view of the fetched bytes: no copy
    assert out[rb.HEADER_SIZE:] == bytes(src[rb.HEADER_SIZE:])
    assert records_crc(out) == records_crc(src)


def tail_of(*batches: memoryview, start: int = 0) -> Tail:
    data = b"".join(bytes(b) for b in batches)
    found, nxt = landed_batches(data, start)
    end = nxt
    t = Tail(start, end, nxt)
    t.batches.extend(found)
    return t


def on_target(b: memoryview, base: int) -> memoryview:
    """``b`` as the target stores it: our producer fields, the target's offsets."""
    head, body = rewrite(b, Identity(9, 0), 0)
    out = bytearray(bytes(head) + bytes(body))
    rb.set_base_offset(out, base)
    return memoryview(out)


def test_batches_already_on_the_target_are_matched_in_order_and_the_rest_counted() -> None:
    b1, b2, b3 = batch([b"1", b"2"], 10), batch([b"3"], 12), batch([b"4"], 13)
    tail = tail_of(on_target(b1, 100), on_target(b2, 102), start=100)
    m1 = tail.match(b1)
    assert m1 is not None and (m1.landed.base_offset, m1.skipped) == (100, 0)
    m2 = tail.match(b2)
    assert m2 is not None and m2.landed.next_offset == 103
    assert tail.exhausted and tail.unmatched() == 0
    assert tail.match(b3) is None


def test_same_values_at_another_time_are_not_the_same_batch() -> None:
    b = batch([b"x"], 10)
    tail = tail_of(on_target(batch([b"x"], 10, ts=1_700_000_000_999), 50), start=50)
    assert tail.match(b) is None
    assert tail.unmatched() == 1  # writing past it: one possible duplicate


def test_a_foreign_record_before_our_batch_is_skipped_and_counted() -> None:
    ours = batch([b"m1", b"m2"], 10)
    foreign = on_target(batch([b"app"], 0, ts=5), 200)
    tail = tail_of(foreign, on_target(ours, 201), start=200)
    m = tail.match(ours)
    assert m is not None and m.skipped == 1 and m.landed.base_offset == 201
    assert tail.exhausted and tail.unmatched() == 0


def test_a_tail_cut_short_leaves_the_unread_part_counted() -> None:
    b1 = batch([b"1"], 10)
    tail = tail_of(on_target(b1, 0), start=0)
    tail.end = 50  # the read stopped at offset 1 of 50
    assert tail.match(b1) is not None
    assert not tail.exhausted and tail.unmatched() == 49
