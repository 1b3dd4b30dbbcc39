"""Writing many partitions' batches at once: pipelined rounds of requests by leader.

The mirror's write path. A round is {partition: batch buffers}; each round becomes one
request per target leader, and all rounds are written at once, in round order, on each
leader's connection (a broker answers one connection's requests in order, so round k+1
is appended after round k without waiting for its reply). Rounds exist because Kafka
accepts only one compressed batch per partition in a Produce request.

Requests at Produce v9 (always, for DcMirrorAppend) are encoded by hand around the batch
buffers (`cluster.wire.produce_request`), so large batches are written with writelines
and never copied into one request buffer; older Produce versions go through kio.
Nothing is retried here: a partition's error comes back in its reply for the caller to
judge (the mirror knows whether a re-send is safe), a lost connection raises.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cluster.wire import codec
from cluster.wire.build import build
from cluster.wire.dcmirror_api import DCMIRROR_APPEND
from cluster.wire.produce_request import Buffer, produce_v9_parts

from .connection import BrokerConnection
from .core import TP, ClientCore

log = logging.getLogger(__name__)

PRODUCE = 0
__all__ = ["Buffer", "PipelineMixin", "Replies"]  # Buffer: what a round's batches may be

#: {tp: (error code, base offset, error message)}
Replies = dict[TP, tuple[int, int, str | None]]
_ByTopic = dict[str, list[tuple[int, list[Buffer]]]]


class PipelineMixin(ClientCore):
    async def produce_rounds(self, rounds: list[dict[TP, list[Buffer]]]) -> list[Replies]:
        """Produce (acks=all) each round's batches by leader, pipelined; the replies per round."""
        return await self._send_rounds(rounds, None)

    async def append_rounds(self, rounds: list[dict[TP, list[Buffer]]]) -> list[Replies]:
        """`produce_rounds` through DcMirrorAppend: batches keep their offsets (dcmirror
        clusters only; see `cluster.client.dcmirror`)."""
        return await self._send_rounds(rounds, DCMIRROR_APPEND)

    async def _send_rounds(self, rounds: list[dict[TP, list[Buffer]]], api_key: int | None) -> list[Replies]:
        leaders: dict[TP, int] = {}
        for requests in rounds:
            for tp in requests:
                if tp not in leaders:
                    leaders[tp] = await self.leader(*tp)
        conns = {node: await self.connection(node) for node in set(leaders.values())}
        tasks = []
        for requests in rounds:
            by_node: dict[int, _ByTopic] = {}
            for (topic, p), batches in requests.items():
                by_node.setdefault(leaders[(topic, p)], {}).setdefault(topic, []).append((p, batches))
            # Created in order, each task writes its request before its first await.
            tasks.append([asyncio.ensure_future(_send_one(conns[node], topics, api_key))
                          for node, topics in by_node.items()])
        out: list[Replies] = []
        try:
            for round_tasks in tasks:
                results: Replies = {}
                for resp in await asyncio.gather(*round_tasks):
                    for t in resp.responses:
                        for pr in t.partition_responses:
                            results[(t.name, pr.index)] = (
                                int(pr.error_code), int(pr.base_offset), getattr(pr, "error_message", None))
                out.append(results)
        finally:
            for round_tasks in tasks:
                for t in round_tasks:
                    if not t.done():
                        t.cancel()
        return out


async def _send_one(conn: BrokerConnection, topics: _ByTopic, api_key: int | None) -> Any:
    version = 0 if api_key is not None else conn.version_for(PRODUCE, 9)
    key = PRODUCE if api_key is None else api_key
    if api_key is not None or version == 9:
        items = list(topics.items())
        raw = await conn.roundtrip_parts(
            lambda cid: produce_v9_parts(cid, conn.client_id, items, api_key=key, api_version=version),
            "Produce")
        return codec.decode_response(raw, codec.response_schema(key, version))[1]
    body = build(codec.request_schema(PRODUCE, version), {
        "transactional_id": None, "acks": -1, "timeout": 30000,
        "topic_data": [{"name": t, "partition_data": [{"index": p, "records": b"".join(bs)} for p, bs in ps]}
                       for t, ps in topics.items()],
    })
    return await conn.send(body)
