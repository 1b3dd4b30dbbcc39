"""The brokers under test, behind one interface: start a fresh one, tell its bootstrap and
pid, stop it. Every round starts each target anew (Tansu keeps everything in memory, and a
fresh broker keeps rounds independent)."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from peers.common import PeerProcess, admin_ready, free_port
from peers.kafka_broker import KafkaBroker
from peers.tansu import TansuBroker

log = logging.getLogger(__name__)


class Running(Protocol):
    """A started broker. A target reached through TLS/SASL also has `client_config`, the
    librdkafka settings (security.protocol, sasl.*, ssl.*) every client of the bench adds."""

    @property
    def bootstrap(self) -> str: ...
    @property
    def pid(self) -> int: ...
    def stop(self) -> None: ...


REPO = Path(__file__).resolve().parents[2]
BENCH_USER = "bench"
BENCH_PASSWORD = "bench-Secret-7c1"  # a throw-away broker's throw-away user


class DcmirrorBroker:
    """Our broker, started through the user-facing CLI as a separate process.

    It runs the code of `tree` (default: this checkout), never whatever `dcmirror` an
    editable install points at, so `--targets dcmirror,dcmirror-base` with
    DCMIRROR_BASE_TREE set compares two versions of our code in one run.
    """

    def __init__(self, start_timeout: float = 60.0, tree: Path = REPO, *, sasl_ssl: bool = False,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.tree = tree
        self.extra_args = extra_args  # more `dcmirror cluster start` options
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="dcmirror-bench-"))
        self.start_timeout = start_timeout
        self._proc: PeerProcess | None = None
        # With sasl_ssl, clients use a SASL_SSL listener (SCRAM-SHA-512, TLS 1.2+), the same
        # settings as kafka-sasl-ssl; the PLAINTEXT listener stays for the readiness poll.
        self.sasl_ssl_port = free_port() if sasl_ssl else None
        self.client_config: dict[str, str] = {}

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_ssl_port or self.port}"

    def _secure_args(self, env: dict[str, str]) -> list[str]:
        """Certificates, the bench user and the SASL_SSL listener's arguments."""
        from peers.certs import make_pki

        pki = make_pki(self.workdir / "pki")
        env["DCMIRROR_BENCH_PASSWORD"] = BENCH_PASSWORD
        subprocess.run([sys.executable, "-m", "dcmirror_cli", "-q", "cluster", "users", "add",
                        "--data-dir", str(self.workdir / "data"), "--user", BENCH_USER,
                        "--mechanism", "SCRAM-SHA-512", "--password-env", "DCMIRROR_BENCH_PASSWORD"],
                       check=True, cwd=self.tree, env=env, capture_output=True)
        self.client_config = sasl_ssl_conf(BENCH_USER, BENCH_PASSWORD, pki.ca)
        return ["--listener", f"PLAIN=PLAINTEXT://127.0.0.1:{self.port}",
                "--listener", f"SECURE=SASL_SSL://127.0.0.1:{self.sasl_ssl_port}",
                "--ssl-certfile", str(pki.server_cert), "--ssl-keyfile", str(pki.server_key),
                "--sasl-mechanisms", "SCRAM-SHA-512",
                # a SASL listener makes ACLs apply; the bench user is a super user, so the
                # row measures TLS and SASL, not ACL lookups (Kafka's row has no authorizer)
                "--super-users", f"User:{BENCH_USER}"]

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self) -> "DcmirrorBroker":
        argv = [sys.executable, "-m", "dcmirror_cli", "-q", "cluster", "start", "--name", "bench",
                "--data-dir", str(self.workdir / "data")]
        env = {**os.environ, "PYTHONPATH": str(self.tree)}
        argv += self._secure_args(env) if self.sasl_ssl_port else ["--port", str(self.port)]
        argv += list(self.extra_args)
        self._proc = PeerProcess(argv, self.workdir / "broker.log", cwd=self.tree, env=env)
        self._proc.start()
        try:
            self._proc.wait_ready(lambda: admin_ready(f"127.0.0.1:{self.port}"), self.start_timeout,
                                  f"dcmirror broker on {self.bootstrap}")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._proc:
            self._proc.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def client_conf(broker: Running) -> dict[str, str]:
    """librdkafka settings that reach `broker`: its bootstrap plus its security settings."""
    return {"bootstrap.servers": broker.bootstrap, **getattr(broker, "client_config", {})}


