"""Destructive incident commands without a terminal and without --yes: exit 2, the flag named,
nothing contacted (the clusters here do not exist: the refusal comes first)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ("clusters:\n  east: {bootstrap: '127.0.0.1:1'}\n  west: {bootstrap: '127.0.0.1:2'}\n"
          "links:\n  - {name: l, source: east, target: west, topics: ['a']}\n")


@pytest.mark.parametrize("args", [["failover"], ["failover", "--force"], ["failback"], ["failback", "--stay"]])
def test_refused_without_a_terminal_and_without_yes(tmp_path, args: list[str]) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(CONFIG)
    res = subprocess.run([sys.executable, "-m", "dcmirror_cli", args[0], str(path), "--link", "l", *args[1:]],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert res.returncode == 2, res.stderr
    assert "add --yes" in res.stderr and "no terminal" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "dcmirror-snapshots").exists()  # not even a snapshot: nothing was done
