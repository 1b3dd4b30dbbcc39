"""`dcmirror cluster start --brokers 3`: three broker processes, real clients, a broker killed.

The first multi-broker milestone (issue 12): topics of replication factor 1 spread over the
brokers, Metadata listing every broker and each partition's leader, a request sent to the
wrong broker answered NOT_LEADER_OR_FOLLOWER, coordinators placed on the leader of the
coordinator partition, replication factors refused as the README says, and a SIGKILLed broker
restarted by the supervisor while the others keep serving their partitions.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from cluster.broker.membership import coordinator_partition
from tests.clients import (consume_kafka_python, consume_kcat, end_offsets, make_records, produce_confluent,
                           produce_kcat)
from tests.cluster.broker.rawconn import RawConn
from tests.etcd import EtcdServer
from tests.processes import MultiBrokerCluster, wait_until


@pytest.fixture(params=["sqlite", "etcd"])
def cluster3(request, tmp_path):
    """Three brokers under the supervisor, metadata in the default SQLite file or a real etcd."""
    extra = ["--broker-session-timeout-ms", "3000"]
    etcd = None
    if request.param == "etcd":
        etcd = EtcdServer(tmp_path / "etcd").start()
        extra += ["--metadata", f"{etcd.url}/east"]
    c = MultiBrokerCluster("east", tmp_path / "east", brokers=3, extra_args=extra)
    try:
        yield c.start()
    finally:
        c.stop()
        if etcd is not None:
            etcd.stop()


@pytest.mark.parametrize("args, words", [
    (["--brokers", "3", "--port", "9092", "--listener", "A=PLAINTEXT://127.0.0.1:9092"], "--listener cannot"),
    (["--brokers", "3", "--port", "9092", "--node-id", "2"], "--node-id cannot"),
    (["--brokers", "3"], "needs --port P"),
    (["--port", "9092", "--metadata", "sqlite:///x.db"], "give --brokers N > 1"),
    (["--brokers", "3", "--port", "65534"], "no room for 3"),
])
def test_cluster_start_refuses_what_n_brokers_cannot_take(tmp_path, args, words) -> None:
    from click.testing import CliRunner

    from dcmirror_cli import cli

    out = CliRunner().invoke(cli, ["cluster", "start", "--name", "c", "--data-dir", str(tmp_path), *args])
    assert out.exit_code == 2 and words in out.output, out.output


def _leaders(admin: AdminClient, topic: str) -> dict[int, int]:
    md = admin.list_topics(topic, timeout=10)
    return {p: pm.leader for p, pm in md.topics[topic].partitions.items()}


def _create(admin: AdminClient, topic: str, partitions: int, rf: int) -> None:
    admin.create_topics([NewTopic(topic, partitions, rf)])[topic].result(30)


def test_three_brokers_spread_partitions_and_clients_reroute(cluster3: MultiBrokerCluster) -> None:
    admin = AdminClient({"bootstrap.servers": cluster3.bootstrap})
    md = admin.list_topics(timeout=10)
    assert sorted(md.brokers) == [1, 2, 3]
    assert {(b.host, b.port) for b in md.brokers.values()} == {("127.0.0.1", p) for p in cluster3.ports}
    _create(admin, "orders", 6, 1)
    leaders = _leaders(admin, "orders")
    assert sorted(leaders.values()) == [1, 1, 2, 2, 3, 3]  # Kafka's round-robin placement
    with pytest.raises(KafkaException, match="INVALID_REPLICATION_FACTOR"):
        _create(admin, "too-many", 1, 4)
    with pytest.raises(KafkaException, match="replication is not built yet"):
        _create(admin, "replicated", 1, 2)

    records = make_records("mb", 300)
    produce_confluent(cluster3.bootstrap, "orders", records, "lz4")  # routes by Metadata
    produce_kcat(f"127.0.0.1:{cluster3.ports[1]}", "orders", records[:60], "none")
    end = end_offsets(cluster3.bootstrap, "orders", 6)
    assert sum(end.values()) == 360 and all(end.values())  # every broker holds some
    got = consume_kafka_python(f"127.0.0.1:{cluster3.ports[2]}", "orders", 6, end)
    assert len(got) == 360
    assert sorted((c.key, c.value) for c in got) == sorted((k, v) for k, v, _ in records + records[:60])
    assert len(consume_kcat(cluster3.bootstrap, "orders", 6, end)) == 360

    async def wrong_broker() -> None:
        p = next(p for p, leader in leaders.items() if leader == 1)
        conn = await RawConn.open(cluster3.ports[1])  # broker 2 does not lead p
        reply = await conn.call(2, 7, {"replica_id": -1, "isolation_level": 0, "topics": [
            {"name": "orders", "partitions": [{"partition_index": p, "current_leader_epoch": -1,
                                                "timestamp": -1}]}]})
        assert reply.topics[0].partitions[0].error_code == 6  # NOT_LEADER_OR_FOLLOWER
        reply = await conn.call(10, 3, {"key": "g1", "key_type": 0})
        assert reply.error_code == 0
        conn.writer.close()
        offsets = _leaders(admin, "__consumer_offsets")
        assert reply.node_id == offsets[coordinator_partition("g1", 50)]
        assert reply.port == cluster3.ports[reply.node_id - 1]

    asyncio.run(wrong_broker())


def test_killed_broker_leaves_the_others_serving_and_is_restarted(cluster3: MultiBrokerCluster) -> None:
    admin = AdminClient({"bootstrap.servers": cluster3.bootstrap})
    _create(admin, "events", 3, 1)
    leaders = _leaders(admin, "events")
    victim = leaders[0]
    others = [p for p, leader in leaders.items() if leader != victim]
    old_pid = cluster3.broker_pid(victim)
    os.kill(old_pid, signal.SIGKILL)

    producer = Producer({"bootstrap.servers": cluster3.bootstrap, "message.timeout.ms": 20000})
    delivered: list = []
    for p in others:  # the survivors' partitions keep taking writes while the victim is down
        for i in range(20):
            producer.produce("events", value=f"{p}-{i}".encode(), partition=p,
                             on_delivery=lambda err, msg: delivered.append(err))
    assert producer.flush(30) == 0 and delivered == [None] * 20 * len(others)

    wait_until(lambda: cluster3.broker_pid(victim) != old_pid, 30, what="supervisor restarts the broker")
    wait_until(lambda: f"broker {victim} restarted" in cluster3.log_text(), 60, what="restarted broker serving")
    # the restarted broker leads its partition again (a new leader epoch) and takes writes
    late: list = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and late[-1:] != [None]:
        producer.produce("events", value=b"after", partition=0, on_delivery=lambda err, msg: late.append(err))
        producer.flush(20)
    assert late[-1] is None, late
    end = end_offsets(cluster3.bootstrap, "events", 3)
    assert [end[p] for p in others] == [20] * len(others)
    md = admin.list_topics("events", timeout=10)
    assert sorted(md.brokers) == [1, 2, 3]


def test_killing_the_controller_hands_control_to_another_broker(cluster3: MultiBrokerCluster) -> None:
    """SIGKILL the broker holding the controller lease: once the lease expires a broker
    takes over with controller epoch 2 (another one, or the killed one restarted by the
    supervisor, whichever campaigns first), and topics can be created again."""
    admin = AdminClient({"bootstrap.servers": cluster3.bootstrap})
    controller = admin.describe_cluster(request_timeout=10).result().controller.id
    assert "(controller epoch 1)" in cluster3.log_text()
    os.kill(cluster3.broker_pid(controller), signal.SIGKILL)
    wait_until(lambda: "(controller epoch 2)" in cluster3.log_text(), 60, what="a new controller")
    successor = wait_until(lambda: admin.describe_cluster(request_timeout=5).result().controller.id, 30,
                           what="DescribeCluster names the controller")
    assert successor in (1, 2, 3)
    _create(admin, "after-takeover", 3, 1)
    assert len(_leaders(admin, "after-takeover")) == 3


def test_sigterm_is_a_controlled_shutdown(cluster3: MultiBrokerCluster) -> None:
    """A broker stopped with SIGTERM tells the controller first (fenced at once, its
    leaderships moved; with replication factor 1 its partition waits offline), and leads
    its partition again once the supervisor has restarted it."""
    admin = AdminClient({"bootstrap.servers": cluster3.bootstrap})
    _create(admin, "calm", 3, 1)
    victim = _leaders(admin, "calm")[0]
    old_pid = cluster3.broker_pid(victim)
    os.kill(old_pid, signal.SIGTERM)
    wait_until(lambda: f"broker {victim} shut down in a controlled way" in cluster3.log_text(), 30,
               what="controlled shutdown")
    wait_until(lambda: cluster3.broker_pid(victim) != old_pid, 30, what="supervisor restarts the broker")
    wait_until(lambda: _leaders(admin, "calm")[0] == victim, 60, what="the broker leads its partition again")


def test_a_killed_supervisor_leaves_no_orphaned_brokers(tmp_path) -> None:
    c = MultiBrokerCluster("orphans", tmp_path / "o", brokers=2).start()
    pids = [c.broker_pid(n) for n in (1, 2)]
    c.kill9()  # the supervisor itself
    for pid in pids:
        wait_until(lambda: not os.path.exists(f"/proc/{pid}") or "zombie" in
                   open(f"/proc/{pid}/status").read().lower(), 30, what=f"broker {pid} gone")
