"""`dcmirror up CONFIG`: local clusters + mirror in one foreground command (the quick start)."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests import clients
from tests.processes import free_port, wait_for_port, wait_until

ROOT = Path(__file__).resolve().parents[3]


def quickstart_config(tmp: Path) -> tuple[Path, int, int]:
    """config/two-dc.yaml with free ports, in a temp dir (data dirs land beside it)."""
    doc = yaml.safe_load((ROOT / "config" / "two-dc.yaml").read_text())
    east, west = free_port(), free_port()
    doc["clusters"]["east"]["bootstrap"] = f"127.0.0.1:{east}"
    doc["clusters"]["west"]["bootstrap"] = f"127.0.0.1:{west}"
    for link in doc["links"]:
        link["sync_interval_s"] = 1
    path = tmp / "two-dc.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path, east, west


def test_up_runs_both_clusters_and_the_mirror_and_stops_on_ctrl_c(tmp_path) -> None:
    cfg, east, west = quickstart_config(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "dcmirror_cli", "up", str(cfg)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(east, proc=proc)
        wait_for_port(west, proc=proc)
        clients.create_topic(f"127.0.0.1:{east}", "orders.eu", 3)
        clients.produce_confluent(f"127.0.0.1:{east}", "orders.eu", clients.make_records("q", 30), "lz4")

        def on_west() -> bool:
            return sum(clients.end_offsets(f"127.0.0.1:{west}", "orders.eu", 3).values()) == 30

        wait_until(on_west, what="quick-start records on west")
        assert (tmp_path / "data" / "east").is_dir() and (tmp_path / "data" / "west").is_dir()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()[-2000:]
    assert b"Traceback" not in out


def test_up_shows_a_live_view_on_a_terminal(tmp_path) -> None:
    cfg, east, west = quickstart_config(tmp_path)
    pid, fd = pty.fork()
    if pid == 0:  # child: dcmirror up on a pseudo-terminal
        os.chdir(ROOT)
        os.execv(sys.executable, [sys.executable, "-m", "dcmirror_cli", "up", str(cfg)])
    screen = b""
    try:
        wait_for_port(east)
        clients.create_topic(f"127.0.0.1:{east}", "orders.eu", 2)
        clients.produce_confluent(f"127.0.0.1:{east}", "orders.eu", clients.make_records("t", 10), "none")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and b"orders.eu" not in screen:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    screen += os.read(fd, 65536)
                except OSError:
                    break
        assert b"east-to-west" in screen and b"orders.eu" in screen
    finally:
        os.kill(pid, signal.SIGINT)
        status = None
        deadline = time.monotonic() + 30
        while status is None and time.monotonic() < deadline:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
                break
            if select.select([fd], [], [], 0.2)[0]:  # keep draining: a full pty would block it
                try:
                    os.read(fd, 65536)
                except OSError:
                    pass
        if status is None:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_up_serves_the_metrics_section_of_the_config(tmp_path) -> None:
    import urllib.request

    cfg, east, west = quickstart_config(tmp_path)
    port = free_port()
    doc = yaml.safe_load(cfg.read_text())
    doc["metrics"] = {"listen": f"127.0.0.1:{port}"}
    cfg.write_text(yaml.safe_dump(doc))
    proc = subprocess.Popen([sys.executable, "-m", "dcmirror_cli", "up", str(cfg)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc=proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            assert r.status == 200 and b"dcmirror_link_state" in r.read()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()[-2000:]
