"""The etcd metadata store: etcd v3's JSON gRPC-gateway over HTTP (etcd 3.4 and later).

For brokers on several hosts: etcd (Raft, Jepsen-tested) keeps the metadata. URL
`etcd://host:port/prefix`: every key is stored under `/prefix/`, so several clusters can
share one etcd. Keys and values travel base64-encoded, int64s as JSON strings (the
gateway's encoding). A key's version is etcd's mod_revision; "absent" is compared as
create_revision 0. Leases are etcd's own (server-side TTL, whole seconds, at least 1);
keepalive answers False once etcd no longer knows the lease (its TTL is then absent).

The gateway rather than aetcd: see cluster.metadata.http_json (no grpcio/protobuf).
"""

from __future__ import annotations

import base64
import math
from typing import Any
from urllib.parse import urlsplit

from cluster.metadata.http_json import HttpError, JsonHttpClient
from cluster.metadata.store import ABSENT, KeyValue, MetadataStore, StoreError, Txn


def _b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def _prefix_end(prefix: bytes) -> bytes:
    """etcd's range_end for "every key starting with prefix" (last byte + 1, carried)."""
    raw = bytearray(prefix)
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return bytes(raw)
        raw.pop()
    return b"\0"  # the whole keyspace


class EtcdStore(MetadataStore):
    """Metadata in etcd under one key prefix, through the v3 JSON gateway."""

    def __init__(self, host: str, port: int, prefix: str = "dcmirror", timeout_s: float = 5.0) -> None:
        self.root = "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"
        self.url = f"etcd://{host}:{port}{self.root.rstrip('/')}"
        self._http = JsonHttpClient(host, port, timeout_s)

    @classmethod
    def from_url(cls, url: str) -> "EtcdStore":
        parts = urlsplit(url)
        if not parts.hostname or not parts.port:
            raise ValueError(f"metadata store {url!r}: say etcd://host:port/prefix")
        return cls(parts.hostname, parts.port, parts.path or "dcmirror")

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self._http.post(path, body)
        except HttpError as exc:
            raise StoreError(f"metadata store {self.url}: {exc}") from exc

    async def range(self, prefix: str) -> list[KeyValue]:
        full = (self.root + prefix).encode()
        reply = await self._call("/v3/kv/range", {"key": _b64(full), "range_end": _b64(_prefix_end(full)),
                                                  "sort_order": "ASCEND", "sort_target": "KEY"})
        cut = len(self.root)
        return [KeyValue(base64.b64decode(kv["key"]).decode()[cut:], base64.b64decode(kv.get("value", "")),
                         int(kv["mod_revision"]), int(kv.get("lease", 0)))
                for kv in reply.get("kvs", [])]

    async def txn(self, txn: Txn) -> int | None:
        compares = []
        for cmp in txn.compares:
            key = _b64(self.root + cmp.key)
            if cmp.version == ABSENT:
                compares.append({"key": key, "target": "CREATE", "create_revision": "0", "result": "EQUAL"})
            else:
                compares.append({"key": key, "target": "MOD", "mod_revision": str(cmp.version),
                                 "result": "EQUAL"})
        ops: list[dict[str, Any]] = [
            {"request_put": {"key": _b64(self.root + p.key), "value": _b64(p.value), "lease": str(p.lease)}}
            for p in txn.puts]
        ops += [{"request_delete_range": {"key": _b64(self.root + k)}} for k in txn.deletes]
        try:
            reply = await self._http.post("/v3/kv/txn", {"compare": compares, "success": ops})
        except HttpError as exc:
            if "requested lease not found" in str(exc):
                raise StoreError(f"metadata lease {txn.puts[0].lease} has expired") from exc
            raise StoreError(f"metadata store {self.url}: {exc}") from exc
        if not reply.get("succeeded", False):
            return None
        return int(reply["header"]["revision"])

    async def grant_lease(self, ttl_s: float) -> int:
        reply = await self._call("/v3/lease/grant", {"TTL": str(max(1, math.ceil(ttl_s)))})
        return int(reply["ID"])

    async def keepalive(self, lease: int) -> bool:
        reply = await self._call("/v3/lease/keepalive", {"ID": str(lease)})
        return int(reply.get("result", {}).get("TTL", 0)) > 0

    async def revoke(self, lease: int) -> None:
        try:
            await self._http.post("/v3/lease/revoke", {"ID": str(lease)})
        except HttpError as exc:
            if "lease not found" not in str(exc):
                raise StoreError(f"metadata store {self.url}: {exc}") from exc

    async def close(self) -> None:
        await self._http.close()
