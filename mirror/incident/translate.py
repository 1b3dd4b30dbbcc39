"""`dcmirror offsets translate`: where a consumer group would resume on the link's other side.

Answers the question operators ask before moving consumers by hand: identity in
offset-preserving mode, clamped to what the target holds; through the offset syncs in
translation mode (exact at batch boundaries, else the start of the batch: at most one batch
re-read). The group's commits are read from the source when it is reachable, else from the
newest checkpoints stored in the target.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from cluster.client.errors import KafkaError
from mirror.incident import failover_ops as ops
from mirror.records import link_state as ls
from mirror.config.model import LinkConfig, MirrorConfig
from mirror.incident.failover import gather_scope, latest_checkpoints
from mirror.records.offsets import read_checkpoints
from mirror.replication.mode import OffsetMapping

log = logging.getLogger(__name__)


@dataclass
class TranslatedRow:
    topic: str
    partition: int
    source_offset: int
    target_topic: str
    target_offset: int | None  # None: nothing mirrored there yet to resume from
    may_reread: int = 0


@dataclass
class Translation:
    link: str
    group: str
    mode: str
    from_: str  # "source commits" | "checkpoints"
    rows: list[TranslatedRow] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["from"] = doc.pop("from_")
        return doc


def translate_offset(mapping: OffsetMapping, topic: str, p: int, upstream: int,
                     target_end: int) -> tuple[int | None, int]:
    """(target offset, records a consumer may read twice) for a source offset: the link's
    mapping, never past what the target holds."""
    held = mapping.mirrored(topic, p, target_end)
    down = mapping.translate(topic, p, upstream if held is None else min(upstream, held))
    return down, 0 if down is None else mapping.rereads(topic, p, upstream)


async def translate_group(cfg: MirrorConfig, link: LinkConfig, group: str) -> Translation:
    policy = cfg.policy(link)
    target = ops.client_for(cfg, link.target)
    await target.start()
    try:
        state = (await ls.read_state(target, link.name)).state
        scope = await gather_scope(link, policy, target, state, await ls.read_last_contact(target, link.name))
        commits: dict[tuple[str, int], int] = {}
        origin = "checkpoints"
        if await ops.reachable(cfg, link.source):
            source = ops.client_for(cfg, link.source)
            try:
                await source.start()
                commits = {tp: o for tp, (o, _) in (await source.offset_fetch(group)).items() if o >= 0}
                origin = "source commits"
            except KafkaError as exc:
                log.warning("cannot read %s's commits on %s: %s", group, link.source, exc)
            finally:
                await source.close()
        if origin == "checkpoints":
            latest = latest_checkpoints(await read_checkpoints(target, link.name)).get(group, {})
            commits = {tp: cp.upstream_offset for tp, cp in latest.items()}
        tends = await ops.end_offsets(target, scope.target_tps())
        out = Translation(link.name, group, scope.mapping.mode, origin)
        for (topic, p), up in sorted(commits.items()):
            ttopic = scope.parts.get((topic, p))
            if ttopic is None:
                continue
            down, dup = translate_offset(scope.mapping, topic, p, up, tends[(ttopic, p)])
            out.rows.append(TranslatedRow(topic, p, up, ttopic, down, dup))
        return out
    finally:
        await target.close()
