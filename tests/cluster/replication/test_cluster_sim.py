"""One leader log and two follower logs joined without sockets (tests/cluster/replication/sim.py):
acks=all, a follower killed or cut off (ISR shrink), leader changes with divergent tails
(truncation), and Hypothesis over interleavings of all of it. After healing, the checks the
chaos harness will make across processes: every acknowledged write is where it was
acknowledged, replicas hold identical bytes up to the high watermark, the high watermark
never went backwards (asserted at every step by the sim), one leader per epoch."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from kio.schema.errors import ErrorCode

from cluster.replication.leader import LeaderPartition
from cluster.wire.record_batch import iter_batches
from tests.cluster.log.helpers import make_batch
from tests.cluster.replication.sim import SimCluster

LAG = 1_000


@pytest.fixture
def sim(tmp_path):
    c = SimCluster(tmp_path)
    yield c
    c.close()


def replicate(c: SimCluster, rounds: int = 4) -> None:
    for _ in range(rounds):
        for r in c.replica_ids:
            c.fetch(r)


def heal_and_converge(c: SimCluster) -> None:
    for r in list(c.stale):
        c.heal(r)
    for r, rep in c.replicas.items():
        if not rep.alive:
            c.restart(r)
    if c.leader() is None:
        c.elect()
    for _ in range(6):
        replicate(c)
        c.tick(LAG // 4)


def batches(log, end: int) -> list[bytes]:
    """Raw bytes of every batch below `end` (headers included: offsets, epochs, CRCs)."""
    data = log.read(log.log_start_offset, 1 << 24, max_offset=end) if end > log.log_start_offset else b""
    return [bytes(data)]


def check_invariants(c: SimCluster) -> None:
    lead = c.leader()
    assert lead is not None
    hw = lead.role.high_watermark
    assert hw >= c.hw_seen or lead.role.visible_high_watermark is None
    reference = batches(lead.log, hw)
    for rep in c.replicas.values():
        assert rep.log.log_end_offset >= hw or rep.broker_id not in lead.role.isr
        if rep.broker_id in lead.role.isr:
            assert batches(rep.log, hw) == reference, f"replica {rep.broker_id} differs below HW {hw}"
    # every acknowledged write: below the HW, at the offset it was acknowledged at
    data = lead.log.read(lead.log.log_start_offset, 1 << 24)
    by_last = {h.last_offset: bytes(data[pos + 61: pos + h.size]) for pos, h in iter_batches(data)}
    for tag, (last, count) in c.acked.items():
        assert last < hw, f"acked write {tag} at {last} is not below the HW {hw}"
        assert by_last.get(last) == make_batch(count, tag=tag)[61:], f"acked write {tag} at {last} lost"


def test_acks_all_waits_for_the_isr(sim):
    assert sim.produce(3) == 0
    sim.fetch(2)
    sim.fetch(3)  # both hold it; the leader learns so from their next fetches
    assert sim.acked == {}
    sim.fetch(2)
    assert sim.acked == {}  # 3 has not reported it yet
    sim.fetch(3)
    assert sim.acked == {1: (2, 3)}
    replicate(sim)
    check_invariants(sim)


def test_killed_follower_is_shrunk_then_min_isr_refuses(sim):
    sim.produce()
    replicate(sim)
    sim.kill(3)
    assert sim.produce() == 0
    sim.fetch(2)
    sim.fetch(2)
    assert 2 not in sim.acked  # 3 still in the ISR holds the HW
    sim.tick(LAG)
    assert sim.record.isr == (1, 2, 3)  # not lagging for longer than the lag time yet
    sim.tick(1)  # 3 lagged: shrink to {1, 2}, committed
    assert sim.record.isr == (1, 2) and 2 in sim.acked
    sim.kill(2)
    assert sim.produce() == 0  # the ISR still has 2: accepted, waits
    sim.tick(LAG + 1)
    assert sim.record.isr == (1,) and 3 not in sim.acked
    assert sim.produce() == ErrorCode.not_enough_replicas
    heal_and_converge(sim)
    assert set(sim.record.isr) == {1, 2, 3}
    assert sim.produce() == 0
    replicate(sim)
    check_invariants(sim)


def test_leader_change_truncates_the_divergent_tail(sim):
    sim.produce(2)
    replicate(sim)
    # the leader writes a tail nobody fetched, then dies
    sim.produce(5)
    old_tail_end = sim.replicas[1].log.log_end_offset
    sim.kill(1)
    assert sim.record.leader == 2 and sim.record.leader_epoch == 1
    assert sim.produce(1) == 0
    replicate(sim)
    assert 2 in sim.acked or 3 in sim.acked  # the new write is acknowledged
    sim.restart(1)  # comes back as a follower with the divergent tail
    assert sim.replicas[1].log.log_end_offset == old_tail_end
    replicate(sim)
    check_invariants(sim)
    assert sim.replicas[1].log.log_end_offset == sim.replicas[2].log.log_end_offset
    assert 2 not in sim.acked  # the lost tail was never acknowledged


def test_isolated_leader_cannot_acknowledge(sim):
    sim.produce()
    replicate(sim)
    sim.isolate(1)  # SIGSTOP past the session timeout: 2 takes over
    assert sim.record.leader == 2
    assert sim.produce(to=1) == 0  # a producer with old metadata still reaches 1
    replicate(sim)
    sim.tick(LAG + 1)  # 1's shrink is refused (stale partition epoch)
    assert 2 not in sim.acked
    assert sim.produce() == 0
    replicate(sim)
    sim.heal(1)  # SIGCONT: 1 learns it is a follower and truncates its tail
    replicate(sim)
    check_invariants(sim)
    assert isinstance(sim.replicas[2].role, LeaderPartition)


def test_two_quick_failovers(sim):
    sim.produce()
    replicate(sim)
    sim.produce(2)
    sim.fetch(2)  # 2 got the tail, 3 did not
    sim.kill(1)  # 2 leads epoch 1
    sim.produce(3)  # nobody fetches it
    sim.kill(2)  # 3 leads epoch 2, with neither tail
    assert sim.record.leader == 3 and sim.record.leader_epoch == 2
    assert sim.produce(1) == ErrorCode.not_enough_replicas or sim.record.isr != (3,)
    heal_and_converge(sim)
    check_invariants(sim)
    ends = {r.log.log_end_offset for r in sim.replicas.values()}
    assert len(ends) == 1


OPS = st.sampled_from(["produce", "produce_old", "fetch", "fetch", "fetch", "tick", "kill",
                       "restart", "isolate", "heal"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(OPS, st.integers(1, 3), st.integers(1, 4)), min_size=5, max_size=50))
def test_any_interleaving_keeps_the_invariants(tmp_path_factory, steps):
    c = SimCluster(tmp_path_factory.mktemp("sim"))
    try:
        for op, r, n in steps:
            if op == "produce":
                c.produce(n)
            elif op == "produce_old":
                c.produce(n, to=r)
            elif op == "fetch":
                c.fetch(r)
            elif op == "tick":
                c.tick(LAG * n // 3)
            elif op == "kill" and sum(x.alive for x in c.replicas.values()) > 1:
                c.kill(r)
            elif op == "restart" and not c.replicas[r].alive:
                c.restart(r)
            elif op == "isolate" and len(c.stale) < 1:
                c.isolate(r)
            elif op == "heal" and r in c.stale:
                c.heal(r)
        heal_and_converge(c)
        check_invariants(c)
        assert c.produce() == 0
        replicate(c)
        check_invariants(c)
    finally:
        c.close()
