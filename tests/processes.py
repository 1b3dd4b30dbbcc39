"""Start dcmirror clusters as real processes through the CLI, as a user would.

Used by integration, crash and interop tests: `ClusterProcess.start()` runs
`dcmirror cluster start` on a free loopback port and waits until the port answers;
`kill9()` is a real SIGKILL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


# Settings every test cluster starts with (extra_args may override them: click keeps the
# last value): no 3 s initial rebalance delay on every group's first join.
TEST_DEFAULTS = ("--group-initial-rebalance-delay-ms", "0")

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class CliProcess:
    """A `dcmirror ...` subcommand run as a real process, its output in a log file."""

    proc: subprocess.Popen | None
    log_path: Path | None

    def _spawn(self, args: list[str], log_path: Path, port: int, nofile: int | None = None) -> None:
        """`nofile`: soft and hard RLIMIT_NOFILE of the child (it cannot raise them)."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        log = open(log_path, "ab")

        def limit() -> None:
            import resource

            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        # -v: the coordinators' INFO lines (hidden by the quiet default) are what tests read
        # in log_text() and what a failure's log should show.
        self.proc = subprocess.Popen([sys.executable, "-m", "dcmirror_cli", "-v", *args], stdout=log,
                                     stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1],
                                     preexec_fn=limit if nofile is not None else None)
        wait_for_port(port, proc=self.proc)

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""


@dataclass
class ClusterProcess(CliProcess):
    name: str
    data_dir: Path
    port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    nofile: int | None = None  # RLIMIT_NOFILE for the broker process

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "ClusterProcess":
        self._spawn(["cluster", "start", "--name", self.name, "--port", str(self.port),
                     "--data-dir", str(self.data_dir), *TEST_DEFAULTS, *self.extra_args],
                    self.data_dir.parent / f"{self.name}-{self.port}.log", self.port, self.nofile)
        return self

    def restart(self) -> "ClusterProcess":
        self.stop()
        return self.start()


@dataclass
class ListenerClusterProcess(CliProcess):
    """`dcmirror cluster start --listener NAME=PROTOCOL://127.0.0.1:PORT ...`, each listener
    on its own free port; waits until every port answers."""

    name: str
    data_dir: Path
    listeners: dict[str, str]  # listener name -> security protocol, in order
    extra_args: list[str] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    def bootstrap(self, listener: str) -> str:
        return f"127.0.0.1:{self.ports[listener]}"

    def start(self) -> "ListenerClusterProcess":
        self.ports = self.ports or {n: free_port() for n in self.listeners}
        specs = [a for n, proto in self.listeners.items()
                 for a in ("--listener", f"{n}={proto}://127.0.0.1:{self.ports[n]}")]
        first = next(iter(self.ports.values()))
        self._spawn(["cluster", "start", "--name", self.name, "--data-dir", str(self.data_dir),
                     *specs, *TEST_DEFAULTS, *self.extra_args], self.data_dir.parent / f"{self.name}-{first}.log", first)
        for port in self.ports.values():
            wait_for_port(port, proc=self.proc)
        return self


@dataclass
class MirrorProcess(CliProcess):
    """`dcmirror mirror CONFIG` as a real process, with its metrics/status endpoint."""

    config: Path
    metrics_port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    def start(self) -> "MirrorProcess":
        self._spawn(["mirror", str(self.config), "--metrics-port", str(self.metrics_port),
                     *self.extra_args],
                    self.config.parent / f"mirror-{self.metrics_port}.log", self.metrics_port)
        return self

    def _get(self, path: str) -> bytes:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=5) as r:
            return r.read()

    def status(self) -> dict:
        import json

        return json.loads(self._get("/status"))

    def metrics(self) -> str:
        return self._get("/metrics").decode()


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.2, what: str = "condition"):
    """Poll until `predicate()` is truthy; returns its value. Functional waiting, not timing."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the cluster may be restarting
            last_exc = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout}s (last error: {last_exc!r})")


def free_port_range(n: int, attempts: int = 200) -> int:
    """The first of `n` consecutive free loopback ports (for `cluster start --brokers n`)."""
    import random

    # Below the kernel's ephemeral range: a broker restarted on its port must not find it
    # taken by a client's outgoing connection (or a client's TCP self-connect to it).
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(attempts):
        base = random.randint(10000, max(10001, low - n - 1))
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports found")


@dataclass
class MultiBrokerCluster(CliProcess):
    """`dcmirror cluster start --brokers N`: the supervisor and its N broker processes.

    `start()` returns once the supervisor logged its ready line (every broker answering)."""

    name: str
    data_dir: Path
    brokers: int = 3
    port: int = 0
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def ports(self) -> list[int]:
        return [self.port + i for i in range(self.brokers)]

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start(self) -> "MultiBrokerCluster":
        self.port = self.port or free_port_range(self.brokers)
        self._spawn(["cluster", "start", "--name", self.name, "--brokers", str(self.brokers),
                     "--port", str(self.port), "--data-dir", str(self.data_dir), *TEST_DEFAULTS,
                     *self.extra_args],
                    self.data_dir.parent / f"{self.name}-{self.port}.log", self.port)
        wait_until(lambda: f"cluster {self.name} ready: {self.brokers} brokers" in self.log_text()
                   or (self.proc is not None and self.proc.poll() is not None), 60, what="supervisor ready")
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"supervisor exited with {self.proc.returncode}: {self.log_text()[-2000:]}")
        return self

    def broker_pid(self, node_id: int) -> int:
        """The pid of broker `node_id`'s process (a child of the supervisor)."""
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        for pid in children:
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"--node-id" in cmd and cmd[cmd.index(b"--node-id") + 1] == str(node_id).encode():
                return int(pid)
        raise LookupError(f"broker {node_id} is not running")
