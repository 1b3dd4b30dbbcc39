"""The per-link copy loop: fetch raw batches from the source, hand them to the sink.

One loop serves every partition assigned to this process for a link: one Fetch per source
leader carries all partitions (as a Kafka follower does), one append request per target
leader carries all results. Batches are never decompressed or re-encoded; the hot path
does per-batch header reads only.

Faults (unreachable clusters, broker restarts, leader changes) end the iteration; the
loop backs off with jitter (tenacity's wait strategy), logs once per state change, and
resumes from the sink's own record of progress, so nothing is lost and — with the
offset-preserving sink — nothing is duplicated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Sequence

from kio.schema.errors import ErrorCode
from tenacity import wait_exponential_jitter

from cluster.client.client import KafkaClient
from cluster.client.data import FetchPosition, FetchResult
from cluster.client.errors import KafkaError, KafkaProtocolError
from cluster.client.waits import until
from cluster.wire import record_batch as rb
from mirror.replication.progress import Alarm, LinkProgress, TP
from mirror.replication.sinks import Sink

log = logging.getLogger(__name__)

#: Write errors that retrying at once cannot fix (permission, a batch the target refuses):
#: that partition alone stops with state ``error`` and its reason, and is tried again every
#: `PARK_S` seconds (a granted ACL or a raised limit then resumes it); the others go on.
FATAL_WRITE = frozenset(int(c) for c in (
    ErrorCode.topic_authorization_failed, ErrorCode.cluster_authorization_failed,
    ErrorCode.invalid_request, ErrorCode.message_too_large, ErrorCode.record_list_too_large,
    ErrorCode.invalid_topic_exception, ErrorCode.policy_violation))
# INVALID_RECORD stays a retry (of every partition, at the same offset): the source served
# a batch the target's validator refuses, and a repaired source must be picked up at once.
PARK_S = 30.0


class LinkCopier:
    def __init__(
        self,
        link: str,
        source: KafkaClient,
        sink: Sink,
        progress: LinkProgress,
        rename: Callable[[str], str],
        *,
        start_from: str = "earliest",
        partition_max_bytes: int = 4 << 20,
        fetch_max_bytes: int = 32 << 20,
        max_wait_ms: int = 500,
        on_written: Callable[[dict], None] | None = None,
        latency=None,
    ) -> None:
        self.link = link
        self.source = source
        self.sink = sink
        self.progress = progress
        self.rename = rename
        self.start_from = start_from
        self.partition_max_bytes = partition_max_bytes
        self.fetch_max_bytes = fetch_max_bytes
        self.max_wait_ms = max_wait_ms
        self.on_written = on_written
        self.latency = latency  # a prometheus Histogram child, or None
        self.translate = sink.mode == "translate"
        self._assigned: set[TP] = set()
        self._positions: dict[TP, int] = {}
        self._stopped: set[TP] = set()
        self._parked: dict[TP, float] = {}  # fatal write error: not before this monotonic time
        self._aborted: dict[TP, set[int]] = {}
        self._topic_ids: dict[str, object] = {}
        self._changed = asyncio.Event()
        self._wait = wait_exponential_jitter(initial=0.2, max=10.0)
        self._failures = 0
        self._state = "starting"
        self._detail = ""
        self.hold: str | None = None  # a link state other than normal: copy nothing
        # The next fetch, started while the previous batches are being written, and the
        # positions it was asked for (used only if they are still the positions then).
        self._prefetch: tuple[asyncio.Future, dict[TP, int]] | None = None

    def set_hold(self, hold: str | None) -> None:
        """Stop copying while ``hold`` names a link state (failed-over, paused...); resume
        from the sink's record of progress when it is None again."""
        if hold != self.hold:
            self.hold = hold
            self._changed.set()

    # ---- assignment --------------------------------------------------------------
    def set_assignment(self, tps: Sequence[TP]) -> None:
        new = set(tps)
        if new != self._assigned:
            for tp in self._assigned - new:
                self._positions.pop(tp, None)
                self._parked.pop(tp, None)
            self._assigned = new
            self._changed.set()

    def stop_partition(self, tp: TP, state: str, error: str) -> None:
        self._stopped.add(tp)
        self._positions.pop(tp, None)
        p = self.progress.partitions.get(tp)
        if p is not None:
            p.state, p.error = state, error

    @property
    def assignment(self) -> set[TP]:
        return set(self._assigned)

    def failing(self) -> dict[TP, str]:
        """Partitions stopped by a write error, with the reason."""
        return {tp: self.progress.partitions[tp].error for tp in self._parked if tp in self.progress.partitions}

    def _park(self, tp: TP, exc: KafkaProtocolError) -> None:
        self._parked[tp] = time.monotonic() + PARK_S
        self._positions.pop(tp, None)
        pp = self.progress.partitions.get(tp)
        reason = (f"writing {tp[0]}-{tp[1]} to the target is refused: {exc}; retrying every "
                  f"{PARK_S:.0f}s, the other partitions keep copying")
        if pp is not None and pp.error != reason:
            log.error("link %s: %s", self.link, reason)
            pp.state, pp.error = "error", reason

    async def _resume(self) -> None:
        now = time.monotonic()
        for tp in [tp for tp, at in self._parked.items() if at <= now]:
            del self._parked[tp]
        missing = [tp for tp in self._assigned
                   if tp not in self._positions and tp not in self._stopped and tp not in self._parked]
        if not missing:
            return
        found = await self.sink.resume_positions(missing)
        fresh = [tp for tp in missing if found.get(tp) is None]
        if fresh:   # nothing on the target yet: start_from, one ListOffsets per leader
            found.update(await (self.source.start_offsets(fresh) if self.start_from == "earliest"
                                else self.source.end_offsets(fresh)))
        for tp in missing:
            pos = found[tp]
            self._positions[tp] = pos
            tid = self.source.cached_topic_id(tp[0])
            if tid is not None:
                self._topic_ids.setdefault(tp[0], tid)
            pp = self.progress.partition(tp[0], tp[1], self.rename(tp[0]))
            pp.position = pos
            if pp.state != "error":  # a parked partition shows its error until a write succeeds
                pp.state = "running"
            log.info("link %s: %s-%d resumes at offset %d", self.link, tp[0], tp[1], pos)

    # ---- the loop ----------------------------------------------------------------
    def _set_state(self, state: str, detail: str = "") -> None:
        # A new cause while already retrying (the source came back, and now the target
        # refuses a batch) is logged and shown too, not hidden behind the first one.
        if state != self._state or detail != self._detail:
            level = logging.WARNING if state == "retrying" else logging.INFO
            log.log(level, "link %s: %s%s", self.link, state, f" ({detail})" if detail else "")
            self._state, self._detail = state, detail
            self.progress.state, self.progress.error = state, detail

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.hold is not None:
                self._cancel_prefetch()
                self._positions.clear()
                self._set_state(self.hold)
                self._changed.clear()
                await until(stop, self._changed, 1.0)
                continue
            try:
                self._changed.clear()  # the assignment as of now is what _resume starts
                await self._resume()
                if not self._positions:
                    self._set_state("idle")
                    self._changed.clear()
                    await until(stop, self._changed, 1.0)
                    continue
                await self.step()
                self._failures = 0
                self._set_state("running")
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                self._failures += 1
                self.progress.retries += 1
                self._set_state("retrying", f"{type(exc).__name__}: {exc}")
                # Progress lives in the target: re-read it rather than trust memory.
                self._cancel_prefetch()
                self._positions.clear()
                delay = self._wait(_RetryState(self._failures))
                await until(stop, None, delay)

    def _cancel_prefetch(self) -> None:
        if self._prefetch is not None:
            self._prefetch[0].cancel()
            self._prefetch = None

    async def _fetch(self, positions: dict[TP, int]) -> dict[TP, FetchResult]:
        req = {tp: FetchPosition(pos, self.partition_max_bytes) for tp, pos in positions.items()}
        return await self.source.fetch(
            req, max_wait_ms=self.max_wait_ms, min_bytes=1, max_bytes=self.fetch_max_bytes,
            isolation="read_committed" if self.translate else "read_uncommitted",
        )

    async def step(self) -> int:
        """One fetch + one write, the next fetch overlapping the write (so a copy runs at
        the pace of the slower side, not of both added). Returns the batches copied."""
        fut = None
        if self._prefetch is not None:
            fut, asked = self._prefetch
            self._prefetch = None
            if asked != self._positions:
                fut.cancel()
                fut = None
        if fut is None:
            fut = asyncio.ensure_future(self._fetch(dict(self._positions)))
        results = await self._unless_reassigned(fut)
        if results is None:
            return 0
        self._check_topic_ids(results)
        to_write: dict[TP, list[memoryview]] = {}
        for tp, res in results.items():
            if tp not in self._positions:
                continue
            if res.error_code == ErrorCode.offset_out_of_range:
                await self._out_of_range(tp, self._positions[tp])
                continue
            batches = self._accept(tp, res)
            if batches:
                to_write[tp] = batches
        if not to_write:
            return 0
        upcoming = dict(self._positions)
        for tp, bs in to_write.items():
            upcoming[tp] = rb.read_header(bs[-1]).next_offset
        self._prefetch = (asyncio.ensure_future(self._fetch(upcoming)), upcoming)
        written = await self.sink.write(to_write)
        now = int(time.time() * 1000)
        n = 0
        retry: KafkaProtocolError | None = None
        for tp, w in written.items():
            if tp not in self._positions or tp not in self.progress.partitions:
                continue  # revoked while the write was in flight: it is someone else's now
            self.progress.add_possible_duplicates(tp, w.possible_duplicates)
            if w.error is not None:
                retry = self._write_failed(tp, w.error) or retry
            if w.batches:
                n += self._written(tp, w, to_write[tp][: w.batches], now)
        if self.on_written is not None:
            self.on_written(written)
        if retry is not None:
            raise retry  # resume every partition from the target's record, as for any fault
        return n

    async def _unless_reassigned(self, fut: asyncio.Future) -> dict[TP, FetchResult] | None:
        """The fetch's results, or None when the assignment changed first: a fetch waits up
        to `max_wait_ms` for data on the partitions it asked for, and a partition just added
        (a new topic, by the topic watch) must not wait for that long poll to end."""
        changed = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.wait([fut, changed], return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
        if fut.done():
            return fut.result()
        fut.cancel()
        return None

    def _write_failed(self, tp: TP, error: KafkaProtocolError) -> KafkaProtocolError | None:
        """Park the partition (fatal), or return the error to retry every partition with."""
        if int(error.error_code) in FATAL_WRITE:
            self._park(tp, error)
            return None
        pp = self.progress.partitions[tp]
        pp.state, pp.error = "retrying", str(error)
        return error

    def _written(self, tp: TP, w, bs: list[memoryview], now: int) -> int:
        """Account for ``bs``, the batches of ``tp`` the target acknowledged."""
        pp = self.progress.partitions[tp]
        if w.error is None and pp.state != "running":
            pp.state, pp.error = "running", ""
        pp.position = max(pp.position, w.next_upstream)
        if tp in self._positions:  # not parked just now
            self._positions[tp] = max(self._positions[tp], w.next_upstream)
        pp.batches += len(bs)
        pp.records += sum(rb.read_header(b).records_count for b in bs)
        pp.bytes += sum(len(b) for b in bs)
        pp.last_copied_ms = now
        if pp.position >= pp.source_end:
            pp.oldest_unmirrored_ts = -1
        if self.latency is not None:
            last = rb.read_header(bs[-1])
            if not last.log_append_time and last.max_timestamp > 0:
                self.latency.observe(max(0.0, (now - last.max_timestamp) / 1000))
        return len(bs)

    def _accept(self, tp: TP, res: FetchResult) -> list[memoryview]:
        pp = self.progress.partitions[tp]
        pos = self._positions[tp]
        if res.error_code:
            raise KafkaProtocolError(res.error_code, context=f"fetch {tp[0]}-{tp[1]}")
        pp.source_end = res.high_watermark
        pp.source_start = res.log_start_offset
        if res.log_start_offset > pos:
            # Retention removed records we never copied: skip ahead, loudly.
            self._lost(tp, pos, res.log_start_offset)
            self._positions[tp] = pos = res.log_start_offset
        out: list[memoryview] = []
        mv = memoryview(res.records)
        aborted = self._aborted.setdefault(tp, set())
        if self.translate:
            for pid, _first in res.aborted_transactions:
                aborted.add(pid)
        for at, h in rb.iter_batches(mv):
            if h.next_offset <= pos:
                continue
            if self.translate:
                if h.is_control:
                    aborted.discard(h.producer_id)
                    continue
                if h.is_transactional and h.producer_id in aborted:
                    continue
            if not out and pp.oldest_unmirrored_ts < 0:
                pp.oldest_unmirrored_ts = h.base_timestamp
            out.append(mv[at : at + h.size])
        if self.translate and not out and res.records:
            # Only control/aborted batches: advance past them without writing.
            last = None
            for _, h in rb.iter_batches(mv):
                last = h
            if last is not None and last.next_offset > pos:
                self._positions[tp] = pp.position = last.next_offset
        return out

    def _check_topic_ids(self, results: dict) -> None:
        """A source topic deleted and recreated under the same name gets a new topic id:
        its records must never be mixed into the old copy. The fetch was built from the
        metadata cache, which only ever moves from the old id to the new one, so an
        unchanged cache after the fetch means the data came from the remembered topic."""
        for topic in {t for t, _ in results}:
            known = self._topic_ids.get(topic)
            now = self.source.cached_topic_id(topic)
            if known is None or now is None or now == known:
                continue
            msg = (f"source topic {topic} was deleted and recreated (topic id {known} -> {now}); "
                   f"copying stopped so the new topic is never mixed into the old copy")
            log.error("link %s: ALARM %s", self.link, msg)
            self.progress.alarms.append(Alarm("topic-recreated", topic, -1, msg))
            for tp in [tp for tp in self._assigned if tp[0] == topic]:
                self.stop_partition(tp, "error", msg)

    def _lost(self, tp: TP, pos: int, log_start: int) -> None:
        count = log_start - pos
        msg = (f"{count} record(s) of {tp[0]}-{tp[1]} (offsets {pos}..{log_start - 1}) were "
               f"deleted by source retention before they were mirrored")
        log.error("link %s: ALARM %s", self.link, msg)
        self.progress.alarms.append(Alarm("records-lost", tp[0], tp[1], msg, count))

    async def _out_of_range(self, tp: TP, pos: int) -> None:
        """Below the source log start: retention won the race (skip ahead, alarm). Beyond
        the source log end: the source was truncated or recreated (stop, alarm)."""
        start, end = (await self.source.offset_ranges([tp]))[tp]
        if pos < start:
            self._lost(tp, pos, start)
            self._positions[tp] = start
            self.progress.partitions[tp].position = start
            return
        if pos <= end:
            return  # raced with a retention or leader change: just fetch again
        msg = (f"{tp[0]}-{tp[1]}: mirrored position {pos} is beyond the source log; the source "
               f"partition was truncated or recreated. Copying stopped for this partition.")
        log.error("link %s: ALARM %s", self.link, msg)
        self.progress.alarms.append(Alarm("source-truncated", tp[0], tp[1], msg))
        self.stop_partition(tp, "error", msg)


class _RetryState:
    """The minimal retry state tenacity's wait strategies read."""

    def __init__(self, attempt: int) -> None:
        self.attempt_number = attempt
