"""The translating sink against a real (in-process) target broker: a batch re-sent after a
lost reply is dropped by the target as the idempotent producer's retry; after a crash
between produce and offset sync, a new sink (a new producer id) finds what already landed
and does not write it again; what it cannot match is counted as a possible duplicate; an
out-of-order sequence starts a new producer identity (mirror/replication/sinks.py)."""

from __future__ import annotations

import pytest
from kio.schema.errors import ErrorCode

from cluster.client.admin import NewTopic
from cluster.client.client import KafkaClient
from cluster.client.data import FetchPosition
from cluster.client.errors import KafkaConnectionError
from cluster.wire import record_batch as rb
from cluster.wire.batch_builder import build_batch
from mirror.replication.sinks import TranslatingSink

TP = ("t", 0)


def batch(base: int, *values: str, ts: int = 1_700_000_000_000) -> memoryview:
    return memoryview(build_batch([(b"k", v.encode(), [], ts + i) for i, v in enumerate(values)],
                                  base_offset=base, codec=3, producer_id=55, producer_epoch=0, base_sequence=base))


SOURCE = [batch(0, "a", "b"), batch(2, "c"), batch(3, "d", "e", "f"), batch(6, "g")]


@pytest.fixture
async def target(brokers):
    client = KafkaClient(brokers[1], retry_deadline_s=5)
    await client.start()
    await client.create_topics([NewTopic("t", 1, -1, {})])
    yield client
    await client.close()


async def target_values(client: KafkaClient) -> list[tuple[int, int]]:
    """(offset, producer id) of every record batch on the target partition."""
    got = await client.fetch({TP: FetchPosition(0, 1 << 20)}, max_wait_ms=0)
    return [(h.base_offset, h.producer_id) for _, h in rb.iter_batches(memoryview(got[TP].records))]


async def end(client: KafkaClient) -> int:
    return (await client.list_offsets("t", [0], -1))[0][0]


async def synced(client: KafkaClient) -> list[tuple[int, int]]:
    s = TranslatingSink(client, lambda t: t, "l")
    return [(x.upstream_offset, x.downstream_offset) for x in await s.read_syncs() if x.partition == 0]


async def test_a_batch_resent_after_a_lost_reply_is_dropped_by_the_target(target, monkeypatch) -> None:
    sink = TranslatingSink(target, lambda t: t, "l")
    assert await sink.resume_positions([TP]) == {TP: None}
    real = target.produce_rounds

    async def reply_lost(rounds):
        await real(rounds)
        raise KafkaConnectionError("connection reset before the reply")

    monkeypatch.setattr(target, "produce_rounds", reply_lost)
    with pytest.raises(KafkaConnectionError):
        await sink.write({TP: SOURCE[:2]})
    monkeypatch.setattr(target, "produce_rounds", real)
    w = (await sink.write({TP: SOURCE[:3]}))[TP]  # re-sent at once, as a retry would
    assert w.error is None and w.batches == 3 and w.next_upstream == 6 and w.possible_duplicates == 0
    assert await end(target) == 6  # not 9: the target dropped the two re-sent batches
    pid = sink._sequencer.identity.producer_id  # type: ignore[union-attr]
    assert [p for _, p in await target_values(target)] == [pid, pid, pid]
    assert await synced(target) == [(0, 0), (2, 2), (3, 3)]


async def test_after_a_crash_before_the_sync_a_new_sink_does_not_write_twice(target, monkeypatch) -> None:
    first = TranslatingSink(target, lambda t: t, "l")
    await first.resume_positions([TP])
    assert (await first.write({TP: SOURCE[:1]}))[TP].error is None  # synced

    async def crash(records):
        raise KafkaConnectionError("mirror killed before the sync was written")

    monkeypatch.setattr(first.syncs, "append", crash)
    with pytest.raises(KafkaConnectionError):
        await first.write({TP: SOURCE[1:3]})
    assert await end(target) == 6

    second = TranslatingSink(target, lambda t: t, "l")  # the restarted daemon: a new producer id
    assert await second.resume_positions([TP]) == {TP: 2}
    w = (await second.write({TP: SOURCE[1:]}))[TP]
    assert w.error is None and w.batches == 3 and w.next_upstream == 7 and w.possible_duplicates == 0
    assert await end(target) == 7  # only the fourth batch was written
    assert await synced(target) == [(0, 0), (2, 2), (3, 3), (6, 6)]


