"""`dcmirror up CONFIG --cluster ALIAS`: what a deployed broker runs (one cluster, no mirror)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[2]


def up(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dcmirror_cli", "up", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_up_cluster_refuses_what_it_cannot_run(tmp_path: Path) -> None:
    config = tmp_path / "dc.yaml"
    config.write_text(yaml.safe_dump({"clusters": {
        "east": {"bootstrap": f"127.0.0.1:{free_port()}", "local": {"data_dir": "./east"}},
        "dr": {"bootstrap": "127.0.0.1:9"}}}))
    res = up(str(config), "--cluster", "north")
    assert res.returncode == 2 and "no cluster 'north' with a local: block" in res.stderr
    res = up(str(config), "--cluster", "dr")
    assert res.returncode == 2 and "no cluster 'dr' with a local: block" in res.stderr
    res = up(str(config), "--cluster", "east", "--metrics-port", "9100")
    assert res.returncode == 2 and "with --cluster no mirror runs" in res.stderr
