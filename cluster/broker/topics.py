"""The cluster's topic catalogue: names, topic ids, partition counts, configs, leader epochs.

Persisted as an append-only journal, `<data_dir>/meta/topics/journal`, with the groups'
journal class (cluster/groups/store.py): one framed, CRC-checked record per topic
(key = name, value = the topic as JSON; a tombstone on delete), fsynced before the
change is answered, so topic metadata survives kill -9 and power cuts. A change costs one
record, not a rewrite of every topic: the whole-document JSON file this replaces
(`meta/topics.json`) made each create rewrite and fsync the entire catalogue (~300 ms at
10,000 topics). That file still loads: it is migrated into a journal written to a tmp
file and renamed into place, then removed. One request's changes (`batch()`) go out as
one write and one fsync. Pure bookkeeping: partition logs are the broker's job.
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

from cluster.groups.store import GroupStore

logger = logging.getLogger(__name__)

TOPIC_NAME_RE = re.compile(r"[a-zA-Z0-9._-]+")
MAX_TOPIC_NAME = 249
LEGACY_FILE = "topics.json"
JOURNAL_DIR = "topics"


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

    def encode(self) -> bytes:
        return json.dumps({"name": self.name, "topic_id": self.topic_id, "partitions": self.partitions,
                           "configs": self.configs, "leader_epochs": self.leader_epochs},
                          separators=(",", ":")).encode()


@dataclass
class ClusterIdentity:
    cluster_id: str
    node_id: int


class TopicCatalogue:
    """Topic metadata of one cluster, persisted under `<data_dir>/meta/`."""

    def __init__(self, data_dir: Path) -> None:
        self._dir = data_dir / "meta"
        self._dir.mkdir(parents=True, exist_ok=True)
        self.topics: dict[str, TopicMeta] = {}
        self.by_id: dict[uuid.UUID, TopicMeta] = {}
        self._batching = 0
        self._pending: dict[str, TopicMeta | None] = {}  # name -> how it was before the batch
        self._store = GroupStore(self._dir / JOURNAL_DIR, fsync="always")
        legacy = self._dir / LEGACY_FILE
        # Whether this data directory had a catalogue before this start (the broker only
        # removes stray partition directories when it did).
        self.existed = self._store.path.exists() or legacy.exists()
        if legacy.exists():
            self._migrate(legacy)
        for value in self._store.open().values():
            meta = TopicMeta(**json.loads(value))
            self.topics[meta.name] = meta
            self.by_id[meta.uuid] = meta

    def _migrate(self, legacy: Path) -> None:
        """Turn the old whole-file catalogue into a journal (all or nothing), then drop it."""
        if not self._store.path.exists():
            raw = json.loads(legacy.read_text())
            metas = [TopicMeta(**t) for t in raw["topics"]]
            self._store.directory.mkdir(parents=True, exist_ok=True)
            self._store.live = {m.name.encode(): m.encode() for m in metas}
            self._store.compact()  # journal.tmp, fsync, rename over the journal, fsync dir
            self._store.close()
            logger.info("migrated %d topics from %s to %s", len(metas), legacy, self._store.path)
        legacy.unlink()
        _fsync_dir(self._dir)

    def close(self) -> None:
        self._store.close()

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
        self._write({name: meta})  # first: a failed write leaves no trace in memory either
        self.topics[name] = meta
        self.by_id[meta.uuid] = meta
        return meta

    def adopt(self, name: str, topic_id: str, partitions: int, configs: dict[str, str]) -> TopicMeta:
        """Record a topic the cluster's controller created (multi-broker clusters: the
        topic id and configs come from the metadata store, so every broker answers alike)."""
        meta = TopicMeta(name, topic_id, partitions, dict(configs), [0] * partitions)
        self._write({name: meta})
        self.topics[name] = meta
        self.by_id[meta.uuid] = meta
        return meta

    def delete(self, name: str) -> TopicMeta:
        meta = self.topics[name]
        self._write({name: None})
        del self.topics[name]
        self.by_id.pop(meta.uuid, None)
        return meta

    def add_partitions(self, name: str, total: int) -> TopicMeta:
        meta = self.topics[name]
        grown = TopicMeta(meta.name, meta.topic_id, total, meta.configs,
                          meta.leader_epochs + [0] * (total - meta.partitions))
        self._write({name: grown})
        meta.leader_epochs, meta.partitions = grown.leader_epochs, total
        return meta

    def set_configs(self, name: str, configs: dict[str, str]) -> None:
        meta = self.topics[name]
        self._write({name: TopicMeta(meta.name, meta.topic_id, meta.partitions, dict(configs),
                                     meta.leader_epochs)})
        meta.configs = dict(configs)

    def bump_leader_epoch(self, name: str, partition: int) -> int:
        meta = self.topics[name]
        epochs = list(meta.leader_epochs)
        epochs[partition] += 1
        self._write({name: TopicMeta(meta.name, meta.topic_id, meta.partitions, meta.configs, epochs)})
        meta.leader_epochs = epochs
        return epochs[partition]

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group the changes of one request into one journal write (and one fsync) at the
        end, so creating 10,000 topics or altering 100 topics' configs costs one write.

        Inside a batch a change is visible in memory before it is durable (the request
        answers only after the write). If the write fails, every topic the batch touched
        is put back as it was and CatalogueWriteFailed names them."""
        self._batching += 1
        try:
            yield
        finally:
            self._batching -= 1
            if not self._batching and self._pending:
                undo, self._pending = self._pending, {}
                try:
                    self._store.append([(n.encode(), self.topics[n].encode() if n in self.topics else None)
                                        for n in sorted(undo)])
                except OSError as exc:
                    for name, before in undo.items():
                        self._restore(name, before)
                    raise CatalogueWriteFailed(sorted(undo), exc) from exc

    def _restore(self, name: str, before: TopicMeta | None) -> None:
        now = self.topics.pop(name, None)
        if now is not None:
            self.by_id.pop(now.uuid, None)
        if before is not None:
            self.topics[name] = before
            self.by_id[before.uuid] = before

    def _write(self, changes: dict[str, TopicMeta | None]) -> None:
        """Journal `changes` now, or at the end of the current batch (remembering how each
        topic looked before the batch touched it)."""
        if self._batching:
            for name in changes:
                if name not in self._pending:
                    old = self.topics.get(name)
                    self._pending[name] = None if old is None else TopicMeta(
                        old.name, old.topic_id, old.partitions, dict(old.configs), list(old.leader_epochs))
            return
        self._store.append([(n.encode(), None if m is None else m.encode()) for n, m in changes.items()])


class CatalogueWriteFailed(OSError):
    """A batch of catalogue changes could not be journaled; `names` were rolled back."""

    def __init__(self, names: list[str], cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.names = names


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
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