async def test_a_crash_before_the_first_sync_is_found_from_the_log_start(target, monkeypatch) -> None:
    first = TranslatingSink(target, lambda t: t, "l")
    await first.resume_positions([TP])

    async def crash(records):
        raise KafkaConnectionError("killed")

    monkeypatch.setattr(first.syncs, "append", crash)
    with pytest.raises(KafkaConnectionError):
        await first.write({TP: SOURCE[:2]})
    second = TranslatingSink(target, lambda t: t, "l")
    assert await second.resume_positions([TP]) == {TP: None}  # the copier starts at the source start
    w = (await second.write({TP: SOURCE}))[TP]
    assert (w.batches, w.possible_duplicates, await end(target)) == (4, 0, 7)


async def test_target_records_that_match_no_source_batch_are_counted(target) -> None:
    sink = TranslatingSink(target, lambda t: t, "l")
    await sink.resume_positions([TP])
    await sink.write({TP: SOURCE[:1]})
    await target.produce("t", 0, build_batch([(None, b"an application wrote here", [], 5)]))
    again = TranslatingSink(target, lambda t: t, "l")
    assert await again.resume_positions([TP]) == {TP: 2}
    w = (await again.write({TP: SOURCE[1:2]}))[TP]
    assert w.error is None and w.possible_duplicates == 1  # cannot be ruled out: reported
    assert await end(target) == 4
    held = await TranslatingSink(target, lambda t: t, "l").read_syncs()
    assert [x.possible_duplicates for x in held if x.partition == 0] == [0, 1]  # durable, in the sync


async def test_an_out_of_order_sequence_starts_a_new_producer_identity(target) -> None:
    sink = TranslatingSink(target, lambda t: t, "l")
    await sink.resume_positions([TP])
    await sink.write({TP: SOURCE[:1]})
    old = sink._sequencer.identity  # type: ignore[union-attr]
    sink._sequencer._parts[TP].next_seq += 10  # type: ignore[union-attr]  # a gap, as a lost batch leaves
    w = (await sink.write({TP: SOURCE[1:2]}))[TP]
    assert w.error is not None and w.error.error_code == ErrorCode.out_of_order_sequence_number
    assert await sink.resume_positions([TP]) == {TP: 2}
    w = (await sink.write({TP: SOURCE[1:2]}))[TP]
    assert w.error is None and w.batches == 1
    assert sink._sequencer.identity != old  # type: ignore[union-attr]
    assert await end(target) == 3


async def test_status_and_the_runner_count_what_the_syncs_carry(brokers, target, tmp_path) -> None:
    """`dcmirror status` (table and --json) and a starting runner's progress (the metric's
    source) both sum the possible duplicates recorded in the offset syncs."""
    from mirror.config.model import load_config
    from mirror.daemon.metrics import Metrics
    from mirror.incident.status import link_status, render_table
    from mirror.replication.link import LinkRunner
    from mirror.replication.mode import SyncMapping
    from tests.mirror.conftest import link, write_config

    east = KafkaClient(brokers[0], retry_deadline_s=5)
    await east.start()
    await east.create_topics([NewTopic("t", 1, -1, {})])
    await east.produce("t", 0, build_batch([(None, b"a", [], 1), (None, b"b", [], 2)]))
    await east.close()
    sink = TranslatingSink(target, lambda t: t, "l")
    await sink.resume_positions([TP])
    await sink.write({TP: SOURCE[:1]})
    await target.produce("t", 0, build_batch([(None, b"foreign", [], 5)]))
    again = TranslatingSink(target, lambda t: t, "l")
    await again.resume_positions([TP])
    await again.write({TP: SOURCE[1:2]})

    cfg = load_config(write_config(tmp_path / "m.yaml", {"east": brokers[0], "west": brokers[1]},
                                   [link("l", "east", "west", ["t"], mode="translate")]))
    entry = await link_status(cfg, cfg.links[0])
    assert [p["possible_duplicates"] for p in entry["partitions"]] == [1]
    assert entry["summary"]["possible_duplicates"] == 1
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(render_table({"links": [entry]}))
    text = console.export_text()
    assert "possible dups" in text and "1 possible duplicate(s)" in text

    runner = LinkRunner(cfg, cfg.links[0])
    await runner.target.start()
    try:
        await runner._load_syncs(SyncMapping(), TranslatingSink(runner.target, lambda t: t, "l"))
    finally:
        await runner.source.close()
        await runner.target.close()
    assert runner.progress.possible_duplicates == {TP: 1}
    runner.progress.mode = "translate"
    runner.progress.partition("t", 0, "t")
    scrape = Metrics([runner.progress]).render().decode()
    assert 'dcmirror_possible_duplicates_total{link="l",partition="0",topic="t"} 1.0' in scrape
