"""`dcmirror status`: replication state computed from the clusters themselves.

Needs no running daemon: progress lives in the target (its log end in offset-preserving
mode, the offset-sync topic in translation mode), so any machine that reaches both clusters
can answer. Time lag is the age of the oldest record not yet mirrored, read from that
batch's header on the source (no record is decoded).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from cluster.client.client import KafkaClient
from cluster.client.data import FetchPosition
from cluster.client.errors import KafkaError
from cluster.wire import record_batch as rb
from mirror.config.clients import client_for_cluster
from mirror.config.model import LinkConfig, MirrorConfig
from mirror.records.offsets import read_checkpoints
from mirror.config.policy import is_internal_topic
from mirror.replication.progress import STOPPED_STATES
from mirror.replication.mode import ModeError, resolve_mode
from mirror.replication.sinks import TranslatingSink


def _client(cfg: MirrorConfig, alias: str) -> KafkaClient:
    """Status answers quickly: at most 10 s per request (less if the YAML says so)."""
    c = cfg.clusters[alias]
    return client_for_cluster(c, "status", request_timeout_s=min(10.0, c.client.request_timeout_s),
                              retry_deadline_s=5)


async def _oldest_unmirrored_ts(source: KafkaClient, topic: str, p: int, pos: int) -> int:
    res = (await source.fetch({(topic, p): FetchPosition(pos, 64 * 1024)}, max_wait_ms=0,
                              min_bytes=0))[(topic, p)]
    for _, h in rb.iter_batches(res.records or b""):
        if h.next_offset > pos:
            return h.base_timestamp
    return -1


async def _last_checkpoints(target: KafkaClient, link: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for cp in await read_checkpoints(target, link):
        out[cp.group] = max(out.get(cp.group, 0), cp.timestamp_ms)
    return out


async def link_status(cfg: MirrorConfig, link: LinkConfig) -> dict[str, Any]:
    policy = cfg.policy(link)
    entry: dict[str, Any] = {"name": link.name, "source": link.source, "target": link.target,
                             "mode": None, "link_state": None, "partitions": [], "groups": [],
                             "error": None}
    source, target = _client(cfg, link.source), _client(cfg, link.target)
    now = int(time.time() * 1000)
    try:
        await source.start()
        await target.start()
        from mirror.records.link_state import read_state, read_stopped

        runs = None  # what the daemon does for the link, once its state is known
        try:
            st = (await read_state(target, link.name)).state
            entry["link_state"] = str(st.state)
            entry["link_state_since_ms"] = st.since_ms
            runs = st.runs
        except (KafkaError, OSError):
            entry["link_state"] = "unknown"
        mapping = await resolve_mode(link, target)
        entry["mode"] = mapping.mode
        synced_list = await mapping.load(TranslatingSink(target, policy.target_topic, link.name))
        target_topics = await target.list_topics()
        conflicts = {}
        errors: dict[tuple[str, int], str] = {}
        if runs is not None and runs.shapes_topics:  # else the target topics are not the link's to shape
            conflicts = await _conflicts(cfg, link, source, target, target_topics,
                                         None if mapping.preserves else {s.topic for s in synced_list})
            errors = {(x.topic, x.partition): x.reason for x in await read_stopped(target, link.name)
                      if x.state == "error"}  # as the running mirror processes report them
        for name, meta in (await source.list_topics()).items():
            if is_internal_topic(name) or not policy.should_mirror_topic(name):
                continue
            tname = policy.target_topic(name)
            parts = sorted(meta.partitions)
            ends = await source.list_offsets(name, parts, -1)
            starts = await source.list_offsets(name, parts, -2)
            tends = {}
            if tname in target_topics:
                have = [p for p in parts if p in target_topics[tname].partitions]
                tends = await target.list_offsets(tname, have, -1) if have else {}
            for p in parts:
                src_end = ends[p][0]
                tgt_end = tends[p][0] if p in tends else None
                if tgt_end is None:
                    mirrored, state = starts[p][0], "missing"
                else:
                    held = mapping.mirrored(name, p, tgt_end)
                    mirrored = starts[p][0] if held is None else held
                    state = "in-sync"
                lag = max(0, src_end - max(mirrored, starts[p][0]))
                lag_s = 0.0
                reason = conflicts.get(tname)
                if reason is not None:
                    state, mirrored = "conflict", starts[p][0]
                    lag = max(0, src_end - mirrored)
                elif (name, p) in errors:
                    state, reason = "error", errors[(name, p)]
                if lag > 0:
                    state = "lagging" if state == "in-sync" else state
                    ts = await _oldest_unmirrored_ts(source, name, p, max(mirrored, starts[p][0]))
                    lag_s = max(0.0, (now - ts) / 1000) if ts > 0 else 0.0
                entry["partitions"].append({
                    "topic": name, "partition": p, "target_topic": tname,
                    "source_start": starts[p][0], "source_end": src_end,
                    "target_end": tgt_end, "mirrored": mirrored, "lag": lag,
                    "lag_seconds": round(lag_s, 3), "state": state, "reason": reason,
                })
        for group, at in sorted((await _last_checkpoints(target, link.name)).items()):
            entry["groups"].append({"group": group, "last_checkpoint_ms": at,
                                    "age_seconds": round((now - at) / 1000, 1)})
    except ModeError as exc:  # the link's configuration, as the daemon refuses it
        entry["error"] = str(exc)
    except (KafkaError, OSError, asyncio.TimeoutError) as exc:
        entry["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        await source.close()
        await target.close()
    entry["partitions"].sort(key=lambda x: (-x["lag"], -x["lag_seconds"], x["topic"], x["partition"]))
    total = sum(x["lag"] for x in entry["partitions"])
    entry["summary"] = {
        "partitions": len(entry["partitions"]),
        "lagging": sum(1 for x in entry["partitions"] if x["lag"] > 0),
        "total_lag": total,
        "max_lag_seconds": max((x["lag_seconds"] for x in entry["partitions"]), default=0.0),
        "stopped": sum(1 for x in entry["partitions"] if x["state"] in STOPPED_STATES),
    }
    return entry


def unhealthy(report: dict[str, Any]) -> bool:
    """A link could not be read, or a partition is stopped (conflict, error)."""
    return any(l.get("error") or l["summary"]["stopped"] for l in report["links"])


async def _conflicts(cfg: MirrorConfig, link: LinkConfig, source: KafkaClient, target: KafkaClient,
                     target_topics: dict, claimed: set[str] | None) -> dict[str, str]:
    """{target topic: reason} for existing target topics the link does not own and would
    not adopt (`mirror.replication.existing`). ``claimed``: translation mode's claimed source topics;
    None for offset-preserving mode (ownership is the topic marker)."""
    from mirror.replication import existing

    policy = cfg.policy(link)
    candidates = {policy.target_topic(n): n for n in await source.list_topics()
                  if not is_internal_topic(n) and policy.should_mirror_topic(n)
                  and policy.target_topic(n) in target_topics}
    if claimed is None:
        described = await target.describe_configs(sorted(candidates)) if candidates else {}
        markers = {t: (e.get(existing.MIRROR_SOURCE).value if e.get(existing.MIRROR_SOURCE) else None)
                   for t, e in described.items()}
        foreign = [t for t in candidates if markers.get(t) != link.source]
    else:
        markers = {}
        foreign = [t for t, src in candidates.items() if src not in claimed]
    out = {}
    for t in sorted(foreign):
        found = await existing.inspect(target, t, sorted(target_topics[t].partitions), markers.get(t),
                                       link.source, at_zero=claimed is None)
        if not found.adoptable:
            out[t] = existing.conflict_reason(found, link.name, str(cfg.path))
    return out


async def collect_status(cfg: MirrorConfig, links: list[str] | None = None) -> dict[str, Any]:
    chosen = [l for l in cfg.links if not links or l.name in links]
    report: dict[str, Any] = {"links": list(await asyncio.gather(*(link_status(cfg, l) for l in chosen)))}
    tunnelled = [a for a in dict.fromkeys(x for l in chosen for x in (l.source, l.target)) if cfg.clusters[a].ssh]
    if tunnelled:  # what this command's own SSH tunnels went through, and how they fared
        from cluster.client.tunnel import tunnel_for

        report["tunnels"] = {a: tunnel_for(cfg.clusters[a].ssh).status() for a in tunnelled}
    return report


def render_table(report: dict[str, Any]):
    """A rich renderable: one table per link, worst partitions first, and a summary line."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts = []
    for alias, t in report.get("tunnels", {}).items():
        line = f"{alias}: through SSH {t['via']}: {t['state']}"
        line += f" ({t['error']})" if t.get("error") else f", {t['connects']} connection(s), {t['channels']} channel(s)"
        parts.append(Text(line, style="bold red" if t["state"] == "down" else None))
    for link in report["links"]:
        title = (f"{link['name']}: {link['source']} -> {link['target']} ({link['mode'] or '?'}, "
                 f"link {link.get('link_state') or '?'})")
        if link.get("error"):
            parts.append(Text(f"{title}: ERROR {link['error']}", style="bold red"))
            continue
        t = Table(title=title, title_justify="left")
        for col in ("topic", "partition", "source end", "target end", "lag", "lag (s)", "state"):
            t.add_column(col, justify="right" if col not in ("topic", "state") else "left")
        for p in link["partitions"]:
            style = "red" if p["lag"] > 0 or p["state"] in STOPPED_STATES else None
            t.add_row(p["topic"], str(p["partition"]), str(p["source_end"]),
                      "-" if p["target_end"] is None else str(p["target_end"]), str(p["lag"]),
                      f"{p['lag_seconds']:.1f}", p["state"], style=style)
        parts.append(t)
        s = link["summary"]
        parts.append(Text(f"{s['partitions']} partitions, {s['lagging']} lagging, "
                          f"{s['total_lag']} records behind, max {s['max_lag_seconds']:.1f}s"
                          + (f", {s['stopped']} stopped" if s.get("stopped") else "")))
        reasons = {}
        for p in link["partitions"]:
            if p.get("reason"):
                reasons.setdefault(p["reason"], []).append(f"{p['topic']}-{p['partition']}")
        for reason, where in reasons.items():
            parts.append(Text(f"  {', '.join(where)}: {reason}", style="bold red"))
        for g in link["groups"]:
            parts.append(Text(f"  group {g['group']}: last checkpoint {g['age_seconds']}s ago"))
    return Group(*parts)
