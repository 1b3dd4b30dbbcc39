"""Checkpoints fail closed and converge against real brokers (issue 11): two in-process
dcmirror brokers, real clients, and the target reached through a proxy that answers one
API itself while passing everything else.

- DescribeGroups answered with GROUP_AUTHORIZATION_FAILED (scenario c): only the
  checkpointer's own rule can keep a commit from happening — "DescribeGroups failed" must
  mean "no group is known to be empty". When DescribeGroups answers again, the next round
  commits.
- OffsetCommit refused for longer than the client's retry deadline, then clear (the
  chaos case): the idle target group converges within two checkpoint intervals, and a
  failover would re-deliver nothing (the target group's offsets are the source group's).
"""

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
OFFSET_COMMIT = 8
GROUP_AUTHORIZATION_FAILED = 30
COORDINATOR_NOT_AVAILABLE = 15


def refused_describe(body) -> dict:
    return {"groups": [{"error_code": GROUP_AUTHORIZATION_FAILED, "group_id": g, "members": []}
                       for g in body.groups]}


def refused_commit(body) -> dict:
    """Every partition COORDINATOR_NOT_AVAILABLE: retriable, so the client retries it until
    its retry deadline and then gives up."""
    return {"topics": [{"name": t.name, "partitions": [
        {"partition_index": p.partition_index, "error_code": COORDINATOR_NOT_AVAILABLE}
        for p in t.partitions]} for t in body.topics]}


class DescribeGroupsRefuser:
    """A dialer whose connections pass through a local proxy that, while `refusing`,
    answers every request of ``api_key`` itself with ``answer(request body)`` (by default
    DescribeGroups with GROUP_AUTHORIZATION_FAILED for each group)."""

    def __init__(self, api_key: int = DESCRIBE_GROUPS, answer=refused_describe) -> None:
        self.api_key, self.answer = api_key, answer
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
                    if api_key == self.api_key and self.refusing:
                        # Safe to answer out of order: clients match by correlation id.
                        req = decode_request(body)
                        resp = build(response_schema(api_key, version), self.answer(req.body))
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


async def test_a_commit_failing_past_the_retry_deadline_converges_once_the_fault_clears(brokers) -> None:
    refuser = DescribeGroupsRefuser(OFFSET_COMMIT, refused_commit)
    east = KafkaClient(brokers[0], retry_deadline_s=5)
    west = KafkaClient(brokers[1], retry_deadline_s=1, dial=refuser.dial)  # a short deadline
    await east.start()
    await west.start()
    try:
        for c in (east, west):
            await c.create_topics([NewTopic("orders", 2, -1, {})])
        for p in (0, 1):
            batch = build_batch([(None, b"v%d" % i, [], 1) for i in range(10)])
            await east.produce("orders", p, batch)
            await west.produce("orders", p, batch)  # the mirrored copy, offsets preserved
        await east.offset_commit("billing", {("orders", 0): 7, ("orders", 1): 3})
        link = LinkConfig(name="e2w", source="east", target="west", topics=["orders"], groups=["billing"])
        cp = Checkpointer("e2w", ReplicationPolicy.for_link(link, ["east", "west"]), east, west,
                          LinkProgress("e2w"), IdentityMapping(), lambda tp: 10)
        await cp.once({"orders"})  # the commit fails past the client's retry deadline (logged)
        assert refuser.refused >= 2  # retried, then given up
        assert await west.offset_fetch("billing") == {}
        refuser.refusing = False  # the fault clears; the source group never moves again
        for _ in range(2):  # within two checkpoint intervals
            await cp.once({"orders"})
        target = {tp: o for tp, (o, _) in (await west.offset_fetch("billing")).items()}
        source = {tp: o for tp, (o, _) in (await east.offset_fetch("billing")).items()}
        assert target == source == {("orders", 0): 7, ("orders", 1): 3}
        # failover: the group resumes on the target at these offsets; the records it
        # already consumed on the source are those below the source's: re-delivered 0
        assert sum(max(0, source[tp] - target[tp]) for tp in source) == 0
    finally:
        await east.close()
        await west.close()
        refuser.close()
