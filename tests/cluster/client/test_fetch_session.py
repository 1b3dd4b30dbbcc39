"""The client's fetch session handler (cluster/client/fetch_session.py) without a broker,
and the client's fetch through a real in-process broker's session."""

from __future__ import annotations

import uuid
from pathlib import Path

from cluster.broker.config import BrokerConfig
from cluster.broker.server import Broker
from cluster.client import KafkaClient, NewTopic
from cluster.client.data import FetchPosition
from cluster.client.fetch_session import FetchSessionHandler
from cluster.wire.batch_builder import build_batch

IDS = {"t": None}


def pos(offset: int) -> FetchPosition:
    return FetchPosition(offset, 1000)


def test_full_then_incremental_names_only_changes_and_forgets_dropped() -> None:
    h = FetchSessionHandler()
    wanted = {("t", 0): pos(0), ("t", 1): pos(0)}
    first = h.build(wanted, IDS, 12)
    assert (first.session_id, first.epoch, set(first.send)) == (0, 0, set(wanted))
    assert h.answered(first, 0, 77)
    assert (h.session_id, h.epoch) == (77, 1)
    nxt = h.build({("t", 0): pos(5), ("t", 2): pos(0)}, IDS, 12)
    assert (nxt.session_id, nxt.epoch) == (77, 1)
    assert set(nxt.send) == {("t", 0), ("t", 2)} and nxt.forget == (("t", 1),)
    assert h.answered(nxt, 0, 77) and h.epoch == 2
    assert h.build({("t", 0): pos(5), ("t", 2): pos(0)}, IDS, 12).send == {}


def test_refusals_and_unknown_outcomes_fall_back_to_a_full_request_closing_the_old_session() -> None:
    h = FetchSessionHandler()
    wanted = {("t", 0): pos(0)}
    h.answered(h.build(wanted, IDS, 12), 0, 9)
    inc = h.build(wanted, IDS, 12)
    assert not h.answered(inc, 71, 0)  # INVALID_FETCH_SESSION_EPOCH
    again = h.build(wanted, IDS, 12)
    assert (again.session_id, again.epoch, set(again.send)) == (9, 0, set(wanted))
    h.answered(again, 0, 10)
    h.reset()  # a cancelled request: the broker's epoch is unknown
    assert h.build(wanted, IDS, 12).epoch == 0


def test_no_session_from_the_broker_keeps_requests_full() -> None:
    h = FetchSessionHandler()
    wanted = {("t", 0): pos(0)}
    assert h.answered(h.build(wanted, IDS, 12), 0, 0)
    assert h.build(wanted, IDS, 12).epoch == 0


def test_version_or_topic_id_change_restarts_the_session() -> None:
    h = FetchSessionHandler()
    wanted = {("t", 0): pos(0)}
    a, b = uuid.uuid4(), uuid.uuid4()
    h.answered(h.build(wanted, {"t": a}, 13), 0, 5)
    assert h.build(wanted, {"t": a}, 13).epoch == 1
    assert h.build(wanted, {"t": b}, 13).epoch == 0  # the topic was recreated
    assert h.build(wanted, {"t": a}, 12).epoch == 0
    assert h.build(wanted, {"t": a}, 6).epoch == -1  # v4-v6 have no sessions


def test_epoch_wraps_to_one() -> None:
    h = FetchSessionHandler(session_id=3, epoch=2**31 - 1, version=12)
    req = h.build({}, {}, 12)
    assert h.answered(req, 0, 3) and h.epoch == 1


async def test_client_fetches_through_a_session_and_fills_in_omitted_partitions(tmp_path: Path) -> None:
    broker = Broker(BrokerConfig(name="s", data_dir=tmp_path / "b", port=0))
    await broker.start()
    try:
        async with KafkaClient(f"127.0.0.1:{broker.config.port}") as c:
            await c.create_topics([NewTopic("t", 3)])
            for p in range(3):
                await c.produce("t", p, build_batch([(b"k", b"v", [], 1)]))
            got = await c.fetch({("t", p): FetchPosition(0) for p in range(3)}, max_wait_ms=0)
            assert all(r.records and r.high_watermark == 1 for r in got.values())
            # Partitions 0 and 1 move on; 2 stays at 0 and is answered again with data.
            got = await c.fetch({("t", 0): FetchPosition(1), ("t", 1): FetchPosition(1),
                                 ("t", 2): FetchPosition(0)}, max_wait_ms=0)
            assert broker.fetch_sessions.incremental_fetches == 1
            assert [bool(got[("t", p)].records) for p in range(3)] == [False, False, True]
            assert all(r.error_code == 0 and r.high_watermark == 1 for r in got.values())
            # Drop partition 2: the broker's session forgets it.
            await c.fetch({("t", 0): FetchPosition(1)}, max_wait_ms=0)
            (session,) = broker.fetch_sessions.sessions.values()
            assert [key[1] for key in session.partitions] == [0]
            # Sessions off on the client: sessionless requests, the broker's session untouched.
            c.fetch_sessions = False
            got = await c.fetch({("t", 1): FetchPosition(0)}, max_wait_ms=0)
            assert got[("t", 1)].records and broker.fetch_sessions.incremental_fetches == 2
    finally:
        await broker.stop()
