"""group.initial.rebalance.delay.ms on a running broker: Kafka's default (3 s) holds an
empty classic group's first JoinGroup answer, and `dcmirror cluster start` takes the
setting (test clusters start with 0, tests/processes.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner
from kio.schema.errors import ErrorCode

from cluster.broker.config import BrokerConfig
from cluster.broker.server import Broker
from cluster.cli import cluster_group
from tests.cluster.broker.rawconn import RawConn, until


def join_body(member_id: str) -> dict:
    return {"group_id": "g", "session_timeout": 10_000, "rebalance_timeout": 30_000,
            "member_id": member_id, "group_instance_id": None, "protocol_type": "consumer",
            "protocols": [{"name": "range", "metadata": b""}]}


async def test_default_delay_holds_the_first_join(tmp_path: Path) -> None:
    config = BrokerConfig(name="d", data_dir=tmp_path / "b", port=0)
    assert config.group_initial_rebalance_delay_ms == 3000
    broker = Broker(config)
    await broker.start()
    try:
        conn = await RawConn.open(broker.config.port)
        first = await conn.call(11, 5, join_body(""))
        assert first.error_code == ErrorCode.member_id_required
        join = asyncio.ensure_future(conn.call(11, 5, join_body(first.member_id)))
        await until(lambda: "g" in broker.groups.groups
                    and broker.groups.groups["g"].initial_delay_until_ms is not None)
        assert not join.done()  # everyone joined, but the delay holds the answer
        resp = await join
        assert (resp.error_code, resp.generation_id, resp.leader) == (0, 1, first.member_id)
        conn.close()
    finally:
        await broker.stop()


def test_cli_refuses_a_negative_delay(tmp_path: Path) -> None:
    res = CliRunner().invoke(cluster_group, ["start", "--name", "x", "--port", "0", "--data-dir",
                                            str(tmp_path), "--group-initial-rebalance-delay-ms", "-1"])
    assert res.exit_code == 2 and "group-initial-rebalance-delay-ms" in res.output
