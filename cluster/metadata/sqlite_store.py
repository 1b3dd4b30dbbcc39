"""The SQLite metadata store: one file shared by the broker processes of one machine.

Durability and atomicity: WAL journal, synchronous=FULL (a write acknowledged is on disk),
every write in BEGIN IMMEDIATE (the database's write lock is taken before the compares are
read, so two processes' compare-and-sets on one key serialize: one wins, the other sees the
new version and fails). A revision counter in the file gives every write a store-wide
number, the version of the keys it wrote.

Lease expiry needs no agreement between clocks. The rule: **a lease is held while its
keepalive counter advances.** A keepalive adds one to the lease's counter. Every store
instance watches the counters it sees (at most every `sweep_interval_s`, before each
operation): when a lease's counter has not changed for `ttl` by *that instance's own
monotonic clock*, since the instance first saw that value, the instance expires it with a
compare-and-set on the counter (`DELETE ... WHERE id = ? AND counter = ?`) and deletes the
keys bound to it in the same transaction. Only durations measured by one process on its
own monotonic clock are used; wall clocks and other processes' clocks never enter. A new
observer starts timing at its first sight, so it can only expire later than an older one
(never earlier), and a keepalive racing an expiry is decided by the counter's CAS: either
the keepalive advanced the counter first (the expiry fails), or the row is gone and the
keepalive answers False. A holder that keeps alive at ttl/3 keeps its lease unless stopped
(SIGSTOP, a stall) for about a TTL; it then learns at its next keepalive that it lost it,
which is why metadata writes are also fenced by epochs.

Calls run on one worker thread per store instance (sqlite3 blocks), so the event loop never
waits on the file lock.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from cluster.metadata.store import ABSENT, KeyValue, MetadataStore, StoreError, Txn

log = logging.getLogger("dcmirror.metadata")
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL,
                               version INTEGER NOT NULL, lease INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS kv_lease ON kv (lease);
CREATE TABLE IF NOT EXISTS leases (id INTEGER PRIMARY KEY AUTOINCREMENT,
                                   ttl_ms INTEGER NOT NULL, counter INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS revision (id INTEGER PRIMARY KEY CHECK (id = 0), value INTEGER NOT NULL);
INSERT OR IGNORE INTO revision VALUES (0, 0);
"""
_MAX_CHAR = "\U0010ffff"


