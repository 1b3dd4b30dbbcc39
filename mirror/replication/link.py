"""One link's runtime: connect, choose the mode, then run copier, topic sync and checkpoints.

The mode is decided by asking the target what it is: a dcmirror cluster advertises the
private DcMirrorAppend API in ApiVersions, which enables offset-preserving mode
(`mode: auto`); any other cluster gets translation mode. Everything this runner learns
lives in `LinkProgress`, which status, metrics and failover read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from tenacity import wait_exponential_jitter

from cluster.client.client import KafkaClient
from cluster.client.dial import Dialer, default_dial
from cluster.client.errors import KafkaError
from mirror.replication.checkpoints import Checkpointer
from mirror.config.model import LinkConfig, MirrorConfig
from cluster.client.waits import until
from mirror.replication.copier import LinkCopier, _RetryState
from mirror.records.link_machine import BEHAVIOUR, Behaviour, State
from mirror.records.link_state import LinkState, LinkStateWatcher, Stopped
from mirror.config.clients import client_for_cluster
from mirror.replication.progress import LinkProgress, TP
from mirror.replication.mode import resolve_mode, sink_for
from mirror.replication.topic_sync import TopicSync

log = logging.getLogger(__name__)


def make_client(cfg: MirrorConfig, alias: str, link: str, dial: Dialer) -> KafkaClient:
    return client_for_cluster(cfg.clusters[alias], link, dial=dial)


class _FencedCopier(LinkCopier):
    """A copier whose in-flight step can be awaited (`drain`): scale-out hands a revoked
    partition to another process only after this one's last write to it has landed
    (mirror/daemon/membership.py). Positions of partitions no longer assigned (re-added by a
    write or resume that raced with the revocation) are dropped around every step."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._step_lock = asyncio.Lock()

    def _prune(self) -> None:
        for tp in [tp for tp in self._positions if tp not in self._assigned]:
            del self._positions[tp]

    async def step(self) -> int:
        async with self._step_lock:
            self._prune()
            try:
                return await super().step()
            finally:
                self._prune()

    async def _resume(self) -> None:
        async with self._step_lock:
            await super()._resume()
            self._prune()

    async def drain(self) -> None:
        async with self._step_lock:
            self._prune()


