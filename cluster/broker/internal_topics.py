"""Kafka's internal topics, `__consumer_offsets` and `__transaction_state`, as Metadata shows them.

Why: clients decide by Metadata's `is_internal` flag what a regex subscription must leave
out (franz-go's TestConsumeRegex, the Java client's `exclude.internal.topics`), and tools
look the topics up by name. Here the data of both lives in the coordinators' journals
(`__groups/`, `__transactions/`), not in partition logs, so these topics have no log:
Metadata lists them, Produce is refused as Kafka refuses it, ListOffsets and
DescribeProducers see empty partitions (tools that walk every partition, such as
`kafka-transactions find-hanging` and `kafka-get-offsets`, work), and Fetch answers
UNKNOWN_TOPIC_OR_PARTITION / UNKNOWN_TOPIC_ID (unsupported; Kafka serves the records).

When they appear follows Apache Kafka 4.3.1: after first use. Kafka creates
`__consumer_offsets` on the first FindCoordinator for a group and `__transaction_state`
on the first for a transactional id; before that Metadata answers
UNKNOWN_TOPIC_OR_PARTITION with `is_internal` already true. The first use is remembered
in `<data_dir>/meta/internal-topics/<name>` so the topic stays listed after a restart,
as Kafka's does. Partition counts are Kafka's defaults (offsets.topic.num.partitions=50,
transaction.state.log.num.partitions=50); topic ids are derived from the cluster id and
the name, so they are stable without being stored.

Kafka 4.3.1 without an authorizer lets any client delete `__consumer_offsets` (losing
every committed offset) or grow it (moving every group to another coordinator
partition). Neither means anything here, so DeleteTopics and CreatePartitions (validate-only
too) are refused with INVALID_TOPIC_EXCEPTION, the code Kafka gives a Produce to them.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

logger = logging.getLogger(__name__)

CONSUMER_OFFSETS = "__consumer_offsets"
TRANSACTION_STATE = "__transaction_state"
#: name -> partition count (Kafka's defaults)
PARTITIONS: dict[str, int] = {CONSUMER_OFFSETS: 50, TRANSACTION_STATE: 50}
#: FindCoordinator key_type -> the topic its first use creates
BY_KEY_TYPE: dict[int, str] = {0: CONSUMER_OFFSETS, 1: TRANSACTION_STATE}
_DIR = "internal-topics"


def is_internal(name: str | None) -> bool:
    return name in PARTITIONS


def hosted(broker, name: str, index: int) -> bool:
    """True for a partition of an internal topic that Metadata lists (ListOffsets answers it
    as an empty log at offset 0, DescribeProducers with no producers)."""
    return name in broker.internal_topics.used and 0 <= index < PARTITIONS[name]


def refusal(name: str, what: str) -> str:
    """The one sentence a refused DeleteTopics/CreatePartitions/Produce carries."""
    return (f"{name} is an internal topic: {what} is not allowed (dcmirror keeps its data in "
            f"the coordinator's journal, not in partitions)")


class InternalTopics:
    """Which internal topics were used on this cluster, with their stable ids."""

    def __init__(self, meta_dir: Path, cluster_id: str) -> None:
        self.directory = Path(meta_dir) / _DIR
        self.cluster_id = cluster_id
        self.used: set[str] = set()
        if self.directory.is_dir():
            self.used = {p.name for p in self.directory.iterdir() if p.name in PARTITIONS}

    def topic_id(self, name: str) -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"dcmirror:{self.cluster_id}:{name}")

    def by_id(self, topic_id: uuid.UUID) -> str | None:
        for name in self.used:
            if self.topic_id(name) == topic_id:
                return name
        return None

    def mark_used(self, name: str) -> None:
        """Remember (durably) that `name` exists from now on; a write failure only logs."""
        if name in self.used or name not in PARTITIONS:
            return
        self.used.add(name)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
            os.fsync(fd)
            os.close(fd)
            dfd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            logger.warning("could not record that %s exists (%s); it is listed until restart", name, exc)
        logger.info("internal topic %s created (first use)", name)
