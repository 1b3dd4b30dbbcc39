"""Runs the controller on the broker holding the controller lease; brokers' side of it.

Who controls: every broker campaigns. Winning is one transaction: create the `controller`
key (absent before) bound to the candidate's lease, and raise `controller_epoch` by one from
the version read. The holder keeps the lease alive; the others watch the key and campaign
again when it disappears (lease expiry or revoke).

What the controller does each step (every `interval_s`): read the image (brokers, topics,
partitions, heartbeats, requests) from the store, feed it to a fresh `Controller` state
machine with its own record of when it last heard each broker (its own monotonic clock),
and write every key the machine changed in one transaction that compares the controller
key's version (a deposed controller's write fails: it steps down) and each written key's
version as read. Rebuilding from the store each step means the store is the only truth:
a new controller continues exactly where the old one stopped. A controller that takes over
gives every registered broker one full session timeout before fencing it.

Brokers talk to the controller through the store, not a socket: a heartbeat is the broker's
own key `heartbeats/<id>` (incarnation, address, rack, a sequence number it advances); other
requests (create/delete topic, AlterPartition, controlled shutdown) are keys under
`requests/`, each answered under `replies/` (`ControllerClient`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode

from cluster.metadata.controller import Controller, ControllerConfig, Outcome
from cluster.metadata.model import (BrokerInfo, PartitionState, decode_broker, decode_partition,
                                    decode_topic, encode, keys)
from cluster.metadata.store import ABSENT, Compare, KeyValue, MetadataStore, Put, Txn

log = logging.getLogger("dcmirror.controller")
REQUESTS, REPLIES = "requests/", "replies/"


class LostControl(Exception):
    """This node is no longer the controller (its lease expired or another took over)."""


@dataclass
class Image:
    """Everything the controller reads in one step, with each key's version."""

    kvs: dict[str, KeyValue]

    def under(self, prefix: str) -> list[KeyValue]:
        return [kv for k, kv in sorted(self.kvs.items()) if k.startswith(prefix)]

    def version(self, key: str) -> int:
        kv = self.kvs.get(key)
        return kv.version if kv else ABSENT


async def read_image(store: MetadataStore) -> Image:
    """The controller's whole input (metadata is small: hundreds of keys)."""
    kvs: dict[str, KeyValue] = {}
    for prefix in (keys.BROKERS, keys.TOPICS, keys.PARTITIONS, keys.HEARTBEATS, REQUESTS,
                   keys.BROKER_EPOCH, keys.CONTROLLER):
        for kv in await store.range(prefix):
            kvs[kv.key] = kv
    return Image(kvs)


