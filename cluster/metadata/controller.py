"""The controller as a pure state machine: brokers, topics, leaders and ISR, no I/O.

Inputs are events (a broker registers, heartbeats, asks for an ISR change or a controlled
shutdown; a client creates a topic; local time passes); outputs are the new values and the
set of keys they changed, which the runner (controller_runner.py) writes to the store with
compare-and-set. Tested without sockets or a store.

Rules, as Kafka's KRaft controller:
- A registration with a new incarnation gets a new broker epoch (one more than any before);
  the broker's previous incarnation is fenced first, so its leaderships move on.
- A heartbeat carries the broker epoch; an older one is STALE_BROKER_EPOCH. A broker not
  heard from for `session_timeout_s` of the controller's own clock is fenced. The timeout
  only decides *when* to act; correctness comes from the epochs bumped by acting.
- Fencing removes the broker from every ISR it is in (but never empties an ISR: a sole
  in-sync replica stays in it, so its partition goes offline, leader -1, and comes back with
  that replica) and elects new leaders where it led.
- Leaders are elected from the ISR only, first live one in replica order; unclean election
  (a live replica outside the ISR, data may be lost) only when configured.
- AlterPartition: from the current leader only, at its current broker epoch and leader
  epoch, based on the current partition epoch (else INVALID_UPDATE_VERSION); the new ISR
  must contain the leader and only live replicas.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace

from kio.schema.errors import ErrorCode

from cluster.metadata.assignment import AssignmentError, assign
from cluster.metadata.model import NO_LEADER, BrokerInfo, PartitionState, TopicInfo, keys

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class ControllerConfig:
    """Timeouts and policies the controller applies."""

    session_timeout_s: float = 9.0
    unclean_leader_election: bool = False


@dataclass(frozen=True)
class Outcome:
    """An event's answer: an error code (none) and a one-sentence message when refused."""

    error: ErrorCode = ErrorCode.none
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.error == ErrorCode.none


