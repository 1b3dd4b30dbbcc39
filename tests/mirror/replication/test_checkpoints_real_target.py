"""Checkpoints fail closed against real brokers (issue 11, scenario c): two in-process
dcmirror brokers, real clients, and the target reached through a proxy that answers
DescribeGroups itself with GROUP_AUTHORIZATION_FAILED while passing everything else
(OffsetFetch and OffsetCommit work). So only the checkpointer's own rule can keep a
commit from happening: "DescribeGroups failed" must mean "no group is known to be empty".
When the proxy lets DescribeGroups through again, the next round commits."""

from __future__ import annotations

import asyncio
import struct


from cluster.client.admin import NewTopic
from cluster.client.client import KafkaClient
from cluster.client.dial import default_dial
from cluster.wire.batch_builder import build_batch
from cluster.wire.build import build
from cluster.wire.codec import decode_request, encode_response, response_schema
from cluster.wire.framing import frame
from mirror.config.model import LinkConfig
from mirror.config.policy import ReplicationPolicy
from mirror.replication.checkpoints import Checkpointer
from mirror.replication.mode import IdentityMapping
from mirror.replication.progress import LinkProgress

DESCRIBE_GROUPS = 15
GROUP_AUTHORIZATION_FAILED = 30


class DescribeGroupsRefuser:
    """A dialer whose connections pass through a local proxy that, while `refusing`,
    answers every DescribeGroups request with GROUP_AUTHORIZATION_FAILED for each group."""

    def __init__(self) -> None:
        self.refusing = True
        self.refused = 0
        self._servers: list[asyncio.base_events.Server] = []

    async def dial(self, host: str, port: int):
        async def serve(creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
            ureader, uwriter = await default_dial(host, port)
            lock = asyncio.Lock()  # one writer to the client at a time

            async def upstream_to_client() -> None:
                while True:
                    size = await ureader.readexactly(4)
                    body = await ureader.readexactly(struct.unpack(">i", size)[0])
                    async with lock:
                        cwriter.write(size + body)

            back = asyncio.create_task(upstream_to_client())
            try:
                while True:
                    size = await creader.readexactly(4)
                    body = await creader.readexactly(struct.unpack(">i", size)[0])
                    api_key, version = struct.unpack_from(">hh", body)
                    if api_key == DESCRIBE_GROUPS and self.refusing:
                        # Safe to answer out of order: clients match by correlation id.
                        req = decode_request(body)
                        resp = build(response_schema(api_key, version), {"groups": [
                            {"error_code": GROUP_AUTHORIZATION_FAILED, "group_id": g, "members": []}
                            for g in req.body.groups]})
                        self.refused += 1
                        async with lock:
                            cwriter.write(frame(encode_response(req.header.correlation_id, resp)))
                        continue
                    uwriter.write(size + body)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                back.cancel()
                uwriter.close()
                cwriter.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self._servers.append(server)
        return await default_dial("127.0.0.1", server.sockets[0].getsockname()[1])

    def close(self) -> None:
        for s in self._servers:
            s.close()


async def test_describe_groups_refused_by_a_real_target_commits_nothing_until_it_answers(brokers) -> None:
    refuser = DescribeGroupsRefuser()
    east = KafkaClient(brokers[0], retry_deadline_s=5)
    west = KafkaClient(brokers[1], retry_deadline_s=5, dial=refuser.dial)
    await east.start()
    await west.start()
    try:
        for c in (east, west):
            await c.create_topics([NewTopic("orders", 2, -1, {})])
        for p in (0, 1):
            await east.produce("orders", p, build_batch([(None, b"v%d" % i, [], 1) for i in range(10)]))
        await east.offset_commit("billing", {("orders", 0): 7, ("orders", 1): 3})
        link = LinkConfig(name="e2w", source="east", target="west", topics=["orders"], groups=["billing"])
        cp = Checkpointer("e2w", ReplicationPolicy.for_link(link, ["east", "west"]), east, west,
                          LinkProgress("e2w"), IdentityMapping(), lambda tp: 10)

        results = await cp.once({"orders"})
        assert refuser.refused >= 1  # the target was asked, and refused
        assert [r.skipped_unknown for r in results] == [True]
        assert await west.offset_fetch("billing") == {}  # nothing committed, though it could be
        refuser.refusing = False
        await cp.once({"orders"})
        assert {tp: o for tp, (o, _) in (await west.offset_fetch("billing")).items()} == \
            {("orders", 0): 7, ("orders", 1): 3}
    finally:
        await east.close()
        await west.close()
        refuser.close()
