"""Apache Kafka with secured listeners, for the client's TLS/SASL tests.

On top of `KafkaBroker`'s PLAINTEXT listener (kept for readiness polling and as the
inter-broker listener) it opens a SASL_SSL listener (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512),
an SSL listener that requires a client certificate, and a SASL_PLAINTEXT listener. The
user `alice` exists for every mechanism (PLAIN through the JAAS config, SCRAM through
StorageTool's `--add-scram` at format time). Certificates come from `peers.certs`.
"""
from __future__ import annotations

from pathlib import Path

from peers.certs import KEYSTORE_PASSWORD, Pki, make_pki
from peers.common import free_port
from peers.kafka_broker import KafkaBroker

USER = "alice"
PASSWORD = "alice-Secret-9f3"
_PLAIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
_SCRAM = "org.apache.kafka.common.security.scram.ScramLoginModule"


class SecureKafka(KafkaBroker):
    def __init__(self, pki_dir: Path, *, reauth_ms: int | None = None, **kwargs) -> None:
        self.pki: Pki = make_pki(pki_dir)
        self.sasl_ssl_port = free_port()
        self.ssl_port = free_port()
        self.sasl_plaintext_port = free_port()
        scram = [a for m in ("SCRAM-SHA-256", "SCRAM-SHA-512")
                 for a in ("--add-scram", f"{m}=[name={USER},password={PASSWORD}]")]
        super().__init__(format_args=scram, **kwargs)
        self.extra_config.update(self._security_config(reauth_ms))

    def _security_config(self, reauth_ms: int | None) -> dict[str, str]:
        ports = {"SASL_SSL": self.sasl_ssl_port, "SSL": self.ssl_port, "SASL_PLAINTEXT": self.sasl_plaintext_port}
        listeners = ",".join([f"PLAINTEXT://127.0.0.1:{self.port}", f"CONTROLLER://127.0.0.1:{self.controller_port}"]
                             + [f"{n}://127.0.0.1:{p}" for n, p in ports.items()])
        cfg = {
            "listeners": listeners,
            "advertised.listeners": listeners,
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,"
                                              "SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT",
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(self.pki.server_p12),
            "ssl.keystore.password": KEYSTORE_PASSWORD,
            "ssl.key.password": KEYSTORE_PASSWORD,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.pki.ca),
            "ssl.client.auth": "none",
            "listener.name.ssl.ssl.client.auth": "required",
            # one listener with a single mechanism, for the "not enabled" error
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "PLAIN",
        }
        for listener in ("sasl_ssl", "sasl_plaintext"):
            cfg[f"listener.name.{listener}.plain.sasl.jaas.config"] = (
                f'{_PLAIN} required user_{USER}="{PASSWORD}";')
            for mech in ("scram-sha-256", "scram-sha-512"):
                cfg[f"listener.name.{listener}.{mech}.sasl.jaas.config"] = f"{_SCRAM} required;"
        if reauth_ms is not None:
            cfg["connections.max.reauth.ms"] = str(reauth_ms)
        return cfg

    def address(self, protocol: str) -> str:
        port = {"PLAINTEXT": self.port, "SASL_SSL": self.sasl_ssl_port, "SSL": self.ssl_port,
                "SASL_PLAINTEXT": self.sasl_plaintext_port}[protocol]
        return f"127.0.0.1:{port}"
