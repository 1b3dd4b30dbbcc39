"""The mirrors under test, behind one interface: start one copying the given source topics
into fresh target topics, tell its pid (for /proc CPU time), stop it.

`dcmirror-tls` is `dcmirror` with both ends of the link on SASL_SSL listeners
(SCRAM-SHA-512, TLS 1.2+, CA-verified, the link's YAML `client:` blocks), on clusters of
their own whose PLAINTEXT listeners serve the bench's clients: only the link pays for TLS.

Every run gets a unique source alias, so each contender writes into topics that did not
exist before (`<alias>.<topic>` for dcmirror with `rename: prefix` and for MM2's default
policy; `<alias>.<topic>` pre-created for the per-record mirror) and never resumes from an
earlier run's progress (dcmirror's offset syncs, MM2's Connect offsets, a consumer group).
"""
from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import yaml

from peers.common import PeerProcess, free_port
from peers.mirrormaker import MirrorMaker2

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class LinkEnd:
    """How the mirror itself reaches a cluster when that differs from the bench's own
    clients (TLS rows): the secured listener and the YAML `client:` block for it."""

    bootstrap: str
    client: dict


@dataclass(frozen=True)
class RunSpec:
    alias: str                  # unique per run: names target topics and mirror state
    source: str                 # bootstrap
    target: str
    topics: list[str]           # source topics to mirror (backlog + latency topic)
    workdir: Path
    source_link: LinkEnd | None = None  # the mirror's way to the source, if not `source`
    target_link: LinkEnd | None = None

    def target_topic(self, topic: str) -> str:
        return f"{self.alias}.{topic}"


class Handle(Protocol):
    @property
    def pid(self) -> int: ...
    def alive(self) -> bool: ...
    def log_tail(self) -> str: ...
    def stop(self) -> None: ...


@dataclass
class ProcHandle:
    proc: PeerProcess

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.alive()

    def log_tail(self) -> str:
        return self.proc.log_tail()

    def stop(self) -> None:
        self.proc.stop(grace=20)


@dataclass
class MM2Handle:
    mm2: MirrorMaker2
    keep_log: Path

    @property
    def pid(self) -> int:
        return self.mm2.pid

    def alive(self) -> bool:
        return self.mm2.alive()

    def log_tail(self) -> str:
        return self.mm2.log_tail()

    def stop(self) -> None:
        try:  # MirrorMaker2.stop() removes its work dir: keep the log with the run's files
            shutil.copyfile(self.mm2.log_path, self.keep_log)
        except OSError:
            pass
        self.mm2.stop()


def _end(bootstrap: str, link_end: LinkEnd | None) -> dict:
    if link_end is None:
        return {"bootstrap": bootstrap}
    return {"bootstrap": link_end.bootstrap, "client": link_end.client}


def _dcmirror(spec: RunSpec, mode: str, ssh: dict | None = None) -> Handle:
    source = _end(spec.source, spec.source_link)
    if ssh is not None:
        source["ssh"] = ssh
    cfg = {
        "clusters": {spec.alias: source,
                     "bench-target": _end(spec.target, spec.target_link)},
        "links": [{
            "name": f"{spec.alias}-link", "source": spec.alias, "target": "bench-target",
            "topics": [t.replace(".", r"\.") for t in spec.topics], "rename": "prefix",
            "groups": ["no-groups-in-this-benchmark"], "mode": mode,
        }],  # intervals at their defaults (topic sync and checkpoints every 5 s)
    }
    path = spec.workdir / f"{spec.alias}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    argv = [sys.executable, "-m", "dcmirror_cli", "mirror", str(path),
            "--metrics-port", str(free_port())]
    proc = PeerProcess(argv, spec.workdir / f"{spec.alias}.log", cwd=REPO)
    proc.start()
    return ProcHandle(proc)


