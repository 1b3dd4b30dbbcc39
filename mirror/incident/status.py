"""`dcmirror status`: replication state computed from the clusters themselves.

Needs no running daemon: progress lives in the target (its log end in offset-preserving
mode, the offset-sync topic in translation mode), so any machine that reaches both clusters
can answer. Time lag is the age of the oldest record not yet mirrored, read from that
batch's header on the source (no record is decoded).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from cluster.client.client import KafkaClient
from cluster.client.data import FetchPosition
from cluster.client.errors import KafkaError
from cluster.wire import record_batch as rb
from mirror.config.clients import client_for_cluster
from mirror.config.model import LinkConfig, MirrorConfig
from mirror.records.offsets import Checkpoint, read_checkpoints
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


async def _last_checkpoints(target: KafkaClient, link: str) -> dict[str, dict[tuple[str, int], Checkpoint]]:
    """{group: {(source topic, partition): newest checkpoint}} from the link's checkpoint topic."""
    out: dict[str, dict[tuple[str, int], Checkpoint]] = {}
    for cp in await read_checkpoints(target, link):
        out.setdefault(cp.group, {})[(cp.topic, cp.partition)] = cp
    return out


async def _group_rows(source: KafkaClient | None, policy, cps: dict[str, dict[tuple[str, int], Checkpoint]],
                      now: int) -> list[dict[str, Any]]:
    """Per group: is its newest checkpoint what the source group has committed (in sync), and
    the time since it last was. An idle group in sync has age 0 however old its checkpoint
    record is; without the source the age counts from the last checkpoint written."""
    rows = []
    for group, by_tp in sorted(cps.items()):
        written = max(c.timestamp_ms for c in by_tp.values())
        in_sync = None
        if source is not None:
            committed = {tp: off for tp, (off, _) in (await source.offset_fetch(group)).items()
                         if off >= 0 and policy.should_mirror_topic(tp[0])}
            in_sync = committed == {tp: c.upstream_offset for tp, c in by_tp.items() if tp in committed} \
                and set(committed) <= set(by_tp)
        at = now if in_sync else written
        rows.append({"group": group, "in_sync": in_sync, "last_in_sync_ms": at,
                     "last_checkpoint_ms": written, "age_seconds": round((now - at) / 1000, 1)})
    return rows


