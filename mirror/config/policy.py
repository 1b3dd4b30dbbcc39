"""Which topics and groups a link mirrors, and what they are called on the target.

Naming decides whether active-active is safe: with ``prefix`` naming every mirrored topic
carries the alias of the cluster it came from (``east.orders`` on west), so a link can
recognise, and refuse, a topic that would travel back to where it came from. With
``identity`` naming nothing in the name says where a topic came from, so the config
loader refuses identity links that form a cycle over overlapping topic patterns
(:func:`patterns_may_overlap` is the conservative check it uses).

Everything here is pure: regexes and strings in, decisions out.
"""

from __future__ import annotations

import logging
import re
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parser  # type: ignore[attr-defined]
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # pragma: no cover - typing only, config imports this module
    from mirror.config.model import LinkConfig

log = logging.getLogger(__name__)

RenameMode = Literal["identity", "prefix"]

#: Prefix of every topic dcmirror itself writes (offset syncs, checkpoints, heartbeats).
DCMIRROR_INTERNAL_PREFIX = "__dcmirror."

#: Groups never mirrored: broker-internal ones and the mirror's own.
_INTERNAL_GROUP_PREFIXES = ("__", "dcmirror-", "dcmirror.")


def is_internal_topic(topic: str) -> bool:
    """True for topics that belong to some machinery rather than to users.

    Mirroring them would at best waste bandwidth and at worst corrupt the target: copying
    ``__consumer_offsets`` or another mirror's offset syncs makes no sense on a cluster
    with different offsets. We follow MirrorMaker 2's conventions so a cluster already
    mirrored by MM2 does not leak MM2's bookkeeping into ours:

    - ``__*``: Kafka internals (``__consumer_offsets``, ``__transaction_state``) and our
      own ``__dcmirror.*`` topics;
    - ``.*``: hidden topics by convention;
    - ``mm2-*``, ``*.internal``, ``*-internal`` (MM2 offset syncs, checkpoints, Connect
      configs/offsets/status), ``*.replica`` (replica topics of older tools);
    - ``heartbeats`` and ``<alias>.heartbeats`` (MM2 heartbeats).
    """
    return (
        topic.startswith("__")
        or topic.startswith(".")
        or topic.startswith("mm2-")
        or topic.endswith(".internal")
        or topic.endswith("-internal")
        or topic.endswith(".replica")
        or topic == "heartbeats"
        or topic.endswith(".heartbeats")
    )


def is_internal_group(group: str) -> bool:
    """True for consumer groups that are not users' (broker internals, our own)."""
    return group.startswith(_INTERNAL_GROUP_PREFIXES)


def _compile_all(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


@dataclass(frozen=True)
class NameFilter:
    """Include/exclude lists of regular expressions, each matching the whole name.

    Full match, not search: ``orders`` must not also pick ``orders-archive``; users who
    want a prefix write ``orders.*``.
    """

    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    _include: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)
    _exclude: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "include", tuple(self.include))
        object.__setattr__(self, "exclude", tuple(self.exclude))
        object.__setattr__(self, "_include", _compile_all(self.include))
        object.__setattr__(self, "_exclude", _compile_all(self.exclude))

    def matches(self, name: str) -> bool:
        if not any(p.fullmatch(name) for p in self._include):
            return False
        return not any(p.fullmatch(name) for p in self._exclude)


@dataclass(frozen=True)
class ReplicationPolicy:
    """Names on the target, and which source topics and groups one link may mirror.

    ``known_aliases`` are all cluster aliases of the config; they let loop prevention walk
    a chain of prefixes (``west.east.orders``) without mistaking an ordinary dotted topic
    name (``orders.eu``) for provenance.
    """

    source_alias: str
    target_alias: str
    rename: RenameMode = "identity"
    separator: str = "."
    topics: NameFilter = field(default_factory=lambda: NameFilter((".*",)))
    groups: NameFilter = field(default_factory=lambda: NameFilter((".*",)))
    known_aliases: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.rename not in ("identity", "prefix"):
            raise ValueError(f"rename must be identity or prefix, not {self.rename!r}")
        if not self.separator:
            raise ValueError("separator must not be empty")
        aliases = frozenset(self.known_aliases) | {self.source_alias, self.target_alias}
        object.__setattr__(self, "known_aliases", aliases)

    @classmethod
    def for_link(cls, link: LinkConfig, known_aliases: Iterable[str] = ()) -> ReplicationPolicy:
        """The policy a validated :class:`mirror.config.model.LinkConfig` describes."""
        return cls(
            source_alias=link.source,
            target_alias=link.target,
            rename=link.rename,
            separator=link.separator,
            topics=NameFilter(tuple(link.topics), tuple(link.exclude)),
            groups=NameFilter(tuple(link.groups), tuple(link.groups_exclude)),
            known_aliases=frozenset(known_aliases),
        )

    # -- naming ------------------------------------------------------------------------

    def target_topic(self, source_topic: str) -> str:
        """The name ``source_topic`` gets on the target cluster."""
        if self.rename == "prefix":
            return f"{self.source_alias}{self.separator}{source_topic}"
        return source_topic

    def source_of(self, target_topic: str) -> str | None:
        """Inverse of :meth:`target_topic`; None if the name cannot have come from us."""
        if self.rename == "identity":
            return target_topic
        prefix = f"{self.source_alias}{self.separator}"
        if target_topic.startswith(prefix) and len(target_topic) > len(prefix):
            return target_topic[len(prefix) :]
        return None

    # -- filters -----------------------------------------------------------------------

    def provenance(self, topic: str) -> list[str]:
        """Aliases the topic's name says it travelled through, nearest first.

        ``west.east.orders`` -> ``["west", "east"]`` when both are known aliases.
        """
        chain: list[str] = []
        rest = topic
        while True:
            head, sep, tail = rest.partition(self.separator)
            if not sep or not tail or head not in self.known_aliases:
                return chain
            chain.append(head)
            rest = tail

    def is_cycle(self, source_topic: str) -> bool:
        """True if mirroring ``source_topic`` would send it back to a cluster it came from.

        This is what makes two ``prefix`` links (east->west, west->east) safe: ``east.orders``
        on west carries east's alias, so west->east never copies it back to east.
        """
        return self.target_alias in self.provenance(source_topic)

    def should_mirror_topic(self, source_topic: str) -> bool:
        """The complete topic decision: not internal, no loop, and matched by the filter."""
        if is_internal_topic(source_topic):
            return False
        if self.is_cycle(source_topic):
            log.debug("not mirroring %s to %s: it came from there", source_topic, self.target_alias)
            return False
        return self.topics.matches(source_topic)

    def should_mirror_group(self, group: str) -> bool:
        """Whether a consumer group's offsets follow the data to the target."""
        return not is_internal_group(group) and self.groups.matches(group)


