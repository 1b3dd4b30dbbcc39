"""The controller state machine, without sockets or a store: epochs, fencing, election, ISR."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st
from kio.schema.errors import ErrorCode

from cluster.metadata.controller import Controller, ControllerConfig
from cluster.metadata.model import NO_LEADER, keys


def cluster(n: int = 3, timeout: float = 9.0, unclean: bool = False) -> Controller:
    c = Controller(ControllerConfig(session_timeout_s=timeout, unclean_leader_election=unclean))
    for node in range(1, n + 1):
        c.register(node, f"inc-{node}", "127.0.0.1", 9000 + node, None, now=0.0)
    return c


def test_registration_gives_increasing_broker_epochs_and_a_restart_a_new_one() -> None:
    c = cluster(3)
    assert [c.brokers[n].broker_epoch for n in (1, 2, 3)] == [1, 2, 3]
    assert c.register(2, "inc-2", "127.0.0.1", 9002, None, now=1.0).broker_epoch == 2  # a repeat
    again = c.register(2, "inc-2b", "127.0.0.1", 9002, None, now=1.0)
    assert again.broker_epoch == 4 and not again.fenced
    assert c.heartbeat(2, 2, now=2.0).error == ErrorCode.stale_broker_epoch
    assert c.heartbeat(9, 1, now=2.0).error == ErrorCode.broker_id_not_registered
    assert c.heartbeat(2, 4, now=2.0).ok


def test_create_topic_spreads_rf1_partitions_and_refuses_too_few_brokers() -> None:
    c = cluster(3)
    assert c.create_topic("t", 6, 1, "id-t").ok
    leaders = [c.partitions[("t", p)].leader for p in range(6)]
    assert sorted(leaders) == [1, 1, 2, 2, 3, 3]
    out = c.create_topic("u", 1, 4, "id-u")
    assert out.error == ErrorCode.invalid_replication_factor and "4 is larger than the 3" in out.message
    assert c.create_topic("t", 1, 1, "x").error == ErrorCode.topic_already_exists
    assert keys.topic("t") in c.take_dirty() and not c.take_dirty()


def test_fencing_after_timeout_moves_leadership_within_the_isr() -> None:
    c = cluster(3, timeout=9.0)
    c.create_topic("t", 3, 3, "id")
    before = {p: c.partitions[("t", p)] for p in range(3)}
    led_by_1 = [p for p, s in before.items() if s.leader == 1]
    for node in (2, 3):
        c.heartbeat(node, c.brokers[node].broker_epoch, now=8.0)
    assert c.tick(now=8.9) == []
    assert c.tick(now=9.5) == [1]  # 1 last heard at 0
    for p, old in before.items():
        new = c.partitions[("t", p)]
        assert 1 not in new.isr and new.partition_epoch == old.partition_epoch + 1
        if p in led_by_1:
            assert new.leader in (2, 3) and new.leader_epoch == old.leader_epoch + 1
        else:
            assert new.leader == old.leader and new.leader_epoch == old.leader_epoch
    assert c.heartbeat(1, 1, now=10.0).ok and not c.brokers[1].fenced  # back, but not in ISR
    assert all(1 not in c.partitions[("t", p)].isr for p in range(3))


def test_sole_isr_member_goes_offline_and_returns_with_a_new_epoch() -> None:
    c = cluster(2)
    c.create_topic("t", 1, 2, "id")
    leader = c.partitions[("t", 0)].leader
    other = 3 - leader
    c.fence(other)
    assert c.partitions[("t", 0)].isr == (leader,)
    c.fence(leader)
    offline = c.partitions[("t", 0)]
    assert offline.leader == NO_LEADER and offline.isr == (leader,)  # never elected from outside the ISR
    c.heartbeat(other, c.brokers[other].broker_epoch, now=1.0)
    assert c.partitions[("t", 0)].leader == NO_LEADER  # unclean election is off
    c.heartbeat(leader, c.brokers[leader].broker_epoch, now=1.0)
    back = c.partitions[("t", 0)]
    assert back.leader == leader and back.leader_epoch == offline.leader_epoch + 1


def test_unclean_election_when_configured() -> None:
    c = cluster(2, unclean=True)
    c.create_topic("t", 1, 2, "id")
    leader = c.partitions[("t", 0)].leader
    other = 3 - leader
    c.fence(other)
    c.fence(leader)
    c.heartbeat(other, c.brokers[other].broker_epoch, now=1.0)
    state = c.partitions[("t", 0)]
    assert state.leader == other and state.isr == (other,)


def test_alter_partition_needs_current_epochs() -> None:
    c = cluster(3)
    c.create_topic("t", 1, 3, "id")
    s = c.partitions[("t", 0)]
    ep = c.brokers[s.leader].broker_epoch
    follower = s.replicas[1]
    shrunk = tuple(r for r in s.isr if r != follower)
    assert c.alter_partition(s.leader, ep, "t", 0, s.leader_epoch, s.partition_epoch, shrunk).ok
    # the same request again is based on a stale partition epoch
    stale = c.alter_partition(s.leader, ep, "t", 0, s.leader_epoch, s.partition_epoch, shrunk)
    assert stale.error == ErrorCode.invalid_update_version
    now = c.partitions[("t", 0)]
    assert now.isr == shrunk and now.partition_epoch == s.partition_epoch + 1
    assert c.alter_partition(follower, c.brokers[follower].broker_epoch, "t", 0, now.leader_epoch,
                             now.partition_epoch, now.isr).error == ErrorCode.not_leader_or_follower
    assert c.alter_partition(s.leader, ep, "t", 0, now.leader_epoch - 1, now.partition_epoch,
                             now.isr).error == ErrorCode.fenced_leader_epoch
    assert c.alter_partition(s.leader, ep + 100, "t", 0, now.leader_epoch, now.partition_epoch,
                             now.isr).error == ErrorCode.stale_broker_epoch
    assert c.alter_partition(s.leader, ep, "t", 0, now.leader_epoch, now.partition_epoch,
                             (follower,)).error == ErrorCode.ineligible_replica  # leader missing
    c.fence(follower)
    assert c.alter_partition(s.leader, ep, "t", 0, now.leader_epoch, now.partition_epoch,
                             s.isr).error == ErrorCode.ineligible_replica  # a fenced replica
    assert c.alter_partition(s.leader, ep, "t", 9, 0, 0, s.isr).error == ErrorCode.unknown_topic_or_partition


def test_controlled_shutdown_moves_leadership_first() -> None:
    c = cluster(3)
    c.create_topic("t", 3, 3, "id")
    assert c.controlled_shutdown(1, c.brokers[1].broker_epoch).ok
    assert all(c.partitions[("t", p)].leader != 1 and 1 not in c.partitions[("t", p)].isr for p in range(3))
    assert c.controlled_shutdown(1, 99).error == ErrorCode.stale_broker_epoch


events = st.lists(st.one_of(
    st.tuples(st.just("heartbeat"), st.integers(1, 4)),
    st.tuples(st.just("restart"), st.integers(1, 4)),
    st.tuples(st.just("fence"), st.integers(1, 4)),
    st.tuples(st.just("tick"), st.floats(0, 5)),
    st.tuples(st.just("shrink"), st.integers(0, 3)),
    st.tuples(st.just("expand"), st.integers(0, 3)),
), max_size=60)


@settings(max_examples=150, deadline=None)
@given(events, st.booleans())
def test_invariants_over_any_event_sequence(sequence: list[tuple[str, object]], unclean: bool) -> None:
    """Leader in ISR and live, ISR within replicas and never empty, epochs only grow,
    one leader per leader epoch — whatever order brokers come, go and change ISRs."""
    c = cluster(4, timeout=3.0, unclean=unclean)
    c.create_topic("t", 4, 3, "id")
    now, restarts = 0.0, 0
    leader_of: dict[tuple[int, int], int] = {}
    last = dict(c.partitions)
    for kind, arg in sequence:
        if kind == "heartbeat":
            node = int(arg)  # type: ignore[arg-type]
            c.heartbeat(node, c.brokers[node].broker_epoch, now)
        elif kind == "restart":
            restarts += 1
            old = c.brokers[int(arg)].broker_epoch  # type: ignore[arg-type]
            assert c.register(int(arg), f"r{restarts}", "h", 1, None, now).broker_epoch > old  # type: ignore[arg-type]
        elif kind == "fence":
            c.fence(int(arg))  # type: ignore[arg-type]
        elif kind == "tick":
            now += float(arg)  # type: ignore[arg-type]
            c.tick(now)
        else:
            s = c.partitions[("t", int(arg))]  # type: ignore[arg-type]
            if s.leader != NO_LEADER:
                isr = (s.isr[:1] if s.isr[0] == s.leader else (s.leader,)) if kind == "shrink" else \
                    tuple(r for r in s.replicas if r == s.leader or not c.brokers[r].fenced)
                c.alter_partition(s.leader, c.brokers[s.leader].broker_epoch, "t", s.partition,
                                  s.leader_epoch, s.partition_epoch, isr)
        for tp, s in c.partitions.items():
            old = last[tp]
            assert s.isr and set(s.isr) <= set(s.replicas)
            if s.leader != NO_LEADER:
                assert not c.brokers[s.leader].fenced
                assert s.leader in s.isr
            assert s.leader_epoch >= old.leader_epoch and s.partition_epoch >= old.partition_epoch
            if s != old:
                assert s.partition_epoch > old.partition_epoch
            if s.leader != old.leader:
                assert s.leader_epoch > old.leader_epoch
            assert leader_of.setdefault((tp[1], s.leader_epoch), s.leader) == s.leader
        last = dict(c.partitions)
