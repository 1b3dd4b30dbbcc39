"""The copy loop's per-partition faults (mirror/replication/copier.py), with a fake source and sink: a
write the target refuses for good (permission, not a mirror topic) stops that partition
alone with state `error` and its reason, the others keep copying, and the partition is
tried again later; a transient refusal shows `retrying` and every partition resumes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from kio.schema.errors import ErrorCode

from cluster.client.data import FetchResult
from cluster.client.errors import KafkaProtocolError
from cluster.wire import record_batch as rb
from cluster.wire.batch_builder import build_batch
from mirror.replication.copier import LinkCopier
from mirror.replication.progress import LinkProgress
from mirror.replication.sinks import Written

TP = tuple[str, int]


@dataclass
class FakeSource:
    logs: dict[TP, bytes]  # one batch per partition, base offset 0

    async def fetch(self, req, **kw) -> dict[TP, FetchResult]:
        out = {}
        for tp, pos in req.items():
            data = self.logs[tp]
            end = rb.read_header(memoryview(data)).next_offset
            out[tp] = FetchResult(0, end, end, 0, (), data if pos.offset < end else b"")
        return out

    async def start_offsets(self, tps):
        return {tp: 0 for tp in tps}

    async def end_offsets(self, tps):
        return {tp: rb.read_header(memoryview(self.logs[tp])).next_offset for tp in tps}

    async def offset_ranges(self, tps):
        starts, ends = await self.start_offsets(tps), await self.end_offsets(tps)
        return {tp: (starts[tp], ends[tp]) for tp in tps}

    def cached_topic_id(self, topic):
        return None


@dataclass
class FakeSink:
    refuse: dict[TP, ErrorCode] = field(default_factory=dict)
    held: dict[TP, int] = field(default_factory=dict)
    mode: str = "preserve-offsets"

    async def resume_positions(self, tps):
        return {tp: self.held.get(tp) for tp in tps}

    async def write(self, data):
        out = {}
        for tp, bs in data.items():
            code = self.refuse.get(tp)
            if code is not None:
                out[tp] = Written(-1, [], KafkaProtocolError(code, "refused", context=f"append to {tp[0]}-{tp[1]}"))
                continue
            nxt = rb.read_header(bs[-1]).next_offset
            self.held[tp] = nxt
            out[tp] = Written(nxt, [], None, len(bs))
        return out


def make(refuse: dict[TP, ErrorCode]) -> tuple[LinkCopier, FakeSink]:
    logs = {("t", p): build_batch([(b"k", f"v{p}-{i}".encode(), [], 1) for i in range(3)]) for p in range(3)}
    sink = FakeSink(refuse)
    c = LinkCopier("l", FakeSource(logs), sink, LinkProgress("l"), lambda t: t)  # type: ignore[arg-type]
    c.set_assignment(list(logs))
    return c, sink


async def one_round(c: LinkCopier) -> None:
    await c._resume()
    try:
        await c.step()
    except KafkaProtocolError:
        c._positions.clear()  # what the run loop does
    c._cancel_prefetch()


def test_a_refused_partition_stops_alone_with_its_reason_and_is_retried_later() -> None:
    c, sink = make({("t", 1): ErrorCode.topic_authorization_failed})

    async def go() -> None:
        await one_round(c)
        assert sink.held == {("t", 0): 3, ("t", 2): 3}  # the others were copied
        pp = c.progress.partitions[("t", 1)]
        assert pp.state == "error" and "TOPIC_AUTHORIZATION_FAILED" in pp.error.upper() and "t-1" in pp.error
        assert set(c.failing()) == {("t", 1)}
        await one_round(c)  # parked: not tried again at once
        assert ("t", 1) not in sink.held
        del sink.refuse[("t", 1)]  # the ACL is granted
        c._parked[("t", 1)] = 0.0  # its retry time has come
        await one_round(c)
        assert sink.held[("t", 1)] == 3 and pp.state == "running" and pp.error == ""

    asyncio.run(go())


def test_a_transient_refusal_shows_retrying_and_every_partition_resumes() -> None:
    c, sink = make({("t", 0): ErrorCode.not_leader_or_follower})

    async def go() -> None:
        await one_round(c)
        assert c.progress.partitions[("t", 0)].state == "retrying"
        assert "NOT_LEADER" in c.progress.partitions[("t", 0)].error.upper()
        assert not c.failing() and not c._positions  # resumes from the sink's record
        del sink.refuse[("t", 0)]
        await one_round(c)
        assert sink.held == {("t", 0): 3, ("t", 1): 3, ("t", 2): 3}
        assert {pp.state for pp in c.progress.partitions.values()} == {"running"}

    asyncio.run(go())
