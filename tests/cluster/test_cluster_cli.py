"""`dcmirror cluster start` as users run it: one ready line, clean stop, clear refusals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from tests import clients
from tests.processes import ClusterProcess, MultiBrokerCluster, free_port, wait_until


def test_ready_line_and_clean_stop_on_sigterm_and_sigint(tmp_path) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        c = ClusterProcess(f"c{int(sig)}", tmp_path / f"d{int(sig)}").start()
        marker = f"cluster c{int(sig)} ready"
        wait_until(lambda: marker in c.log_text(), what="ready line")
        ready = [l for l in c.log_text().splitlines() if marker in l]
        assert len(ready) == 1 and f"127.0.0.1:{c.port}" in ready[0]
        c.proc.send_signal(sig)
        assert c.proc.wait(timeout=15) == 0
        assert "Traceback" not in c.log_text()


def test_several_brokers_one_ready_line_and_a_clean_stop(tmp_path) -> None:
    """--brokers 3 (once refused): one ready line naming every broker; SIGTERM stops all three."""
    c = MultiBrokerCluster("x", tmp_path / "x", brokers=3).start()
    pids = [c.broker_pid(n) for n in (1, 2, 3)]
    ready = [l for l in c.log_text().splitlines() if "cluster x ready" in l]
    assert len(ready) == 1 and all(f"127.0.0.1:{p}" in ready[0] for p in c.ports)
    c.proc.send_signal(signal.SIGTERM)
    assert c.proc.wait(timeout=40) == 0
    assert "Traceback" not in c.log_text()
    for pid in pids:
        wait_until(lambda: not os.path.exists(f"/proc/{pid}") or "zombie" in _state(pid), 10,
                   what=f"broker process {pid} gone")


def _state(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/status").read().lower()
    except OSError:
        return "zombie"


def test_port_in_use_is_one_sentence(tmp_path) -> None:
    c = ClusterProcess("a", tmp_path / "a").start()
    try:
        res = subprocess.run([sys.executable, "-m", "dcmirror_cli", "cluster", "start", "--name", "b",
                              "--port", str(c.port), "--data-dir", str(tmp_path / "b")],
                             capture_output=True, text=True, timeout=30)
        assert res.returncode != 0 and "cannot start cluster b" in res.stderr
        assert "Traceback" not in res.stderr
    finally:
        c.stop()


def test_retention_deletes_old_segments_in_the_background(tmp_path) -> None:
    c = ClusterProcess("r", tmp_path / "r", extra_args=["--retention-check-interval-ms", "200"]).start()
    try:
        clients.create_topic(c.bootstrap, "short", 1, {"retention.ms": "1000", "segment.bytes": "1024"})
        clients.produce_confluent(c.bootstrap, "short", clients.make_records("old", 200), "none")
        time.sleep(1.5)  # let the records age past retention.ms (not a timing assertion)
        clients.produce_confluent(c.bootstrap, "short", clients.make_records("new", 5), "none")
        from confluent_kafka import Consumer, TopicPartition

        def log_start() -> int:
            cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "x"})
            try:
                return cons.get_watermark_offsets(TopicPartition("short", 0), timeout=5)[0]
            finally:
                cons.close()

        wait_until(lambda: log_start() > 0, what="old segments removed by retention")
    finally:
        c.stop()


def test_connection_settings_are_honoured_or_refused(tmp_path) -> None:
    c = ClusterProcess("conn", tmp_path / "conn", extra_args=[
        "--connections-max-idle-ms", "400", "--max-connections-per-ip", "5"]).start()
    try:
        from confluent_kafka.admin import AdminClient, ConfigResource

        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        res = ConfigResource(ConfigResource.Type.BROKER, "1")
        configs = admin.describe_configs([res])[res].result(timeout=10)
        assert configs["connections.max.idle.ms"].value == "400"
        assert configs["max.connections.per.ip"].value == "5"
        with socket.create_connection(("127.0.0.1", c.port), timeout=10) as s:
            assert s.recv(1) == b""  # idle: the broker closed it
    finally:
        c.stop()
    res = subprocess.run([sys.executable, "-m", "dcmirror_cli", "cluster", "start", "--name", "x",
                          "--port", str(free_port()), "--data-dir", str(tmp_path / "x"),
                          "--queued-max-request-bytes", "0"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert "queued.max.request.bytes must be positive, or -1 for unlimited" in res.stderr
    assert "Traceback" not in res.stderr


def test_consumer_group_heartbeat_must_be_shorter_than_the_session(tmp_path) -> None:
    res = subprocess.run([sys.executable, "-m", "dcmirror_cli", "cluster", "start", "--name", "x",
                          "--port", str(free_port()), "--data-dir", str(tmp_path / "x"),
                          "--group-consumer-session-timeout-ms", "3000",
                          "--group-consumer-heartbeat-interval-ms", "3000"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert "heartbeat interval (3000 ms) must be positive and shorter than the session timeout" in res.stderr
    assert "Traceback" not in res.stderr
