"""The link state machine: every state a link can be in, the commands that move it, and
what the daemon runs in each state — decided here and nowhere else.

A link's state lives in its ``__dcmirror.link-state.<link>`` topic (`link_state`); the
operator's commands (`link pause`/`resume`, `failover`, `failback [--stay]`) move it
through :data:`TRANSITIONS`, and the daemon reads :data:`BEHAVIOUR` to know whether to copy
forward, copy backwards, shape the target's topics, checkpoint groups and record last
contact. A command in a state it does not apply to is refused with one sentence that
names the command that comes first (:func:`transition`).

    normal --pause--> paused --resume--> normal
    normal | paused | failing-over --failover--> failing-over --promoted--> failed-over
    failed-over | failing-back | reversed --failback--> failing-back --restored--> normal
    failed-over | failing-back --failback-stay--> failing-back --stayed--> reversed
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    NORMAL = "normal"
    PAUSED = "paused"
    FAILING_OVER = "failing-over"
    FAILED_OVER = "failed-over"
    FAILING_BACK = "failing-back"
    REVERSED = "reversed"


class Command(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    FAILOVER = "failover"  # begins (or resumes an interrupted) failover
    PROMOTED = "promoted"  # failover's last step
    FAILBACK = "failback"  # begins (or resumes) a failback that restores the direction
    FAILBACK_STAY = "failback-stay"  # begins (or resumes) `failback --stay`
    RESTORED = "restored"  # failback's last step
    STAYED = "stayed"  # `failback --stay`'s last step


S, C = State, Command
TRANSITIONS: dict[Command, dict[State, State]] = {
    C.PAUSE: {S.NORMAL: S.PAUSED},
    C.RESUME: {S.PAUSED: S.NORMAL},
    C.FAILOVER: {S.NORMAL: S.FAILING_OVER, S.PAUSED: S.FAILING_OVER, S.FAILING_OVER: S.FAILING_OVER},
    C.PROMOTED: {S.FAILING_OVER: S.FAILED_OVER},
    C.FAILBACK: {S.FAILED_OVER: S.FAILING_BACK, S.FAILING_BACK: S.FAILING_BACK, S.REVERSED: S.FAILING_BACK},
    C.FAILBACK_STAY: {S.FAILED_OVER: S.FAILING_BACK, S.FAILING_BACK: S.FAILING_BACK},
    C.RESTORED: {S.FAILING_BACK: S.NORMAL},
    C.STAYED: {S.FAILING_BACK: S.REVERSED},
}
#: The state a command leads to in the end: asking for it there again has nothing to do.
DONE: dict[Command, State] = {C.PAUSE: S.PAUSED, C.RESUME: S.NORMAL, C.FAILOVER: S.FAILED_OVER,
                              C.FAILBACK: S.NORMAL, C.FAILBACK_STAY: S.REVERSED}
#: What to run first when a command is refused in a state.
_FIRST = {C.FAILOVER: "finish `dcmirror failback` first",
          C.FAILBACK: "run `dcmirror failover` to completion first",
          C.FAILBACK_STAY: "run `dcmirror failover` to completion first"}


@dataclass(frozen=True)
class Behaviour:
    """What the daemon runs for a link in one state."""

    copies: bool  # the forward copier (source -> target)
    copies_reversed: bool  # the reversed runner (target -> source, after `failback --stay`)
    shapes_topics: bool  # topic sync may create/grow/configure the target's topics
    checkpoints: bool  # consumer-group checkpoints are committed to the target
    records_contact: bool  # last contact with the source is recorded (failover's recovery point)


BEHAVIOUR: dict[State, Behaviour] = {
    S.NORMAL: Behaviour(copies=True, copies_reversed=False, shapes_topics=True, checkpoints=True,
                        records_contact=True),
    # paused: nothing copied, but the target's topics stay the link's and contact is kept
    S.PAUSED: Behaviour(False, False, shapes_topics=True, checkpoints=False, records_contact=True),
    # an incident command owns the clusters: the daemon only holds
    S.FAILING_OVER: Behaviour(False, False, False, False, False),
    S.FAILED_OVER: Behaviour(False, False, False, False, False),
    S.FAILING_BACK: Behaviour(False, False, False, False, False),
    S.REVERSED: Behaviour(False, copies_reversed=True, shapes_topics=False, checkpoints=False,
                          records_contact=False),
}


class TransitionError(Exception):
    """A command in a state it does not apply to; the message is one sentence for the user."""


def parse(state: str) -> State:
    try:
        return State(state)
    except ValueError:
        raise ValueError(f"unknown link state {state!r}; known: {', '.join(State)}") from None


def is_done(current: str, command: Command) -> bool:
    """True when ``command`` has nothing left to do in ``current``."""
    return DONE.get(command) == parse(current)


def transition(link: str, current: str, command: Command) -> State:
    """The state ``command`` moves link ``link`` to from ``current``, or TransitionError."""
    state = parse(current)
    nxt = TRANSITIONS[command].get(state)
    if nxt is None:
        first = _FIRST.get(command)
        raise TransitionError(f"link {link} is {state}; " + (first or f"cannot {command} it"))
    return nxt


def behaviour(state: str) -> Behaviour:
    return BEHAVIOUR[parse(state)]
