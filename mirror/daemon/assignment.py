"""Who copies which partition when several mirror processes serve one link (pure logic).

The group leader (see `mirror/daemon/membership.py`) calls `assign` with every member's join
metadata and the partitions the link mirrors; each member gets its share in the SyncGroup
answer. The rules, each tested in tests/mirror/daemon/test_assignment.py:

- **Deterministic**: the result depends only on the inputs, never on their order, so any
  member computes the same answer as leader.
- **Balanced**: the target shares differ by at most one partition.
- **Sticky**: a member keeps what it owns up to its share; only the surplus moves (members
  say in their metadata what they currently own, as KIP-429's cooperative protocol does).
- **Revoke before reassign**: a partition whose target owner differs from its current,
  still-present owner is withheld from both for one generation. The owner sees it lost,
  stops copying, then rejoins; the next generation hands it over. Two members therefore
  never copy one partition at once, which matters in translation mode (a duplicate would
  be a second copy of the records under new offsets).

Metadata and assignments are small versioned JSON documents; partitions are written as
inclusive ranges per topic, because the broker caps join metadata (4 KiB on ours). A
member whose owned set does not fit says `owned: null` and must have stopped copying
before it joins (the eager protocol), so the leader may treat its partitions as free.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Iterable

TP = tuple[str, int]

PROTOCOL_TYPE = "dcmirror"
PROTOCOL_NAME = "dcmirror-sticky-v1"
#: Stay under the coordinator's join-metadata cap (our broker: 4096 bytes).
MAX_METADATA_BYTES = 3500


class AssignmentDecodeError(ValueError):
    """Join metadata or an assignment that is not ours (another protocol, garbage)."""


# ---- partition sets as ranges ------------------------------------------------------------

def to_ranges(tps: Iterable[TP]) -> dict[str, list[list[int]]]:
    """{topic: [[first, last], ...]} with inclusive, sorted, merged ranges."""
    by_topic: dict[str, list[int]] = {}
    for t, p in tps:
        by_topic.setdefault(t, []).append(p)
    out: dict[str, list[list[int]]] = {}
    for t in sorted(by_topic):
        ranges: list[list[int]] = []
        for p in sorted(set(by_topic[t])):
            if ranges and ranges[-1][1] == p - 1:
                ranges[-1][1] = p
            else:
                ranges.append([p, p])
        out[t] = ranges
    return out


def from_ranges(doc: object) -> frozenset[TP]:
    if not isinstance(doc, dict):
        raise AssignmentDecodeError(f"partition ranges must be an object, not {type(doc).__name__}")
    out = set()
    for t, ranges in doc.items():
        for r in ranges:
            if not (isinstance(r, list) and len(r) == 2 and all(isinstance(x, int) for x in r) and r[0] <= r[1]):
                raise AssignmentDecodeError(f"bad partition range {r!r} for topic {t!r}")
            out.update((t, p) for p in range(r[0], r[1] + 1))
    return frozenset(out)


def partitions_digest(tps: Iterable[TP]) -> str:
    """A short fingerprint of a partition set (members compare views in logs and metadata)."""
    return hashlib.sha1(json.dumps(to_ranges(tps), sort_keys=True).encode()).hexdigest()[:12]


# ---- join metadata -------------------------------------------------------------------------

@dataclass(frozen=True)
class MemberMetadata:
    """What a member says about itself when it joins."""

    host: str = ""
    pid: int = 0
    #: partitions it is copying now; None = unknown (it stopped everything before joining)
    owned: frozenset[TP] | None = frozenset()
    #: generation in which it received `owned` (the newer claim wins a conflict)
    generation: int = -1
    #: fingerprint of the partitions it sees, for logs and diagnosis
    seen: str = ""

    def encode(self) -> bytes:
        doc = {"v": 1, "host": self.host, "pid": self.pid, "generation": self.generation,
               "seen": self.seen, "owned": None if self.owned is None else to_ranges(self.owned)}
        raw = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
        if len(raw) > MAX_METADATA_BYTES and self.owned is not None:
            raise ValueError(f"join metadata of {len(raw)} bytes exceeds {MAX_METADATA_BYTES}; "
                             f"join with owned=None (after stopping every partition)")
        return raw

    def fits(self) -> bool:
        try:
            self.encode()
            return True
        except ValueError:
            return False

    @classmethod
    def decode(cls, raw: bytes) -> "MemberMetadata":
        doc = _load(raw)
        owned = doc.get("owned")
        return cls(str(doc.get("host", "")), int(doc.get("pid", 0)),
                   None if owned is None else from_ranges(owned),
                   int(doc.get("generation", -1)), str(doc.get("seen", "")))


@dataclass(frozen=True)
class Assignment:
    """A member's share for one generation, as the leader sends it in SyncGroup."""

    partitions: frozenset[TP] = frozenset()
    generation: int = -1
    leader: str = ""
    #: partitions held back this generation until their current owner has let go
    withheld: int = 0

    def encode(self) -> bytes:
        doc = {"v": 1, "generation": self.generation, "leader": self.leader,
               "withheld": self.withheld, "partitions": to_ranges(self.partitions)}
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes) -> "Assignment":
        if not raw:
            return cls()
        doc = _load(raw)
        return cls(from_ranges(doc.get("partitions", {})), int(doc.get("generation", -1)),
                   str(doc.get("leader", "")), int(doc.get("withheld", 0)))


