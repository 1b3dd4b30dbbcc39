"""The metadata store interface shared by the SQLite and etcd backends.

Keys are strings, values bytes. Every key carries a version: the store-wide revision of its
last write (etcd's mod_revision; SQLite keeps a revision counter of its own), so one integer
says "the value I read" and a compare-and-set names it. Version 0 means "absent": a put
guarded by version 0 creates the key only if nobody else did.

Leases: `grant_lease(ttl_s)` returns an id; keys put with that lease disappear when the
lease expires or is revoked. The holder renews with `keepalive`, which answers False once
the lease is gone (the holder has lost whatever the lease guarded and must stop acting on
it). How a backend decides expiry is its own (see sqlite_store for a rule that needs no
agreement between clocks); callers must still fence their writes by epochs, because a
holder learns of its loss only at its next keepalive.

`watch` is a poll of `range` (metadata is hundreds of keys, read by a few brokers): it
yields a fresh snapshot of a prefix whenever any key under it was written or removed.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

ABSENT = 0  # the version of a key that does not exist


class StoreError(Exception):
    """The metadata store could not be reached or answered an error (one sentence)."""


@dataclass(frozen=True)
class KeyValue:
    """One key as read: its value, its version (revision of its last write) and lease (0: none)."""

    key: str
    value: bytes
    version: int
    lease: int = 0


@dataclass(frozen=True)
class Compare:
    """A transaction's guard: `key` is at `version` (ABSENT: the key does not exist)."""

    key: str
    version: int


@dataclass(frozen=True)
class Put:
    """A transaction's write of `value` at `key`, bound to `lease` when it is not 0."""

    key: str
    value: bytes
    lease: int = 0


@dataclass(frozen=True)
class Txn:
    """All `compares` hold -> all `puts` and `deletes` are applied atomically; else nothing."""

    compares: tuple[Compare, ...] = ()
    puts: tuple[Put, ...] = ()
    deletes: tuple[str, ...] = field(default=())


class MetadataStore(abc.ABC):
    """Versioned keys with compare-and-set, prefix ranges, leases and a polling watch."""

    url: str

    @abc.abstractmethod
    async def range(self, prefix: str) -> list[KeyValue]:
        """Every key starting with `prefix`, sorted by key."""

    @abc.abstractmethod
    async def txn(self, txn: Txn) -> int | None:
        """Apply `txn` atomically; the store's new revision, or None when a compare failed."""

    @abc.abstractmethod
    async def grant_lease(self, ttl_s: float) -> int:
        """A new lease that expires about `ttl_s` after its last keepalive."""

    @abc.abstractmethod
    async def keepalive(self, lease: int) -> bool:
        """Renew `lease`; False when it has already expired or been revoked."""

    @abc.abstractmethod
    async def revoke(self, lease: int) -> None:
        """End `lease` now, removing the keys bound to it (no error if already gone)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections and threads."""

    async def get(self, key: str) -> KeyValue | None:
        """The key's current value and version, or None when absent."""
        for kv in await self.range(key):
            if kv.key == key:
                return kv
        return None

    async def put(self, key: str, value: bytes, *, if_version: int | None = None,
                  lease: int = 0) -> int | None:
        """Write `key`; with `if_version`, only if it is at that version (ABSENT: create).

        Returns the key's new version, or None when the guard failed.
        """
        compares = () if if_version is None else (Compare(key, if_version),)
        return await self.txn(Txn(compares=compares, puts=(Put(key, value, lease),)))

    async def delete(self, key: str, *, if_version: int | None = None) -> bool:
        """Remove `key`; with `if_version`, only if it is at that version. False if guarded out."""
        compares = () if if_version is None else (Compare(key, if_version),)
        return await self.txn(Txn(compares=compares, deletes=(key,))) is not None

    async def watch(self, prefix: str, interval_s: float = 0.1) -> AsyncIterator[dict[str, KeyValue]]:
        """Snapshots of `prefix`: the current one at once, then one after every change."""
        last: dict[str, int] | None = None
        while True:
            kvs = await self.range(prefix)
            seen = {kv.key: kv.version for kv in kvs}
            if seen != last:
                last = seen
                yield {kv.key: kv for kv in kvs}
            await asyncio.sleep(interval_s)

    async def __aenter__(self) -> "MetadataStore":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def open_store(url: str) -> MetadataStore:
    """The backend `url` names: `etcd://host:port/prefix`, `sqlite:///path` or a file path."""
    if url.startswith("etcd://"):
        from cluster.metadata.etcd_store import EtcdStore

        return EtcdStore.from_url(url)
    if "://" in url and not url.startswith("sqlite://"):
        raise ValueError(f"metadata store {url!r}: unknown scheme; use etcd://host:port/prefix "
                         f"or sqlite:///path/to/metadata.db")
    from cluster.metadata.sqlite_store import SqliteStore

    return SqliteStore(url.removeprefix("sqlite://"))
