"""The chaos test's CI profile (tests/faults/chaos.py): a real mirror between two real
clusters, each behind a fault proxy, with mirror SIGKILLs, link resets and stalls, and
SIGKILLs of the source and target brokers while a producer writes unique values.
Offset-preserving: 0 missing, the target identical offset for offset. Translation: 0
missing, and duplicates no more than the mirror itself reports (`dcmirror status`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.chaos import Profile, run


@pytest.mark.parametrize("mode", ["preserve-offsets", "translate"])
def test_chaos(mode: str, tmp_path: Path) -> None:
    out = run(Profile(mode), tmp_path)
    assert out.faults and len(out.faults) == sum(Profile(mode).faults.values())
    assert out.acknowledged > 0 and out.on_source >= out.acknowledged
    assert out.missing == 0, out
    if mode == "preserve-offsets":
        assert out.offsets_identical and out.duplicates == 0, out
    else:
        assert out.duplicates <= out.reported, out
