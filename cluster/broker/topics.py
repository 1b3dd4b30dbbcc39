"""The cluster's topic catalogue: names, topic ids, partition counts, configs, leader epochs.

Persisted as one JSON document written atomically (tmp file, fsync, rename, fsync of the
directory), so topic metadata survives kill -9 and power cuts. Pure bookkeeping: opening
partition logs is the broker's job.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

logger = logging.getLogger(__name__)

TOPIC_NAME_RE = re.compile(r"[a-zA-Z0-9._-]+")
MAX_TOPIC_NAME = 249


class TopicError(Exception):
    """A topic operation the catalogue refuses; `code` is the Kafka error code to answer."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_topic_name(name: str) -> None:
    from kio.schema.errors import ErrorCode

    if not name or name in (".", ".."):
        raise TopicError(ErrorCode.invalid_topic_exception, f"invalid topic name {name!r}")
    if len(name) > MAX_TOPIC_NAME:
        raise TopicError(
            ErrorCode.invalid_topic_exception, f"topic name longer than {MAX_TOPIC_NAME} characters"
        )
    if not TOPIC_NAME_RE.fullmatch(name):
        raise TopicError(
            ErrorCode.invalid_topic_exception,
            f"topic name {name!r} may only contain ASCII letters, digits, '.', '_' and '-'",
        )


@dataclass
class TopicMeta:
    name: str
    topic_id: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)
    leader_epochs: list[int] = field(default_factory=list)

    @property
    def uuid(self) -> uuid.UUID:
        return uuid.UUID(self.topic_id)


@dataclass
class ClusterIdentity:
    cluster_id: str
    node_id: int


class TopicCatalogue:
    """Topic metadata of one cluster, persisted under `<data_dir>/meta/`."""

    def __init__(self, data_dir: Path) -> None:
        self._dir = data_dir / "meta"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._path = self._dir / "topics.json"
        self.topics: dict[str, TopicMeta] = {}
        self.by_id: dict[uuid.UUID, TopicMeta] = {}
        self._batching = 0
        self._dirty = False
        self.existed = self._path.exists()
        if self._path.exists():
            raw = json.loads(self._path.read_text())
            for t in raw["topics"]:
                meta = TopicMeta(**t)
                self.topics[meta.name] = meta
                self.by_id[meta.uuid] = meta

    def identity(self, name: str, node_id: int) -> ClusterIdentity:
        """The cluster id, created once and kept (clients compare it across reconnects)."""
        path = self._dir / "cluster.json"
        if path.exists():
            raw = json.loads(path.read_text())
            return ClusterIdentity(raw["cluster_id"], raw["node_id"])
        ident = ClusterIdentity(f"{name}-{uuid.uuid4().hex[:12]}", node_id)
        _atomic_write(path, json.dumps(asdict(ident)).encode())
        return ident

    def create(self, name: str, partitions: int, configs: dict[str, str]) -> TopicMeta:
        from kio.schema.errors import ErrorCode

        check_topic_name(name)
        if name in self.topics:
            raise TopicError(ErrorCode.topic_already_exists, f"topic {name!r} already exists")
        if partitions < 1:
            raise TopicError(ErrorCode.invalid_partitions, "number of partitions must be at least 1")
        meta = TopicMeta(name, str(uuid.uuid4()), partitions, dict(configs), [0] * partitions)
        self.topics[name] = meta
        self.by_id[meta.uuid] = meta
        self.save()
        return meta

    def delete(self, name: str) -> TopicMeta:
        meta = self.topics.pop(name)
        self.by_id.pop(meta.uuid, None)
        self.save()
        return meta

    def add_partitions(self, name: str, total: int) -> TopicMeta:
        meta = self.topics[name]
        meta.leader_epochs.extend([0] * (total - meta.partitions))
        meta.partitions = total
        self.save()
        return meta

    def set_configs(self, name: str, configs: dict[str, str]) -> None:
        self.topics[name].configs = dict(configs)
        self.save()

    def bump_leader_epoch(self, name: str, partition: int) -> int:
        meta = self.topics[name]
        meta.leader_epochs[partition] += 1
        self.save()
        return meta.leader_epochs[partition]

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group the saves of one request into one atomic write (and one fsync) at the end,
        so altering 100 topics' configs costs one write, not 100."""
        self._batching += 1
        try:
            yield
        finally:
            self._batching -= 1
            if not self._batching and self._dirty:
                self.save()

    def save(self) -> None:
        if self._batching:
            self._dirty = True
            return
        self._dirty = False
        doc = {"version": 1, "topics": [asdict(t) for t in self.topics.values()]}
        _atomic_write(self._path, json.dumps(doc, indent=1).encode())


_PARTITION_DIR_RE = re.compile(r"(.+)-(0|[1-9][0-9]*)")


def remove_strays(data_dir: Path, topics: dict[str, TopicMeta]) -> int:
    """Delete partition directories the catalogue does not know (a deletion cut short by
    a crash, or a create from a broker version that wrote directories before recording
    the topic). Only called when the catalogue existed before this start, so a lost
    catalogue never costs the data."""
    removed = 0
    with os.scandir(data_dir) as entries:
        for entry in entries:
            m = _PARTITION_DIR_RE.fullmatch(entry.name)
            if m is None or not entry.is_dir(follow_symlinks=False):
                continue
            meta = topics.get(m.group(1))
            if meta is not None and int(m.group(2)) < meta.partitions:
                continue
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
    if removed:
        logger.warning("removed %d partition directories of no known topic from %s", removed, data_dir)
    return removed


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
