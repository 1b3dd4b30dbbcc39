"""`dcmirror check`: before any data moves, may each link do what it must on both ends?

Connects to both ends of every link with the link's own client settings (so the check
sees exactly what the daemon will), lists the source topics and groups the link would
mirror, builds the link's requirements (`mirror.preflight.permissions`) and asks each cluster
about each of them (`mirror.preflight.probe`). The report says, per end and resource,
what is granted, what is missing (with the `kafka-acls` lines that would grant it) and
what the broker would not tell; anything missing, an unreachable end, or a source on
which no topic of the link is visible makes the link fail the check.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from typing import Any

from cluster.client.client import KafkaClient
from cluster.client.errors import KafkaError
from mirror.preflight.probe import cluster_evidence, group_evidence, topic_evidence
from mirror.config.clients import client_for_cluster
from mirror.config.model import ClusterConfig, LinkConfig, MirrorConfig
from mirror.preflight.permissions import (
    Evidence,
    Requirement,
    Verdict,
    acl_pattern,
    grant_commands,
    source_requirements,
    target_requirements,
    verdict,
)
from mirror.replication.mode import ModeError, resolve_mode

log = logging.getLogger(__name__)


def principal_of(cluster: ClusterConfig) -> str:
    """The principal a Kafka broker sees for this cluster's ``client:`` block (default
    principal builder): the SASL user, else the client certificate's subject, else
    ANONYMOUS."""
    s = cluster.client
    if s.security_protocol.startswith("SASL_") and s.sasl_username:
        return f"User:{s.sasl_username}"
    if s.security_protocol == "SSL" and s.ssl_certfile is not None:
        try:  # cryptography is optional at run time: only this hint needs it
            from cryptography import x509

            cert = x509.load_pem_x509_certificate(s.ssl_certfile.read_bytes())
            return f"User:{cert.subject.rfc4514_string()}"
        except (ImportError, OSError, ValueError):
            return "User:<client certificate subject>"
    return "User:ANONYMOUS"


def _client(cfg: MirrorConfig, alias: str, link: LinkConfig) -> KafkaClient:
    c = cfg.clusters[alias]
    return client_for_cluster(c, link.name, request_timeout_s=min(10.0, c.client.request_timeout_s),
                              retry_deadline_s=5)


def _literals(patterns: list[str]) -> list[str]:
    out = []
    for p in patterns:
        pat = acl_pattern(p)
        if pat is not None and pat[0] == "literal" and pat[1] != "*":
            out.append(pat[1])
    return out


def _needed(reqs: list[Requirement], resource_type: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in reqs:
        if r.resource_type == resource_type:
            out.setdefault(r.name, set()).add(r.operation)
    return out


async def _evaluate(client: KafkaClient, reqs: list[Requirement]) -> list[Verdict]:
    topics = await topic_evidence(client, _needed(reqs, "Topic"))
    groups = await group_evidence(client, sorted(_needed(reqs, "Group")))
    cluster = await cluster_evidence(client) if _needed(reqs, "Cluster") else Evidence()
    out = []
    for r in reqs:
        ev = {"Topic": topics, "Group": groups}.get(r.resource_type, {}).get(r.name, cluster)
        out.append(verdict(r, ev))
    return out


def _end(cfg: MirrorConfig, alias: str) -> dict[str, Any]:
    c = cfg.clusters[alias]
    return {"cluster": alias, "bootstrap": ",".join(c.bootstrap), "principal": principal_of(c), "error": None}


async def _start(client: KafkaClient, end: dict[str, Any]) -> bool:
    try:
        await client.start()
        return True
    except (KafkaError, OSError, asyncio.TimeoutError) as exc:
        end["error"] = f"cannot connect to {end['cluster']} ({end['bootstrap']}): {exc}"
        return False


async def check_link(cfg: MirrorConfig, link: LinkConfig) -> dict[str, Any]:
    """One link's report (a JSON-ready dict; ``ok`` false when anything is missing)."""
    policy = cfg.policy(link)
    ends = {"source": _end(cfg, link.source), "target": _end(cfg, link.target)}
    entry: dict[str, Any] = {"name": link.name, "source": link.source, "target": link.target, "mode": None,
                             "ends": ends, "checks": [], "problems": [], "grant": {"source": [], "target": []},
                             "ok": False}
    source, target = _client(cfg, link.source, link), _client(cfg, link.target, link)
    try:
        up = [await _start(source, ends["source"]), await _start(target, ends["target"])]
        entry["problems"] += [e["error"] for e in ends.values() if e["error"]]
        if not all(up):
            return entry
        try:
            mapping = await resolve_mode(link, target)
        except ModeError as exc:
            entry["mode"] = link.mode
            entry["problems"].append(str(exc))
            return entry
        entry["mode"] = mapping.mode
        translate = not mapping.preserves
        visible = [n for n in await source.list_topics() if policy.should_mirror_topic(n)]
        topics = sorted(set(visible) | {t for t in _literals(link.topics) if policy.should_mirror_topic(t)})
        if not topics:
            entry["problems"].append(
                f"no topic of the link is visible on {link.source}: none exists yet, or "
                f"{ends['source']['principal']} may not Describe them")
        groups = sorted({g.group_id for g in await source.list_groups() if policy.should_mirror_group(g.group_id)}
                        | {g for g in _literals(link.groups) if policy.should_mirror_group(g)})
        existing = set(await target.list_topics(include_internal=True))
        src_reqs = source_requirements(link, topics, groups)
        tgt_reqs = target_requirements(link, policy, topics, groups, translate=translate, existing=existing)
        verdicts = await _evaluate(source, src_reqs) + await _evaluate(target, tgt_reqs)
    except (KafkaError, OSError, asyncio.TimeoutError) as exc:
        entry["problems"].append(f"{type(exc).__name__}: {exc}")
        return entry
    finally:
        await source.close()
        await target.close()
    for v in verdicts:
        entry["checks"].append({**asdict(v.requirement), "status": v.status, "how": v.how})
    for end in ("source", "target"):
        missing = [v.requirement for v in verdicts if v.status == "missing" and v.requirement.end == end]
        entry["grant"][end] = grant_commands(ends[end]["principal"], ends[end]["bootstrap"], missing)
    entry["missing"] = sum(1 for v in verdicts if v.status == "missing")
    entry["unknown"] = sum(1 for v in verdicts if v.status == "unknown")
    entry["ok"] = entry["missing"] == 0 and not entry["problems"]
    return entry


