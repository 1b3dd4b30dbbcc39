"""Apache Kafka's console producer and consumer (4.3.1) against a dcmirror cluster whose only
listener is SASL_SSL, configured the way an operator would: a client.properties with
security.protocol, sasl.mechanism SCRAM-SHA-512, sasl.jaas.config and the CA as a PEM
truststore (`ssl.truststore.type=PEM`, no keystore tool needed). Keyed records with
headers round-trip through a consumer group; the same file with a wrong password is
refused with Kafka's authentication error, and no password reaches the broker's log."""

from __future__ import annotations

from pathlib import Path

import pytest

from peers.kafka_broker import CONSOLE_CONSUMER, CONSOLE_PRODUCER, TOPICS, kafka_tool
from tests.clients import CONSOLE_PRINT, parse_console_line
from tests.interop.conftest import require_kafka
from tests.secure_link import ADMIN, ADMIN_PASSWORD, SecureDcmirror, committed, ends

pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]
WRONG = "Wr0ng-java-pw-123"


def client_properties(path: Path, ca: Path, user: str, password: str) -> Path:
    path.write_text("security.protocol=SASL_SSL\n"
                    "sasl.mechanism=SCRAM-SHA-512\n"
                    "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
                    f'username="{user}" password="{password}";\n'
                    "ssl.truststore.type=PEM\n"
                    f"ssl.truststore.location={ca}\n")
    return path


def ok(res) -> str:
    assert res.returncode == 0, f"exit {res.returncode}\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
    return res.stdout


def test_console_producer_and_consumer_over_sasl_ssl(tmp_path: Path) -> None:
    require_kafka()
    dc = SecureDcmirror(tmp_path).start()
    try:
        props = client_properties(tmp_path / "client.properties", dc.pki.ca, ADMIN, ADMIN_PASSWORD)
        boot = ["--bootstrap-server", dc.bootstrap]
        ok(kafka_tool(TOPICS, *boot, "--command-config", str(props), "--create", "--topic", "java-tls",
                      "--partitions", "3"))
        lines = [f"n:{i},src:java\tk{i % 7}:value-{i}\n" for i in range(60)]
        res = kafka_tool(CONSOLE_PRODUCER, *boot, "--command-config", str(props), "--topic", "java-tls",
                         "--compression-codec", "lz4", "--reader-property", "parse.key=true",
                         "--reader-property", "key.separator=:", "--reader-property", "parse.headers=true",
                         input="".join(lines))
        assert res.returncode == 0 and "ERROR" not in res.stderr, res.stderr[-3000:]
        assert sum(ends(dc.admin(), "java-tls", 3).values()) == 60

        out = ok(kafka_tool(CONSOLE_CONSUMER, *boot, "--command-config", str(props), "--topic", "java-tls",
                            "--group", "java-readers", "--from-beginning", "--max-messages", "60",
                            "--timeout-ms", "60000", *CONSOLE_PRINT))
        got = [parse_console_line(line) for line in out.splitlines() if line]
        assert sorted(c.value for c in got) == sorted(f"value-{i}".encode() for i in range(60))
        by_value = {c.value: c for c in got}
        for i in (0, 31, 59):
            c = by_value[f"value-{i}".encode()]
            assert c.key == f"k{i % 7}".encode() and c.headers == (("n", str(i).encode()), ("src", b"java"))
        assert sum(committed(dc.admin(), "java-tls", "java-readers", 3).values()) == 60  # the group committed

        bad = client_properties(tmp_path / "wrong.properties", dc.pki.ca, ADMIN, WRONG)
        refused = kafka_tool(TOPICS, *boot, "--command-config", str(bad), "--list")
        assert refused.returncode != 0
        assert "SaslAuthenticationException" in refused.stderr + refused.stdout, refused.stderr[-3000:]
    finally:
        dc.stop()
    log = dc.log_text()
    assert "authenticated as User:admin with SCRAM-SHA-512 on listener SECURE" in log
    assert ADMIN_PASSWORD not in log and WRONG not in log