@dataclass
class Controller:
    """The cluster's metadata and the rules that change it (one owner, no locks)."""

    config: ControllerConfig = field(default_factory=ControllerConfig)
    controller_epoch: int = 0
    brokers: dict[int, BrokerInfo] = field(default_factory=dict)
    topics: dict[str, TopicInfo] = field(default_factory=dict)
    partitions: dict[TopicPartition, PartitionState] = field(default_factory=dict)
    last_broker_epoch: int = 0
    last_heard: dict[int, float] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)

    # --- brokers --------------------------------------------------------------------------

    def live(self) -> dict[int, BrokerInfo]:
        """Registered, unfenced brokers."""
        return {n: b for n, b in self.brokers.items() if not b.fenced}

    def register(self, node_id: int, incarnation: str, host: str, port: int, rack: str | None,
                 now: float) -> BrokerInfo:
        """A broker process announces itself; a new incarnation gets a new broker epoch."""
        old = self.brokers.get(node_id)
        if old is not None and old.incarnation == incarnation:
            return old
        if old is not None and not old.fenced:
            self.fence(node_id)  # the previous process of this node is gone
        self.last_broker_epoch += 1
        self.dirty.add(keys.BROKER_EPOCH)
        info = BrokerInfo(node_id, self.last_broker_epoch, host, port, rack, fenced=True,
                          incarnation=incarnation)
        self._set_broker(info)
        self.heartbeat(node_id, info.broker_epoch, now)
        return self.brokers[node_id]

    def heartbeat(self, node_id: int, broker_epoch: int, now: float) -> Outcome:
        """A live broker says so; the first heartbeat of an epoch unfences it."""
        info = self.brokers.get(node_id)
        if info is None:
            return Outcome(ErrorCode.broker_id_not_registered, f"broker {node_id} is not registered")
        if broker_epoch != info.broker_epoch:
            return Outcome(ErrorCode.stale_broker_epoch,
                           f"broker {node_id} epoch {broker_epoch} is not its current {info.broker_epoch}")
        self.last_heard[node_id] = now
        if info.fenced:
            self._set_broker(replace(info, fenced=False))
            self._elect_offline(node_id)
        return Outcome()

    def tick(self, now: float) -> list[int]:
        """Fence brokers not heard from for the session timeout; the ones fenced."""
        late = [n for n, b in sorted(self.brokers.items()) if not b.fenced
                and now - self.last_heard.get(n, now) >= self.config.session_timeout_s]
        for node in late:
            self.fence(node)
        return late

    def fence(self, node_id: int) -> None:
        """The broker is gone: out of every ISR it can leave, leaders moved where it led."""
        info = self.brokers[node_id]
        self._set_broker(replace(info, fenced=True))
        for tp, state in sorted(self.partitions.items()):
            if node_id not in state.replicas:
                continue
            isr = tuple(r for r in state.isr if r != node_id) or state.isr
            if state.leader == node_id:
                self._set_partition(self._elect(replace(state, isr=isr)))
            elif isr != state.isr:
                self._set_partition(state.with_isr(isr))

    def controlled_shutdown(self, node_id: int, broker_epoch: int) -> Outcome:
        """A broker about to stop (SIGTERM): move its leaderships away first, then fence it."""
        info = self.brokers.get(node_id)
        if info is None or info.broker_epoch != broker_epoch:
            return Outcome(ErrorCode.stale_broker_epoch, f"broker {node_id} epoch {broker_epoch} is not current")
        self.fence(node_id)
        return Outcome()

    # --- topics ---------------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int, replication_factor: int, topic_id: str,
                     configs: dict[str, str] | None = None) -> Outcome:
        """Assign replicas over the live brokers (rack-aware), first replica leads."""
        if name in self.topics:
            return Outcome(ErrorCode.topic_already_exists, f"topic {name} already exists")
        if partitions < 1:
            return Outcome(ErrorCode.invalid_partitions, f"partitions must be at least 1, not {partitions}")
        live = self.live()
        try:
            lists = assign(partitions, replication_factor, {n: b.rack for n, b in live.items()},
                           start=zlib.crc32(name.encode()))
        except AssignmentError as exc:
            return Outcome(ErrorCode.invalid_replication_factor, str(exc))
        topic = TopicInfo(name, topic_id, partitions, replication_factor, dict(configs or {}))
        self.topics[name] = topic
        self.dirty.add(keys.topic(name))
        for p, replicas in enumerate(lists):
            self._set_partition(PartitionState(name, p, replicas, replicas, replicas[0]))
        return Outcome()

    def delete_topic(self, name: str) -> Outcome:
        """Forget a topic and its partitions."""
        topic = self.topics.pop(name, None)
        if topic is None:
            return Outcome(ErrorCode.unknown_topic_or_partition, f"topic {name} does not exist")
        self.dirty.add(keys.topic(name))
        for p in range(topic.partitions):
            self.partitions.pop((name, p), None)
            self.dirty.add(keys.partition(name, p))
        return Outcome()

    # --- partitions -----------------------------------------------------------------------

    def alter_partition(self, node_id: int, broker_epoch: int, topic: str, partition: int,
                        leader_epoch: int, partition_epoch: int, new_isr: tuple[int, ...]) -> Outcome:
        """A leader's ISR change, accepted only when based on the current epochs."""
        info = self.brokers.get(node_id)
        if info is None or info.broker_epoch != broker_epoch:
            return Outcome(ErrorCode.stale_broker_epoch, f"broker {node_id} epoch {broker_epoch} is not current")
        state = self.partitions.get((topic, partition))
        if state is None:
            return Outcome(ErrorCode.unknown_topic_or_partition, f"{topic}-{partition} does not exist")
        if state.leader != node_id:
            return Outcome(ErrorCode.not_leader_or_follower, f"broker {node_id} does not lead {topic}-{partition}")
        if leader_epoch != state.leader_epoch:
            return Outcome(ErrorCode.fenced_leader_epoch,
                           f"leader epoch {leader_epoch} of {topic}-{partition} is not the current {state.leader_epoch}")
        if partition_epoch != state.partition_epoch:
            return Outcome(ErrorCode.invalid_update_version,
                           f"partition epoch {partition_epoch} of {topic}-{partition} is not the current "
                           f"{state.partition_epoch}")
        live = self.live()
        bad = [r for r in new_isr if r not in state.replicas or r not in live]
        if node_id not in new_isr or bad or len(set(new_isr)) != len(new_isr):
            return Outcome(ErrorCode.ineligible_replica,
                           f"ISR {list(new_isr)} of {topic}-{partition} must hold its leader and only live replicas")
        self._set_partition(state.with_isr(tuple(new_isr)))
        return Outcome()

    def _elect(self, state: PartitionState) -> PartitionState:
        """The partition with a leader elected from its ISR (or unclean, or none)."""
        live = self.live()
        candidates = [r for r in state.replicas if r in state.isr and r in live]
        if candidates:
            return state.with_leader(candidates[0], state.isr)
        if self.config.unclean_leader_election:
            outside = [r for r in state.replicas if r in live]
            if outside:
                return state.with_leader(outside[0], (outside[0],))
        if state.leader == NO_LEADER:
            return state
        return state.with_leader(NO_LEADER, state.isr)

    def _elect_offline(self, node_id: int) -> None:
        """Partitions without a leader that the newly live broker can lead."""
        for state in sorted(self.partitions.values(), key=lambda s: (s.topic, s.partition)):
            if state.leader == NO_LEADER and node_id in state.replicas:
                elected = self._elect(state)
                if elected.leader != NO_LEADER:
                    self._set_partition(elected)

    def _set_partition(self, state: PartitionState) -> None:
        self.partitions[(state.topic, state.partition)] = state
        self.dirty.add(keys.partition(state.topic, state.partition))

    def _set_broker(self, info: BrokerInfo) -> None:
        self.brokers[info.node_id] = info
        self.dirty.add(keys.broker(info.node_id))

    def take_dirty(self) -> set[str]:
        """The keys changed since the last call (for the runner to write)."""
        out, self.dirty = self.dirty, set()
        return out
