"""A broker's membership in a multi-broker cluster: the metadata store, seen from the broker.

With `--metadata URL` a broker is one process of a cluster whose metadata (brokers, topics,
partition leaders and epochs) lives in the store (cluster/metadata/). This module:
- joins: adopts the cluster id kept in the store (the first broker's), heartbeats, and runs
  a ControllerRunner (every broker campaigns; the lease holder controls);
- mirrors the store into the broker every `sync_interval_s`: topics into the local catalogue
  (same topic ids, so clients see one cluster), and Partition objects only for the
  partitions this broker leads, at the leader epoch the controller gave them. A partition
  led elsewhere has no Partition here, so a request for it is answered
  NOT_LEADER_OR_FOLLOWER (Broker.led_elsewhere) and clients re-route through Metadata;
- sends CreateTopics (and the internal coordinator topics' creation) to the controller.

Not built yet (issue 12's later parts): replication factor > 1 (refused), follower fetch,
moving a group's or a transaction's state with its coordinator partition (each broker's
coordinators keep their journals locally), transactions spanning partitions on several
brokers, DeleteTopics/CreatePartitions on a multi-broker cluster (refused).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from cluster.broker import internal_topics
from cluster.metadata.controller import ControllerConfig, Outcome
from cluster.metadata.controller_runner import ControllerClient, ControllerRunner
from cluster.metadata.model import (NO_LEADER, BrokerInfo, PartitionState, TopicInfo, decode_broker,
                                    decode_partition, decode_topic, keys)
from cluster.metadata.store import ABSENT, open_store

log = logging.getLogger("dcmirror.membership")
CLUSTER_ID = "cluster_id"


def java_string_hash(text: str) -> int:
    """Java's String.hashCode, which Kafka uses to place a group on a coordinator partition."""
    h = 0
    for unit in _utf16_units(text):
        h = (31 * h + unit) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def _utf16_units(text: str) -> list[int]:
    raw = text.encode("utf-16-be")
    return [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]


def coordinator_partition(key: str, partitions: int) -> int:
    """Kafka's partitionFor: abs(hashCode) mod the internal topic's partition count."""
    h = java_string_hash(key)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


