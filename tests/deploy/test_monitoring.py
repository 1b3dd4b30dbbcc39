"""deploy/monitoring/: the alert rules pass `promtool check rules` and fire (promtool's rule unit
tests, tests/deploy/monitoring_rules_test.yaml); the Grafana dashboard is valid JSON of the
shape Grafana imports; every metric either one queries is one the daemon exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
RULES = MONITORING / "dcmirror-alerts.yaml"
DASHBOARD = MONITORING / "dcmirror-dashboard.json"
ALERTS = {"DcmirrorLagOverRPO", "DcmirrorLinkNotNormal", "DcmirrorPartitionsInError", "DcmirrorRecordsLost"}

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="promtool missing (Debian package prometheus: ./test.sh installs it)")


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    res = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "SUCCESS" in res.stdout, res.stdout + res.stderr


@needs_promtool
def test_each_alert_fires_on_its_case(tmp_path) -> None:
    spec = (ROOT / "tests" / "deploy" / "monitoring_rules_test.yaml").read_text().replace("RULES", str(RULES))
    (tmp_path / "t.yaml").write_text(spec)
    res = subprocess.run(["promtool", "test", "rules", str(tmp_path / "t.yaml")], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0 and "SUCCESS" in res.stdout, res.stdout + res.stderr
    tested = {t["alertname"] for t in yaml.safe_load(spec)["tests"][0]["alert_rule_test"]}
    assert tested == ALERTS


DASHBOARD_SCHEMA = {
    "type": "object",
    "required": ["title", "uid", "panels", "schemaVersion", "templating"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
        "panels": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["id", "type", "title", "gridPos", "targets", "datasource"],
            "properties": {
                "id": {"type": "integer"},
                "gridPos": {"type": "object", "required": ["h", "w", "x", "y"]},
                "targets": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["refId", "expr"],
                    "properties": {"expr": {"type": "string", "minLength": 1}}}}}}},
    },
}


def exported_metrics() -> set[str]:
    """The sample names the daemon's /metrics serves, from a link with every kind of series."""
    from prometheus_client.parser import text_string_to_metric_families

    from mirror.daemon.metrics import Metrics
    from mirror.replication.progress import Alarm, LinkProgress

    link = LinkProgress("l", state="running")
    link.partition("t", 0, "t").records = 3
    link.alarms.append(Alarm("records-lost", "t", 0, "lost", 2))
    link.last_checkpoint_ms["g"] = 0
    m = Metrics([link])
    m.latency.labels("l").observe(0.1)
    return {s.name for f in text_string_to_metric_families(m.render().decode()) for s in f.samples}


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(dcmirror_[a-z_]+)", expr))


def test_dashboard_json_and_queries() -> None:
    import jsonschema

    doc = json.loads(DASHBOARD.read_text())
    jsonschema.validate(doc, DASHBOARD_SCHEMA)
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    exported = exported_metrics()
    used = {n for p in doc["panels"] for t in p["targets"] for n in metric_names(t["expr"])}
    assert used and used <= exported, used - exported
    assert {"dcmirror_replication_lag_seconds", "dcmirror_link_state", "dcmirror_partition_state",
            "dcmirror_records_lost_total"} <= used


def test_alert_rules_query_exported_metrics() -> None:
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert ALERTS <= {r["alert"] for r in rules}
    used = {n for r in rules for n in metric_names(r["expr"])}
    assert used and used <= exported_metrics(), used - exported_metrics()
