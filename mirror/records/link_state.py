"""A link's durable state and the mirror's "last contact" with its source, kept in the target.

Failover must work when the source datacenter is gone, so everything it needs lives in the
target cluster, written by whoever knows it:

- ``__dcmirror.link-state.<link>`` (one partition, kept forever): state changes, written by
  ``dcmirror failover`` / ``failback`` (``normal`` -> ``failing-over`` -> ``failed-over``
  -> ``failing-back`` -> ``normal`` or ``reversed``; ``paused`` stops copying by hand; the
  rules are `link_machine`'s).
  The newest record wins. A running ``dcmirror mirror`` polls it every second and stops
  copying a link that is not ``normal``, so nobody restarts the daemon during an incident;
  the daemon answers with an ``ack`` record naming the state it obeys.
- ``__dcmirror.last-contact.<link>`` (one partition, short retention, zstd): every few
  seconds the daemon asks the source for its end offsets and records them, with the
  partitions it has stopped (state ``error``/``conflict`` and reason) for ``dcmirror status``. After an
  unplanned failover, "records the source had acknowledged at last contact but the target
  never received" is exactly ``last contact end - mirrored end`` per partition: the
  recovery point the failover report prints. Records produced after the last contact are
  unknowable, so the report also says when that contact was.

Records: key = kind (``state``, ``ack``, ``contact``), value = JSON with a ``v`` version.
Everything here but :class:`LinkStateWatcher` and the read/write helpers is pure.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from cluster.client.client import KafkaClient
from cluster.client.errors import KafkaError
from cluster.wire.compression import CODEC_ZSTD
from mirror.records import link_machine as machine
from mirror.records.store import InternalStore, InternalTopic

log = logging.getLogger(__name__)

LINK_STATE_PREFIX = "__dcmirror.link-state."
LAST_CONTACT_PREFIX = "__dcmirror.last-contact."
VERSION = 1

Ends = dict[str, dict[int, int]]  # topic -> partition -> offset


def link_state_topic(link: str) -> str:
    return f"{LINK_STATE_PREFIX}{link}"


def last_contact_topic(link: str) -> str:
    return f"{LAST_CONTACT_PREFIX}{link}"


def _ends_to_json(ends: Ends) -> dict[str, dict[str, int]]:
    return {t: {str(p): o for p, o in sorted(ps.items())} for t, ps in sorted(ends.items())}


def _ends_from_json(raw: Any) -> Ends:
    return {str(t): {int(p): int(o) for p, o in ps.items()} for t, ps in (raw or {}).items()}


@dataclass(frozen=True)
class LinkState:
    """One state change. ``promoted`` holds, per source topic and partition, the mirrored
    end at promotion: where the new primary's history starts to differ from the source's
    (failback's divergence point). ``details`` is free-form (report, diverged topics)."""

    state: str = "normal"
    since_ms: int = 0
    by: str = ""
    reason: str = ""
    promoted: Ends = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", machine.parse(self.state))

    @property
    def runs(self) -> machine.Behaviour:
        """What the daemon runs for the link in this state (the machine decides)."""
        return machine.behaviour(self.state)

    @property
    def copying(self) -> bool:
        return self.runs.copies

    def encode(self) -> tuple[bytes, bytes]:
        doc = {"v": VERSION, **asdict(self), "promoted": _ends_to_json(self.promoted)}
        return b"state", json.dumps(doc, sort_keys=True).encode()

    @classmethod
    def decode(cls, value: bytes) -> "LinkState":
        doc = json.loads(value)
        return cls(state=doc["state"], since_ms=int(doc.get("since_ms", 0)), by=doc.get("by", ""),
                   reason=doc.get("reason", ""), promoted=_ends_from_json(doc.get("promoted")),
                   details=dict(doc.get("details") or {}))


@dataclass(frozen=True)
class Stopped:
    """A partition the daemon does not copy, and why (state ``error`` or ``conflict``)."""

    topic: str
    partition: int
    state: str
    reason: str


@dataclass(frozen=True)
class Contact:
    """The source's end offsets as the mirror last saw them, and the partitions that
    mirror process (``by``) has stopped, so ``dcmirror status`` can show them."""

    at_ms: int
    source_ends: Ends
    stopped: tuple[Stopped, ...] = ()
    by: str = ""

    def encode(self) -> tuple[bytes, bytes]:
        doc = {"v": VERSION, "at_ms": self.at_ms, "source_ends": _ends_to_json(self.source_ends),
               "stopped": [asdict(x) for x in self.stopped], "by": self.by}
        return b"contact", json.dumps(doc, sort_keys=True).encode()

    @classmethod
    def decode(cls, value: bytes) -> "Contact":
        doc = json.loads(value)
        stopped = tuple(Stopped(str(x["topic"]), int(x["partition"]), str(x["state"]), str(x["reason"]))
                        for x in doc.get("stopped") or ())
        return cls(int(doc["at_ms"]), _ends_from_json(doc.get("source_ends")), stopped, str(doc.get("by", "")))


@dataclass(frozen=True)
class Ack:
    """The daemon obeys ``state`` (set at ``state_since_ms``) since ``at_ms``."""

    state: str
    state_since_ms: int
    at_ms: int

    def encode(self) -> tuple[bytes, bytes]:
        return b"ack", json.dumps({"v": VERSION, **asdict(self)}, sort_keys=True).encode()

    @classmethod
    def decode(cls, value: bytes) -> "Ack":
        doc = json.loads(value)
        return cls(doc["state"], int(doc["state_since_ms"]), int(doc["at_ms"]))


@dataclass
class StateLog:
    """Fold of the link-state topic: newest state and newest ack."""

    state: LinkState = field(default_factory=LinkState)
    ack: Ack | None = None
    position: int = 0

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None or value is None:
            return
        try:
            if key == b"state":
                self.state = LinkState.decode(value)
            elif key == b"ack":
                self.ack = Ack.decode(value)
        except (ValueError, KeyError) as exc:  # a newer writer's record: skip, say so
            log.warning("ignoring an unreadable link-state record: %s", exc)


def contact_changed(previous: Contact | None, ends: Ends, now_ms: int, refresh_ms: int,
                    stopped: tuple[Stopped, ...] = ()) -> bool:
    """Write a new contact record when the ends or the stopped partitions changed, or to
    refresh an old one."""
    return (previous is None or previous.source_ends != ends or previous.stopped != stopped
            or now_ms - previous.at_ms >= refresh_ms)


# -- reading and writing ---------------------------------------------------------------


def _state_store(client: KafkaClient, link: str) -> InternalStore:
    return InternalStore(client, InternalTopic(link_state_topic(link), {"retention.ms": "-1"}))


def _contact_store(client: KafkaClient, link: str) -> InternalStore:
    return InternalStore(client, InternalTopic(last_contact_topic(link), {
        "retention.ms": str(7 * 24 * 3600 * 1000), "segment.ms": "3600000"}, CODEC_ZSTD))


async def read_state(client: KafkaClient, link: str, into: StateLog | None = None) -> StateLog:
    """The link's state log, read incrementally when ``into`` is given."""
    folded = into or StateLog()
    records, pos = await _state_store(client, link).read(folded.position or None)
    for _, k, v in records:
        folded.apply(k, v)
    folded.position = max(folded.position, pos)
    return folded


async def read_history(client: KafkaClient, link: str) -> list[LinkState]:
    """Every state change of the link, oldest first (the topic is kept forever; acks are
    left out): what `dcmirror history` lists."""
    out = []
    for _, k, v in (await _state_store(client, link).read(None))[0]:
        if k == b"state" and v is not None:
            try:
                out.append(LinkState.decode(v))
            except (ValueError, KeyError) as exc:
                log.warning("ignoring an unreadable link-state record: %s", exc)
    return out


async def write_state(client: KafkaClient, link: str, state: LinkState) -> None:
    await _state_store(client, link).append([state.encode()])
    log.info("link %s: state is now %s", link, state.state)


async def write_ack(client: KafkaClient, link: str, ack: Ack) -> None:
    await _state_store(client, link).append([ack.encode()])


async def write_contact(client: KafkaClient, link: str, contact: Contact) -> None:
    await _contact_store(client, link).append([contact.encode()])


async def read_last_contact(client: KafkaClient, link: str) -> Contact | None:
    """The newest contact record (only the tail of the topic is read)."""
    for _, k, v in reversed(await _contact_store(client, link).read_tail(1)):
        if k == b"contact" and v is not None:
            return Contact.decode(v)
    return None


async def read_stopped(client: KafkaClient, link: str, window_ms: int = 90_000,
                       tail: int = 500) -> list[Stopped]:
    """Partitions stopped by any mirror process of the link that recorded contact within
    ``window_ms`` (each process refreshes its record at least every 30 s): the newest
    record of each process, from the last ``tail`` records."""
    newest: dict[str, Contact] = {}
    for _, k, v in await _contact_store(client, link).read_tail(tail):
        if k == b"contact" and v is not None:
            try:
                c = Contact.decode(v)
            except (ValueError, KeyError):
                continue
            newest[c.by] = c
    now = int(time.time() * 1000)
    return sorted({x for c in newest.values() if now - c.at_ms <= window_ms for x in c.stopped},
                  key=lambda x: (x.topic, x.partition))


async def source_ends(client: KafkaClient, tps: Iterable[tuple[str, int]]) -> Ends:
    out: Ends = {}
    for (topic, p), end in sorted((await client.end_offsets(tps)).items()):
        out.setdefault(topic, {})[p] = end
    return out


# -- the daemon's side -----------------------------------------------------------------


class LinkStateWatcher:
    """Runs inside a link: follows the state log, acknowledges it, records last contact.

    ``on_change(state)`` is called whenever the state the daemon should obey changes.
    ``partitions()`` gives the source partitions the link mirrors right now.
    """

    def __init__(self, link: str, source: KafkaClient, target: KafkaClient,
                 partitions: Callable[[], list[tuple[str, int]]],
                 on_change: Callable[[LinkState], None], *, poll_s: float = 1.0,
                 contact_s: float = 2.0, contact_refresh_s: float = 30.0,
                 stopped: Callable[[], tuple[Stopped, ...]] = tuple) -> None:
        self.link = link
        self.source = source
        self.target = target
        self.partitions = partitions
        self.on_change = on_change
        self.poll_s = poll_s
        self.contact_s = contact_s
        self.contact_refresh_ms = int(contact_refresh_s * 1000)
        self.stopped = stopped
        self.by = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.log = StateLog()
        self.last_contact: Contact | None = None
        self._acked: tuple[str, int] | None = None

    @property
    def state(self) -> LinkState:
        return self.log.state

    async def poll_once(self) -> None:
        """Follow the state log; tell the link when what it should obey changed; ack it."""
        before = (self.log.state.state, self.log.state.since_ms)
        await read_state(self.target, self.link, self.log)
        now = (self.log.state.state, self.log.state.since_ms)
        if now != before or self._acked is None:
            self.on_change(self.log.state)
        if self._acked != now:
            if self.log.state.since_ms:
                await write_ack(self.target, self.link, Ack(now[0], now[1], int(time.time() * 1000)))
            self._acked = now

    async def contact_once(self) -> None:
        """Record the source's end offsets in the target (while the link copies or pauses)."""
        if not self.log.state.runs.records_contact:
            return
        tps = self.partitions()
        if not tps:
            return
        ends = await source_ends(self.source, tps)
        at = int(time.time() * 1000)
        stopped = self.stopped()
        if contact_changed(self.last_contact, ends, at, self.contact_refresh_ms, stopped):
            contact = Contact(at, ends, stopped, self.by)
            await write_contact(self.target, self.link, contact)
            self.last_contact = contact

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(self._loop(stop, self.poll_once, self.poll_s, "link-state polling"),
                             self._loop(stop, self.contact_once, self.contact_s, "last-contact recording"))

    async def _loop(self, stop: asyncio.Event, fn, interval: float, what: str) -> None:
        from cluster.client.waits import until

        failing = False
        while not stop.is_set():
            try:
                await fn()
                if failing:
                    log.info("link %s: %s recovered", self.link, what)
                failing = False
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError, asyncio.TimeoutError, ValueError) as exc:
                if not failing:
                    log.warning("link %s: %s failed, retrying: %s", self.link, what, exc)
                failing = True
            await until(stop, None, interval)
