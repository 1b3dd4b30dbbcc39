"""The pure rules of failover and failback: recovery point, which offsets groups get, how
many records a translated group re-reads, and where histories diverge."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mirror.incident.failback import DIVERGED_PREFIX, divergence_candidate, diverged_topic_name
from mirror.incident.failover_plan import checkpoint_commits, latest_checkpoints, recovery_rows, reread_bound
from mirror.records.offsets import Checkpoint, OffsetSync, OffsetSyncStore
from mirror.replication.mode import IdentityMapping, SyncMapping
from mirror.config.policy import NameFilter, ReplicationPolicy, is_internal_topic
from mirror.incident.translate import translate_offset

POLICY = ReplicationPolicy("east", "west", groups=NameFilter((".*",), ("ignored",)))
PREFIX = ReplicationPolicy("east", "west", rename="prefix")


def test_recovery_point_is_known_end_minus_mirrored_never_negative() -> None:
    mirrored = {("t", 0): ("t", 100, 100), ("t", 1): ("t", 50, 50), ("u", 0): ("u", 7, 7)}
    rows = recovery_rows(mirrored, {("t", 0): 130, ("t", 1): 40})
    by = {(r.topic, r.partition): r for r in rows}
    assert by[("t", 0)].loss == 30
    assert by[("t", 1)].loss == 0  # target ahead of an old contact
    assert by[("u", 0)].loss is None and by[("u", 0)].source_end is None  # never contacted
    assert rows[0].topic == "t" and rows[0].partition == 0  # worst first
    assert all(r.loss is None for r in recovery_rows(mirrored, None))


@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 1000)), min_size=1, max_size=20))
def test_recovery_point_equals_unmirrored_records(pairs) -> None:
    mirrored = {("t", i): ("t", m, m) for i, (m, _) in enumerate(pairs)}
    known = {("t", i): m + extra for i, (m, extra) in enumerate(pairs)}
    assert sum(r.loss for r in recovery_rows(mirrored, known)) == sum(e for _, e in pairs)


def cp(group: str, topic: str, p: int, up: int, down: int) -> Checkpoint:
    return Checkpoint(group, topic, p, up, down, None, 0)


def test_newest_checkpoint_wins() -> None:
    latest = latest_checkpoints([cp("g", "t", 0, 5, 5), cp("g", "t", 0, 9, 9), cp("h", "t", 0, 1, 1)])
    assert latest["g"][("t", 0)].downstream_offset == 9 and latest["h"][("t", 0)].upstream_offset == 1


def test_commits_clamped_forward_only_and_filtered() -> None:
    latest = latest_checkpoints([
        cp("g", "t", 0, 80, 80), cp("g", "t", 1, 30, 30), cp("g", "gone", 0, 3, 3),
        cp("back", "t", 0, 10, 10), cp("ignored", "t", 0, 5, 5), cp("__internal", "t", 0, 5, 5)])
    commits = checkpoint_commits(latest, POLICY, {("t", 0): 70, ("t", 1): 100},
                                 {"back": {("t", 0): 20}})
    assert commits == {"g": {("t", 0): 70, ("t", 1): 30}}  # clamped to the target end; "back" not rewound


def test_commits_use_target_names() -> None:
    latest = latest_checkpoints([cp("g", "orders", 0, 4, 4)])
    assert checkpoint_commits(latest, PREFIX, {("east.orders", 0): 10}, {}) == {"g": {("east.orders", 0): 4}}


def store_of(points: list[tuple[int, int]]) -> OffsetSyncStore:
    store = OffsetSyncStore()
    for up, down in points:
        store.add(OffsetSync("t", 0, up, down))
    return store


def sync_mapping(points: list[tuple[int, int]]) -> SyncMapping:
    mapping = SyncMapping()
    mapping.add_all(OffsetSync("t", 0, up, down) for up, down in points)
    return mapping


def test_rereads_is_the_distance_to_the_sync_point_below() -> None:
    store = store_of([(0, 0), (10, 3), (25, 9)])
    assert store.rereads(10) == 0  # batch boundary: exact
    assert store.rereads(17) == 7  # inside the batch [10, 25)
    assert store.rereads(40) == 15
    assert store_of([]).rereads(5) == 0


def test_translate_offset_identity_clamped_or_through_syncs() -> None:
    assert translate_offset(IdentityMapping(), "t", 0, 50, 40) == (40, 0)
    assert translate_offset(IdentityMapping(), "t", 0, 30, 40) == (30, 0)
    assert translate_offset(sync_mapping([(0, 0), (10, 3), (25, 9)]), "t", 0, 17, 0) == (3, 7)
    assert translate_offset(sync_mapping([(10, 3)]), "t", 0, 5, 0) == (None, 0)  # below every sync: refuse to guess
    assert translate_offset(sync_mapping([]), "t", 0, 5, 0) == (None, 0)  # nothing synced yet


def test_divergence_candidate() -> None:
    assert divergence_candidate(100, 130, 160) == 100  # old source went on after promotion
    assert divergence_candidate(100, 90, 160) == 90  # old source lost its tail (unsynced disk)
    assert divergence_candidate(None, 130, 120) == 120
    assert divergence_candidate(100, 100, 100) == 100  # planned failover: nothing diverged


def test_diverged_topic_names_are_valid_internal_and_bounded() -> None:
    name = diverged_topic_name("orders.eu", "20260101T000000Z")
    assert name == f"{DIVERGED_PREFIX}orders.eu.20260101T000000Z"
    assert is_internal_topic(name)  # never mirrored, hidden from pattern subscriptions
    assert len(diverged_topic_name("x" * 249, "20260101T000000Z")) <= 249


def test_a_second_run_reports_the_recorded_failover() -> None:
    from mirror.incident.failover_plan import already_rows
    from mirror.records.link_state import LinkState

    state = LinkState("failed-over", 1, reason="unplanned", promoted={"t": {0: 10, 1: 20}},
                      details={"loss": {"t": {"0": 3}}})
    rows = {(r.topic, r.partition): r for r in already_rows(state, PREFIX, {("east.t", 0): 15})}
    assert (rows[("t", 0)].loss, rows[("t", 0)].source_end, rows[("t", 0)].target_end) == (3, 13, 15)
    assert rows[("t", 0)].target_topic == "east.t"
    assert rows[("t", 1)].loss is None and rows[("t", 1)].target_end == 20


def test_confirmation_asks_unless_yes(monkeypatch) -> None:
    import click

    from mirror.cli.failover import _confirmer

    asked: list[str] = []
    monkeypatch.setattr(click, "confirm", lambda q, **kw: asked.append(q) or False)
    assert _confirmer(lambda r: "go?", True)(None)  # --yes
    assert not asked
    assert not _confirmer(lambda r: "Fail over link x?", False)(None)  # --force alone still asks
    assert asked == ["Fail over link x?"]


def test_reread_bound_is_what_the_target_holds_past_the_resume_point() -> None:
    ends = {("t", 0): 100, ("t", 1): 30, ("t", 2): 12, ("other", 0): 50}
    assert reread_bound({("t", 0): 70, ("t", 1): 30, ("gone", 0): 5}, ends, ["t"]) == {
        "t-0": 30, "t-1": 0, "t-2": 12}  # t-2 never committed: from the log start; "other" not consumed
    assert reread_bound({("t", 0): 120}, {("t", 0): 100}, ["t"]) == {"t-0": 0}  # never negative


def test_divergence_walks_back_to_the_last_identical_batch() -> None:
    from mirror.incident.failback import divergence_step

    same = (10, 20, b"batch-10")
    assert divergence_step(20, same, same) is None  # identical batch ends at 20: histories agree up to 20
    assert divergence_step(20, (10, 20, b"east"), (10, 20, b"west")) == 10  # different records: step back
    assert divergence_step(20, (15, 25, b"x"), (10, 20, b"y")) == 10  # a batch straddles 20 on one side
    assert divergence_step(20, None, same) is None  # one side has nothing earlier: stop
