"""Every ``client:`` key reaches the KafkaClient that the mirror, status and failover build."""

from __future__ import annotations

from pathlib import Path

from mirror.incident import failover_ops

from mirror.replication import link

from mirror.incident import status
from mirror.config.clients import client_for_cluster
from mirror.config.model import parse_config

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


def test_security_settings_reach_every_client(tmp_path: Path, caplog) -> None:
    from peers.certs import make_pki

    make_pki(tmp_path / "pki")
    text = YAML.replace(
        "    client: {client_id: dr-mirror,",
        "    client: {security_protocol: SASL_SSL, sasl_mechanism: SCRAM-SHA-256, sasl_username: mirror,"
        " sasl_password: '${env:PW}', ssl_cafile: pki/ca.pem, ssl_check_hostname: false, client_id: dr-mirror,")
    cfg = parse_config(text, tmp_path / "c.yaml", env={"PW": "hunter2-x"})
    with caplog.at_level("WARNING"):
        clients = [client_for_cluster(cfg.clusters["west"], "x"), failover_ops.client_for(cfg, "west"),
                   status._client(cfg, "west")]
    for c in clients:
        assert c.security.protocol == "SASL_SSL"
        assert c.security.sasl is not None and c.security.sasl.password == "hunter2-x"
        assert c.security.tls is not None and c.security.tls.check_hostname is False
        assert c.security.tls.minimum_version.name == "TLSv1_2"
    warnings = [r for r in caplog.records if "ssl_check_hostname is false" in r.getMessage()]
    assert len(warnings) == 1  # once, however many clients
    assert "hunter2-x" not in caplog.text
    assert client_for_cluster(cfg.clusters["east"], "x").security.protocol == "PLAINTEXT"