def _load(raw: bytes) -> dict:
    try:
        doc = json.loads(bytes(raw))
    except (ValueError, UnicodeDecodeError) as exc:
        raise AssignmentDecodeError(f"not dcmirror group data: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("v") != 1:
        raise AssignmentDecodeError("not dcmirror group data (version 1)")
    return doc


# ---- the assignor ----------------------------------------------------------------------------

@dataclass
class Plan:
    """The leader's decision: what each member copies now, and the balanced target."""

    now: dict[str, frozenset[TP]]
    target: dict[str, frozenset[TP]]
    withheld: frozenset[TP] = field(default_factory=frozenset)


def current_owners(members: dict[str, MemberMetadata], partitions: frozenset[TP]) -> dict[TP, str]:
    """Each claimed partition's owner: the claim from the newest generation, ties to the
    smallest member id. Claims on partitions no longer mirrored are ignored."""
    owner: dict[TP, tuple[int, str]] = {}
    for mid in sorted(members):
        meta = members[mid]
        if meta.owned is None:
            continue
        for tp in meta.owned & partitions:
            prev = owner.get(tp)
            if prev is None or meta.generation > prev[0]:
                owner[tp] = (meta.generation, mid)
    return {tp: mid for tp, (_, mid) in owner.items()}


def balanced_target(members: dict[str, MemberMetadata], partitions: frozenset[TP]) -> dict[str, frozenset[TP]]:
    """Sticky and balanced: members keep owned partitions up to their share, the rest are
    dealt round-robin in (topic, partition) order over members in id order."""
    if not members:
        return {}
    owners = current_owners(members, partitions)
    owned: dict[str, list[TP]] = {m: [] for m in members}
    for tp, m in owners.items():
        owned[m].append(tp)
    base, extra = divmod(len(partitions), len(members))
    # The `extra` larger shares go to the members that already own the most (fewest moves).
    order = sorted(members, key=lambda m: (-len(owned[m]), m))
    cap = {m: base + (1 if i < extra else 0) for i, m in enumerate(order)}
    result: dict[str, list[TP]] = {m: sorted(owned[m])[: cap[m]] for m in members}
    taken = {tp for tps in result.values() for tp in tps}
    ids = sorted(members)
    i = 0
    for tp in sorted(partitions - taken):
        while len(result[ids[i % len(ids)]]) >= cap[ids[i % len(ids)]]:
            i += 1
        result[ids[i % len(ids)]].append(tp)
        i += 1
    return {m: frozenset(tps) for m, tps in result.items()}


def assign(members: dict[str, MemberMetadata], partitions: Iterable[TP]) -> Plan:
    """The leader's assignment for one generation (see the module docstring for the rules)."""
    parts = frozenset(partitions)
    target = balanced_target(members, parts)
    owners = current_owners(members, parts)
    now: dict[str, frozenset[TP]] = {}
    withheld: set[TP] = set()
    for m, tps in target.items():
        moving = {tp for tp in tps if owners.get(tp, m) != m}
        withheld |= moving
        now[m] = tps - moving
    return Plan(now, target, frozenset(withheld))
