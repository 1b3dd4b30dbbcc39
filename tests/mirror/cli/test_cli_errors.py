"""A config mistake is one readable sentence naming file, line and key (exit 2), no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

BAD = {
    "unknown-alias": ("clusters:\n  east: {bootstrap: '127.0.0.1:1'}\nlinks:\n"
                      "  - {name: l, source: east, target: nowhere, topics: ['a']}\n", "links[0].target"),
    "bad-regex": ("clusters:\n  east: {bootstrap: '127.0.0.1:1'}\n  west: {bootstrap: '127.0.0.1:2'}\n"
                  "links:\n  - {name: l, source: east, target: west, topics: ['orders(']}\n", "links[0].topics"),
    "typo": ("clusters:\n  east: {bootstrap: '127.0.0.1:1'}\n  west: {bootstrap: '127.0.0.1:2'}\n"
             "links:\n  - {name: l, source: east, target: west, topics: ['a'], renmae: prefix}\n", "renmae"),
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("command", ["status", "mirror", "up"])
def test_config_errors_are_one_sentence(tmp_path, case: str, command: str) -> None:
    text, key = BAD[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    res = subprocess.run([sys.executable, "-m", "dcmirror_cli", command, str(path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert "bad.yaml:" in res.stderr and key in res.stderr
    assert len(res.stderr.strip().splitlines()) <= 2


def test_missing_config_file(tmp_path) -> None:
    res = subprocess.run([sys.executable, "-m", "dcmirror_cli", "status", str(tmp_path / "nope.yaml")],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "nope.yaml" in res.stderr and "Traceback" not in res.stderr
