"""A link's offset mapping, chosen once: identity when the target preserves offsets, else
the offset-sync table.

`resolve_mode` is the only place that decides a link's mode (``mode:`` from the YAML and
whether the target is a dcmirror cluster); the runner, checkpointer, topic sync, status,
failover, adopt, check and `offsets translate` all take the mapping it returns, so they can
never disagree about a link. A link that asks for ``preserve-offsets`` against a target
that cannot append at given offsets is refused with `ModeError`, everywhere the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from cluster.client.client import KafkaClient
from mirror.config.model import LinkConfig
from mirror.records.offsets import OffsetSync, OffsetSyncIndex
from mirror.replication.sinks import PreservingSink, TranslatingSink

PRESERVE = "preserve-offsets"
TRANSLATE = "translate"


class ModeError(Exception):
    """The link asks for a mode the target cannot provide."""


class _SyncReader(Protocol):
    async def read_syncs(self, since: int | None = None) -> list[OffsetSync]: ...


class OffsetMapping(Protocol):
    """Where a source offset of a mirrored partition is on the target."""

    mode: str
    preserves: bool

    async def load(self, reader: _SyncReader) -> list[OffsetSync]: ...

    def add_all(self, syncs: Iterable[OffsetSync]) -> None: ...

    def translate(self, topic: str, partition: int, upstream: int) -> int | None: ...

    def mirrored(self, topic: str, partition: int, target_end: int) -> int | None: ...

    def rereads(self, topic: str, partition: int, upstream: int) -> int: ...


class IdentityMapping:
    """Offset-preserving: every record sits on the target at its source offset, so the
    target's log end is the mirror's progress and a group resumes where it committed."""

    mode = PRESERVE
    preserves = True

    async def load(self, reader: _SyncReader) -> list[OffsetSync]:
        return []  # no syncs are written in this mode

    def add_all(self, syncs: Iterable[OffsetSync]) -> None:
        pass

    def translate(self, topic: str, partition: int, upstream: int) -> int | None:
        return upstream

    def mirrored(self, topic: str, partition: int, target_end: int) -> int | None:
        return target_end

    def rereads(self, topic: str, partition: int, upstream: int) -> int:
        return 0


class SyncMapping:
    """Translation: the target assigned its own offsets; the link's offset syncs
    (`OffsetSyncIndex`, read from ``__dcmirror.offset-syncs.<link>``) map between them."""

    mode = TRANSLATE
    preserves = False

    def __init__(self, index: OffsetSyncIndex | None = None) -> None:
        self.index = index if index is not None else OffsetSyncIndex()

    async def load(self, reader: _SyncReader) -> list[OffsetSync]:
        """Add every sync the reader holds; returns them (claims included), oldest first."""
        held = await reader.read_syncs()
        self.index.add_all(held)
        return held

    def add_all(self, syncs: Iterable[OffsetSync]) -> None:
        self.index.add_all(syncs)

    def translate(self, topic: str, partition: int, upstream: int) -> int | None:
        return self.index.translate(topic, partition, upstream)

    def mirrored(self, topic: str, partition: int, target_end: int) -> int | None:
        """The source offset up to which the target holds the records: the newest sync's."""
        store = self.index.store(topic, partition)
        newest = store.newest() if store is not None else None
        return None if newest is None else newest[0]

    def rereads(self, topic: str, partition: int, upstream: int) -> int:
        store = self.index.store(topic, partition)
        return 0 if store is None else store.rereads(upstream)


async def resolve_mode(link: LinkConfig, target: KafkaClient) -> OffsetMapping:
    """The link's mapping: ``auto`` preserves offsets when the target is a dcmirror cluster
    (it advertises the offset-preserving append), else translates; ``preserve-offsets``
    against any other target is a `ModeError`. A translation mapping starts empty: `load` it."""
    capable = await target.is_dcmirror()
    mode = link.resolved_mode(capable)
    if mode == PRESERVE and not capable:
        raise ModeError(f"link {link.name}: mode preserve-offsets needs a dcmirror target, but "
                        f"{link.target} does not offer the offset-preserving append API")
    return IdentityMapping() if mode == PRESERVE else SyncMapping()


def sink_for(mapping: OffsetMapping, target: KafkaClient, rename, link_name: str) -> PreservingSink | TranslatingSink:
    """The sink that writes the way the mapping reads."""
    if mapping.preserves:
        return PreservingSink(target, rename)
    return TranslatingSink(target, rename, link_name)

