"""KIP-848 server-side assignors, `uniform` (the default) and `range`, as pure functions.

Why on the broker: in the consumer protocol (KIP-848) the coordinator computes each
member's target assignment; clients only name an assignor. Both take the members'
subscribed topics (already resolved from regexes) and the topics' partition counts and
return member id -> {topic: partitions}. Deterministic for the same input, so a restart
computes the same targets.

- `uniform` spreads every subscribed partition so member counts differ by at most one
  among members with the same subscription, keeping a partition with its previous target
  owner while that owner is under its quota (sticky: fewer revocations on a rebalance).
- `range` is the classic per-topic range: for each topic, its subscribers sorted by
  member id get consecutive ranges, the first `partitions % members` one more.
"""

from __future__ import annotations

from typing import Mapping

Assignment = dict[str, frozenset[int]]
ASSIGNORS = ("uniform", "range")
DEFAULT = "uniform"


def assign(
    name: str,
    subscriptions: Mapping[str, frozenset[str]],
    partitions: Mapping[str, int],
    previous: Mapping[str, Assignment] | None = None,
) -> dict[str, Assignment]:
    """Target assignment of every member (an empty one for members with nothing)."""
    if name == "range":
        return _range(subscriptions, partitions)
    return _uniform(subscriptions, partitions, previous or {})


def _range(subscriptions: Mapping[str, frozenset[str]], partitions: Mapping[str, int]) -> dict[str, Assignment]:
    out: dict[str, dict[str, set[int]]] = {m: {} for m in subscriptions}
    for topic in sorted(partitions):
        members = sorted(m for m, subs in subscriptions.items() if topic in subs)
        if not members:
            continue
        n = partitions[topic]
        per, extra = divmod(n, len(members))
        start = 0
        for i, m in enumerate(members):
            count = per + (1 if i < extra else 0)
            if count:
                out[m][topic] = set(range(start, start + count))
            start += count
    return {m: {t: frozenset(ps) for t, ps in a.items()} for m, a in out.items()}


def _uniform(
    subscriptions: Mapping[str, frozenset[str]],
    partitions: Mapping[str, int],
    previous: Mapping[str, Assignment],
) -> dict[str, Assignment]:
    members = sorted(subscriptions)
    out: dict[str, dict[str, set[int]]] = {m: {} for m in members}
    counts = {m: 0 for m in members}
    # Members sharing a subscription share a quota: total partitions of it / members.
    groups: dict[frozenset[str], list[str]] = {}
    for m in members:
        groups.setdefault(subscriptions[m], []).append(m)
    quota: dict[str, int] = {}
    for subs, ms in groups.items():
        total = sum(partitions.get(t, 0) for t in subs)
        quota.update({m: -(-total // len(ms)) for m in ms})  # ceil
    owner: dict[tuple[str, int], str] = {}
    for m, a in previous.items():
        if m in counts:
            for t, ps in a.items():
                for p in ps:
                    owner[(t, p)] = m
    unplaced: list[tuple[str, int]] = []
    for topic in sorted(partitions):
        for p in range(partitions[topic]):
            prev = owner.get((topic, p))
            if prev is not None and topic in subscriptions[prev] and counts[prev] < quota[prev]:
                out[prev].setdefault(topic, set()).add(p)
                counts[prev] += 1
            else:
                unplaced.append((topic, p))
    # Sticky placement may leave members below their floor; take from those above it.
    for topic, p in unplaced:
        eligible = [m for m in members if topic in subscriptions[m]]
        if not eligible:
            continue
        m = min(eligible, key=lambda x: (counts[x], x))
        out[m].setdefault(topic, set()).add(p)
        counts[m] += 1
    _rebalance(out, counts, subscriptions)
    return {m: {t: frozenset(ps) for t, ps in a.items() if ps} for m, a in out.items()}


def _rebalance(out: dict[str, dict[str, set[int]]], counts: dict[str, int],
               subscriptions: Mapping[str, frozenset[str]]) -> None:
    """Move partitions from the fullest to the emptiest eligible member until within one."""
    moved = True
    while moved:
        moved = False
        for rich in sorted(counts, key=lambda x: (-counts[x], x)):
            for topic in sorted(out[rich]):
                for p in sorted(out[rich][topic]):
                    poor = [m for m in counts if topic in subscriptions[m] and counts[m] < counts[rich] - 1]
                    if not poor:
                        continue
                    target = min(poor, key=lambda x: (counts[x], x))
                    out[rich][topic].discard(p)
                    out[target].setdefault(topic, set()).add(p)
                    counts[rich] -= 1
                    counts[target] += 1
                    moved = True
                    break
                if moved:
                    break
            if moved:
                break
