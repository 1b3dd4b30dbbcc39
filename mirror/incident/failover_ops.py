"""Cluster operations failover and failback are made of, each one request-shaped and idempotent.

Kept apart from the procedures (mirror/incident/failover.py, mirror/incident/failback.py) so those read as
a sequence of steps, and so each step can be re-run safely: fencing a fenced topic,
promoting a promoted one, truncating at or beyond the log end, or appending batches the
target already holds all change nothing. Everything goes through `cluster.client`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from kio.schema.errors import ErrorCode

from cluster.client.admin import NewTopic
from cluster.client.client import KafkaClient
from cluster.client.data import LATEST, FetchPosition
from cluster.client.errors import KafkaError, KafkaProtocolError
from cluster.wire import record_batch as rb
from cluster.wire.dcmirror_api import FENCED, MIRROR_SOURCE  # noqa: F401  (ops.FENCED)
from mirror.config.clients import client_for_cluster
from mirror.config.model import MirrorConfig

log = logging.getLogger(__name__)

TP = tuple[str, int]


def client_for(cfg: MirrorConfig, alias: str, *, timeout_s: float | None = None) -> KafkaClient:
    c = cfg.clusters[alias]
    t = timeout_s if timeout_s is not None else c.client.request_timeout_s
    return client_for_cluster(c, "failover", request_timeout_s=t, retry_deadline_s=min(t, 10.0))


async def _any_port_open(bootstrap: list[str], timeout_s: float) -> bool:
    from cluster.client.core import parse_bootstrap

    for host, port in parse_bootstrap(bootstrap):
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
        except (OSError, asyncio.TimeoutError):
            continue
        writer.close()
        return True
    return False


async def reachable(cfg: MirrorConfig, alias: str, timeout_s: float = 3.0) -> bool:
    """Can we talk to the cluster at all? A refused or silent port answers in at most
    ``timeout_s`` (no retries: a dark datacenter must not slow the failover down)."""
    if not await _any_port_open(cfg.clusters[alias].bootstrap, min(timeout_s, 2.0)):
        return False
    probe = client_for(cfg, alias, timeout_s=timeout_s)
    try:
        await asyncio.wait_for(probe.start(), timeout_s + 1)
        return True
    except (KafkaError, OSError, asyncio.TimeoutError):
        return False
    finally:
        await probe.close()


async def is_dcmirror(client: KafkaClient) -> bool:
    """Does ``client``'s cluster offer offset-preserving append (a dcmirror cluster)?"""
    return await client.is_dcmirror()


async def topic_overrides(client: KafkaClient, topics: list[str]) -> dict[str, dict[str, str]]:
    if not topics:
        return {}
    described = await client.describe_configs(topics)
    return {t: {k: e.value for k, e in entries.items() if not e.is_default and e.value is not None}
            for t, entries in described.items()}


async def set_configs(client: KafkaClient, changes: dict[str, dict[str, str | None]]) -> None:
    """Set (value) or delete (None) dcmirror's topic configs, in one request."""
    if changes:
        await client.incremental_alter_configs(changes)


async def end_offsets(client: KafkaClient, tps: Iterable[TP], which: int = LATEST) -> dict[TP, int]:
    """Log end (-1) or start (-2) offsets of many partitions: one ListOffsets per leader,
    whatever the number of topics (failover at scale reads thousands at once)."""
    return {tp: off for tp, (off, _) in (await client.offsets_at(tps, which)).items()}


async def truncate(client: KafkaClient, offsets: dict[TP, int]) -> dict[TP, int]:
    """DcMirrorTruncate: cut mirror partitions back to ``offsets``; returns new log ends."""
    return await client.truncate(offsets)


async def fetch_batches(client: KafkaClient, topic: str, p: int, start: int, end: int,
                        max_bytes: int = 8 << 20) -> list[memoryview]:
    """Whole batches covering [start, end) (the first may begin before ``start``)."""
    out: list[memoryview] = []
    pos = start
    while pos < end:
        res = (await client.fetch({(topic, p): FetchPosition(pos, max_bytes)}, max_wait_ms=0,
                                  min_bytes=0))[(topic, p)]
        if res.error_code:
            raise KafkaProtocolError(ErrorCode(res.error_code), None, context=f"fetch {topic}-{p}")
        if not res.records:
            break
        mv = memoryview(res.records)
        advanced = False
        for at, h in rb.iter_batches(mv):
            if h.next_offset <= pos or h.base_offset >= end:
                continue
            out.append(mv[at : at + h.size])
            pos = h.next_offset
            advanced = True
        if not advanced:
            break
    return out


async def copy_preserving(src: KafkaClient, src_topic: str, dst: KafkaClient, dst_topic: str, p: int,
                          start: int, end: int) -> int:
    """Copy batches [start, end) keeping their offsets (DcMirrorAppend); returns the
    destination's new end. The destination must be a mirror topic."""
    pos = start
    new_end = start
    while pos < end:
        batches = await fetch_batches(src, src_topic, p, pos, end, max_bytes=4 << 20)
        if not batches:
            break
        await dst.append_batches(dst_topic, p, b"".join(batches))
        pos = rb.read_header(batches[-1]).next_offset
        new_end = pos
    return new_end


async def ensure_mirror_topic(client: KafkaClient, name: str, partitions: int, configs: dict[str, str]) -> bool:
    """Create ``name`` unless it exists; True if created."""
    if name in await client.list_topics(include_internal=True):
        return False
    try:
        await client.create_topics([NewTopic(name, partitions, -1, configs)])
        return True
    except KafkaProtocolError as exc:
        if exc.error_code != ErrorCode.topic_already_exists:
            raise
        return False


async def keep_records(client: KafkaClient, topic: str, ranges: dict[int, tuple[int, int]], kept: str,
                       partitions: int, marker: str) -> list[str]:
    """Keep records [start, end) of ``topic``'s partitions in ``kept`` on the same cluster,
    offsets preserved, before they are cut: ``kept`` is created read-only (marked a mirror
    of ``marker``), retention -1, never mirrored nor deleted by dcmirror. Idempotent (a
    re-run continues where ``kept`` ends). Returns what is missing, empty when all is kept:
    the caller must not cut anything then."""
    await ensure_mirror_topic(client, kept, partitions, {MIRROR_SOURCE: marker, "retention.ms": "-1"})
    spans = {p: (start, end) for p, (start, end) in sorted(ranges.items()) if end > start}
    have = await client.end_offsets([(kept, p) for p in spans])
    for p, (start, end) in spans.items():
        await copy_preserving(client, topic, client, kept, p, max(have[(kept, p)], start), end)
    held = await client.end_offsets([(kept, p) for p in spans])
    return [f"{kept}-{p}: kept only up to {held[(kept, p)]} of {end}"
            for p, (_, end) in spans.items() if held[(kept, p)] < end]


async def active_groups(client: KafkaClient, groups: list[str]) -> set[str]:
    """Groups with members on ``client``'s cluster (their offsets are not ours to move)."""
    if not groups:
        return set()
    try:
        described = await client.describe_groups(groups)
    except KafkaProtocolError:
        return set()
    return {g for g, d in described.items() if d.members}
