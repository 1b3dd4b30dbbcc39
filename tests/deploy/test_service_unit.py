"""`dcmirror service unit` prints the unit `dcmirror deploy` installs (one writer for both),
for the mirror or a broker; systemd's own checker accepts it; mistakes are usage errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.services import ServiceSpec, SystemdBackend, mirror_command

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """clusters:
  east: {bootstrap: '127.0.0.1:19092', local: {data_dir: ./data/east}}
  west: {bootstrap: '127.0.0.1:29092'}
links:
  - {name: e2w, source: east, target: west, topics: ['orders.*']}
"""


def unit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dcmirror_cli", "service", "unit", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_the_printed_unit_is_the_deployed_one(tmp_path) -> None:
    cfg = tmp_path / "m.yaml"
    cfg.write_text(CONFIG)
    exe = tmp_path / "bin" / "dcmirror"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    res = unit("--config", str(cfg), "--link", "e2w", "--metrics-port", "9102", "--user", "svc", "--exe", str(exe))
    assert res.returncode == 0, res.stderr
    spec = ServiceSpec("mirror", "mirror", mirror_command(str(exe), str(cfg.resolve()), ["e2w"], 9102), "manual")
    deployed = SystemdBackend(str(tmp_path), "/etc/systemd/system", "svc").unit_text(spec)
    assert res.stdout.splitlines()[1:] == deployed.splitlines()[1:]  # all but the "written by" comment
    assert f"ExecStart={exe} mirror {cfg.resolve()} --link e2w --metrics-port 9102" in res.stdout.splitlines()
    broker = unit("--config", str(cfg), "--cluster", "east", "--exe", str(exe))
    assert broker.returncode == 0 and f"ExecStart={exe} up {cfg.resolve()} --cluster east --no-live" in broker.stdout
    if shutil.which("systemd-analyze"):
        path = tmp_path / "dcmirror-mirror.service"
        path.write_text(res.stdout.replace("User=svc", "User=root"))
        check = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
        problems = [line for line in check.stderr.splitlines() if str(path) in line]
        assert not problems, check.stderr


@pytest.mark.parametrize("args, says", [
    (["--link", "nope"], "no link named 'nope'"),
    (["--cluster", "west"], "no cluster 'west' with a local: block"),
    (["--cluster", "east", "--link", "e2w"], "--link and --metrics-port are the mirror's"),
])
def test_mistakes_are_usage_errors(tmp_path, args: list[str], says: str) -> None:
    cfg = tmp_path / "m.yaml"
    cfg.write_text(CONFIG)
    res = unit("--config", str(cfg), *args)
    assert res.returncode == 2 and says in res.stderr and not res.stdout


def test_a_config_mistake_is_located(tmp_path) -> None:
    cfg = tmp_path / "m.yaml"
    cfg.write_text(CONFIG.replace("topics:", "topicz:"))
    res = unit("--config", str(cfg))
    assert res.returncode == 2 and "m.yaml:" in res.stderr and "Traceback" not in res.stderr and not res.stdout