class SqliteStore(MetadataStore):
    """Metadata in one SQLite file; see the module docstring for the lease-expiry rule."""

    def __init__(self, path: str | Path, sweep_interval_s: float = 0.05,
                 busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self.url = f"sqlite://{self.path}"
        self.sweep_interval_s = sweep_interval_s
        self._busy_timeout_s = busy_timeout_s
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metadata-sqlite")
        self._db: sqlite3.Connection | None = None
        self._seen: dict[int, tuple[int, float]] = {}  # lease -> (counter, monotonic first seen)
        self._last_sweep = 0.0

    def _conn(self) -> sqlite3.Connection:
        """The connection, opened (and the schema made) on first use, on the worker thread."""
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("BEGIN IMMEDIATE")
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)
            db.execute("COMMIT")
            self._db = db
        return self._db

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on the worker thread after a lease sweep; sqlite errors become StoreError."""
        def call() -> T:
            db = self._conn()
            self._sweep(db)
            return fn(db)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, call)
        except sqlite3.Error as exc:
            raise StoreError(f"metadata store {self.path}: {exc}") from exc

    def _sweep(self, db: sqlite3.Connection) -> None:
        """Expire leases whose counter stood still for their TTL on this process's clock."""
        now = time.monotonic()
        if now - self._last_sweep < self.sweep_interval_s:
            return
        self._last_sweep = now
        rows = db.execute("SELECT id, ttl_ms, counter FROM leases").fetchall()
        live = set()
        for lease, ttl_ms, counter in rows:
            live.add(lease)
            seen = self._seen.get(lease)
            if seen is None or seen[0] != counter:
                self._seen[lease] = (counter, now)
            elif now - seen[1] >= ttl_ms / 1000:
                self._expire(db, lease, counter)
        for lease in set(self._seen) - live:
            del self._seen[lease]

    def _expire(self, db: sqlite3.Connection, lease: int, counter: int) -> None:
        """Delete `lease` and its keys if its counter is still `counter` (a CAS on the counter)."""
        db.execute("BEGIN IMMEDIATE")
        try:
            gone = db.execute("DELETE FROM leases WHERE id = ? AND counter = ?", (lease, counter))
            if gone.rowcount:
                self._drop_lease_keys(db, lease)
                log.info("metadata lease %d expired (keepalive counter stuck at %d)", lease, counter)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @staticmethod
    def _drop_lease_keys(db: sqlite3.Connection, lease: int) -> None:
        """Remove the keys bound to `lease`, as one revision."""
        if db.execute("SELECT 1 FROM kv WHERE lease = ? LIMIT 1", (lease,)).fetchone():
            db.execute("UPDATE revision SET value = value + 1")
            db.execute("DELETE FROM kv WHERE lease = ?", (lease,))

    async def range(self, prefix: str) -> list[KeyValue]:
        def read(db: sqlite3.Connection) -> list[KeyValue]:
            rows = db.execute("SELECT key, value, version, lease FROM kv WHERE key >= ? AND key < ? "
                              "ORDER BY key", (prefix, prefix + _MAX_CHAR)).fetchall()
            return [KeyValue(k, bytes(v), ver, lease) for k, v, ver, lease in rows]

        return await self._run(read)

    async def txn(self, txn: Txn) -> int | None:
        def apply(db: sqlite3.Connection) -> int | None:
            db.execute("BEGIN IMMEDIATE")
            try:
                for cmp in txn.compares:
                    row = db.execute("SELECT version FROM kv WHERE key = ?", (cmp.key,)).fetchone()
                    if (row[0] if row else ABSENT) != cmp.version:
                        db.execute("ROLLBACK")
                        return None
                for put in txn.puts:
                    if put.lease and not db.execute("SELECT 1 FROM leases WHERE id = ?",
                                                    (put.lease,)).fetchone():
                        raise StoreError(f"metadata lease {put.lease} has expired")
                db.execute("UPDATE revision SET value = value + 1")
                (rev,) = db.execute("SELECT value FROM revision").fetchone()
                for put in txn.puts:
                    db.execute("INSERT OR REPLACE INTO kv (key, value, version, lease) VALUES (?, ?, ?, ?)",
                               (put.key, put.value, rev, put.lease))
                for key in txn.deletes:
                    db.execute("DELETE FROM kv WHERE key = ?", (key,))
                db.execute("COMMIT")
                return rev
            except BaseException:
                db.execute("ROLLBACK")
                raise

        return await self._run(apply)

    async def grant_lease(self, ttl_s: float) -> int:
        def grant(db: sqlite3.Connection) -> int:
            cur = db.execute("INSERT INTO leases (ttl_ms, counter) VALUES (?, 0)",
                             (max(1, int(ttl_s * 1000)),))
            return int(cur.lastrowid or 0)

        return await self._run(grant)

    async def keepalive(self, lease: int) -> bool:
        def renew(db: sqlite3.Connection) -> bool:
            cur = db.execute("UPDATE leases SET counter = counter + 1 WHERE id = ?", (lease,))
            return cur.rowcount == 1

        return await self._run(renew)

    async def revoke(self, lease: int) -> None:
        def end(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            try:
                if db.execute("DELETE FROM leases WHERE id = ?", (lease,)).rowcount:
                    self._drop_lease_keys(db, lease)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        await self._run(end)

    async def close(self) -> None:
        def shut() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(self._pool, shut)
        self._pool.shutdown(wait=True)
