"""Apache Kafka MirrorMaker 2 (dedicated mode) as a local peer: the replication we compare
dcmirror's mirror against.

Writes an mm2.properties for one direction `source -> target` with every internal topic at
replication factor 1 and short refresh intervals (so new topics and groups are seen within
seconds), then runs `org.apache.kafka.connect.mirror.MirrorMaker`. With the default
replication policy a source topic T appears on the target as `source.T`; pass
`identity=True` for IdentityReplicationPolicy (same name, no loop protection).
"""
from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Mapping

from peers.common import ManagedPeer, PeerProcess, PeerStartError, end_offsets
from peers.kafka_broker import MIRROR_MAKER, java_cmd

log = logging.getLogger(__name__)


class MirrorMaker2(ManagedPeer):
    """MirrorMaker 2 replicating topics matching `topics` (a regex) from source to target."""

    stop_grace = 20.0

    def __init__(self, source_bootstrap: str, target_bootstrap: str, topics: str = ".*",
                 source_alias: str = "source", target_alias: str = "target",
                 identity: bool = False, groups: str = ".*",
                 extra_config: Mapping[str, str] | None = None, heap: str = "512m") -> None:
        self.source_bootstrap = source_bootstrap
        self.target_bootstrap = target_bootstrap
        self.topics = topics
        self.source_alias = source_alias
        self.target_alias = target_alias
        self.identity = identity
        self.groups = groups
        self.extra_config = dict(extra_config or {})
        self.heap = heap
        self.workdir = Path(tempfile.mkdtemp(prefix="dcmirror-mm2-"))
        self._proc: PeerProcess | None = None

    def target_topic(self, topic: str) -> str:
        """Name of `topic` on the target under the configured replication policy."""
        return topic if self.identity else f"{self.source_alias}.{topic}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mm2.log"

    def config(self) -> dict[str, str]:
        s, t = self.source_alias, self.target_alias
        cfg = {
            "clusters": f"{s}, {t}",
            f"{s}.bootstrap.servers": self.source_bootstrap,
            f"{t}.bootstrap.servers": self.target_bootstrap,
            f"{s}->{t}.enabled": "true",
            f"{s}->{t}.topics": self.topics,
            f"{s}->{t}.groups": self.groups,
            f"{t}->{s}.enabled": "false",
            "tasks.max": "2",
            "replication.factor": "1",
            "checkpoints.topic.replication.factor": "1",
            "heartbeats.topic.replication.factor": "1",
            "offset-syncs.topic.replication.factor": "1",
            "offset.storage.replication.factor": "1",
            "status.storage.replication.factor": "1",
            "config.storage.replication.factor": "1",
            "refresh.topics.interval.seconds": "5",
            "refresh.groups.interval.seconds": "5",
            "sync.group.offsets.enabled": "true",
            "sync.group.offsets.interval.seconds": "5",
            "emit.checkpoints.interval.seconds": "5",
            "emit.heartbeats.interval.seconds": "5",
        }
        if self.identity:
            cfg["replication.policy.class"] = \
                "org.apache.kafka.connect.mirror.IdentityReplicationPolicy"
        cfg.update(self.extra_config)
        return cfg

    def start(self) -> "MirrorMaker2":
        """Start MM2. It has no readiness signal of its own: callers wait for records."""
        props = self.workdir / "mm2.properties"
        props.write_text("".join(f"{k}={v}\n" for k, v in self.config().items()))
        argv = java_cmd(MIRROR_MAKER, str(props), heap=self.heap, short_lived=False)
        self._proc = PeerProcess(argv, self.log_path, cwd=self.workdir)
        self._proc.start()
        log.info("MirrorMaker 2 %s -> %s started (pid %d)", self.source_bootstrap,
                 self.target_bootstrap, self.pid)
        return self

    def wait_replicated(self, topic: str, records: int, timeout: float = 240.0) -> float:
        """Block until the target copy of source `topic` holds at least `records` records
        (sum of high watermarks); return the seconds waited. Raises PeerStartError with
        MM2's log tail if it dies or the deadline passes."""
        mirrored = self.target_topic(topic)
        t0 = time.monotonic()
        while True:
            if not self.alive():
                raise PeerStartError(f"MirrorMaker 2 exited\n{self.log_tail()}")
            ends = end_offsets(self.target_bootstrap, mirrored)
            if ends is not None and sum(ends.values()) >= records:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise PeerStartError(f"{mirrored} has {ends} records after {timeout:.0f}s, "
                                     f"wanted {records}\n{self.log_tail()}")
            time.sleep(0.5)