async def _reach(client: KafkaClient) -> str | None:
    """None when ``client`` bootstraps, else why not (one line)."""
    try:
        await client.start()
        return None
    except (KafkaError, OSError, asyncio.TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"


@dataclass
class _TargetView:
    """What the target says about the link: how it maps offsets, its topics, and which of
    them are stopped (conflicts found here, errors as the running mirror processes report)."""

    mapping: Any = None
    topics: dict = field(default_factory=dict)
    conflicts: dict[str, str] = field(default_factory=dict)
    errors: dict[tuple[str, int], str] = field(default_factory=dict)
    syncs: list = field(default_factory=list)  # translation: the link's offset syncs


async def link_status(cfg: MirrorConfig, link: LinkConfig) -> dict[str, Any]:
    """One link's entry of the report: both ends' reachability, its link state and mode,
    a row per partition and per checkpointed group, and the summary `exit_code` reads."""
    policy = cfg.policy(link)
    entry: dict[str, Any] = {"name": link.name, "source": link.source, "target": link.target,
                             "mode": None, "link_state": None, "partitions": [], "groups": [],
                             "error": None}
    source, target = _client(cfg, link.source), _client(cfg, link.target)
    now = int(time.time() * 1000)
    try:
        src_err, tgt_err = await asyncio.gather(_reach(source), _reach(target))
        entry["clusters"] = {
            "source": {"cluster": link.source, "reachable": src_err is None, "error": src_err},
            "target": {"cluster": link.target, "reachable": tgt_err is None, "error": tgt_err}}
        view = _TargetView()
        if tgt_err is None:
            view = await _target_view(entry, cfg, link, source if src_err is None else None, target)
        if src_err is None:
            await _partition_rows(entry, policy, source, target if tgt_err is None else None, view, now)
        else:
            await _target_only_rows(entry, policy, target if tgt_err is None else None, view.topics)
        _possible_duplicates(entry, view.syncs)
        if tgt_err is None:
            entry["groups"] = await _group_rows(source if src_err is None else None, policy,
                                                await _last_checkpoints(target, link.name), now)
    except ModeError as exc:  # the link's configuration, as the daemon refuses it
        entry["error"] = str(exc)
    except (KafkaError, OSError, asyncio.TimeoutError) as exc:
        entry["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        await source.close()
        await target.close()
    entry["partitions"].sort(key=lambda x: (-(x["lag"] or 0), -x["lag_seconds"], x["topic"], x["partition"]))
    entry["summary"] = _summary(entry)
    return entry


async def _target_view(entry: dict, cfg: MirrorConfig, link: LinkConfig, source: KafkaClient | None,
                       target: KafkaClient) -> _TargetView:
    """Read the link's state and mode from the target (into ``entry``) and what it holds.
    Conflicts and errors are looked for only where the link state lets the link shape its
    target topics; conflicts need the source (``source`` None: unreachable)."""
    from mirror.records.link_state import read_state, read_stopped

    runs = None  # what the daemon does for the link, once its state is known
    try:
        st = (await read_state(target, link.name)).state
        entry["link_state"] = str(st.state)
        entry["link_state_since_ms"] = st.since_ms
        runs = st.runs
    except (KafkaError, OSError):
        entry["link_state"] = "unknown"
    policy = cfg.policy(link)
    view = _TargetView(await resolve_mode(link, target))
    entry["mode"] = view.mapping.mode
    synced_list = view.syncs = await view.mapping.load(TranslatingSink(target, policy.target_topic, link.name))
    view.topics = await target.list_topics()
    if runs is not None and runs.shapes_topics:  # else the target topics are not the link's to shape
        if source is not None:
            view.conflicts = await _conflicts(cfg, link, source, target, view.topics,
                                              None if view.mapping.preserves else {s.topic for s in synced_list})
        view.errors = {(x.topic, x.partition): x.reason for x in await read_stopped(target, link.name)
                       if x.state == "error"}
    return view


def _summary(entry: dict) -> dict[str, Any]:
    """Totals over the link's partition rows, and which ends could not be reached."""
    rows = entry["partitions"]
    return {
        "partitions": len(rows),
        "lagging": sum(1 for x in rows if (x["lag"] or 0) > 0),
        "total_lag": sum(x["lag"] or 0 for x in rows),
        "max_lag_seconds": max((x["lag_seconds"] for x in rows), default=0.0),
        "stopped": sum(1 for x in rows if x["state"] in STOPPED_STATES),
        "possible_duplicates": sum(x.get("possible_duplicates", 0) for x in rows),
        "unreachable": [c["cluster"] for c in entry.get("clusters", {}).values() if not c["reachable"]],
    }


def _mirrored_partitions(policy, topics: dict) -> list[tuple[str, str, int]]:
    """(source topic, target topic, partition) for each partition of ``topics`` the link mirrors."""
    return [(name, policy.target_topic(name), p) for name, meta in topics.items()
            if not is_internal_topic(name) and policy.should_mirror_topic(name)
            for p in sorted(meta.partitions)]


async def _partition_rows(entry: dict, policy, source: KafkaClient, target: KafkaClient | None,
                          view: _TargetView, now: int) -> None:
    """One row per mirrored source partition; without the target its ends are unknown.
    Offsets are read for all partitions at once (one ListOffsets per leader and kind)."""
    parts = _mirrored_partitions(policy, await source.list_topics())
    ranges = await source.offset_ranges([(name, p) for name, _, p in parts])
    tends: dict[tuple[str, int], int] = {}
    if target is not None:
        held = [(tname, p) for _, tname, p in parts
                if tname in view.topics and p in view.topics[tname].partitions]
        tends = await target.end_offsets(held)
    for name, tname, p in parts:
        start, src_end = ranges[(name, p)]
        row = {"topic": name, "partition": p, "target_topic": tname, "source_start": start,
               "source_end": src_end, "target_end": tends.get((tname, p)), "mirrored": None, "lag": None,
               "lag_seconds": 0.0, "state": "target-unreachable", "reason": None}
        if target is not None and view.mapping is not None:
            await _judge_row(row, source, view, now)
        entry["partitions"].append(row)


async def _judge_row(row: dict, source: KafkaClient, view: _TargetView, now: int) -> None:
    """Fill a reachable partition's row: how far it is mirrored, its lag in records and
    seconds, and its state (missing, in-sync, lagging, conflict or error) with the reason."""
    name, p, start, tgt_end = row["topic"], row["partition"], row["source_start"], row["target_end"]
    if tgt_end is None:
        mirrored, state = start, "missing"
    else:
        held = view.mapping.mirrored(name, p, tgt_end)
        mirrored = start if held is None else held
        state = "in-sync"
    reason = view.conflicts.get(row["target_topic"])
    if reason is not None:
        state, mirrored = "conflict", start
    elif (name, p) in view.errors:
        state, reason = "error", view.errors[(name, p)]
    lag = max(0, row["source_end"] - max(mirrored, start))
    lag_s = 0.0
    if lag > 0:
        state = "lagging" if state == "in-sync" else state
        ts = await _oldest_unmirrored_ts(source, name, p, max(mirrored, start))
        lag_s = max(0.0, (now - ts) / 1000) if ts > 0 else 0.0
    row.update(mirrored=mirrored, lag=lag, lag_seconds=round(lag_s, 3), state=state, reason=reason)


def _possible_duplicates(entry: dict, syncs: list) -> None:
    """Per partition, the target records the link's writers could not rule out as
    duplicates (translation: summed from the offset syncs that carry them; offset-preserving
    mode writes none, its count is 0)."""
    count: dict[tuple[str, int], int] = {}
    for s in syncs:
        if s.possible_duplicates:
            count[(s.topic, s.partition)] = count.get((s.topic, s.partition), 0) + s.possible_duplicates
    for row in entry["partitions"]:
        row["possible_duplicates"] = count.get((row["topic"], row["partition"]), 0)


async def _target_only_rows(entry: dict, policy, target: KafkaClient | None, target_topics: dict) -> None:
    """The source is unreachable: the target's end of every topic the link's names map to."""
    if target is None:
        return
    tps = [(tname, p) for tname, meta in sorted(target_topics.items())
           if (name := policy.source_of(tname)) is not None and not is_internal_topic(tname)
           and policy.should_mirror_topic(name) for p in sorted(meta.partitions)]
    tends = await target.end_offsets(tps)
    for tname, p in tps:
        entry["partitions"].append({
            "topic": policy.source_of(tname), "partition": p, "target_topic": tname, "source_start": None,
            "source_end": None, "target_end": tends[(tname, p)], "mirrored": None, "lag": None,
            "lag_seconds": 0.0, "state": "source-unreachable", "reason": None})


EXIT_OK, EXIT_OVER_LAG, EXIT_UNHEALTHY = 0, 3, 4


def exit_code(report: dict[str, Any], max_lag: int | None = None) -> int:
    """4 when a cluster is unreachable, a link cannot be read or a partition is stopped
    (conflict, error); else 3 when a partition lags by more than ``max_lag`` records; else 0."""
    if unhealthy(report):
        return EXIT_UNHEALTHY
    worst = max((p["lag"] or 0 for l in report["links"] for p in l["partitions"]), default=0)
    return EXIT_OVER_LAG if max_lag is not None and worst > max_lag else EXIT_OK


def unhealthy(report: dict[str, Any]) -> bool:
    """A cluster is unreachable, a link could not be read, or a partition is stopped."""
    return any(l.get("error") or l["summary"]["stopped"] or l["summary"]["unreachable"]
               for l in report["links"])


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
        for end, c in link.get("clusters", {}).items():
            if c["reachable"]:
                parts.append(Text(f"{end} {c['cluster']}: reachable"))
            else:
                parts.append(Text(f"{end} {c['cluster']}: unreachable ({c['error']})", style="bold red"))
        t = Table(title=title, title_justify="left")
        dups = link["mode"] == "translate"  # the only mode that can duplicate
        for col in ("topic", "partition", "source end", "target end", "lag", "lag (s)", "state",
                    *(["possible dups"] if dups else [])):
            t.add_column(col, justify="right" if col not in ("topic", "state") else "left")
        for p in link["partitions"]:
            style = "red" if (p["lag"] or 0) > 0 or p["state"] in STOPPED_STATES else None
            t.add_row(p["topic"], str(p["partition"]), "?" if p["source_end"] is None else str(p["source_end"]),
                      "-" if p["target_end"] is None else str(p["target_end"]),
                      "?" if p["lag"] is None else str(p["lag"]),
                      f"{p['lag_seconds']:.1f}", p["state"],
                      *([str(p.get("possible_duplicates", 0))] if dups else []), style=style)
        parts.append(t)
        s = link["summary"]
        parts.append(Text(f"{s['partitions']} partitions, {s['lagging']} lagging, "
                          f"{s['total_lag']} records behind, max {s['max_lag_seconds']:.1f}s"
                          + (f", {s['stopped']} stopped" if s.get("stopped") else "")
                          + (f", {s['possible_duplicates']} possible duplicate(s)" if dups else "")))
        reasons = {}
        for p in link["partitions"]:
            if p.get("reason"):
                reasons.setdefault(p["reason"], []).append(f"{p['topic']}-{p['partition']}")
        for reason, where in reasons.items():
            parts.append(Text(f"  {', '.join(where)}: {reason}", style="bold red"))
        for g in link["groups"]:
            sync = ("in sync" if g["in_sync"] else
                    f"last in sync {g['age_seconds']}s ago" if g["in_sync"] is False else
                    f"last checkpoint {g['age_seconds']}s ago (source unreachable)")
            parts.append(Text(f"  group {g['group']}: {sync}"))
    return Group(*parts)
