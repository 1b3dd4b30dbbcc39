"""dcmirror's private extension: offset-preserving append and truncate of mirror partitions.

A dcmirror broker advertises two private API keys in ApiVersions (`cluster.wire.dcmirror_api`):
DcMirrorAppend (Produce v9 on the wire; batches keep the offsets they carry, and batches
the partition already holds are skipped, so a re-sent request changes nothing) and
DcMirrorTruncate (DeleteRecords v2 on the wire; cuts a mirror partition back to an offset,
as failback and `link adopt --truncate` need). Both need ClusterAction and a topic marked
as a mirror. Other clusters do not advertise them; `is_dcmirror` says which kind this is.
"""

from __future__ import annotations

import logging

from cluster.wire import codec
from cluster.wire.build import build
from cluster.wire.dcmirror_api import DCMIRROR_APPEND, DCMIRROR_TRUNCATE

from .connection import BrokerConnection
from .admin import cut_request, low_watermarks
from .core import TP, ClientCore

log = logging.getLogger(__name__)

#: the one version of each private API
_VERSION = 0


class DcMirrorMixin(ClientCore):
    async def is_dcmirror(self) -> bool:
        """A dcmirror cluster advertises the private offset-preserving append in ApiVersions."""
        conn = await self.any_connection()
        return conn.versions.supports(DCMIRROR_APPEND)

    async def append_batches(self, topic: str, partition: int, batches: bytes, *, acks: int = -1,
                             timeout_ms: int = 30000) -> None:
        """DcMirrorAppend whole batches to a mirror partition at their own offsets, on its
        leader; retried on connection loss and leader changes (a re-sent batch the
        partition already holds is skipped by the broker, so retrying is safe)."""

        async def once() -> None:
            conn = await self.connection(await self.leader(topic, partition))
            codes = await self.append_request({topic: [(partition, batches)]}, acks=acks, timeout_ms=timeout_ms,
                                              conn=conn)
            for tp, (code, message) in codes.items():
                self.check_partition(code, message, context=f"DcMirrorAppend {tp[0]}-{tp[1]}")

        await self.retrying(once, "DcMirrorAppend")

    async def append_request(self, topics: dict[str, list[tuple[int, bytes]]], *, acks: int = -1,
                             timeout_ms: int = 30000, conn: BrokerConnection | None = None,
                             ) -> dict[TP, tuple[int, str | None]]:
        """One DcMirrorAppend request on ``conn`` (default: any broker), not retried:
        {tp: (error code, message)}. For callers that route themselves, and for probes (an
        empty record set to a topic that does not exist is refused without writing anything)."""
        if conn is None:
            conn = await self.any_connection()
        body = build(codec.request_schema(DCMIRROR_APPEND, _VERSION), {
            "transactional_id": None, "acks": acks, "timeout": timeout_ms,
            "topic_data": [{"name": t, "partition_data": [{"index": p, "records": r} for p, r in parts]}
                           for t, parts in topics.items()]})
        resp = await conn.send(body, api_key=DCMIRROR_APPEND, api_version=_VERSION)
        return {(t.name, int(pr.index)): (int(pr.error_code), getattr(pr, "error_message", None))
                for t in resp.responses for pr in t.partition_responses}

    async def truncate(self, offsets: dict[TP, int], *, timeout_ms: int = 30000) -> dict[TP, int]:
        """DcMirrorTruncate: cut mirror partitions back to ``offsets`` (records at and after
        the offset are removed; at or past the log end nothing changes). Returns the new
        log ends. One request per leader, retried as a whole."""
        if not offsets:
            return {}

        async def per_broker(conn: BrokerConnection, tps: list[TP]) -> dict[TP, int]:
            body = build(codec.request_schema(DCMIRROR_TRUNCATE, _VERSION), cut_request(offsets, tps, timeout_ms))
            resp = await conn.send(body, api_key=DCMIRROR_TRUNCATE, api_version=_VERSION)
            return low_watermarks(self, resp, "DcMirrorTruncate")

        return await self.retrying(lambda: self.by_leader(list(offsets), per_broker), "DcMirrorTruncate")
