"""`dcmirror link adopt`: make a conflicting target topic the link's own, losing nothing.

A target topic the link did not create and that holds records (an application wrote to
the DR cluster before the link's first topic sync) is stopped as a `conflict`
(`mirror.replication.existing`). Deleting it loses those records; this command keeps them the way
failback keeps diverged records (`failover_ops.keep_records`), then empties the topic and
hands it to the link:

1. **Fence**: offset-preserving targets mark the topic ``dcmirror.mirror.source=dcmirror-adopt``
   (producers are refused from here; no link takes the topic yet).
2. **Keep**: its records are copied into ``__dcmirror.kept.<topic>.<UTC time>`` on the
   same cluster (offsets preserved on dcmirror targets; produced on other clusters).
3. **Empty**: DcMirrorTruncate to offset 0 (dcmirror), or DeleteRecords to the end
   (translation targets: offsets there need not start at 0). Repeated until nothing is
   left, for writers that were not fenced.
4. **Own**: mark the topic a mirror of the link's source (dcmirror) or claim it in the
   link's offset-sync topic. The running daemon mirrors into it at its next topic sync.

Without ``--truncate`` only an adoptable topic (empty at offset 0, no group offsets) is
taken; anything else is refused with what was found. Re-running is harmless.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from cluster.client.client import KafkaClient
from cluster.client.errors import KafkaError
from mirror.replication import existing
from mirror.incident import failover_ops as ops
from mirror.config.model import LinkConfig, MirrorConfig
from mirror.incident.failover import FailoverError
from mirror.replication.mode import resolve_mode, sink_for
from mirror.replication.sinks import for_produce

log = logging.getLogger(__name__)


@dataclass
class AdoptReport:
    link: str
    topic: str  # on the target
    source_topic: str
    mode: str = ""
    already: bool = False
    kept_topic: str | None = None
    kept_records: int = 0
    partitions: int = 0
    groups: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def kept_topic_name(topic: str, stamp: str) -> str:
    name = f"{existing.KEPT_PREFIX}{topic}.{stamp}"
    room = 249 - len(existing.KEPT_PREFIX) - len(stamp) - 1
    return name if len(name) <= 249 else f"{existing.KEPT_PREFIX}{topic[:room]}.{stamp}"


def _names(cfg: MirrorConfig, link: LinkConfig, topic: str) -> tuple[str, str]:
    """(source topic, target topic) for a name given either way."""
    policy = cfg.policy(link)
    source = policy.source_of(topic)
    if source is not None and policy.should_mirror_topic(source):
        return source, topic
    if policy.should_mirror_topic(topic):
        return topic, policy.target_topic(topic)
    raise FailoverError(f"link {link.name} does not mirror a topic named {topic}")


async def _offsets(client: KafkaClient, topic: str, parts: list[int]) -> dict[int, tuple[int, int]]:
    return {p: se for (_, p), se in (await client.offset_ranges([(topic, p) for p in parts])).items()}


async def _keep_by_produce(client: KafkaClient, topic: str, ranges: dict[int, tuple[int, int]], kept: str,
                           partitions: int) -> None:
    """Translation targets have no offset-preserving append: produce the batches as they
    are (records untouched, see `sinks.for_produce`) into ``kept``."""
    await ops.ensure_mirror_topic(client, kept, partitions, {"retention.ms": "-1"})
    for p, (start, end) in sorted(ranges.items()):
        for batch in await ops.fetch_batches(client, topic, p, start, end):
            await client.produce(kept, p, for_produce(batch), acks=-1)


async def _empty(target: KafkaClient, topic: str, parts: list[int], preserve: bool, kept: str,
                 report: AdoptReport) -> None:
    """Keep, then cut, until the topic holds nothing (writers that were not fenced)."""
    for _ in range(10):
        ranges = {p: se for p, se in (await _offsets(target, topic, parts)).items() if se[1] > se[0]}
        if not ranges:
            return
        if preserve:
            missing = await ops.keep_records(target, topic, ranges, kept, len(parts), existing.ADOPTING)
            if missing:
                raise FailoverError(f"{missing[0]}; nothing was truncated, run adopt again")
            await ops.truncate(target, {(topic, p): 0 for p in ranges})
        else:
            await _keep_by_produce(target, topic, ranges, kept, len(parts))
            await target.delete_records({(topic, p): end for p, (_, end) in ranges.items()})
        report.kept_topic = kept
        report.kept_records += sum(end - start for start, end in ranges.values())
    raise FailoverError(f"{topic} keeps being written to; stop its producers and run adopt again")


async def run_adopt(cfg: MirrorConfig, link: LinkConfig, topic: str, *, truncate: bool) -> AdoptReport:
    """Adopt ``topic`` (named on either side) into ``link``: see the module docstring."""
    source_topic, target_topic = _names(cfg, link, topic)
    report = AdoptReport(link.name, target_topic, source_topic)
    target = ops.client_for(cfg, link.target)
    try:
        try:
            await target.start()
        except (KafkaError, OSError) as exc:
            raise FailoverError(f"cannot reach {link.target!r}: {exc}") from None
        mapping = await resolve_mode(link, target)
        report.mode = mapping.mode
        topics = await target.list_topics()
        if target_topic not in topics:
            raise FailoverError(f"{target_topic} does not exist on {link.target}; nothing to adopt "
                                "(the link creates it at its next topic sync)")
        parts = sorted(topics[target_topic].partitions)
        report.partitions = len(parts)
        sink = sink_for(mapping, target, cfg.policy(link).target_topic, link.name)
        marker, owned = await _ownership(target, link, mapping.preserves, sink, source_topic, target_topic)
        if owned:
            report.already = True
            report.notes.append(f"{target_topic} is already mirrored by link {link.name}")
            return report
        found = await existing.inspect(target, target_topic, parts,
                                       None if marker == existing.ADOPTING else marker, link.source,
                                       at_zero=mapping.preserves)
        report.groups = list(found.groups) or list(await existing.groups_on(target, target_topic))
        _refuse_unless_takeable(cfg, link, found, mapping.preserves, truncate)
        await _take(target, link, sink, mapping.preserves, parts, report)
        return report
    finally:
        await target.close()


async def _ownership(target: KafkaClient, link: LinkConfig, preserve: bool, sink, source_topic: str,
                     target_topic: str) -> tuple[str | None, bool]:
    """(the topic's mirror marker, whether the link already owns it): by the marker on
    offset-preserving targets, by the link's offset-sync claims in translation mode."""
    if preserve:
        marker = (await ops.topic_overrides(target, [target_topic])).get(target_topic, {}).get(
            existing.MIRROR_SOURCE)
        return marker, marker == link.source
    return None, source_topic in {s.topic for s in await sink.read_syncs()}


def _refuse_unless_takeable(cfg: MirrorConfig, link: LinkConfig, found: existing.Existing, preserve: bool,
                            truncate: bool) -> None:
    """Raise FailoverError, saying why, when the topic is another link's, holds what only
    --truncate may move aside, or (offset-preserving) no longer starts at offset 0."""
    if found.marked_by is not None:
        raise FailoverError(f"{found.topic} is a mirror of {found.marked_by!r} (another link); "
                            "not taking it")
    if not found.adoptable and not truncate:
        raise FailoverError(existing.conflict_reason(found, link.name, str(cfg.path)).replace(
            "not mirroring into it", "pass --truncate to keep its records aside and adopt it"))
    late = [p for p, (s, _) in found.offsets.items() if s > 0]
    if preserve and late:
        raise FailoverError(f"{found.topic} partition(s) {', '.join(map(str, late))} start past offset 0 "
                            "(records were deleted), so offsets cannot match the source; delete the "
                            "topic instead (the link recreates it)")


async def _take(target: KafkaClient, link: LinkConfig, sink, preserve: bool, parts: list[int],
                report: AdoptReport) -> None:
    """Fence, keep, empty and own the topic (steps 1-4 of the module docstring)."""
    target_topic = report.topic
    if preserve:
        await ops.set_configs(target, {target_topic: {existing.MIRROR_SOURCE: existing.ADOPTING}})
    kept = kept_topic_name(target_topic, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    await _empty(target, target_topic, parts, preserve, kept, report)
    if preserve:
        await ops.set_configs(target, {target_topic: {existing.MIRROR_SOURCE: link.source}})
    else:
        await sink.claim([report.source_topic])
    if report.groups:
        report.notes.append(f"group(s) {', '.join(report.groups)} had offsets on {target_topic}; the "
                            "link's checkpoints move mirrored groups while they have no members")
    log.info("link %s: adopted %s (%d record(s) kept in %s)", link.name, target_topic,
             report.kept_records, report.kept_topic or "-")
