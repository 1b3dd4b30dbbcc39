"""The step runner: order, timings, a step outliving its timeout named in one sentence."""

from __future__ import annotations

import asyncio

import pytest

from mirror.incident.steps import NullProgress, Step, StepTimeout, describe, run_steps


class Recorder(NullProgress):
    def __init__(self) -> None:
        self.events: list[str] = []

    def started(self, index: int, total: int, step: Step) -> None:
        self.events.append(f"start {index}/{total} {step.name}")

    def finished(self, step: Step, seconds: float) -> None:
        self.events.append(f"done {step.name}")


def test_steps_run_in_order_and_are_timed() -> None:
    ran: list[str] = []

    async def a(ctx) -> None:
        ctx.append("a")

    async def b(ctx) -> None:
        ctx.append("b")

    steps = [Step("a", "does a", 5, a), Step("b", "does b", 5, b)]
    timings: dict[str, float] = {}
    progress = Recorder()
    asyncio.run(run_steps(steps, ran, progress, timings, "dcmirror x"))
    assert ran == ["a", "b"] and list(timings) == ["a", "b"]
    assert progress.events == ["start 1/2 a", "done a", "start 2/2 b", "done b"]
    assert describe(steps) == [{"step": "a", "what": "does a", "timeout_s": 5},
                               {"step": "b", "what": "does b", "timeout_s": 5}]


def test_a_step_past_its_timeout_is_named_and_the_rest_do_not_run() -> None:
    ran: list[str] = []

    async def hang(ctx) -> None:
        await asyncio.Event().wait()

    async def after(ctx) -> None:
        ran.append("after")

    steps = [Step("drain", "copy what the target lacks", 0.05, hang), Step("after", "x", 5, after)]
    with pytest.raises(StepTimeout, match=r"step 1/2 'drain' \(copy what the target lacks\) did not finish "
                                          r"within 0s.*run `dcmirror failover --link l` again"):
        asyncio.run(run_steps(steps, ran, NullProgress(), {}, "dcmirror failover --link l"))
    assert ran == []


def test_a_timeout_inside_a_step_is_not_the_step_timeout() -> None:
    async def inner(ctx) -> None:
        raise TimeoutError("request timed out")

    with pytest.raises(TimeoutError, match="request timed out"):
        asyncio.run(run_steps([Step("s", "x", 5, inner)], None, NullProgress(), {}, "c"))
