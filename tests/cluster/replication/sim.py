"""An in-memory replicated partition: one PartitionLog per replica, no sockets, no clock.

Joins the pure pieces the way the brokers will: a follower's fetch is
`FollowerPartition.fetch_request_fields` -> `check_replica_fetch` on the leader -> a read of
the leader's log beyond its high watermark -> `record_replica_fetch` -> the follower's
`on_fetch_response`. The controller is a dict with compare-and-set on the partition epoch
and ISR-only election, as cluster/metadata/ will do it. Time is a number the test moves.
Every step records the high watermark each leader exposed, for the checks of the chaos
harness: no acknowledged write lost, replicas identical up to the high watermark, the
high watermark never backwards, one leader per epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kio.schema.errors import ErrorCode

from cluster.log import LogConfig, PartitionLog
from cluster.replication.follower import FetchState, FollowerPartition
from cluster.replication.leader import AcksAll, LeaderPartition, ReplicationConfig
from cluster.replication.leader_fetch import check_replica_fetch, record_replica_fetch
from cluster.replication.state import IsrProposal, PartitionAssignment
from tests.cluster.log.helpers import make_batch

TOPIC = "t"


@dataclass
class Replica:
    broker_id: int
    log: PartitionLog
    role: LeaderPartition | FollowerPartition | None = None
    alive: bool = True
    broker_epoch: int = 1

    @property
    def high_watermark(self) -> int:
        return self.role.high_watermark if self.role is not None else 0


@dataclass
class PendingProduce:
    value_tag: int
    count: int
    end_offset: int
    leader: int
    leader_epoch: int


@dataclass
class SimCluster:
    root: Path
    replica_ids: tuple[int, ...] = (1, 2, 3)
    config: ReplicationConfig = ReplicationConfig(replica_lag_time_max_ms=1_000, min_insync_replicas=2)
    now_ms: int = 1_000_000
    replicas: dict[int, Replica] = field(default_factory=dict)
    record: PartitionAssignment | None = None
    leaders_by_epoch: dict[int, int] = field(default_factory=dict)
    acked: dict[int, tuple[int, int]] = field(default_factory=dict)  # tag -> (last offset, count)
    pending: list[PendingProduce] = field(default_factory=list)
    hw_seen: int = 0  # the greatest HW any leader exposed
    next_tag: int = 0
    stale: set[int] = field(default_factory=set)  # replicas cut off from the controller

    def __post_init__(self) -> None:
        for r in self.replica_ids:
            self.replicas[r] = Replica(r, PartitionLog.open(self.root / f"b{r}" / f"{TOPIC}-0", LogConfig()))
        self.record = PartitionAssignment(self.replica_ids[0], 0, self.replica_ids, self.replica_ids, 0)
        self._apply_record()

    # -- controller ------------------------------------------------------------------
    def _apply_record(self) -> None:
        rec = self.record
        self.leaders_by_epoch.setdefault(rec.leader_epoch, rec.leader)
        assert self.leaders_by_epoch[rec.leader_epoch] == rec.leader, "two leaders in one epoch"
        for r, rep in self.replicas.items():
            if not rep.alive or r in self.stale:
                continue
            if r == rec.leader:
                if isinstance(rep.role, LeaderPartition) and rep.role.leader_epoch == rec.leader_epoch:
                    rep.role.on_isr_committed(rec, self.now_ms)
                    continue
                rep.log.begin_leader_epoch(rec.leader_epoch)
                rep.role = LeaderPartition.become_leader(
                    TOPIC, 0, r, rec, self.config, log_end_offset=rep.log.log_end_offset,
                    high_watermark=rep.high_watermark, now_ms=self.now_ms)
            elif isinstance(rep.role, FollowerPartition):
                rep.role.become_follower(rec)
            else:
                rep.role = FollowerPartition(TOPIC, 0, r, rep.broker_epoch, rec, rep.log,
                                             high_watermark=rep.high_watermark)
        self._observe()

    def alter_partition(self, proposal: IsrProposal) -> bool:
        """AlterPartition: compare-and-set on the partition epoch; live replicas only."""
        rec = self.record
        if (proposal.partition_epoch != rec.partition_epoch or proposal.leader_epoch != rec.leader_epoch
                or any(not self.replicas[b.broker_id].alive for b in proposal.new_isr)):
            return False
        self.record = PartitionAssignment(rec.leader, rec.leader_epoch, proposal.isr_ids,
                                          rec.replicas, rec.partition_epoch + 1)
        self._apply_record()
        return True

    def elect(self) -> bool:
        """Leader gone: choose a live ISR member (never an unclean one); bump epochs."""
        rec = self.record
        live = [r for r in rec.isr if self.replicas[r].alive and r != rec.leader and r not in self.stale]
        if not live:
            return False
        # The controller drops the dead leader from the ISR in the same record (KRaft).
        isr = tuple(r for r in rec.isr if r != rec.leader or self.replicas[r].alive)
        self.record = PartitionAssignment(live[0], rec.leader_epoch + 1, isr, rec.replicas,
                                          rec.partition_epoch + 1)
        self._apply_record()
        return True

    # -- the data plane ----------------------------------------------------------------
    def leader(self) -> Replica | None:
        rep = self.replicas[self.record.leader]
        return rep if rep.alive and isinstance(rep.role, LeaderPartition) else None

    def produce(self, count: int = 1, *, to: int | None = None) -> int:
        """acks=all to the current leader (or to replica `to`, as a producer with old
        metadata would): 0 if appended (pending), else the error code it gets."""
        rep = self.leader() if to is None else self.replicas[to]
        if rep is None or not rep.alive or not isinstance(rep.role, LeaderPartition):
            return ErrorCode.not_leader_or_follower
        lp: LeaderPartition = rep.role
        code = lp.acks_all_precheck()
        if code:
            return code
        self.next_tag += 1
        batch = make_batch(count, tag=self.next_tag)
        res = rep.log.append([batch], leader_epoch=lp.leader_epoch, now_ms=self.now_ms)
        self.pending.append(PendingProduce(self.next_tag, count, res.last_offset + 1, rep.broker_id, lp.leader_epoch))
        lp.on_append(rep.log.log_end_offset, self.now_ms)
        self._settle()
        return 0

    def fetch(self, follower_id: int, max_bytes: int = 1 << 20) -> FetchState | None:
        """One fetch round of `follower_id` against the leader it believes in."""
        rep = self.replicas[follower_id]
        fp = rep.role
        if not rep.alive or not isinstance(fp, FollowerPartition) or not fp.ready():
            return None
        target = self.replicas[fp.leader]
        if not target.alive:
            return None  # connection refused: the fetcher retries later
        fields = fp.fetch_request_fields(max_bytes)
        lp = target.role if isinstance(target.role, LeaderPartition) else None
        check = check_replica_fetch(lp, target.log, replica_id=follower_id,
                                    current_leader_epoch=fields["current_leader_epoch"],
                                    fetch_offset=fields["fetch_offset"],
                                    last_fetched_epoch=fields["last_fetched_epoch"])
        records = b""
        if check.read:
            records = target.log.read(fields["fetch_offset"], max_bytes)  # beyond the HW
            _, proposal = record_replica_fetch(lp, check, replica_id=follower_id,
                                               fetch_offset=fields["fetch_offset"], now_ms=self.now_ms,
                                               broker_epoch=rep.broker_epoch)
            if proposal is not None and not self.alter_partition(proposal):
                lp.on_isr_rejected()
        hw = lp.high_watermark if lp is not None else -1
        applied = fp.on_fetch_response(
            error_code=check.error_code, high_watermark=hw,
            log_start_offset=target.log.log_start_offset, records=records,
            diverging_epoch=check.diverging_epoch, now_ms=self.now_ms)
        if applied.state is FetchState.AWAITING_METADATA and follower_id not in self.stale:
            fp.become_follower(self.record)  # the metadata it waits for arrives at once here
        self._settle()
        return applied.state

    def tick(self, ms: int) -> None:
        """Time passes; the leader checks for lagging followers."""
        self.now_ms += ms
        rep = self.leader()
        if rep is not None:
            proposal = rep.role.maybe_shrink_isr(self.now_ms)
            if proposal is not None and not self.alter_partition(proposal):
                rep.role.on_isr_rejected()
        self._settle()

    def kill(self, r: int) -> None:
        """SIGKILL: the process's state is gone; its log (in the page cache) stays."""
        rep = self.replicas[r]
        rep.alive = False
        rep.role = None
        if r == self.record.leader:
            self.elect()

    def restart(self, r: int) -> None:
        rep = self.replicas[r]
        rep.log.abandon()
        rep.log = PartitionLog.open(rep.log.directory, LogConfig())
        rep.alive = True
        rep.broker_epoch += 1
        rec = self.record
        if rec.leader == r:  # it was offline with r its last leader: elect r again
            self.record = PartitionAssignment(r, rec.leader_epoch + 1, rec.isr, rec.replicas,
                                              rec.partition_epoch + 1)
        self._apply_record()

    def isolate(self, r: int) -> None:
        """r loses the controller (SIGSTOP past its session, or a network cut): it keeps
        its role; if it led, the controller elects another leader."""
        self.stale.add(r)
        if r == self.record.leader:
            rec = self.record
            live = [x for x in rec.isr if x != r and self.replicas[x].alive and x not in self.stale]
            if live:
                self.record = PartitionAssignment(live[0], rec.leader_epoch + 1,
                                                  tuple(x for x in rec.isr if x != r),
                                                  rec.replicas, rec.partition_epoch + 1)
                self._apply_record()

    def heal(self, r: int) -> None:
        self.stale.discard(r)
        self._apply_record()

    # -- bookkeeping -------------------------------------------------------------------
    def _settle(self) -> None:
        """Acknowledge the acks=all produces whose leader's HW reached them."""
        self._observe()
        still = []
        for p in self.pending:
            rep = self.replicas[p.leader]
            lp = rep.role
            if not rep.alive or not isinstance(lp, LeaderPartition) or lp.leader_epoch != p.leader_epoch:
                continue  # the producer sees a timeout / NOT_LEADER: not acknowledged
            status = lp.acks_all_status(p.end_offset)
            if status is AcksAll.DONE:
                self.acked[p.value_tag] = (p.end_offset - 1, p.count)
            elif status is AcksAll.WAITING:
                still.append(p)
        self.pending = still

    def _observe(self) -> None:
        rep = self.leader()
        if rep is not None and rep.role.visible_high_watermark is not None:
            hw = rep.role.visible_high_watermark
            assert hw >= self.hw_seen, f"high watermark went back from {self.hw_seen} to {hw}"
            self.hw_seen = hw

    def close(self) -> None:
        for rep in self.replicas.values():
            rep.log.close()
