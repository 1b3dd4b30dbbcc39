"""`dcmirror failover` run with a link's least-privilege credentials between two dcmirror
clusters that enforce ACLs (SASL_SSL listeners, an admin super user granting ACLs): the
link, granted exactly what `dcmirror check` reports missing, mirrors; failover, which must
fence the source topics and may not, is refused in one sentence (no traceback) that says
to grant and run it again; after granting AlterConfigs on the topic and ClusterAction on
the source cluster, the same command completes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.mirror.conftest import link
from tests.mirror.failover_helpers import cli
from tests.processes import MirrorProcess, wait_until
from tests.secure_link import (LINK_PASSWORD, LINK_PASSWORD_ENV, LINK_USER, SecureDcmirror, check_report,
                               create_topic, ends, grant, mirror_config, produce)

PRINCIPAL = f"User:{LINK_USER}"


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(LINK_PASSWORD_ENV, LINK_PASSWORD)
    east = SecureDcmirror(tmp_path, "east").start()
    try:
        west = SecureDcmirror(tmp_path, "west").start()
    except BaseException:
        east.stop()
        raise
    yield east, west
    west.stop()
    east.stop()


def test_failover_without_fencing_rights_is_one_sentence_then_completes(pair, tmp_path: Path) -> None:
    east, west = pair
    create_topic(east.admin(), "orders.eu", 1)
    produce(east.admin(), "orders.eu", [b"a", b"b", b"c"])
    cfg = mirror_config(tmp_path / "m.yaml", {"east": (east.bootstrap, east.client_block()),
                                              "west": (west.bootstrap, west.client_block())},
                        [link("e2w", "east", "west", ["orders\\.eu"], groups=["billing"])])
    rc, report = check_report(cfg, "e2w")
    assert rc == 1 and report["links"][0]["problems"] == []
    missing = [c for c in report["links"][0]["checks"] if c["status"] == "missing"]
    for end, cluster in (("source", east), ("target", west)):
        grant(cluster.admin(), PRINCIPAL, [(c["resource_type"], c["name"], c["operation"])
                                           for c in missing if c["end"] == end])
    assert check_report(cfg, "e2w")[0] == 0
    m = MirrorProcess(cfg).start()  # with exactly those grants
    try:
        wait_until(lambda: sum(ends(west.admin(), "orders.eu", 1).values()) == 3, what="mirrored")
    finally:
        m.stop()

    refused = cli("failover", cfg, "--link", "e2w", "--yes", check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    (line,) = [l for l in refused.stderr.splitlines() if l.startswith("Error:")]
    assert "TOPIC_AUTHORIZATION_FAILED (29)" in line and "run the same command again" in line
    grant(east.admin(), PRINCIPAL, [("Topic", "orders.eu", "AlterConfigs"), ("Cluster", "kafka-cluster", "ClusterAction")])
    done = json.loads(cli("failover", cfg, "--link", "e2w", "--yes", "--json").stdout)
    assert done["fenced"] == ["orders.eu"] and done["promoted"] == ["orders.eu"] and done["total_loss"] == 0
