"""What the principal may do (cluster/client/authz.py) on an open cluster: the KIP-430
answers and the harmless probes return the broker's codes and write nothing. Denials are
covered end to end by tests/mirror/preflight/test_check_acls.py (ACL-enforcing clusters)."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.client import KafkaClient, NewTopic

DENIED = {int(ErrorCode.topic_authorization_failed), int(ErrorCode.group_authorization_failed),
          int(ErrorCode.cluster_authorization_failed)}
UNKNOWN = int(ErrorCode.unknown_topic_or_partition)


async def test_topic_operations_and_probes_on_an_open_broker(broker) -> None:
    async with KafkaClient(f"127.0.0.1:{broker.config.port}") as c:
        await c.create_topics([NewTopic("t", 1)])
        got = await c.topic_authorized_operations(["t", "nope"])
        assert got["t"][0] == 0 and got["t"][1] is not None and got["t"][1] > 0  # KIP-430 bits
        assert got["nope"][0] == UNKNOWN
        assert "nope" not in await c.list_topics()  # the lookup created nothing
        assert await c.probe_describe_configs(["t", "nope"]) == {"t": 0, "nope": UNKNOWN}
        assert await c.probe_fetch(["t", "nope"]) == {"t": 0, "nope": UNKNOWN}
        written = await c.probe_produce(["t", "nope"])
        assert written["nope"] == UNKNOWN and written["t"] not in DENIED | {0}  # refused, not denied
        assert await c.end_offsets([("t", 0)]) == {("t", 0): 0}  # nothing written


async def test_group_and_cluster_operations_commit_nothing(broker) -> None:
    async with KafkaClient(f"127.0.0.1:{broker.config.port}") as c:
        codes = await c.probe_offset_commit("g-probe", "nope")
        assert codes and not set(codes) & DENIED
        assert await c.offset_fetch("g-probe") == {}
        code, _state, operations = await c.group_authorized_operations("g-probe")
        assert code in (0, int(ErrorCode.group_id_not_found)) and operations is not None
        code, operations = await c.cluster_authorized_operations()
        assert code == 0 and operations is not None and operations > 0
        codes = await c.append_request({"nope": [(0, b"")]}, acks=1, timeout_ms=5000)
        assert codes[("nope", 0)][0] == UNKNOWN  # ClusterAction granted: only the topic is missing


async def test_probes_answer_on_the_test_target(target, name: str) -> None:
    async with KafkaClient(target.bootstrap, request_timeout_s=15, retry_deadline_s=5) as c:
        await c.create_topics([NewTopic(name, 1)])
        assert (await c.topic_authorized_operations([name]))[name][0] == 0
        assert not set((await c.probe_fetch([name])).values()) & DENIED
        assert not set((await c.probe_produce([name])).values()) & DENIED
        assert (await c.end_offsets([(name, 0)]))[(name, 0)] == 0