class SecureKafkaTarget:
    """Apache Kafka reached on its SASL_SSL listener (SCRAM-SHA-512, TLS 1.2+, CA-verified):
    the same TLS and SASL settings as `dcmirror-sasl-ssl`, so the two TLS costs compare."""

    def __init__(self) -> None:
        from peers.kafka_secure import PASSWORD, USER, SecureKafka

        self._pki_dir = Path(tempfile.mkdtemp(prefix="dcmirror-bench-pki-"))
        self._kafka = SecureKafka(self._pki_dir)
        self.client_config = sasl_ssl_conf(USER, PASSWORD, self._kafka.pki.ca)

    @property
    def bootstrap(self) -> str:
        return self._kafka.address("SASL_SSL")

    @property
    def pid(self) -> int:
        return self._kafka.pid

    def start(self) -> "SecureKafkaTarget":
        try:
            self._kafka.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._kafka.stop()
        shutil.rmtree(self._pki_dir, ignore_errors=True)


def sasl_ssl_conf(user: str, password: str, ca: Path) -> dict[str, str]:
    return {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": user, "sasl.password": password, "ssl.ca.location": str(ca)}


@dataclass(frozen=True)
class Target:
    name: str
    label: str
    start: Callable[[], Running]


def _kafka() -> Running:
    b = KafkaBroker()
    try:
        return b.start()
    except BaseException:
        b.stop()
        raise


def _tansu() -> Running:
    b = TansuBroker()
    try:
        return b.start()
    except BaseException:
        b.stop()
        raise


def _dcmirror_base(sasl_ssl: bool = False) -> Running:
    tree = os.environ.get("DCMIRROR_BASE_TREE")
    if not tree or not (Path(tree) / "dcmirror_cli.py").exists():
        raise SystemExit("targets dcmirror-base and dcmirror-sasl-ssl-base need DCMIRROR_BASE_TREE "
                         "set to another dcmirror checkout (e.g. git worktree add /tmp/base main)")
    return DcmirrorBroker(tree=Path(tree), sasl_ssl=sasl_ssl).start()


TARGETS: dict[str, Target] = {
    "dcmirror": Target("dcmirror", "dcmirror", lambda: DcmirrorBroker().start()),
    "dcmirror-base": Target("dcmirror-base", "dcmirror (base tree)", _dcmirror_base),
    "dcmirror-sasl-ssl": Target("dcmirror-sasl-ssl", "dcmirror, SASL_SSL SCRAM-SHA-512",
                                lambda: DcmirrorBroker(sasl_ssl=True).start()),
    "dcmirror-sasl-ssl-base": Target("dcmirror-sasl-ssl-base", "dcmirror (base tree), SASL_SSL",
                                     lambda: _dcmirror_base(sasl_ssl=True)),
    "dcmirror-no-sessions": Target(
        "dcmirror-no-sessions", "dcmirror, fetch sessions off",
        lambda: DcmirrorBroker(extra_args=("--max-incremental-fetch-session-cache-slots", "0")).start()),
    "kafka": Target("kafka", "Apache Kafka 4.3.1", _kafka),
    "kafka-sasl-ssl": Target("kafka-sasl-ssl", "Apache Kafka 4.3.1, SASL_SSL SCRAM-SHA-512",
                             lambda: SecureKafkaTarget().start()),
    "tansu": Target("tansu", "Tansu (memory)", _tansu),
}