def _naive(spec: RunSpec, poll: bool = False) -> Handle:
    argv = [sys.executable, "-m", "bench.mirror.naive_mirror", *(["--poll"] if poll else []),
            "--source", spec.source,
            "--target", spec.target, "--group", f"{spec.alias}-naive",
            *[a for t in spec.topics for a in ("--map", f"{t}={spec.target_topic(t)}")]]
    proc = PeerProcess(argv, spec.workdir / f"{spec.alias}.log", cwd=REPO)
    proc.start()
    return ProcHandle(proc)


def _mm2(spec: RunSpec) -> Handle:
    mm2 = MirrorMaker2(spec.source, spec.target,
                       topics="|".join(t.replace(".", r"\.") for t in spec.topics),
                       source_alias=spec.alias, target_alias="benchtarget",
                       groups="no-groups-in-this-benchmark",
                       # the backlog is lz4; without this MM2 would write it uncompressed
                       extra_config={"benchtarget.producer.compression.type": "lz4"},
                       heap="1g")
    try:
        mm2.start()
    except BaseException:
        mm2.stop()
        raise
    return MM2Handle(mm2, spec.workdir / f"{spec.alias}.log")


@dataclass
class TunnelHandle(ProcHandle):
    """The mirror's process plus the bastion its source link goes through."""

    bastion: Any = None

    def stop(self) -> None:
        import logging

        logging.getLogger(__name__).info("bastion sshd CPU: %.2f s", self.bastion.cpu_s())
        super().stop()
        self.bastion.stop()


def _dcmirror_ssh(spec: RunSpec) -> Handle:
    from bench.mirror.tunnel import Bastion

    bastion = Bastion.start(spec.workdir / f"{spec.alias}-bastion")
    try:
        handle = _dcmirror(spec, "preserve-offsets", ssh=bastion.ssh)
    except BaseException:
        bastion.stop()
        raise
    assert isinstance(handle, ProcHandle)
    return TunnelHandle(handle.proc, bastion)


@dataclass
class NoMirror:
    """The reference row: no mirror at all, the latency consumer reads the source topic."""

    @property
    def pid(self) -> int:
        raise RuntimeError("no mirror process")

    def alive(self) -> bool:
        return True

    def log_tail(self) -> str:
        return ""

    def stop(self) -> None:
        pass


@dataclass(frozen=True)
class Contender:
    name: str
    label: str
    clusters: str           # "dcmirror" (our clusters) or "kafka" (Apache Kafka brokers)
    precreate_target: bool  # the mirror does not create target topics itself
    start: Callable[[RunSpec], Handle]


CONTENDERS: dict[str, Contender] = {c.name: c for c in [
    Contender("dcmirror", "dcmirror (preserve offsets)", "dcmirror", False,
              lambda s: _dcmirror(s, "preserve-offsets")),
    Contender("naive", "per-record confluent-kafka", "dcmirror", True, _naive),
    Contender("naive-poll", "per-record confluent-kafka, poll()", "dcmirror", True,
              lambda s: _naive(s, poll=True)),
    Contender("mm2", "MirrorMaker 2 (Kafka->Kafka)", "kafka", False, _mm2),
    Contender("none", "no mirror: producer -> source -> consumer", "dcmirror", False,
              lambda s: NoMirror()),
    Contender("none-kafka", "no mirror: producer -> Kafka -> consumer", "kafka", False,
              lambda s: NoMirror()),
    Contender("dcmirror-kafka", "dcmirror (translate, Kafka->Kafka)", "kafka", False,
              lambda s: _dcmirror(s, "translate")),
    Contender("dcmirror-tls", "dcmirror (preserve offsets), SASL_SSL link", "dcmirror-sasl-ssl", False,
              lambda s: _dcmirror(s, "preserve-offsets")),
    Contender("dcmirror-ssh", "dcmirror (preserve offsets), source through an SSH tunnel", "dcmirror", False,
              _dcmirror_ssh),
]}
