"""Target topics that already exist: adopt them when nothing is lost, else stop loudly.

Any client that looks a topic up on the target before the link's first topic sync (`kcat -L
-t T`, a producer already pointed at the DR cluster, AdminClient ``list_topics(topic=...)``)
makes a broker with auto-creation create it there, with one partition. A link that then
appended into it would either be refused for good (offset-preserving mode: the topic is not
marked as a mirror) or mix the application's records into the copy (translation mode).

The rule, decided here once for the daemon's topic sync, ``dcmirror status`` and
``dcmirror link adopt``:

- a topic the link owns is mirrored as always. Owned means: marked
  ``dcmirror.mirror.source=<source alias>`` (offset-preserving mode), or claimed in the
  link's offset-sync topic (translation mode: a claim record, or any offset sync, names
  the topic; see :func:`mirror.records.offsets.claim_sync`);
- a topic the link does not own is **adopted** when every partition is empty at offset 0
  (log start = log end = 0; in translation mode empty is enough, offsets are translated)
  and no consumer group has committed offsets on it: the link
  marks or claims it, grows its partitions and sets its configs, one INFO line;
- anything else is a **conflict**: that topic alone is not copied, its partitions show
  state ``conflict`` with :func:`conflict_reason` (the topic, what was found, the command
  that resolves it), and ``dcmirror status`` exits non-zero until an operator acts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from cluster.client.client import KafkaClient
from cluster.wire import dcmirror_api

log = logging.getLogger(__name__)

MIRROR_SOURCE = dcmirror_api.MIRROR_SOURCE
#: Marks a topic ``dcmirror link adopt --truncate`` is working on: producers are refused and
#: the mirror's truncate is allowed, but no link takes it for its own until adopt finishes.
ADOPTING = "dcmirror-adopt"


@dataclass(frozen=True)
class Existing:
    """What the target holds in a topic the link did not create."""

    topic: str
    offsets: dict[int, tuple[int, int]] = field(hash=False)  # partition -> (log start, log end)
    groups: tuple[str, ...] = ()  # groups with committed offsets on the topic
    marked_by: str | None = None  # dcmirror.mirror.source of someone else
    #: Offset-preserving mode: partitions must be empty *at offset 0* (offsets must match
    #: the source's); translation mode assigns its own offsets, so empty is enough.
    at_zero: bool = True

    @property
    def records(self) -> int:
        return sum(end - start for start, end in self.offsets.values())

    @property
    def adoptable(self) -> bool:
        return (self.marked_by is None and not self.groups
                and all(start == end and (end == 0 or not self.at_zero) for start, end in self.offsets.values()))


def resolve_command(config: str, link: str, topic: str) -> str:
    return f"dcmirror link adopt {config} --link {link} --topic {topic} --truncate"


def conflict_reason(found: Existing, link: str, config: str) -> str:
    """One sentence: the topic, what was found, and what resolves it."""
    parts = len(found.offsets)
    if found.marked_by is not None:
        what = f"is marked as a mirror of {found.marked_by!r}"
    else:
        held = [p for p, (s, e) in sorted(found.offsets.items()) if e > s]
        moved = [p for p, (s, e) in sorted(found.offsets.items()) if e == s and e > 0 and found.at_zero]
        bits = []
        if held:
            bits.append(f"{found.records} record(s) in partition(s) "
                        f"{', '.join(map(str, held))} of {parts}")
        if moved:
            bits.append(f"partition(s) {', '.join(map(str, moved))} of {parts} already past offset 0")
        if found.groups:
            bits.append(f"committed offsets of group(s) {', '.join(found.groups)}")
        what = "holds " + "; ".join(bits)
    return (f"target topic {found.topic} already exists, was not created by link {link} and {what}; "
            f"not mirroring into it. Delete it, or run `{resolve_command(config, link, found.topic)}` "
            f"(keeps its records in a {KEPT_PREFIX}{found.topic}.<time> topic)")


KEPT_PREFIX = "__dcmirror.kept."


async def groups_on(client: KafkaClient, topic: str) -> tuple[str, ...]:
    """Groups with a committed offset on ``topic`` (one OffsetFetch per group)."""
    out = []
    for g in await client.list_groups():
        committed = await client.offset_fetch(g.group_id)
        if any(t == topic and off >= 0 for (t, _), (off, _) in committed.items()):
            out.append(g.group_id)
    return tuple(sorted(out))


async def inspect(client: KafkaClient, topic: str, partitions: list[int], marker: str | None,
                  ours: str | None, *, at_zero: bool = True) -> Existing:
    """The facts about ``topic`` on ``client``; groups are only asked for when the
    partitions are empty (they cannot change a conflict into an adoption)."""
    offsets = {p: se for (_, p), se in (await client.offset_ranges([(topic, p) for p in partitions])).items()}
    marked_by = marker if marker and marker != ours else None
    found = Existing(topic, offsets, (), marked_by, at_zero)
    if found.records == 0 and marked_by is None:
        found = Existing(topic, offsets, await groups_on(client, topic), None, at_zero)
    return found
