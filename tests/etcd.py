"""A real etcd server for tests: started on free loopback ports in a temp dir, stopped after.

Debian's etcd-server (3.4) is installed by test.sh. Off CI a missing etcd skips the test with
the reason; on CI (CI=true) it fails, as the interop peers do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.processes import free_port


class EtcdServer:
    """One single-member etcd on 127.0.0.1, its data and log under `workdir`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.client_port = free_port()
        self.peer_port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"etcd://127.0.0.1:{self.client_port}"

    def start(self) -> "EtcdServer":
        binary = shutil.which("etcd") or "/usr/bin/etcd"
        if not os.path.exists(binary):
            reason = "etcd is not installed (apt-get install etcd-server)"
            if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
                pytest.fail(reason, pytrace=False)
            pytest.skip(reason)
        self.workdir.mkdir(parents=True, exist_ok=True)
        client = f"http://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        log = open(self.workdir / "etcd.log", "ab")
        self.proc = subprocess.Popen(
            [binary, "--name", "test", "--data-dir", str(self.workdir / "data"),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"test={peer}"],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.proc.returncode}: see {self.workdir}/etcd.log")
            try:
                with urllib.request.urlopen(f"{client}/health", timeout=1) as reply:
                    if json.loads(reply.read()).get("health") == "true":
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError("etcd not healthy within 30s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
