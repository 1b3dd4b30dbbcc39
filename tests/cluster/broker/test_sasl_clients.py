"""Real clients against a `dcmirror cluster start` with a SASL listener:
{confluent-kafka, kafka-python, aiokafka} x {SASL_PLAINTEXT, SASL_SSL} x {PLAIN (allowed explicitly
over SASL_PLAINTEXT), SCRAM-SHA-256, SCRAM-SHA-512} x {right password, wrong password, unknown user}. Right works; wrong and
unknown fail with the broker's one sentence. kafka-python re-authenticates under a short
connections.max.reauth.ms (KIP-368). The password appears 0 times in the broker's log.

Relies on neither ACLs nor super users: a client that logged in only lists the (no) topics,
which needs no ACL; the SASL listener makes the broker deny anything more by default."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cluster.auth.sasl_server import PLAIN_FAILED, scram_failed
from tests.processes import ListenerClusterProcess, wait_until

PASSWORD = "Cl1ent-pw-9b2e77"
WRONG = "Wr0ng-pw-41aa"
MECHS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
CASES = {"right": ("alice", PASSWORD), "wrong": ("alice", WRONG), "unknown": ("mallory", PASSWORD)}


def _add_user(data_dir: Path, user: str, password: str) -> None:
    res = subprocess.run([sys.executable, "-m", "dcmirror_cli", "cluster", "users", "add", "--data-dir",
                          str(data_dir), "--user", user, "--password-env", "PW"],
                         env={**os.environ, "PW": password}, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


@pytest.fixture(scope="module", params=["SASL_PLAINTEXT", "SASL_SSL"])
def sasl_cluster(request, tmp_path_factory):
    """A cluster with one listener of the param's protocol; `c.protocol`, `c.cafile` for clients.
    PLAIN needs the explicit allowance only over SASL_PLAINTEXT."""
    protocol = request.param
    base = tmp_path_factory.mktemp("sasl")
    _add_user(base / "d", "alice", PASSWORD)  # before the first start: the bootstrap path
    extra = ["--sasl-mechanisms", ",".join(MECHS), "--connection-failed-authentication-delay-ms", "20"]
    cafile = None
    if protocol == "SASL_SSL":
        from peers.certs import make_pki

        pki = make_pki(base / "pki")
        extra += ["--ssl-certfile", str(pki.server_cert), "--ssl-keyfile", str(pki.server_key)]
        cafile = str(pki.ca)
    else:
        extra.append("--sasl-plain-over-plaintext")
    c = ListenerClusterProcess("sasl", base / "d", {"SASL": protocol}, extra_args=extra).start()
    c.protocol, c.cafile = protocol, cafile  # type: ignore[attr-defined]
    yield c
    c.stop()
    text = c.log_text()
    assert PASSWORD not in text and WRONG not in text
    assert "Traceback" not in text


def confluent(bootstrap: str, mech: str, user: str, password: str, protocol: str = "SASL_PLAINTEXT",
              cafile: str | None = None) -> str | None:
    from confluent_kafka.admin import AdminClient

    errors: list[str] = []
    tls = {"ssl.ca.location": cafile} if cafile else {}
    admin = AdminClient({"bootstrap.servers": bootstrap, "security.protocol": protocol, **tls,
                         "sasl.mechanism": mech, "sasl.username": user, "sasl.password": password,
                         "error_cb": lambda e: errors.append(e.str())})
    # Short metadata attempts with the error callback served in between: a failed login
    # is reported as soon as librdkafka has it, not after one long list_topics timeout.
    deadline = time.monotonic() + 20
    while True:
        try:
            md = admin.list_topics(timeout=1)
            return None if md.cluster_id else "no metadata"
        except Exception as exc:  # noqa: BLE001 - the client's own error is what we compare
            admin.poll(0.2)
            if errors or time.monotonic() > deadline:
                return " | ".join(errors) or str(exc)


def kafka_python(bootstrap: str, mech: str, user: str, password: str, protocol: str = "SASL_PLAINTEXT",
                 cafile: str | None = None) -> str | None:
    import logging

    from kafka import KafkaAdminClient

    seen: list[str] = []  # kafka-python retries the bootstrap and logs the broker's error

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    keep = Keep()
    logging.getLogger("kafka").addHandler(keep)
    try:
        tls = {"ssl_cafile": cafile} if cafile else {}
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, security_protocol=protocol, **tls,
                                 sasl_mechanism=mech, sasl_plain_username=user, sasl_plain_password=password,
                                 request_timeout_ms=5000, bootstrap_timeout_ms=5000)
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc} | " + " | ".join(
            m for m in seen if "SaslAuthentication" in m or "socket disconnected" in m)
    finally:
        logging.getLogger("kafka").removeHandler(keep)
    try:
        admin.list_topics()
        return None
    finally:
        admin.close()


def aiokafka(bootstrap: str, mech: str, user: str, password: str, protocol: str = "SASL_PLAINTEXT",
             cafile: str | None = None) -> str | None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.helpers import create_ssl_context

    import logging

    seen: list[str] = []  # aiokafka logs the broker's error and raises "Unable to bootstrap"

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    async def run() -> str | None:
        tls = {"ssl_context": create_ssl_context(cafile=cafile)} if cafile else {}
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, security_protocol=protocol, **tls,
                             sasl_mechanism=mech, sasl_plain_username=user, sasl_plain_password=password,
                             request_timeout_ms=10000)
        try:
            await p.start()
        except Exception as exc:  # noqa: BLE001
            await p.stop()
            return f"{type(exc).__name__}: {exc} | " + " | ".join(m for m in seen if "Error 58" in m)
        await p.stop()
        return None

    keep = Keep()
    logging.getLogger("aiokafka").addHandler(keep)
    try:
        return asyncio.run(run())
    finally:
        logging.getLogger("aiokafka").removeHandler(keep)


CLIENTS = {"confluent-kafka": confluent, "kafka-python": kafka_python, "aiokafka": aiokafka}


@pytest.mark.parametrize("mech", MECHS)
@pytest.mark.parametrize("client", list(CLIENTS))
def test_right_wrong_unknown(sasl_cluster, client, mech) -> None:
    fn = CLIENTS[client]
    bootstrap = sasl_cluster.bootstrap("SASL")
    tls = (sasl_cluster.protocol, sasl_cluster.cafile)
    assert fn(bootstrap, mech, *CASES["right"], *tls) is None
    expected = PLAIN_FAILED if mech == "PLAIN" else scram_failed(mech)
    for case in ("wrong", "unknown"):
        error = fn(bootstrap, mech, *CASES[case], *tls)
        assert error is not None and expected in error, (case, error)
        assert PASSWORD not in error and WRONG not in error
        if client == "kafka-python":
            # kafka-python 3.0 logs the broker's error for each attempt and keeps retrying
            # until bootstrap_timeout_ms: "Unable to bootstrap" is its documented outcome.
            # "socket disconnected" was the reply lost to an EOF read with it (see _linger).
            assert error.startswith("KafkaTimeoutError") and "Unable to bootstrap" in error, (case, error)
            assert "socket disconnected" not in error, (case, error)


def test_anonymous_client_cannot_use_a_sasl_listener(sasl_cluster) -> None:
    from kafka import KafkaAdminClient

    tls = {"security_protocol": "SSL", "ssl_cafile": sasl_cluster.cafile} if sasl_cluster.cafile else {}
    with pytest.raises(Exception):  # noqa: B017 - closed connection: the client cannot bootstrap
        KafkaAdminClient(bootstrap_servers=sasl_cluster.bootstrap("SASL"), request_timeout_ms=3000,
                         bootstrap_timeout_ms=5000, **tls).list_topics()
    wait_until(lambda: "before SASL authentication" in sasl_cluster.log_text(), what="gating log line")


class _KafkaPythonUser:
    def __init__(self, bootstrap: str) -> None:
        from kafka import KafkaAdminClient

        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, security_protocol="SASL_PLAINTEXT",
                                      sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="alice",
                                      sasl_plain_password=PASSWORD)

    def use(self) -> None:
        self.admin.list_topics()

    def close(self) -> None:
        self.admin.close()


class _ConfluentUser:
    def __init__(self, bootstrap: str) -> None:
        from confluent_kafka import Producer

        self.p = Producer({"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
                           "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "alice", "sasl.password": PASSWORD})

    def use(self) -> None:
        assert self.p.list_topics(timeout=10).cluster_id
        self.p.poll(0.1)

    def close(self) -> None:
        self.p.flush(5)


@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])
def test_client_reauthenticates(tmp_path, client) -> None:
    _add_user(tmp_path / "d", "alice", PASSWORD)
    c = ListenerClusterProcess("reauth", tmp_path / "d", {"SASL": "SASL_PLAINTEXT"},
                               extra_args=["--connections-max-reauth-ms", "1500"]).start()
    try:
        user = (_KafkaPythonUser if client == "kafka-python" else _ConfluentUser)(c.bootstrap("SASL"))
        try:
            def used_and_reauthenticated() -> bool:
                user.use()  # keeps using the connection across the session deadline
                return "re-authenticated as User:alice" in c.log_text()

            wait_until(used_and_reauthenticated, timeout=30, what="a KIP-368 re-authentication")
            user.use()
        finally:
            user.close()
    finally:
        c.stop()
    assert PASSWORD not in c.log_text()
