"""Apache Kafka's Java consumer (4.3.1) with `group.protocol=consumer` (KIP-848) against our broker.

Three console consumers share a 6-partition topic through ConsumerGroupHeartbeat; one is
killed with SIGKILL, its session (set short with --group-consumer-session-timeout-ms)
runs out, the broker's assignor hands its partitions to the other two, and records
produced afterwards to every partition all reach the survivors. `kafka-consumer-groups
--describe` shows the group with its members, epochs and assignments throughout.
"""
from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import pytest

from cluster.client import KafkaClient
from peers.kafka_broker import CONSOLE_CONSUMER, CONSUMER_GROUPS, TOPICS, java_cmd, kafka_tool
from tests import clients
from tests.interop.conftest import require_kafka
from tests.processes import ClusterProcess, wait_until

pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]
GROUP, TOPIC, PARTITIONS = "g848", "k848", 6


def _describe(bootstrap: str) -> dict:
    async def run() -> dict:
        async with KafkaClient(bootstrap) as client:
            conn = await client.any_connection()
            resp = await conn.send(conn.build(69, {"group_ids": [GROUP], "include_authorized_operations": False}))
            g = resp.groups[0]
            return {"state": g.group_state, "epoch": g.group_epoch,
                    "members": {m.member_id: sorted(p for t in m.assignment.topic_partitions for p in t.partitions)
                                for m in g.members}}

    return asyncio.run(run())


def _settled(bootstrap: str, members: int) -> bool:
    d = _describe(bootstrap)
    return (d["state"] == "Stable" and len(d["members"]) == members
            and sorted(p for ps in d["members"].values() for p in ps) == list(range(PARTITIONS)))


def _values(path: Path) -> set[str]:
    return {line.rsplit("\t", 1)[-1] for line in path.read_text().splitlines() if "\t" in line}


def test_three_java_consumers_one_killed_the_rest_take_over(cluster_factory, tmp_path: Path) -> None:
    require_kafka()
    cluster: ClusterProcess = cluster_factory("east", "--group-consumer-session-timeout-ms", "6000",
                                              "--group-consumer-heartbeat-interval-ms", "500")
    bs = cluster.bootstrap
    assert kafka_tool(TOPICS, "--bootstrap-server", bs, "--create", "--topic", TOPIC,
                      "--partitions", str(PARTITIONS)).returncode == 0
    procs: list[subprocess.Popen] = []
    outs = [tmp_path / f"c{i}.out" for i in range(3)]
    try:
        for out in outs:
            procs.append(subprocess.Popen(
                java_cmd(CONSOLE_CONSUMER, "--bootstrap-server", bs, "--topic", TOPIC, "--group", GROUP,
                         "--command-property", "group.protocol=consumer", *clients.CONSOLE_PRINT),
                stdout=out.open("w"), stderr=subprocess.DEVNULL))
        wait_until(lambda: _settled(bs, 3), timeout=120, what="3 members sharing 6 partitions")
        assert sorted(len(ps) for ps in _describe(bs)["members"].values()) == [2, 2, 2]
        members = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", bs, "--describe", "--group", GROUP,
                             "--members")
        assert members.returncode == 0, members.stderr[-2000:]
        assert len(re.findall(rf"^{GROUP}\s+\S+", members.stdout, re.M)) == 3, members.stdout

        epoch = _describe(bs)["epoch"]
        procs[0].kill()
        procs[0].wait()
        wait_until(lambda: _settled(bs, 2), timeout=60, what="2 survivors sharing 6 partitions")
        assert _describe(bs)["epoch"] > epoch
        assert sorted(len(ps) for ps in _describe(bs)["members"].values()) == [3, 3]

        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": bs})
        sent = {f"after-{i}" for i in range(60)}
        for i in range(60):
            producer.produce(TOPIC, value=f"after-{i}".encode(), partition=i % PARTITIONS)
        assert producer.flush(30) == 0
        wait_until(lambda: sent <= _values(outs[1]) | _values(outs[2]), timeout=60,
                   what="every record produced after the kill reaching a survivor")
        state = kafka_tool(CONSUMER_GROUPS, "--bootstrap-server", bs, "--describe", "--group", GROUP,
                           "--state")
        assert re.search(rf"^{GROUP}\s+\S+\s+\(1\)\s+uniform\s+Stable\s+2\s*$", state.stdout, re.M), \
            state.stdout
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
