"""A link whose source is reached through an SSH bastion (a real OpenSSH sshd on 127.0.0.1).

The source cluster's every connection (bootstrap and the broker address from Metadata)
goes through direct-tcpip channels of one SSH connection. The mirror copies byte for
byte; killing the bastion's connection process mid-stream makes the tunnel reconnect and
the copy finish with nothing lost or duplicated (offset-preserving mode); with the
bastion gone the link stalls and `dcmirror status` shows the tunnel down, which shows the
data had no other way in.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.clients import consume_confluent, create_topic, end_offsets
from tests.processes import MirrorProcess
from tests.sshd import SSHD, Sshd, keygen
from tests.deploy.waiting import wait_until

pytestmark = pytest.mark.skipif(not SSHD.exists(), reason="needs /usr/sbin/sshd (test.sh installs openssh-server)")
ROOT = Path(__file__).resolve().parents[3]


def ssh_children(sshd: Sshd) -> list[int]:
    """The per-connection sshd processes (children of our sshd)."""
    out = subprocess.run(["pgrep", "-P", str(sshd.proc.pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def count(bootstrap: str, topic: str, partitions: int) -> int:
    from confluent_kafka import KafkaException

    try:
        return sum(end_offsets(bootstrap, topic, partitions).values())
    except KafkaException:
        return 0


def produce(bootstrap: str, topic: str, n: int, size: int) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20, "compression.type": "none"})
    for i in range(n):
        p.produce(topic, key=f"k{i}".encode(), value=(f"{i:08d}".encode() * (size // 8)), partition=i % 2)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(60) == 0


def test_mirror_through_an_ssh_bastion_survives_the_connection_dying(tmp_path: Path, cluster_factory) -> None:
    east, west = cluster_factory("east"), cluster_factory("west")
    key = keygen(tmp_path / "id", "mirror")
    bastion = Sshd(tmp_path / "bastion", [key]).start()
    known = tmp_path / "known_hosts"
    known.write_text(bastion.known_hosts_line())
    config = tmp_path / "dc.yaml"
    config.write_text(yaml.safe_dump({
        "clusters": {
            "east": {"bootstrap": east.bootstrap,
                     "ssh": {"via": f"{bastion.user}@127.0.0.1:{bastion.port}", "key": str(key),
                             "known_hosts": str(known), "keepalive_s": 2}},
            "west": {"bootstrap": west.bootstrap},
        },
        "links": [{"name": "e2w", "source": "east", "target": "west", "topics": ["orders"],
                   "sync_interval_s": 1, "checkpoint_interval_s": 1}],
    }))
    create_topic(east.bootstrap, "orders", 2)
    produce(east.bootstrap, "orders", 20_000, 1000)  # ~20 MB
    mirror = MirrorProcess(config).start()
    try:
        wait_until(lambda: count(west.bootstrap, "orders", 2) > 0, 60, "the first mirrored records")
        before = ssh_children(bastion)
        assert before, "the mirror's SSH connection"
        for pid in before:
            os.kill(pid, signal.SIGKILL)  # the connection drops mid-stream
        produce(east.bootstrap, "orders", 2_000, 1000)
        wait_until(lambda: count(west.bootstrap, "orders", 2) >= 22_000, 120, "all records on west")
        assert set(ssh_children(bastion)) - set(before), "the tunnel reconnected"
        end = end_offsets(east.bootstrap, "orders", 2)
        assert end_offsets(west.bootstrap, "orders", 2) == end  # nothing lost, nothing duplicated
        src = consume_confluent(east.bootstrap, "orders", 2, end)
        dst = consume_confluent(west.bootstrap, "orders", 2, end)
        assert [(m.partition, m.offset, m.key, m.value, m.timestamp) for m in dst] == \
               [(m.partition, m.offset, m.key, m.value, m.timestamp) for m in src]
        assert "reconnect" in mirror.log_text()
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{mirror.metrics_port}/status", timeout=10) as resp:
            live = json.loads(resp.read())["tunnels"]["east"]  # the daemon's own tunnel
        assert live["state"] == "connected" and live["connects"] >= 2 and live["channels"] >= 2

        status = subprocess.run([sys.executable, "-m", "dcmirror_cli", "status", str(config), "--json"],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        doc = json.loads(status.stdout)
        assert doc["tunnels"]["east"]["state"] == "connected", doc.get("tunnels")
        assert doc["tunnels"]["east"]["via"] == f"{bastion.user}@127.0.0.1:{bastion.port}"

        bastion.stop()  # no bastion: the source is unreachable for status, and it says why
        status = subprocess.run([sys.executable, "-m", "dcmirror_cli", "status", str(config), "--json"],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        doc = json.loads(status.stdout)
        assert doc["tunnels"]["east"]["state"] == "down" and "unreachable" in doc["tunnels"]["east"]["error"]
    finally:
        mirror.stop()
        bastion.stop()


def test_bastion_refusing_forwarding_is_one_clear_error(tmp_path: Path, cluster) -> None:
    import asyncio

    from cluster.client import KafkaClient, KafkaConnectionError
    from cluster.client.dial import SshVia
    from cluster.client.tunnel import SshTunnel

    key = keygen(tmp_path / "id", "mirror")
    bastion = Sshd(tmp_path / "bastion", [key], extra_config=["AllowTcpForwarding no"]).start()
    known = tmp_path / "known_hosts"
    known.write_text(bastion.known_hosts_line())
    via = SshVia(user=bastion.user, host="127.0.0.1", port=bastion.port, known_hosts=known, key=key)

    async def go() -> str:
        tunnel = SshTunnel(via)
        client = KafkaClient(cluster.bootstrap, dial=tunnel.dial, request_timeout_s=5, retry_deadline_s=1)
        try:
            with pytest.raises(KafkaConnectionError) as info:
                await client.metadata()
            return str(info.value)
        finally:
            await client.close()
            await tunnel.close()

    try:
        message = asyncio.run(go())
    finally:
        bastion.stop()
    assert f"refused to forward to {cluster.bootstrap}" in message and "AllowTcpForwarding" in message
