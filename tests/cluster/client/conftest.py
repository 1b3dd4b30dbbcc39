"""The cluster the client tests talk to, chosen by DCMIRROR_TEST_TARGET (tansu|dcmirror|kafka).

Tansu is the default because it starts instantly; the same tests run against our broker
and Apache Kafka by changing one variable. One cluster per session; tests use unique topic
and group names so they never see each other's data. `known_bug` marks a test xfail only on
the targets whose bug it names, so a fix there turns into an XPASS we notice.
"""

from __future__ import annotations

import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:  # `peers` lives at the repo root, outside the distribution
    sys.path.insert(0, _ROOT)

TARGET = os.environ.get("DCMIRROR_TEST_TARGET", "tansu").strip().lower()


@dataclass(frozen=True)
class Target:
    kind: str
    bootstrap: str


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"test target unavailable on CI: {reason}", pytrace=False)
    pytest.skip(f"test target {TARGET} unavailable: {reason}")


@pytest.fixture(scope="session")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    if TARGET == "tansu":
        from peers.common import PeerUnavailable
        from peers.tansu import TansuBroker, tansu_binary

        try:
            tansu_binary()
        except PeerUnavailable as exc:
            _unavailable(str(exc))
        with TansuBroker() as broker:
            yield Target("tansu", broker.bootstrap)
    elif TARGET == "kafka":
        from peers.common import PeerUnavailable
        from peers.fetch import ensure_kafka, java_path
        from peers.kafka_broker import KafkaBroker

        try:
            java_path()
            ensure_kafka()
        except PeerUnavailable as exc:
            _unavailable(str(exc))
        with KafkaBroker() as broker:
            yield Target("kafka", broker.bootstrap)
    elif TARGET == "dcmirror":
        from tests.processes import ClusterProcess

        proc = ClusterProcess("client-tests", tmp_path_factory.mktemp("dcmirror") / "data").start()
        try:
            yield Target("dcmirror", proc.bootstrap)
        finally:
            proc.stop()
    else:
        raise pytest.UsageError(f"DCMIRROR_TEST_TARGET must be tansu, dcmirror or kafka, not {TARGET!r}")


@pytest.fixture
async def client(target: Target):
    from cluster.client import KafkaClient

    async with KafkaClient(target.bootstrap, request_timeout_s=15, retry_deadline_s=5) as c:
        yield c


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A topic/group name unique to this test."""
    base = "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:40]
    return f"{base}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def known_bug(request: pytest.FixtureRequest, target: Target):
    """known_bug("tansu", reason): expect failure only on the named target(s)."""

    def mark(kinds: str | tuple[str, ...], reason: str) -> None:
        kinds = (kinds,) if isinstance(kinds, str) else kinds
        if target.kind in kinds:
            request.applymarker(pytest.mark.xfail(reason=f"{target.kind}: {reason}", strict=False))

    return mark
