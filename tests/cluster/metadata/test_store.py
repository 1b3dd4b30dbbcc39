"""The metadata store contract, run against SQLite and a real etcd (fixture `store_url`)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cluster.metadata.store import ABSENT, Compare, MetadataStore, Put, StoreError, Txn, open_store

ROOT = Path(__file__).resolve().parents[3]


async def eventually(check: Callable[[], object], timeout: float = 15.0) -> None:
    """Await until the coroutine function `check` returns truthy, or fail at `timeout`."""
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[misc]
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.05)


async def test_put_get_range_versions(store: MetadataStore) -> None:
    assert await store.get("brokers/1") is None
    v1 = await store.put("brokers/1", b"one")
    v2 = await store.put("brokers/2", b"two")
    await store.put("topics/a", b"x")
    assert v1 and v2 and v2 > v1
    kv = await store.get("brokers/1")
    assert kv is not None and kv.value == b"one" and kv.version == v1
    assert [(k.key, k.value) for k in await store.range("brokers/")] == [
        ("brokers/1", b"one"), ("brokers/2", b"two")]
    assert await store.get("brokers/") is None  # a prefix is not a key
    v3 = await store.put("brokers/1", b"uno")
    assert v3 and v3 > v2 and (await store.get("brokers/1")).version == v3  # type: ignore[union-attr]


async def test_compare_and_set(store: MetadataStore) -> None:
    v1 = await store.put("controller", b"a", if_version=ABSENT)
    assert v1
    assert await store.put("controller", b"b", if_version=ABSENT) is None  # exists already
    v2 = await store.put("controller", b"c", if_version=v1)
    assert v2
    assert await store.put("controller", b"d", if_version=v1) is None  # stale version
    assert (await store.get("controller")).value == b"c"  # type: ignore[union-attr]
    assert not await store.delete("controller", if_version=v1)
    assert await store.delete("controller", if_version=v2)
    assert await store.get("controller") is None
    assert await store.put("controller", b"e", if_version=ABSENT)  # created again


async def test_txn_is_all_or_nothing(store: MetadataStore) -> None:
    v = await store.put("epoch", b"1")
    await store.put("old", b"x")
    failed = Txn(compares=(Compare("epoch", v), Compare("missing", 5)),  # type: ignore[arg-type]
                 puts=(Put("p/0", b"leader=1"),), deletes=("old",))
    assert await store.txn(failed) is None
    assert await store.get("p/0") is None and await store.get("old") is not None
    ok = Txn(compares=(Compare("epoch", v), Compare("missing", ABSENT)),  # type: ignore[arg-type]
             puts=(Put("p/0", b"leader=1"), Put("p/1", b"leader=2")), deletes=("old",))
    rev = await store.txn(ok)
    assert rev
    assert [(k.key, k.version) for k in await store.range("p/")] == [("p/0", rev), ("p/1", rev)]
    assert await store.get("old") is None


INCREMENTS = """
import asyncio, sys
from cluster.metadata.store import ABSENT, open_store

async def main(url, n):
    store = open_store(url)
    conflicts = 0
    for _ in range(n):
        while True:
            kv = await store.get("counter")
            value = int(kv.value) if kv else 0
            if await store.put("counter", str(value + 1).encode(),
                               if_version=kv.version if kv else ABSENT):
                break
            conflicts += 1
    await store.close()
    print(conflicts)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def test_concurrent_cas_from_several_processes(store_url: str, store: MetadataStore) -> None:
    """4 processes each add 25 to one counter by read + compare-and-set: no increment lost."""
    procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", INCREMENTS, store_url, "25",
                                                  cwd=ROOT, stdout=subprocess.PIPE)
             for _ in range(4)]
    outputs = [await p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    assert (await store.get("counter")).value == b"100"  # type: ignore[union-attr]


async def test_concurrent_cas_from_several_clients(open_stores: Callable[[], MetadataStore]) -> None:
    """Concurrent clients racing to create one key: exactly one wins."""
    clients = [open_stores() for _ in range(6)]
    wins = await asyncio.gather(*(c.put("controller", str(i).encode(), if_version=ABSENT)
                                  for i, c in enumerate(clients)))
    assert sum(1 for w in wins if w) == 1


def _ttl(store_url: str) -> float:
    """1 s: keepalives every 0.25 s must survive a loaded machine's stalls (2 shared cores)."""
    return 1.0


async def test_lease_held_while_kept_alive_then_expires(store_url: str,
                                                        open_stores: Callable[[], MetadataStore]) -> None:
    holder, observer = open_stores(), open_stores()
    ttl = _ttl(store_url)
    lease = await holder.grant_lease(ttl)
    await holder.put("brokers/1", b"alive", lease=lease)
    await holder.put("topics/a", b"kept")
    for _ in range(int(3 * ttl / (ttl / 4))):  # three TTLs of keepalives every ttl/4
        assert await holder.keepalive(lease)
        assert await observer.get("brokers/1") is not None
        await asyncio.sleep(ttl / 4)
    # The holder stops renewing (as a SIGSTOPped broker would): the observer sees it expire.
    await eventually(lambda: _absent(observer, "brokers/1"))
    assert not await holder.keepalive(lease)
    with pytest.raises(StoreError, match="lease"):
        await holder.put("brokers/1", b"again", lease=lease)
    assert (await observer.get("topics/a")).value == b"kept"  # type: ignore[union-attr]


async def _absent(store: MetadataStore, key: str) -> bool:
    return await store.get(key) is None


async def test_revoke_removes_bound_keys(store: MetadataStore) -> None:
    lease = await store.grant_lease(30)
    await store.put("controller", b"1", lease=lease)
    await store.revoke(lease)
    assert await store.get("controller") is None
    assert not await store.keepalive(lease)
    await store.revoke(lease)  # again: no error


async def test_watch_sees_puts_and_deletes(open_stores: Callable[[], MetadataStore]) -> None:
    watcher, writer = open_stores(), open_stores()
    snapshots = watcher.watch("brokers/", interval_s=0.02)
    assert await anext(snapshots) == {}
    await writer.put("brokers/1", b"a")
    await writer.put("other", b"ignored")
    first = await asyncio.wait_for(anext(snapshots), 10)
    assert {k: v.value for k, v in first.items()} == {"brokers/1": b"a"}
    await writer.delete("brokers/1")
    assert await asyncio.wait_for(anext(snapshots), 10) == {}
    await snapshots.aclose()


def test_open_store_refuses_an_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="unknown scheme"):
        open_store("zookeeper://127.0.0.1:2181/x")
    with pytest.raises(ValueError, match="etcd://host:port/prefix"):
        open_store("etcd://nohostport")


async def test_unreachable_etcd_is_one_sentence() -> None:
    from tests.processes import free_port

    store = open_store(f"etcd://127.0.0.1:{free_port()}/x")
    with pytest.raises(StoreError, match="metadata store etcd://127.0.0.1"):
        await store.get("k")
    await store.close()
