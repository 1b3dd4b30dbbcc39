"""`dcmirror check` between two dcmirror clusters: the whole command path (config, both
ends, mode, table and JSON, exit codes), an unreachable end as one sentence, and
`mirror --check` refusing to start."""

from __future__ import annotations

import json
from pathlib import Path

from peers.common import free_port
from tests import clients
from tests.mirror.conftest import link, write_config
from tests.mirror.failover_helpers import cli


def test_open_clusters_pass_the_check(cluster_factory, tmp_path: Path) -> None:
    east, west = cluster_factory("east"), cluster_factory("west")
    clients.create_topic(east.bootstrap, "orders.eu", 2)
    cfg = write_config(tmp_path / "m.yaml", {"east": east.bootstrap, "west": west.bootstrap},
                       [link("e2w", "east", "west", ["orders\\..*"])])
    res = cli("check", cfg, "--json")
    report = json.loads(res.stdout)
    (entry,) = report["links"]
    assert report["ok"] and entry["mode"] == "preserve-offsets" and entry["missing"] == 0
    ops = {(c["end"], c["name"], c["operation"]) for c in entry["checks"]}
    assert ("source", "orders.eu", "Read") in ops and ("target", "orders.eu", "Create") in ops
    assert ("target", "kafka-cluster", "ClusterAction") in ops
    assert ("target", "orders.eu", "Write") not in ops  # offset-preserving: DcMirrorAppend, not Produce
    table = cli("check", cfg)
    assert "every permission the link needs is granted" in table.stdout


def test_unreachable_end_is_one_sentence_and_mirror_check_refuses(cluster_factory, tmp_path: Path) -> None:
    east = cluster_factory("east")
    clients.create_topic(east.bootstrap, "orders.eu", 1)
    closed = f"127.0.0.1:{free_port()}"
    cfg = write_config(tmp_path / "m.yaml", {"east": east.bootstrap, "west": closed},
                       [link("e2w", "east", "west", ["orders\\..*"])])
    res = cli("check", cfg, "--json", check=False)
    assert res.returncode == 1
    (problem,) = json.loads(res.stdout)["links"][0]["problems"]
    assert problem.startswith(f"cannot connect to west ({closed}): ") and "\n" not in problem
    refused = cli("mirror", cfg, "--check", check=False, timeout=60)
    assert refused.returncode == 1 and "not starting" in refused.stderr and "Traceback" not in refused.stderr
    assert cli("check", cfg, "--link", "nope", check=False).returncode == 2


def test_no_visible_source_topic_fails(cluster_factory, tmp_path: Path) -> None:
    east, west = cluster_factory("east"), cluster_factory("west")
    cfg = write_config(tmp_path / "m.yaml", {"east": east.bootstrap, "west": west.bootstrap},
                       [link("e2w", "east", "west", ["orders\\..*"])])
    res = cli("check", cfg, "--json", check=False)
    assert res.returncode == 1
    assert "no topic of the link is visible on east" in json.loads(res.stdout)["links"][0]["problems"][0]
