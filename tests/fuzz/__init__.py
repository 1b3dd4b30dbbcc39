"""Fuzz targets for the code that meets bytes from outside: frames and request decoders,
the record-batch validator, decompression and segment recovery (issue 9).

Long runs: ``python -m tests.fuzz TARGET --execs N [--seed S] [--engine atheris]``;
a short run of each target is part of the test suite (test_smoke.py).
"""

from __future__ import annotations

from .engine import Target


def targets() -> dict[str, Target]:
    """Every target by name (imported lazily: each pulls in the code it tests)."""
    from . import t_batch, t_decode, t_decompress, t_recovery

    return {t.TARGET.name: t.TARGET for t in (t_decode, t_batch, t_decompress, t_recovery)}