class LinkRunner:
    def __init__(self, cfg: MirrorConfig, link: LinkConfig, *, dial: Dialer = default_dial,
                 assignor=None) -> None:
        self.cfg = cfg
        self.link = link
        self.policy = cfg.policy(link)
        self.dial = dial
        self.progress = LinkProgress(link.name)
        self.source = make_client(cfg, link.source, link.name, dial)
        self.target = make_client(cfg, link.target, link.name, dial)
        self.copier: LinkCopier | None = None
        self.assignor = assignor  # scale-out: filters partitions to this member's share
        self.mirrored_topics: set[str] = set()
        self.all_partitions: list[TP] = []
        self.synced = asyncio.Event()
        self._sync_now = asyncio.Event()  # the topic watch asks for a topic sync now
        self.latency = None  # set by the daemon: a latency histogram child
        self.link_state = None  # mirror.records.link_state.LinkState the daemon obeys
        #: called with each link state the runner starts obeying (the daemon's supervisor
        #: starts and stops the reversed runner from it)
        self.on_state: Callable[[LinkState], None] | None = None

    async def _connect(self, stop: asyncio.Event) -> bool:
        wait = wait_exponential_jitter(initial=0.5, max=10)
        attempt = 0
        last = ""
        while not stop.is_set():
            try:
                await self.source.start()
                await self.target.start()
                return True
            except (KafkaError, OSError) as exc:
                attempt += 1
                msg = f"{type(exc).__name__}: {exc}"
                if msg != last:
                    log.warning("link %s: waiting for clusters (%s)", self.link.name, msg)
                    last = msg
                self.progress.state = "connecting"
                await until(stop, None, wait(_RetryState(attempt)))
        return False

    async def run(self, stop: asyncio.Event) -> None:
        try:
            if not await self._connect(stop):
                return
            mapping = await resolve_mode(self.link, self.target)
            self.progress.mode = mapping.mode
            rename = self.policy.target_topic
            sink = sink_for(mapping, self.target, rename, self.link.name)
            held = await self._load_syncs(mapping, sink)
            claimed = {s.topic for s in held}
            if not mapping.preserves:
                # Claims share the syncs' retention: renew them at every start.
                await sink.claim(sorted(claimed))  # type: ignore[union-attr]
            log.info("link %s: %s -> %s in %s mode", self.link.name, self.link.source,
                     self.link.target, mapping.mode)

            def on_written(written: dict) -> None:
                for w in written.values():
                    mapping.add_all(w.syncs)
                if not mapping.preserves:
                    claimed.update(t for t, _ in written)

            self.copier = _FencedCopier(self.link.name, self.source, sink, self.progress, rename,
                                        start_from=self.link.start_from, on_written=on_written,
                                        latency=self.latency)
            topic_sync = TopicSync(self.link, self.policy, self.source, self.target, self.progress,
                                   mapping, self.link.source, claimed=claimed,
                                   claim=None if mapping.preserves else sink.claim,  # type: ignore[union-attr]
                                   refresh_claims=None if mapping.preserves else sink.new_claims,  # type: ignore[union-attr]
                                   config_path=str(self.cfg.path))

            def mirrored_position(tp: TP) -> int:
                p = self.progress.partitions.get(tp)
                return p.position if p is not None else -1

            checkpointer = Checkpointer(self.link.name, self.policy, self.source, self.target,
                                        self.progress, mapping, mirrored_position)
            watcher = LinkStateWatcher(self.link.name, self.source, self.target,
                                       lambda: list(self.all_partitions), self._obey, stopped=self._stopped)
            try:  # know the link state before copying or checkpointing anything
                await watcher.poll_once()
            except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                log.warning("link %s: cannot read the link state yet: %s", self.link.name, exc)
            await asyncio.gather(
                watcher.run(stop),
                self.copier.run(stop),
                self._every(stop, self.link.sync_interval_s, "topic sync",
                            lambda: self._sync_topics(topic_sync), wake=self._sync_now),
                *([self._watch_topics(stop, topic_sync)] if self.link.topic_watch_interval_s > 0 else []),
                self._every(stop, self.link.checkpoint_interval_s, "checkpoints",
                            lambda: self._checkpoint(checkpointer)),
                *([self.assignor.run(stop, self._apply_assignment)]
                  if hasattr(self.assignor, "run") else []),
            )
        finally:
            await self.source.close()
            await self.target.close()

    async def _load_syncs(self, mapping, sink) -> list:
        """The link's offset syncs (translation; none otherwise) into the mapping, and the
        possible duplicates they record into the progress (the metric counts from there)."""
        held = await mapping.load(sink)
        for s in held:
            self.progress.add_possible_duplicates((s.topic, s.partition), s.possible_duplicates)
        return held

    def _stopped(self) -> tuple[Stopped, ...]:
        """Partitions this process stopped for a reason only it knows (state error), for
        `dcmirror status`; conflicts are not sent, status finds those in the clusters."""
        return tuple(Stopped(pp.topic, pp.partition, pp.state, pp.error)
                     for (_, _), pp in sorted(self.progress.partitions.items())
                     if pp.state == "error")

    def _obey(self, state: LinkState) -> None:
        """The link state changed (failover, failback, pause): do what the machine says."""
        self.link_state = state
        hold = None if state.runs.copies else state.state
        if self.copier is not None:
            self.copier.set_hold(hold)
        if self.on_state is not None:
            self.on_state(state)
        log.info("link %s: link state %s%s", self.link.name, state.state,
                 "" if hold is None else ": not copying")

    def _runs(self) -> Behaviour:
        """What the link state lets this runner do (all of it until the state is known)."""
        return BEHAVIOUR[State.NORMAL] if self.link_state is None else self.link_state.runs

    async def _checkpoint(self, checkpointer: Checkpointer) -> None:
        if self._runs().checkpoints:
            await checkpointer.once(self.mirrored_topics)

    async def _sync_topics(self, topic_sync: TopicSync) -> None:
        if not self._runs().shapes_topics:
            return  # e.g. failed over: the target's topics are no longer ours to shape
        mirrored = await topic_sync.once()
        self.mirrored_topics = {m.source for m in mirrored}
        self.all_partitions = [(m.source, p) for m in mirrored for p in range(m.partitions)]
        mine = self.all_partitions
        if self.assignor is not None:
            mine = self.assignor.filter(mine)
        assert self.copier is not None
        self.copier.set_assignment(mine)
        self.synced.set()

    async def _apply_assignment(self, share: frozenset[TP]) -> None:
        """Scale-out: the group changed this process's share. When this returns, revoked
        partitions are no longer copied here, nor shown in this process's progress."""
        if self.copier is None or self.assignor is None:
            return
        before = self.copier.assignment
        self.copier.set_assignment(self.assignor.filter(self.all_partitions))
        lost = before - self.copier.assignment
        if lost:
            await self.copier.drain()
            for tp in lost:
                self.progress.partitions.pop(tp, None)

    async def _watch_topics(self, stop: asyncio.Event, topic_sync: TopicSync) -> None:
        """New source topics and partitions reach the target within about a second, not a
        whole `sync_interval_s`: one Metadata request every `topic_watch_interval_s`, and a
        topic sync at once when the matched topics or their partition counts differ from
        what the last sync saw. (Kafka has no topic-creation notification for clients, so
        a cheap poll is the watch; the full sync with configs stays on its interval.) A
        difference that a sync could not resolve (the sync failed, or left a topic out)
        triggers once, not on every poll."""
        triggered: dict[str, int] | None = None
        while not stop.is_set():
            await until(stop, None, self.link.topic_watch_interval_s)
            if stop.is_set() or not self._runs().shapes_topics:
                continue
            try:
                shape = await topic_sync.watch_shape()
            except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                log.debug("link %s: topic watch: %s", self.link.name, exc)
                continue
            if topic_sync.source_shape is not None and shape != topic_sync.source_shape and shape != triggered:
                log.debug("link %s: source topics changed; syncing now", self.link.name)
                triggered = shape
                self._sync_now.set()

    async def _every(self, stop: asyncio.Event, interval: float, what: str, fn,
                     wake: asyncio.Event | None = None) -> None:
        """``fn`` every ``interval`` seconds, or at once when ``wake`` is set."""
        failing = False
        while not stop.is_set():
            if wake is not None:
                wake.clear()
            started = time.monotonic()
            try:
                await fn()
                if failing:
                    log.info("link %s: %s recovered", self.link.name, what)
                failing = False
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                if not failing:
                    log.warning("link %s: %s failed, retrying: %s", self.link.name, what, exc)
                failing = True
            await until(stop, wake, max(0.1, interval - (time.monotonic() - started)))
