"""Apache Kafka (KRaft, single node) as a local peer, plus a runner for the Kafka CLI tools.

`KafkaBroker` formats a fresh KRaft log dir with StorageTool (`--standalone`, a dynamic
single-voter quorum as Kafka 4.x expects), then runs `kafka.Kafka` with PLAINTEXT and
CONTROLLER listeners on free loopback ports and replication factor 1 for every internal
topic. `stop()` removes everything; `kill9()`/`restart()` keep the data for crash tests.
"""
from __future__ import annotations

import base64
import logging
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Mapping

from peers.common import ManagedPeer, PACKAGE_DIR, PeerProcess, admin_ready, free_port
from peers.fetch import ensure_kafka, java_path

log = logging.getLogger(__name__)

LOG4J2_CONFIG = PACKAGE_DIR / "log4j2.properties"

# Main classes verified in the 4.3.1 jars (kafka_2.13, kafka-tools, connect-mirror).
KAFKA_MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
TOPICS = "org.apache.kafka.tools.TopicCommand"
CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer"
CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
CONSUMER_GROUPS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
MIRROR_MAKER = "org.apache.kafka.connect.mirror.MirrorMaker"


def java_cmd(main_class: str, *args: str, heap: str = "256m",
             short_lived: bool = True) -> list[str]:
    """argv running `main_class` on the fetched Kafka classpath with the quiet log config.
    Short-lived tools get the serial GC (fast JVM start on 2 cores); servers keep G1."""
    libs = ensure_kafka()
    gc = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"] if short_lived else []
    return [java_path(), f"-Xmx{heap}", *gc,
            f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
            "-cp", f"{libs}/*", main_class, *args]


def kafka_tool(main_class: str, *args: str, input: str | None = None,
               timeout: float = 120.0, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run a Kafka CLI tool by main class, e.g.
    `kafka_tool(TOPICS, "--bootstrap-server", b.bootstrap, "--list")`."""
    return subprocess.run(java_cmd(main_class, *args), input=input, capture_output=True,
                          text=True, timeout=timeout, check=check)


def random_cluster_id() -> str:
    """The 22-char url-safe base64 UUID that StorageTool expects. Never starting with '-'
    (StorageTool's argument parser would take it for an option)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class KafkaBroker(ManagedPeer):
    """A single-node KRaft Apache Kafka on 127.0.0.1. Use as a context manager."""

    stop_grace = 15.0

    def __init__(self, extra_config: Mapping[str, str] | None = None,
                 heap: str = "512m", start_timeout: float = 90.0,
                 format_args: list[str] | None = None) -> None:
        self.port = free_port()
        self.controller_port = free_port()
        self.heap = heap
        self.start_timeout = start_timeout
        self.extra_config = dict(extra_config or {})
        #: extra StorageTool `format` arguments, e.g. `--add-scram` for SCRAM users
        self.format_args = list(format_args or [])
        self.workdir = Path(tempfile.mkdtemp(prefix="dcmirror-kafka-"))
        self.cluster_id = random_cluster_id()
        self._proc: PeerProcess | None = None
        self._formatted = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def config(self) -> dict[str, str]:
        cfg = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
                         f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
                                    f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.workdir / "data"),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
        }
        cfg.update(self.extra_config)
        return cfg

    def _write_config(self) -> Path:
        path = self.workdir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in self.config().items()))
        return path

    def _format(self, props: Path) -> None:
        res = subprocess.run(
            java_cmd(STORAGE_TOOL, "format", "-t", self.cluster_id, "-c", str(props),
                     "--standalone", *self.format_args),
            capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise RuntimeError(f"kafka-storage format failed:\n{res.stdout}\n{res.stderr}")
        self._formatted = True

    def start(self) -> "KafkaBroker":
        props = self._write_config()
        if not self._formatted:
            self._format(props)
        argv = java_cmd(KAFKA_MAIN, str(props), heap=self.heap, short_lived=False)
        self._proc = PeerProcess(argv, self.log_path, cwd=self.workdir)
        self._proc.start()
        self._proc.wait_ready(lambda: admin_ready(self.bootstrap), self.start_timeout,
                              f"Apache Kafka on {self.bootstrap}")
        log.info("Apache Kafka ready on %s (pid %d)", self.bootstrap, self.pid)
        return self

    def restart(self) -> None:
        """Graceful stop (if running) and start again on the same ports and data."""
        if self._proc:
            self._proc.stop()
        self.start()

    def tool(self, main_class: str, *args: str, input: str | None = None,
             timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """`kafka_tool` with `--bootstrap-server` of this broker prepended to args."""
        return kafka_tool(main_class, "--bootstrap-server", self.bootstrap, *args,
                          input=input, timeout=timeout)

