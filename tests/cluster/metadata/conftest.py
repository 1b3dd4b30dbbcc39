"""Fixtures: one metadata-store suite run against every backend (SQLite file, a real etcd)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from cluster.metadata.store import MetadataStore, open_store
from tests.etcd import EtcdServer


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    server = EtcdServer(tmp_path_factory.mktemp("etcd")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "etcd"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store's URL: a new SQLite file, or a new key prefix in the shared etcd."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'metadata.db'}"
    server: EtcdServer = request.getfixturevalue("etcd_server")
    return f"{server.url}/test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def open_stores(store_url: str) -> AsyncIterator[Callable[[], MetadataStore]]:
    """Opens clients of the one store (separate connections); all closed after the test."""
    opened: list[MetadataStore] = []

    def make() -> MetadataStore:
        store = open_store(store_url)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_stores: Callable[[], MetadataStore]) -> MetadataStore:
    return open_stores()
