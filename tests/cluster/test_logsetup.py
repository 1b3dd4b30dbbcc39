"""`--log-format json` lines parse; the default level hides group-coordinator internals that
`-v` shows; `--version` answers; `-v` with `-q` is a usage error."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.mirror.failover_helpers import consume_group, produce, records
from tests.processes import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


def run_broker_with_a_group(tmp_path: Path, *flags: str) -> str:
    """A broker run with ``flags``, a group consuming from it; its whole log output."""
    port = free_port()
    log_path = tmp_path / f"broker-{port}.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dcmirror_cli", *flags, "cluster", "start", "--name", "j",
                                 "--port", str(port), "--data-dir", str(tmp_path / f"data-{port}")],
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            wait_for_port(port, proc=proc)
            boot = f"127.0.0.1:{port}"
            produce(boot, "logs.t", records("x", 5))
            assert len(consume_group(boot, "logs.t", "g", limit=5)) == 5
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
    return log_path.read_text()


def test_json_lines_parse_and_the_default_is_quiet(tmp_path) -> None:
    text = run_broker_with_a_group(tmp_path, "--log-format", "json")
    docs = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert docs and all(set(d) >= {"ts", "level", "logger", "message"} for d in docs)
    assert any("ready" in d["message"] for d in docs)
    assert not [d for d in docs if d["logger"].startswith("cluster.groups") and d["level"] == "INFO"]
    verbose = run_broker_with_a_group(tmp_path, "-v", "--log-format", "json")
    assert [d for d in map(json.loads, verbose.splitlines()) if d["logger"].startswith("cluster.groups")]
    quiet = run_broker_with_a_group(tmp_path, "-q")
    assert " INFO " not in quiet


def test_version_and_contradicting_levels() -> None:
    out = subprocess.run([sys.executable, "-m", "dcmirror_cli", "--version"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("dcmirror ") and out.stdout.split()[1][0].isdigit()
    bad = subprocess.run([sys.executable, "-m", "dcmirror_cli", "-v", "-q", "status", "x.yaml"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert bad.returncode == 2 and "contradict" in bad.stderr
