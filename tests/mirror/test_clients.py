"""Every ``client:`` key reaches the KafkaClient that the mirror, status and failover build."""

from __future__ import annotations

from pathlib import Path

from mirror import failover_ops, link, status
from mirror.clients import client_for_cluster
from mirror.config import parse_config

YAML = """\
clusters:
  east:
    bootstrap: 127.0.0.1:1
  west:
    bootstrap: 127.0.0.1:2
    client: {client_id: dr-mirror, request_timeout_s: 7, connect_timeout_s: 2.5, metadata_max_age_s: 9}
"""


def test_client_block_reaches_every_client(tmp_path: Path) -> None:
    cfg = parse_config(YAML, tmp_path / "c.yaml")
    west = cfg.clusters["west"]
    for client in (client_for_cluster(west, "x"), link.make_client(cfg, "west", "l", link.default_dial),
                   failover_ops.client_for(cfg, "west")):
        assert client.client_id == "dr-mirror"
        assert client.request_timeout_s == 7.0
        assert client.connect_timeout_s == 2.5
        assert client.metadata_max_age_s == 9.0
    assert status._client(cfg, "west").request_timeout_s == 7.0  # status caps at 10 s
    east = client_for_cluster(cfg.clusters["east"], "l1")
    assert east.client_id == "dcmirror-l1" and east.request_timeout_s == 30.0
    assert east.connect_timeout_s == 10.0 and east.metadata_max_age_s == 60.0
