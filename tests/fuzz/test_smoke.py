"""A short run of every fuzz target (builtin engine, fixed seed) in the normal suite.

Each target gets 2,000 inputs, its seeds first: enough to catch a regression in the
typed-error contracts (a decoder raising IndexError, a validator accepting what the record
decoder refuses, recovery failing to open a damaged segment) in a few seconds. The long
runs are `python -m tests.fuzz TARGET --execs N`; README "Bad input" has their numbers.
"""

from __future__ import annotations

import random

import pytest

from tests.fuzz import targets
from tests.fuzz.engine import Mutator, run_builtin

SMOKE_EXECS = 2_000


@pytest.mark.parametrize("name", sorted(targets()))
def test_target_survives_a_short_run(name: str) -> None:
    report = run_builtin(targets()[name], SMOKE_EXECS, seed=9)
    assert report.execs >= SMOKE_EXECS
    details = "\n".join(f"{c.error} on {c.data[:64].hex()}\n{c.trace}" for c in report.kept[:3])
    assert report.crashes == 0, f"{report.summary()}\n{details}"


def test_mutator_is_deterministic() -> None:
    seeds = [b"\x00\x01\x02\x03" * 8, b"kafka"]
    ma, mb = Mutator(seeds, random.Random(4)), Mutator(seeds, random.Random(4))
    a = [ma.next() for _ in range(50)]
    b = [mb.next() for _ in range(50)]
    assert a == b and len(set(a)) > 1
