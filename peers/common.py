"""Shared plumbing for the peer wrappers: cache location, free ports, readiness polling,
and owning a child process (start with a log file, stop gracefully, SIGKILL, RSS).

Every peer wrapper is a thin layer over `PeerProcess`, so they all stop the same way and
leave nothing behind.
"""
from __future__ import annotations

import logging
import os
import ctypes
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

log = logging.getLogger(__name__)

PEERS_DIR_ENV = "DCMIRROR_PEERS_DIR"
PACKAGE_DIR = Path(__file__).resolve().parent


class PeerUnavailable(RuntimeError):
    """A prerequisite (Java, Maven, jars, binary) is missing on this machine."""


class PeerStartError(RuntimeError):
    """The peer process started but never became ready (message carries its log tail)."""


def peers_dir() -> Path:
    """Cache root for peer artifacts: $DCMIRROR_PEERS_DIR or ~/.cache/dcmirror-peers."""
    env = os.environ.get(PEERS_DIR_ENV)
    return Path(env) if env else Path.home() / ".cache" / "dcmirror-peers"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def admin_ready(bootstrap: str, timeout: float = 2.0) -> bool:
    """True when a Kafka-protocol server at `bootstrap` answers Metadata with a broker."""
    from confluent_kafka.admin import AdminClient  # heavy import, only when needed

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0,
                         "socket.connection.setup.timeout.ms": 1000})
    try:
        md = admin.list_topics(timeout=timeout)
        return bool(md.brokers)
    except Exception:  # KafkaException while the server is still coming up
        return False


def end_offsets(bootstrap: str, topic: str, timeout: float = 10.0) -> dict[int, int] | None:
    """High watermark of every partition of `topic`, or None while the topic is unknown."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "dcmirror-peers-probe",
                  "enable.auto.commit": False, "log_level": 0})
    try:
        md = c.list_topics(topic, timeout=timeout).topics.get(topic)
        if md is None or md.error is not None or not md.partitions:
            return None
        out = {}
        for p in md.partitions:
            _low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            out[p] = high
        return out
    finally:
        c.close()


def rss_bytes(pid: int, include_children: bool = True) -> int:
    """VmRSS of `pid` (plus its descendants) from /proc, in bytes."""
    pids = [pid]
    if include_children:
        pids += _descendants(pid)
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, include_children: bool = True) -> float:
    """utime+stime (fields 14 and 15 of /proc/PID/stat) of `pid` and its live descendants.

    Read from /proc because that is all it takes (psutil is not a dependency)."""
    total = 0
    for p in [pid, *(_descendants(pid) if include_children else [])]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    """Have the kernel SIGTERM the child when its parent dies (Linux), so a killed test
    run or benchmark never leaves a broker behind."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
    except (OSError, AttributeError):
        pass


@dataclass
class PeerProcess:
    """One child process with its output in `log_path`. Not restartable by itself."""

    argv: Sequence[str]
    log_path: Path
    cwd: Path | None = None
    env: Mapping[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        logf = open(self.log_path, "ab")
        log.debug("starting %s", " ".join(self.argv))
        # PDEATHSIG fires when the *thread* that forked exits: only tie the child to the
        # main thread, never to a short-lived worker thread (asyncio.to_thread etc.).
        on_main = threading.current_thread() is threading.main_thread()
        try:
            self.proc = subprocess.Popen(
                list(self.argv), stdout=logf, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=self.cwd,
                env=dict(self.env) if self.env is not None else None,
                start_new_session=True,  # our signals reach it, the terminal's do not
                preexec_fn=_die_with_parent if on_main else None,
            )
        finally:
            logf.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, probe: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise PeerStartError(f"{what} exited early (rc={self.proc and self.proc.returncode})"
                                     f"\n{self.log_tail()}")
            if probe():
                return
            time.sleep(0.2)
        raise PeerStartError(f"{what} not ready after {timeout:.0f}s\n{self.log_tail()}")

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds. Idempotent."""
        if not self.alive():
            return
        assert self.proc is not None
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            log.warning("%s ignored SIGTERM for %.0fs; killing", self.argv[0], grace)
            self.kill9()

    def kill9(self) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        self._signal(signal.SIGKILL)
        self.proc.wait(10)

    def _signal(self, sig: int) -> None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, sig)  # its own session: the group is just it (+ kids)
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class ManagedPeer:
    """Lifecycle shared by the peers: a `PeerProcess` in a temporary work dir, stopped and
    removed on `stop()`, usable as a context manager. Subclasses set `_proc`, `workdir` and
    `stop_grace`, and implement `start()`."""

    _proc: "PeerProcess | None"
    workdir: Path
    stop_grace: float = 10.0

    def start(self):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc is not None and self._proc.alive()

    def log_tail(self, lines: int = 60) -> str:
        return self._proc.log_tail(lines) if self._proc else "(not started)"

    def kill9(self) -> None:
        """Crash it (SIGKILL); the work dir stays."""
        if self._proc:
            self._proc.kill9()

    def stop(self) -> None:
        """Stop the process and delete its work dir. Idempotent."""
        if self._proc:
            self._proc.stop(grace=self.stop_grace)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, et, ev, tb) -> None:
        self.stop()
