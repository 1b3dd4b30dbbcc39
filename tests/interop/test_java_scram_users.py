"""Kafka's own `kafka-configs` (4.3.1) manages SCRAM users of a dcmirror cluster over SASL:
the first admin added with `dcmirror cluster users add`, then --alter --add-config
'SCRAM-SHA-256=[password=...]', --describe, --delete-config, through
AlterUserScramCredentials (51) and DescribeUserScramCredentials (50); the new user logs in.

Relies on a super user: the SASL listener makes ACLs apply, and the admin is started as
`--super-users User:admin` (51 needs Alter, 50 Describe and 48 DescribeConfigs on the cluster)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from peers.kafka_broker import kafka_tool
from tests.interop.conftest import require_kafka
from tests.processes import ListenerClusterProcess

pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]

CONFIGS = "kafka.admin.ConfigCommand"
ADMIN_PW = "Adm1n-pw-c0ffee"
ALICE_PW = "Al1ce-pw-beef01"


def test_kafka_configs_manages_scram_users(tmp_path) -> None:
    require_kafka()
    data = tmp_path / "d"
    res = subprocess.run([sys.executable, "-m", "dcmirror_cli", "cluster", "users", "add", "--data-dir", str(data),
                          "--user", "admin", "--mechanism", "SCRAM-SHA-512", "--password-env", "PW"],
                         env={**os.environ, "PW": ADMIN_PW}, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    c = ListenerClusterProcess("scram", data, {"SASL": "SASL_PLAINTEXT"},
                               extra_args=["--super-users", "User:admin"]).start()
    props = tmp_path / "admin.properties"
    props.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n"
                     "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
                     f'username="admin" password="{ADMIN_PW}";\n')
    try:
        def configs(*args: str) -> str:
            r = kafka_tool(CONFIGS, "--bootstrap-server", c.bootstrap("SASL"), "--command-config", str(props), *args)
            assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr[-3000:]}"
            return r.stdout

        out = configs("--alter", "--add-config", f"SCRAM-SHA-256=[iterations=4096,password={ALICE_PW}]",
                      "--entity-type", "users", "--entity-name", "alice")
        assert "Completed updating config for user alice" in out
        out = configs("--describe", "--entity-type", "users", "--entity-name", "alice")
        assert "SCRAM-SHA-256=iterations=4096" in out, out
        from confluent_kafka.admin import AdminClient

        md = AdminClient({"bootstrap.servers": c.bootstrap("SASL"), "security.protocol": "SASL_PLAINTEXT",
                          "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "alice",
                          "sasl.password": ALICE_PW}).list_topics(timeout=15)
        assert md.cluster_id
        configs("--alter", "--delete-config", "SCRAM-SHA-256", "--entity-type", "users", "--entity-name", "alice")
        out = configs("--describe", "--entity-type", "users", "--entity-name", "alice")
        assert "SCRAM-SHA-256" not in out, out
    finally:
        c.stop()
    assert ADMIN_PW not in c.log_text() and ALICE_PW not in c.log_text()
