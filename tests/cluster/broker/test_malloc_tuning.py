"""tune_malloc: glibc's thresholds are set, unless the operator's environment sets them
(glibc's MALLOC_*_ variables win) or the C library is not glibc. Run in a child process,
so the test process keeps its own allocator settings."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

CODE = "from cluster.broker.malloc_tuning import tune_malloc; print(tune_malloc())"


def _run(env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True,
                          env={**os.environ, **env}, cwd=os.getcwd()).stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_thresholds_set_on_glibc() -> None:
    assert _run({}) == "True"


def test_the_operators_malloc_environment_wins() -> None:
    assert _run({"MALLOC_TRIM_THRESHOLD_": "131072"}) == "False"
    assert _run({"MALLOC_MMAP_THRESHOLD_": "131072"}) == "False"
