"""Real clients over our SSL listener, against a cluster started by the CLI:
confluent-kafka, kafka-python and aiokafka produce and consume with and without a
client certificate; a listener that requires one refuses a client without; the ready
line lists both listeners; unloadable certificate files are one sentence.

Relies on neither ACLs nor super users: `requested` client auth does not authenticate every
client, so ACLs do not apply (README "ACLs"); the `required` case only lists topics."""

from __future__ import annotations

import subprocess
import sys

import pytest

from peers.certs import make_pki
from tests.cluster.broker.tls_helpers import ALICE, sign_client
from tests.processes import ListenerClusterProcess, free_port, wait_until
from tests.secure_clients import LIBRARIES, Sec, consume, produce


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    p = make_pki(d)
    return p, sign_client(p, d, ALICE)


def _cluster(tmp_path, pki, client_auth: str) -> ListenerClusterProcess:
    p, _ = pki
    return ListenerClusterProcess(f"tls-{client_auth}", tmp_path / client_auth, {"PLAIN": "PLAINTEXT", "SECURE": "SSL"},
                                  extra_args=["--ssl-certfile", str(p.server_cert), "--ssl-keyfile", str(p.server_key),
                                              "--ssl-cafile", str(p.ca), "--ssl-client-auth", client_auth]).start()


@pytest.fixture(scope="module")
def requested(tmp_path_factory, pki):
    c = _cluster(tmp_path_factory.mktemp("req"), pki, "requested")
    yield c
    c.stop()


@pytest.mark.parametrize("with_cert", [True, False], ids=["client-cert", "no-cert"])
@pytest.mark.parametrize("lib", LIBRARIES)
def test_clients_produce_and_consume_over_ssl(requested, pki, lib: str, with_cert: bool) -> None:
    p, (cert, key) = pki
    sec = Sec("SSL", cafile=p.ca, certfile=cert if with_cert else None, keyfile=key if with_cert else None)
    topic = f"tls-{lib}-{with_cert}"
    values = [f"{lib}-{i}".encode() for i in range(20)]
    produce(lib, requested.bootstrap("SECURE"), topic, values, sec)
    assert consume(lib, requested.bootstrap("SECURE"), topic, 20, sec) == values
    # and the same records over the plaintext listener of the same broker
    assert consume("confluent", requested.bootstrap("PLAIN"), topic, 20, Sec()) == values


def test_ready_line_lists_both_listeners(requested) -> None:
    wait_until(lambda: "ready" in requested.log_text(), what="ready line")
    ready = [line for line in requested.log_text().splitlines() if "ready" in line][0]
    assert f"PLAIN=PLAINTEXT://127.0.0.1:{requested.ports['PLAIN']}" in ready
    assert f"SECURE=SSL://127.0.0.1:{requested.ports['SECURE']}" in ready


def test_required_client_auth_refuses_a_real_client_without_certificate(tmp_path, pki) -> None:
    from confluent_kafka.admin import AdminClient

    p, (cert, key) = pki
    c = _cluster(tmp_path, pki, "required")
    try:
        ok = AdminClient({"bootstrap.servers": c.bootstrap("SECURE"),
                          **Sec("SSL", cafile=p.ca, certfile=cert, keyfile=key).confluent()})
        assert ok.list_topics(timeout=20).brokers
        no_cert = AdminClient({"bootstrap.servers": c.bootstrap("SECURE"), **Sec("SSL", cafile=p.ca).confluent()})
        with pytest.raises(Exception):
            no_cert.list_topics(timeout=5)
        wait_until(lambda: "TLS handshake failed" in c.log_text(), what="the refusal's log line")
        # an untrusted broker certificate is refused by the client (the wrong CA)
        wrong_ca = AdminClient({"bootstrap.servers": c.bootstrap("SECURE"),
                                **Sec("SSL", cafile=p.other_ca, certfile=cert, keyfile=key).confluent()})
        with pytest.raises(Exception):
            wrong_ca.list_topics(timeout=5)
    finally:
        c.stop()
    assert "Traceback" not in c.log_text()


def test_unloadable_files_are_one_sentence(tmp_path, pki) -> None:
    p, _ = pki
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    res = subprocess.run([sys.executable, "-m", "dcmirror_cli", "cluster", "start", "--name", "j",
                          "--data-dir", str(tmp_path / "j"), "--listener", f"S=SSL://127.0.0.1:{free_port()}",
                          "--ssl-certfile", str(junk), "--ssl-keyfile", str(p.server_key)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "cannot start cluster j: cannot load the broker certificate" in res.stderr
    res = subprocess.run([sys.executable, "-m", "dcmirror_cli", "cluster", "start", "--name", "j",
                          "--data-dir", str(tmp_path / "j"), "--listener", f"S=SSL://127.0.0.1:{free_port()}"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "needs the broker's certificate and key" in res.stderr
