"""The link state machine (mirror/records/link_machine.py): every command's transitions,
its refusals in one sentence, and what the daemon runs in each state."""

from __future__ import annotations

import pytest

from mirror.records.link_machine import (BEHAVIOUR, DONE, TRANSITIONS, Command, State, TransitionError,
                                         behaviour, is_done, transition)
from mirror.records.link_state import LinkState

S, C = State, Command


def test_every_state_has_a_behaviour_and_only_normal_copies_forward() -> None:
    assert set(BEHAVIOUR) == set(State)
    assert [s for s in State if behaviour(s).copies] == [S.NORMAL]
    assert [s for s in State if behaviour(s).copies_reversed] == [S.REVERSED]
    assert {s for s in State if behaviour(s).shapes_topics} == {S.NORMAL, S.PAUSED}
    assert {s for s in State if behaviour(s).records_contact} == {S.NORMAL, S.PAUSED}
    assert [s for s in State if behaviour(s).checkpoints] == [S.NORMAL]


@pytest.mark.parametrize("command,start,end", [
    (C.PAUSE, S.NORMAL, S.PAUSED), (C.RESUME, S.PAUSED, S.NORMAL),
    (C.FAILOVER, S.NORMAL, S.FAILING_OVER), (C.FAILOVER, S.PAUSED, S.FAILING_OVER),
    (C.FAILOVER, S.FAILING_OVER, S.FAILING_OVER),  # an interrupted failover runs again
    (C.PROMOTED, S.FAILING_OVER, S.FAILED_OVER),
    (C.FAILBACK, S.FAILED_OVER, S.FAILING_BACK), (C.FAILBACK, S.REVERSED, S.FAILING_BACK),
    (C.FAILBACK, S.FAILING_BACK, S.FAILING_BACK), (C.FAILBACK_STAY, S.FAILED_OVER, S.FAILING_BACK),
    (C.RESTORED, S.FAILING_BACK, S.NORMAL), (C.STAYED, S.FAILING_BACK, S.REVERSED),
])
def test_transitions(command: Command, start: State, end: State) -> None:
    assert transition("e2w", start, command) == end


def test_every_other_pair_is_refused_with_one_sentence_naming_what_comes_first() -> None:
    refused = [(c, s) for c in Command for s in State if s not in TRANSITIONS[c]]
    assert len(refused) == len(Command) * len(State) - sum(len(t) for t in TRANSITIONS.values())
    for c, s in refused:
        with pytest.raises(TransitionError) as exc:
            transition("e2w", s, c)
        msg = str(exc.value)
        assert msg.startswith(f"link e2w is {s}; ") and "\n" not in msg
    with pytest.raises(TransitionError, match="finish `dcmirror failback` first"):
        transition("e2w", "reversed", C.FAILOVER)
    with pytest.raises(TransitionError, match="run `dcmirror failover` to completion first"):
        transition("e2w", "failing-over", C.FAILBACK)
    with pytest.raises(TransitionError, match="cannot pause it"):
        transition("e2w", "failed-over", C.PAUSE)


def test_done_states_are_where_a_command_ends() -> None:
    for command, end in DONE.items():
        assert is_done(end, command)
    assert is_done("reversed", C.FAILBACK_STAY) and not is_done("reversed", C.FAILBACK)
    assert not is_done("normal", C.FAILOVER)


def test_records_hold_machine_states_and_refuse_unknown_ones() -> None:
    assert LinkState("paused").state is S.PAUSED and LinkState("paused").runs == BEHAVIOUR[S.PAUSED]
    assert LinkState.decode(LinkState("reversed").encode()[1]).state is S.REVERSED
    with pytest.raises(ValueError, match="unknown link state 'sleeping'"):
        LinkState("sleeping")
