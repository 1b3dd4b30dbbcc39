"""A source cluster reachable only through the SSH bastion: both run in a network namespace
of their own (the test makes it, as root), the cluster on that namespace's loopback, the
bastion's sshd on a veth address. From the mirror's side 127.0.0.1:<source port> has
nothing listening, so every record on the target came through the tunnel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from tests.deploy.waiting import wait_until
from tests.processes import MirrorProcess, free_port
from tests.sshd import SSHD, Sshd, keygen

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None or not SSHD.exists() or shutil.which("kcat") is None,
    reason="needs root, iproute2, sshd and kcat (CI has all four)")


def sh(*args: str, input: str | None = None) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, input=input, timeout=60).stdout


@pytest.fixture
def netns() -> Iterator[tuple[str, str]]:
    """A namespace with loopback up and a veth pair: (namespace name, its address)."""
    tag = uuid.uuid4().hex[:6]
    ns, host_if, ns_if = f"dcm-{tag}", f"dcmh{tag}", f"dcmn{tag}"
    octet = int(tag[:2], 16) % 250 + 1
    host_addr, ns_addr = f"10.213.{octet}.1", f"10.213.{octet}.2"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        sh("ip", "link", "set", ns_if, "netns", ns)
        sh("ip", "addr", "add", f"{host_addr}/30", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ns_addr}/30", "dev", ns_if)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield ns, ns_addr
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def in_ns(ns: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *args]


def kcat_lines(cmd: list[str]) -> list[str]:
    return sorted(sh(*cmd).splitlines())


def test_source_only_reachable_through_the_bastion(tmp_path: Path, netns: tuple[str, str], cluster_factory) -> None:
    ns, addr = netns
    west = cluster_factory("west")
    port = free_port()
    log = open(tmp_path / "east.log", "ab")
    east = subprocess.Popen(in_ns(ns, sys.executable, "-m", "dcmirror_cli", "cluster", "start", "--name", "east",
                                  "--port", str(port), "--data-dir", str(tmp_path / "east"), "--partitions", "2"),
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    key = keygen(tmp_path / "id", "mirror")
    bastion = Sshd(tmp_path / "bastion", [key], listen=addr, prefix=in_ns(ns))
    mirror = None
    try:
        wait_until(lambda: east.poll() is not None or "ready" in (tmp_path / "east.log").read_text(), 30,
                   "the east cluster in the namespace")
        assert east.poll() is None, (tmp_path / "east.log").read_text()
        bastion.start()
        known = tmp_path / "known_hosts"
        known.write_text(bastion.known_hosts_line())
        records = "".join(f"k{i}:value-{i}-{'x' * (i % 50)}\n" for i in range(2000))
        sh(*in_ns(ns, "kcat", "-P", "-b", f"127.0.0.1:{port}", "-t", "orders", "-K:"), input=records)
        # From here (the mirror's side) the source address has nothing listening.
        import socket

        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        config = tmp_path / "dc.yaml"
        config.write_text(yaml.safe_dump({
            "clusters": {
                "east": {"bootstrap": f"127.0.0.1:{port}",
                         "ssh": {"via": f"{bastion.user}@{addr}:{bastion.port}", "key": str(key),
                                 "known_hosts": str(known)}},
                "west": {"bootstrap": west.bootstrap},
            },
            "links": [{"name": "e2w", "source": "east", "target": "west", "topics": ["orders"],
                       "sync_interval_s": 1, "checkpoint_interval_s": 1}],
        }))
        mirror = MirrorProcess(config).start()
        fmt = "%p %o %k %s\n"
        src = kcat_lines(in_ns(ns, "kcat", "-C", "-b", f"127.0.0.1:{port}", "-t", "orders", "-e", "-q", "-f", fmt))
        assert len(src) == 2000

        def copied() -> bool:
            try:
                out = kcat_lines(["kcat", "-C", "-b", west.bootstrap, "-t", "orders", "-e", "-q", "-f", fmt])
            except subprocess.CalledProcessError:
                return False
            return len(out) >= 2000

        wait_until(copied, 90, "2000 records on west")
        dst = kcat_lines(["kcat", "-C", "-b", west.bootstrap, "-t", "orders", "-e", "-q", "-f", fmt])
        assert dst == src  # same partition, offset, key and value for every record
    finally:
        if mirror is not None:
            mirror.stop()
        bastion.stop()
        east.terminate()
        try:
            east.wait(timeout=15)
        except subprocess.TimeoutExpired:
            east.kill()
            east.wait()