class ControllerRunner:
    """Campaign for the controller lease; while held, run controller steps."""

    def __init__(self, store: MetadataStore, node_id: int, config: ControllerConfig | None = None,
                 lease_ttl_s: float = 3.0, interval_s: float = 0.2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.node_id = store, node_id
        self.config = config or ControllerConfig()
        self.lease_ttl_s, self.interval_s, self.clock = lease_ttl_s, interval_s, clock
        self.epoch = 0          # controller epoch while active, else 0
        self.version = ABSENT   # version of our controller key
        self.lease = 0
        self._last_heard: dict[int, float] = {}
        self._seen_seq: dict[int, Any] = {}

    @property
    def active(self) -> bool:
        return self.epoch > 0

    async def run(self) -> None:
        """Forever: campaign; lead until control is lost; watch for a vacancy."""
        while True:
            if await self.campaign():
                try:
                    await self._lead()
                except LostControl as exc:
                    log.warning("node %d is no longer the controller: %s", self.node_id, exc)
                    self._step_down()
            await self._wait_for_vacancy()

    async def campaign(self) -> bool:
        """Try once to become the controller (one transaction); True when won."""
        current = await self.store.get(keys.CONTROLLER)
        if current is not None:
            return False
        epoch_kv = await self.store.get(keys.CONTROLLER_EPOCH)
        epoch = int(epoch_kv.value) + 1 if epoch_kv else 1
        lease = await self.store.grant_lease(self.lease_ttl_s)
        value = json.dumps({"node_id": self.node_id, "epoch": epoch}).encode()
        rev = await self.store.txn(Txn(
            compares=(Compare(keys.CONTROLLER, ABSENT),
                      Compare(keys.CONTROLLER_EPOCH, epoch_kv.version if epoch_kv else ABSENT)),
            puts=(Put(keys.CONTROLLER, value, lease), Put(keys.CONTROLLER_EPOCH, str(epoch).encode()))))
        if rev is None:
            await self.store.revoke(lease)
            return False
        self.epoch, self.version, self.lease = epoch, rev, lease
        self._last_heard.clear()
        self._seen_seq.clear()
        log.info("node %d is the controller (controller epoch %d)", self.node_id, epoch)
        return True

    def _step_down(self) -> None:
        self.epoch, self.version, self.lease = 0, ABSENT, 0

    async def resign(self) -> None:
        """Give the lease back (a clean stop), so another broker takes over at once."""
        if self.lease:
            await self.store.revoke(self.lease)
        self._step_down()

    async def _wait_for_vacancy(self) -> None:
        while await self.store.get(keys.CONTROLLER) is not None:
            await asyncio.sleep(self.interval_s)

    async def _lead(self) -> None:
        next_keepalive = self.clock()
        while True:
            if self.clock() >= next_keepalive:
                if not await self.store.keepalive(self.lease):
                    raise LostControl(f"controller lease {self.lease} expired")
                next_keepalive = self.clock() + self.lease_ttl_s / 3
            await self.step()
            await asyncio.sleep(self.interval_s)

    async def step(self) -> None:
        """Read the image, apply events and time, write what changed (one CAS transaction)."""
        if not self.active:
            raise LostControl("not the controller")
        image = await read_image(self.store)
        if image.version(keys.CONTROLLER) != self.version:
            raise LostControl("the controller key changed (another controller took over)")
        machine = self._machine(image)
        now = self.clock()
        self._feed_heartbeats(machine, image, now)
        machine.tick(now)
        replies = [self._answer(machine, kv) for kv in image.under(REQUESTS)]
        dirty = machine.take_dirty()
        if not dirty and not replies:
            return
        txn = self._write(machine, image, dirty, replies)
        if await self.store.txn(txn) is None:
            if (await self.store.get(keys.CONTROLLER) or KeyValue("", b"", ABSENT)).version != self.version:
                raise LostControl("a write was refused: another controller took over")
            log.info("controller write raced another writer; retrying next step")

    def _machine(self, image: Image) -> Controller:
        brokers = {b.node_id: b for b in (decode_broker(kv.value) for kv in image.under(keys.BROKERS))}
        topics = {t.name: t for t in (decode_topic(kv.value) for kv in image.under(keys.TOPICS))}
        parts = {(p.topic, p.partition): p for p in (decode_partition(kv.value)
                                                     for kv in image.under(keys.PARTITIONS))}
        epoch_kv = image.kvs.get(keys.BROKER_EPOCH)
        now = self.clock()
        for node in brokers:
            self._last_heard.setdefault(node, now)  # a new controller's grace: one session timeout
        return Controller(self.config, self.epoch, brokers, topics, parts,
                          int(epoch_kv.value) if epoch_kv else 0, self._last_heard)

    def _feed_heartbeats(self, machine: Controller, image: Image, now: float) -> None:
        for kv in image.under(keys.HEARTBEATS):
            beat = json.loads(kv.value)
            node = int(beat["node_id"])
            known = machine.brokers.get(node)
            if known is None or known.incarnation != beat["incarnation"]:
                info = machine.register(node, beat["incarnation"], beat["host"], int(beat["port"]),
                                        beat.get("rack"), now)
                log.info("broker %d registered at %s:%d with broker epoch %d", node, info.host,
                         info.port, info.broker_epoch)
            elif node in self._seen_seq and self._seen_seq[node] != beat["seq"]:
                # only an advance counts: a heartbeat key merely present (first sight after
                # a takeover, or left by a broker that shut down) unfences nobody
                machine.heartbeat(node, known.broker_epoch, now)
            self._seen_seq[node] = beat["seq"]

    def _answer(self, machine: Controller, kv: KeyValue) -> tuple[str, Outcome]:
        """Apply one request; (its key, the outcome to reply)."""
        req = json.loads(kv.value)
        kind = req.get("kind")
        if kind == "create_topic":
            out = machine.create_topic(req["name"], int(req["partitions"]), int(req["replication_factor"]),
                                       req["topic_id"], req.get("configs") or {})
        elif kind == "delete_topic":
            out = machine.delete_topic(req["name"])
        elif kind == "alter_partition":
            out = machine.alter_partition(int(req["node_id"]), int(req["broker_epoch"]), req["topic"],
                                          int(req["partition"]), int(req["leader_epoch"]),
                                          int(req["partition_epoch"]), tuple(req["isr"]))
        elif kind == "controlled_shutdown":
            out = machine.controlled_shutdown(int(req["node_id"]), int(req["broker_epoch"]))
            if out.ok:
                log.info("broker %s shut down in a controlled way: fenced, its leaderships moved",
                         req["node_id"])
        else:
            out = Outcome(ErrorCode.invalid_request, f"unknown controller request {kind!r}")
        return kv.key, out

    def _write(self, machine: Controller, image: Image, dirty: set[str],
               replies: list[tuple[str, Outcome]]) -> Txn:
        compares = [Compare(keys.CONTROLLER, self.version)]
        puts: list[Put] = []
        deletes: list[str] = []
        values = _current_values(machine)
        for key in sorted(dirty):
            compares.append(Compare(key, image.version(key)))
            if key in values:
                puts.append(Put(key, values[key]))
            elif image.version(key) != ABSENT:
                deletes.append(key)
        for key, out in replies:
            compares.append(Compare(key, image.version(key)))
            deletes.append(key)
            reply = {"error": int(out.error), "message": out.message}
            puts.append(Put(REPLIES + key[len(REQUESTS):], json.dumps(reply).encode()))
        return Txn(tuple(compares), tuple(puts), tuple(deletes))


def _current_values(machine: Controller) -> dict[str, bytes]:
    """Every key the machine's state maps to, encoded."""
    out = {keys.BROKER_EPOCH: str(machine.last_broker_epoch).encode()}
    out.update({keys.broker(n): encode(b) for n, b in machine.brokers.items()})
    out.update({keys.topic(t): encode(info) for t, info in machine.topics.items()})
    out.update({keys.partition(t, p): encode(s) for (t, p), s in machine.partitions.items()})
    return out


class ControllerClient:
    """A broker's side: heartbeats and requests through the store, and reads of the image."""

    def __init__(self, store: MetadataStore, node_id: int, host: str, port: int,
                 rack: str | None = None, interval_s: float = 0.1) -> None:
        self.store, self.node_id = store, node_id
        self.host, self.port, self.rack = host, port, rack
        self.incarnation = uuid.uuid4().hex
        self.seq = 0
        self.interval_s = interval_s

    async def heartbeat(self) -> None:
        """Advance this broker's heartbeat (its first one registers this incarnation)."""
        self.seq += 1
        beat = {"node_id": self.node_id, "incarnation": self.incarnation, "host": self.host,
                "port": self.port, "rack": self.rack, "seq": self.seq}
        await self.store.put(keys.heartbeat(self.node_id), json.dumps(beat).encode())

    async def registration(self) -> BrokerInfo | None:
        """This incarnation's registration, once the controller made it."""
        kv = await self.store.get(keys.broker(self.node_id))
        if kv is None:
            return None
        info = decode_broker(kv.value)
        return info if info.incarnation == self.incarnation else None

    async def request(self, kind: str, timeout_s: float = 15.0, **body: Any) -> Outcome:
        """Ask the controller; its answer, or REQUEST_TIMED_OUT when none came in time."""
        rid = uuid.uuid4().hex
        await self.store.put(REQUESTS + rid, json.dumps({"kind": kind, **body}).encode())
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            kv = await self.store.get(REPLIES + rid)
            if kv is not None:
                await self.store.delete(REPLIES + rid)
                reply = json.loads(kv.value)
                return Outcome(ErrorCode(reply["error"]), reply["message"])
            await asyncio.sleep(self.interval_s)
        await self.store.delete(REQUESTS + rid)  # unanswered: withdraw it (it may still have been applied)
        return Outcome(ErrorCode.request_timed_out, f"the controller did not answer {kind} within {timeout_s:g}s")

    async def partitions(self) -> dict[tuple[str, int], PartitionState]:
        """Every partition's state as the controller last wrote it."""
        return {(p.topic, p.partition): p for p in (decode_partition(kv.value)
                                                    for kv in await self.store.range(keys.PARTITIONS))}

    async def brokers(self) -> dict[int, BrokerInfo]:
        return {b.node_id: b for b in (decode_broker(kv.value) for kv in await self.store.range(keys.BROKERS))}
