"""Transaction metadata, its states, the machine's effects, and their journal encoding.

One `TxnMetadata` per transactional.id, as in Kafka's TransactionMetadata: the producer id
and epoch it currently owns (plus the previous epoch, so a retried InitProducerId is
recognised), the partitions and consumer groups of the open transaction, the offsets it
will commit, and its state. States follow Kafka's TransactionState:

    Empty -> Ongoing -> PrepareCommit -> CompleteCommit -> (Ongoing ...)
                     -> PrepareAbort  -> CompleteAbort  -> (Ongoing ...)

Prepare* is made durable before markers are written; Complete* after. A coordinator that
restarts in Prepare* therefore re-writes the markers (a repeated marker is harmless) and
completes, so a transaction is never left half-visible.

Metadata is stored as JSON in the journal (`cluster.groups.store.GroupStore` frames), keyed
by the transactional id; readable with any text tool when debugging a crash.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field

NO_PRODUCER_ID = -1
NO_EPOCH = -1
MAX_EPOCH = 32767


class TxnState(enum.Enum):
    EMPTY = "Empty"
    ONGOING = "Ongoing"
    PREPARE_COMMIT = "PrepareCommit"
    PREPARE_ABORT = "PrepareAbort"
    COMPLETE_COMMIT = "CompleteCommit"
    COMPLETE_ABORT = "CompleteAbort"

    @property
    def prepared(self) -> bool:
        return self in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT)


TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class PendingOffset:
    offset: int
    leader_epoch: int = -1
    metadata: str = ""


@dataclass
class TxnMetadata:
    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    last_producer_epoch: int = NO_EPOCH
    previous_producer_id: int = NO_PRODUCER_ID
    state: TxnState = TxnState.EMPTY
    partitions: set[TopicPartition] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    # group id -> (topic, partition) -> offset, committed into the group on COMMIT
    pending_offsets: dict[str, dict[TopicPartition, PendingOffset]] = field(default_factory=dict)
    start_ms: int = -1
    last_update_ms: int = -1

    def encode(self) -> bytes:
        return json.dumps({
            "pid": self.producer_id,
            "epoch": self.producer_epoch,
            "last_epoch": self.last_producer_epoch,
            "prev_pid": self.previous_producer_id,
            "timeout_ms": self.timeout_ms,
            "state": self.state.value,
            "partitions": sorted([t, p] for t, p in self.partitions),
            "groups": sorted(self.groups),
            "offsets": {
                g: [[t, p, o.offset, o.leader_epoch, o.metadata] for (t, p), o in sorted(offs.items())]
                for g, offs in self.pending_offsets.items()
            },
            "start_ms": self.start_ms,
            "last_update_ms": self.last_update_ms,
        }, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, transactional_id: str, raw: bytes) -> "TxnMetadata":
        d = json.loads(raw)
        return cls(
            transactional_id=transactional_id,
            producer_id=d["pid"],
            producer_epoch=d["epoch"],
            timeout_ms=d["timeout_ms"],
            last_producer_epoch=d["last_epoch"],
            previous_producer_id=d["prev_pid"],
            state=TxnState(d["state"]),
            partitions={(t, p) for t, p in d["partitions"]},
            groups=set(d["groups"]),
            pending_offsets={
                g: {(t, p): PendingOffset(o, e, m) for t, p, o, e, m in rows}
                for g, rows in d["offsets"].items()
            },
            start_ms=d["start_ms"],
            last_update_ms=d["last_update_ms"],
        )


# ---- effects the driver carries out, in order -------------------------------------
@dataclass(frozen=True)
class Persist:
    """Write this snapshot of a transaction to the journal before going on (None: forget it)."""

    transactional_id: str
    value: bytes | None


@dataclass(frozen=True)
class WriteMarkers:
    """Append a COMMIT/ABORT control batch to each partition."""

    producer_id: int
    producer_epoch: int
    commit: bool
    partitions: tuple[TopicPartition, ...]


@dataclass(frozen=True)
class CommitOffsets:
    """Commit offsets into a consumer group (the transaction committed)."""

    group_id: str
    offsets: tuple[tuple[str, int, PendingOffset], ...]


@dataclass(frozen=True)
class Complete:
    """Markers are written: call `TxnMachine.complete(transactional_id)` next."""

    transactional_id: str


Effect = Persist | WriteMarkers | CommitOffsets | Complete