# -- conservative overlap of regular expressions ---------------------------------------


def _literal_ends(pattern: str) -> tuple[str, str] | None:
    """The literal prefix and suffix every full match of ``pattern`` must have.

    None when we cannot tell (case-insensitive flags, top-level alternation); callers
    then assume the worst.
    """
    try:
        parsed = sre_parser.parse(pattern)
    except re.error:
        return None
    if parsed.state.flags & re.IGNORECASE:
        return None
    items = list(parsed)
    literal = sre_constants.LITERAL
    prefix_chars: list[str] = []
    for op, av in items:
        if op == literal:
            prefix_chars.append(chr(av))
        elif op == sre_constants.AT:
            continue
        else:
            break
    suffix_chars: list[str] = []
    for op, av in reversed(items):
        if op == literal:
            suffix_chars.append(chr(av))
        elif op == sre_constants.AT:
            continue
        else:
            break
    return "".join(prefix_chars), "".join(reversed(suffix_chars))


def _is_literal(pattern: str) -> str | None:
    """The one string ``pattern`` matches, if it matches exactly one plain string."""
    try:
        parsed = sre_parser.parse(pattern)
    except re.error:
        return None
    if parsed.state.flags & re.IGNORECASE:
        return None
    chars = []
    for op, av in parsed:
        if op != sre_constants.LITERAL:
            return None
        chars.append(chr(av))
    return "".join(chars)


def patterns_may_overlap(a: str, b: str) -> bool:
    """Could one topic name fully match both regexes? Errs on the side of "yes".

    Exact when either side is a literal name; otherwise two patterns are declared disjoint
    only when their mandatory literal prefixes (or suffixes) contradict each other, as in
    ``east\\..*`` vs ``west\\..*``. Anything cleverer would need regex intersection, and a
    false "may overlap" only costs the user a clearer pattern, while a false "disjoint"
    costs records bouncing between clusters forever.
    """
    lit_a, lit_b = _is_literal(a), _is_literal(b)
    if lit_a is not None:
        return re.fullmatch(b, lit_a) is not None
    if lit_b is not None:
        return re.fullmatch(a, lit_b) is not None
    ends_a, ends_b = _literal_ends(a), _literal_ends(b)
    if ends_a is None or ends_b is None:
        return True
    (pa, sa), (pb, sb) = ends_a, ends_b
    if not (pa.startswith(pb) or pb.startswith(pa)):
        return False
    if not (sa.endswith(sb) or sb.endswith(sa)):
        return False
    return True


def filters_may_overlap(
    include_a: Sequence[str],
    exclude_a: Sequence[str],
    include_b: Sequence[str],
    exclude_b: Sequence[str],
) -> tuple[str, str] | None:
    """A pair of include patterns (one per side) that may select the same topic, or None.

    Excludes are honoured only for literal names (``payments`` included on one side and
    excluded on the other); for wildcard overlaps they are ignored, conservatively.
    """
    for pa in include_a:
        for pb in include_b:
            if not patterns_may_overlap(pa, pb):
                continue
            witness = _is_literal(pa) if _is_literal(pa) is not None else _is_literal(pb)
            if witness is not None and _excluded(witness, exclude_a, exclude_b):
                continue
            if witness is not None and is_internal_topic(witness):
                continue
            return pa, pb
    return None


def _excluded(name: str, *excludes: Sequence[str]) -> bool:
    return any(re.fullmatch(p, name) for patterns in excludes for p in patterns)