async def check_config(cfg: MirrorConfig, links: list[str] | None = None) -> dict[str, Any]:
    chosen = [l for l in cfg.links if not links or l.name in links]
    reports = list(await asyncio.gather(*(check_link(cfg, l) for l in chosen)))
    return {"ok": all(r["ok"] for r in reports), "links": reports}


_STYLE = {"granted": "green", "missing": "bold red", "unknown": "yellow"}


def render_check(report: dict[str, Any]) -> list:
    """Rich renderables (per link and end, one row per resource and operation) and plain
    strings: the `kafka-acls` lines, printed unwrapped so they can be pasted."""
    from rich.table import Table
    from rich.text import Text

    parts = []
    for link in report["links"]:
        title = f"{link['name']}: {link['source']} -> {link['target']} ({link['mode'] or '?'})"
        parts.append(Text(title, style="bold"))
        for end in ("source", "target"):
            e = link["ends"][end]
            rows = [c for c in link["checks"] if c["end"] == end]
            if e["error"] or not rows:
                continue
            t = Table(title=f"{end} {e['cluster']} as {e['principal']}", title_justify="left")
            for col in ("resource", "name", "operation", "status", "how", "needed for"):
                t.add_column(col)
            for c in rows:
                t.add_row(c["resource_type"], c["name"], c["operation"],
                          Text(c["status"], style=_STYLE[c["status"]]), c["how"], c["why"])
            parts.append(t)
            for line in link["grant"][end]:
                parts.append(f"  grant: {line}")
        for p in link["problems"]:
            parts.append(Text(f"  ERROR {p}", style="bold red"))
        if link["ok"]:
            extra = f" ({link['unknown']} not reported by the broker)" if link.get("unknown") else ""
            parts.append(Text(f"  ok: every permission the link needs is granted{extra}", style="green"))
        elif link.get("missing"):
            parts.append(Text(f"  {link['missing']} permission(s) missing", style="bold red"))
    return parts
