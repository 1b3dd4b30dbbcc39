"""Two SSH "hosts" (east-1, west-1: real sshd instances), an inventory over them, and cleanup.

The dependency wheelhouse is built once per test session (pip wheel, cached under
DCMIRROR_CACHE) and handed to every deploy with --wheelhouse, so a deploy test pays
only for its venvs. Services a deploy started on the hosts are stopped at teardown by the
pids in their pidfiles.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from tests.sshd import SSHD, Sshd, keygen
from tests.processes import free_port

if not SSHD.exists():
    pytest.skip("needs /usr/sbin/sshd (Debian openssh-server; test.sh installs it)", allow_module_level=True)


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    from deploy.release import build_wheelhouse, default_source

    return build_wheelhouse(default_source())


@dataclass
class Site:
    """east-1 and west-1 with their sshd, the inventory and the dcmirror config it names."""

    dir: Path
    key: Path
    known_hosts: Path
    east: Sshd
    west: Sshd
    ports: dict[str, int]  # broker port per cluster, and "metrics" for the mirror
    inventory: Path
    config: Path

    def base(self, host: str) -> Path:
        return self.dir / "hosts" / host

    def bootstrap(self, cluster: str) -> str:
        return f"127.0.0.1:{self.ports[cluster]}"

    def write(self, *, hosts_extra: dict | None = None, config_extra: dict | None = None) -> None:
        config = {
            "clusters": {
                c: {"bootstrap": self.bootstrap(c), "local": {"data_dir": f"./data/{c}", "default_partitions": 2}}
                for c in ("east", "west")
            },
            "links": [{"name": "east-to-west", "source": "east", "target": "west", "topics": ["orders.*"],
                       "groups": [".*"], "sync_interval_s": 1, "checkpoint_interval_s": 1}],
        }
        config.update(config_extra or {})
        self.config.write_text(yaml.safe_dump(config, sort_keys=False))
        hosts = {
            "east-1": {"ssh_port": self.east.port, "dc": "east", "base_dir": str(self.base("east-1")),
                       "roles": [{"broker": {"cluster": "east", "node_id": 1}}]},
            "west-1": {"ssh_port": self.west.port, "dc": "west", "base_dir": str(self.base("west-1")),
                       "roles": [{"broker": {"cluster": "west"}},
                                 {"mirror": {"links": ["east-to-west"], "metrics_port": self.ports["metrics"]}}]},
        }
        for name, extra in (hosts_extra or {}).items():
            hosts[name].update(extra)
        inv = {
            "config": self.config.name,
            "defaults": {"ssh_host": "127.0.0.1", "ssh_user": self.east.user, "ssh_key": str(self.key),
                         "known_hosts": str(self.known_hosts), "python": sys.executable, "connect_timeout_s": 5},
            "hosts": hosts,
            "settings": {"keep_releases": 2, "health_timeout_s": 60},
        }
        self.inventory.write_text(yaml.safe_dump(inv, sort_keys=False))


def stop_services(base: Path) -> None:
    """SIGTERM (then SIGKILL) every process a deploy left running under ``base``."""
    for pidfile in sorted((base / "run").glob("*.pid")) if (base / "run").is_dir() else []:
        try:
            pid = int(pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (ValueError, OSError):
            continue
        if str(base).encode() not in cmdline:
            continue  # not ours (a reused pid)
        os.kill(pid, signal.SIGTERM)
        from tests.deploy.waiting import wait_until

        try:
            wait_until(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 20, f"pid {pid} to exit")
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    key = keygen(tmp_path / "client_ed25519", "deploy-tests")
    east = Sshd(tmp_path / "sshd-east", [key]).start()
    west = Sshd(tmp_path / "sshd-west", [key]).start()
    known = tmp_path / "known_hosts"
    known.write_text(east.known_hosts_line() + west.known_hosts_line())
    ports = {"east": free_port(), "west": free_port(), "metrics": free_port()}
    s = Site(tmp_path, key, known, east, west, ports, tmp_path / "inventory.yaml", tmp_path / "dcmirror.yaml")
    s.write()
    try:
        yield s
    finally:
        for host in ("east-1", "west-1"):
            stop_services(s.base(host))
        east.stop()
        west.stop()