class Membership:
    """The broker's view of, and part in, a multi-broker cluster."""

    def __init__(self, broker: Any, sync_interval_s: float = 0.1) -> None:
        cfg = broker.config
        self.broker = broker
        self.store = open_store(cfg.metadata_url)
        host, port = cfg.listeners[0].advertised
        self.client = ControllerClient(self.store, cfg.node_id, host, port, cfg.rack)
        self.runner = ControllerRunner(
            self.store, cfg.node_id,
            ControllerConfig(session_timeout_s=cfg.broker_session_timeout_ms / 1000))
        self.sync_interval_s = sync_interval_s
        self.brokers: dict[int, BrokerInfo] = {}
        self.topics: dict[str, TopicInfo] = {}
        self.partitions: dict[tuple[str, int], PartitionState] = {}
        self.controller_id = -1
        self._tasks: list[asyncio.Task[None]] = []

    # ---- joining ------------------------------------------------------------------
    async def join(self, local_cluster_id: str, timeout_s: float = 30.0) -> str:
        """Adopt the cluster id, start heartbeats and the controller campaign, and wait
        until the controller has registered this incarnation; the cluster id."""
        await self.store.put(CLUSTER_ID, local_cluster_id.encode(), if_version=ABSENT)
        kv = await self.store.get(CLUSTER_ID)
        cluster_id = kv.value.decode() if kv else local_cluster_id
        await self.client.heartbeat()
        self._tasks.append(asyncio.create_task(self._heartbeats(), name="broker-heartbeats"))
        self._tasks.append(asyncio.create_task(self.runner.run(), name="controller"))
        deadline = asyncio.get_running_loop().time() + timeout_s
        while (reg := await self.client.registration()) is None or reg.fenced:
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"the controller did not register broker {self.client.node_id} "
                                   f"within {timeout_s:g}s (metadata store {self.store.url})")
            await asyncio.sleep(0.05)
        log.info("broker %d joined the cluster (broker epoch %d, metadata in %s)",
                 self.client.node_id, reg.broker_epoch, self.store.url)
        await self.refresh()
        return cluster_id

    def start_sync(self) -> None:
        """Keep the broker in step with the store from now on."""
        self._tasks.append(asyncio.create_task(self._sync_loop(), name="metadata-sync"))

    async def stop(self) -> None:
        """Controlled shutdown: stop heartbeating, ask the controller to move this broker's
        leaderships away (its partitions are re-elected now, not after the session
        timeout; with replication factor 1 they wait, offline, for this broker's return),
        then give up the controller lease if held."""
        heartbeats = self._tasks[:1]
        for task in heartbeats:
            task.cancel()
        await asyncio.gather(*heartbeats, return_exceptions=True)
        try:
            reg = await self.client.registration()
            if reg is not None:
                out = await self.client.request("controlled_shutdown", timeout_s=3.0,
                                                node_id=reg.node_id, broker_epoch=reg.broker_epoch)
                if not out.ok:
                    log.warning("controlled shutdown of broker %d: %s", reg.node_id, out.message)
            await self.store.delete(keys.heartbeat(self.client.node_id))
        except Exception as exc:
            log.warning("controlled shutdown failed (the controller fences this broker later): %s", exc)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self.runner.resign()
        except Exception as exc:  # the store may be gone; the lease then expires by itself
            log.warning("could not give up the controller lease: %s", exc)
        await self.store.close()

    async def _heartbeats(self) -> None:
        interval = self.broker.config.broker_heartbeat_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                await self.client.heartbeat()
            except Exception as exc:
                log.warning("heartbeat to the metadata store failed: %s", exc)

    # ---- the image ----------------------------------------------------------------
    async def refresh(self) -> None:
        """Read brokers, topics, partitions and the controller from the store."""
        self.brokers = {b.node_id: b for b in (decode_broker(kv.value)
                                               for kv in await self.store.range(keys.BROKERS))}
        self.topics = {t.name: t for t in (decode_topic(kv.value)
                                           for kv in await self.store.range(keys.TOPICS))}
        self.partitions = {(p.topic, p.partition): p for p in (decode_partition(kv.value)
                                                               for kv in await self.store.range(keys.PARTITIONS))}
        ctl = await self.store.get(keys.CONTROLLER)
        self.controller_id = json.loads(ctl.value)["node_id"] if ctl else -1

    async def _sync_loop(self) -> None:
        while True:
            try:
                await self.refresh()
                self.apply()
            except Exception as exc:
                log.warning("metadata sync failed (retrying): %s", exc)
            await asyncio.sleep(self.sync_interval_s)

    def live_brokers(self) -> list[BrokerInfo]:
        return [b for _, b in sorted(self.brokers.items()) if not b.fenced]

    def leads(self, topic: str, index: int) -> bool:
        state = self.partitions.get((topic, index))
        return state is not None and state.leader == self.client.node_id

    # ---- applying the image to the broker -------------------------------------------
    def apply(self) -> None:
        """Topics into the catalogue; Partition objects exactly for the partitions led here."""
        broker = self.broker
        catalogue = broker.catalogue
        for name, info in self.topics.items():
            if internal_topics.is_internal(name):
                broker.internal_topics.mark_used(name)
                continue
            meta = catalogue.topics.get(name)
            if meta is not None and meta.topic_id != info.topic_id:
                log.warning("topic %s was recreated elsewhere (new topic id): dropping the old copy", name)
                broker.delete_topic(name)
                meta = None
            if meta is None:
                broker._clear_leftovers(name, range(info.partitions))
                catalogue.adopt(name, info.topic_id, info.partitions, info.configs)
        for name in [n for n in catalogue.topics if n not in self.topics]:
            self._drop_local(name)
        self._apply_leadership()

    def _apply_leadership(self) -> None:
        broker = self.broker
        me = self.client.node_id
        for (topic, index), state in self.partitions.items():
            meta = broker.catalogue.topics.get(topic)
            if meta is None:
                continue
            part = broker.partitions.get((topic, index))
            if state.leader == me:
                if part is None:
                    broker.add_led_partition(meta, index, state.leader_epoch)
                    log.info("leading %s-%d at leader epoch %d", topic, index, state.leader_epoch)
                elif part.leader_epoch != state.leader_epoch:
                    part.leader_epoch = state.leader_epoch
            elif part is not None:
                broker.drop_led_partition(topic, index)
                log.info("no longer leading %s-%d (leader now %s)", topic, index,
                         state.leader if state.leader != NO_LEADER else "none")

    def _drop_local(self, name: str) -> None:
        log.info("topic %s is gone from the cluster: deleting its local copy", name)
        self.broker.delete_topic(name)

    # ---- requests to the controller ---------------------------------------------------
    async def create_topic(self, name: str, partitions: int, replication_factor: int,
                           configs: dict[str, str]) -> Outcome:
        """Ask the controller for a topic; once created, wait until this broker has it."""
        out = await self.client.request("create_topic", name=name, partitions=partitions,
                                        replication_factor=replication_factor,
                                        topic_id=str(uuid.uuid4()), configs=configs)
        if out.ok:
            await self.refresh()
            self.apply()
        return out

    async def alter_partition(self, topic: str, index: int, leader_epoch: int, partition_epoch: int,
                              isr: tuple[int, ...]) -> Outcome:
        """An ISR change by this broker as the partition's leader (KRaft AlterPartition): the
        controller applies it only if `leader_epoch` and `partition_epoch` are still current
        (else FENCED_LEADER_EPOCH / INVALID_UPDATE_VERSION) and `isr` is the leader plus live
        replicas; the new partition epoch shows in `partitions` after the next refresh."""
        reg = await self.client.registration()
        if reg is None:
            return Outcome(ErrorCode.stale_broker_epoch, "this broker's registration is gone")
        out = await self.client.request("alter_partition", node_id=reg.node_id, broker_epoch=reg.broker_epoch,
                                        topic=topic, partition=index, leader_epoch=leader_epoch,
                                        partition_epoch=partition_epoch, isr=list(isr))
        if out.ok:
            await self.refresh()
        return out

    async def delete_topic(self, name: str) -> Outcome:
        """Ask the controller to delete a topic; once done, drop the local copy."""
        out = await self.client.request("delete_topic", name=name)
        if out.ok:
            await self.refresh()
            self.apply()
        return out

    async def coordinator_for(self, key: str, key_type: int) -> BrokerInfo | None:
        """The broker leading the coordinator partition of `key` (created on first use)."""
        topic = internal_topics.BY_KEY_TYPE[key_type]
        n = internal_topics.PARTITIONS[topic]
        if topic not in self.topics:
            out = await self.create_topic(topic, n, 1, {})
            if not out.ok and out.error != ErrorCode.topic_already_exists:
                log.warning("could not create %s: %s", topic, out.message)
                return None
            await self.refresh()
        state = self.partitions.get((topic, coordinator_partition(key, n)))
        if state is None or state.leader == NO_LEADER:
            return None
        info = self.brokers.get(state.leader)
        return info if info is not None and not info.fenced else None
