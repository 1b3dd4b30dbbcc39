"""User scenarios shared by the tests against our clusters and against Apache Kafka."""

from __future__ import annotations

from collections import Counter
from typing import Callable

from tests import clients


def keyed_records_every_codec(bootstrap: str, topic: str, restart: Callable[[], str] | None = None,
                              producers: list[str] | None = None, consumers: list[str] | None = None,
                              per_run: int = 40) -> list[clients.Consumed]:
    """Create a 6-partition topic, produce keyed records with headers in every codec with
    each producer, read them back with every consumer, check the murmur2 placement, and
    (with `restart`) read everything back byte for byte after a restart."""
    from cluster.client.partitioner import partition_for_key

    producers = producers or list(clients.PRODUCERS)
    consumers = consumers or list(clients.CONSUMERS)
    clients.create_topic(bootstrap, topic, 6)
    sent: Counter = Counter()
    for pname in producers:
        for codec in clients.CODECS:
            recs = clients.make_records(f"{pname}-{codec}", per_run)
            if pname == "kcat":
                recs = [(k, v, recs[0][2]) for k, v, _ in recs]
            clients.PRODUCERS[pname](bootstrap, topic, recs, codec)
            for k, v, h in recs:
                sent[(k, v, tuple(h))] += 1
    end = clients.end_offsets(bootstrap, topic, 6)
    assert sum(end.values()) == sum(sent.values())
    reference = None
    for cname in consumers:
        got = clients.CONSUMERS[cname](bootstrap, topic, 6, end)
        assert len(got) == sum(sent.values()), f"{cname} read {len(got)} of {sum(sent.values())}"
        if reference is None:
            reference = got
            assert Counter((m.key, m.value, m.headers) for m in got) == sent
            for m in got:
                assert m.partition == partition_for_key(m.key, 6), m
            offsets: dict[int, list[int]] = {}
            for m in got:
                offsets.setdefault(m.partition, []).append(m.offset)
            for p, offs in offsets.items():
                assert offs == list(range(len(offs))), f"partition {p} offsets not dense"
        else:
            assert got == reference, f"{cname} disagrees with {consumers[0]}"
    assert reference is not None
    if restart is not None:
        bootstrap = restart()
        again = clients.consume_confluent(bootstrap, topic, 6, end)
        assert again == reference
    return reference
