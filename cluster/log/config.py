"""Per-partition log settings, mirroring the Kafka topic configs the broker exposes.

Kept apart from the log itself so the broker can parse and validate topic configs
(CreateTopics, AlterConfigs) without touching any files.
"""

from __future__ import annotations

from dataclasses import dataclass

FSYNC_POLICIES = ("always", "never", "interval")
TIMESTAMP_TYPES = ("CreateTime", "LogAppendTime")
# Index entries store file positions as int32, so a segment can never be larger than this.
MAX_SEGMENT_BYTES = (1 << 31) - 1


@dataclass
class LogConfig:
    """Settings of one partition log.

    fsync policies and what an acknowledged append survives:
      - "always": fdatasync before append() returns. Survives kill -9 and power loss.
      - "interval": fdatasync when maybe_flush() finds fsync_interval_ms elapsed. Survives
        kill -9; a power cut can lose the appends of the last interval.
      - "never": the kernel writes back when it likes (about 30 s on Linux). Survives kill -9
        (os.write has put the bytes in the page cache); a power cut can lose any append
        since the last segment roll or flush().
    Whatever the policy, a segment is fsynced when it rolls, so after a crash only the
    last segment needs a CRC scan.
    """

    segment_bytes: int = 1 << 30
    segment_ms: int = 7 * 24 * 3600 * 1000
    retention_ms: int = 7 * 24 * 3600 * 1000  # -1 = unlimited
    retention_bytes: int = -1  # -1 = unlimited
    index_interval_bytes: int = 4096
    fsync: str = "never"
    fsync_interval_ms: int = 1000
    message_timestamp_type: str = "CreateTime"
    # cleanup.policy: "delete" deletes old segments by retention; "compact" keeps the latest
    # record per key (cluster/log/cleaner.py); both may be on ("delete,compact").
    delete: bool = True
    compact: bool = False
    min_cleanable_dirty_ratio: float = 0.5
    min_compaction_lag_ms: int = 0
    max_compaction_lag_ms: int = (1 << 63) - 1
    delete_retention_ms: int = 24 * 3600 * 1000

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the bad setting; called on construction."""
        if not 14 <= self.segment_bytes <= MAX_SEGMENT_BYTES:
            raise ValueError(f"segment_bytes must be in [14, {MAX_SEGMENT_BYTES}], got {self.segment_bytes}")
        if self.segment_ms < 1:
            raise ValueError(f"segment_ms must be >= 1, got {self.segment_ms}")
        if self.retention_ms < -1:
            raise ValueError(f"retention_ms must be >= -1, got {self.retention_ms}")
        if self.retention_bytes < -1:
            raise ValueError(f"retention_bytes must be >= -1, got {self.retention_bytes}")
        if self.index_interval_bytes < 0:
            raise ValueError(f"index_interval_bytes must be >= 0, got {self.index_interval_bytes}")
        if self.fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync must be one of {FSYNC_POLICIES}, got {self.fsync!r}")
        if self.fsync_interval_ms < 0:
            raise ValueError(f"fsync_interval_ms must be >= 0, got {self.fsync_interval_ms}")
        if self.message_timestamp_type not in TIMESTAMP_TYPES:
            raise ValueError(
                f"message_timestamp_type must be one of {TIMESTAMP_TYPES}, got {self.message_timestamp_type!r}"
            )
        if not 0.0 <= self.min_cleanable_dirty_ratio <= 1.0:
            raise ValueError(
                f"min_cleanable_dirty_ratio must be in [0, 1], got {self.min_cleanable_dirty_ratio}"
            )
        for name in ("min_compaction_lag_ms", "delete_retention_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_compaction_lag_ms < 1:
            raise ValueError(f"max_compaction_lag_ms must be >= 1, got {self.max_compaction_lag_ms}")

    @property
    def log_append_time(self) -> bool:
        return self.message_timestamp_type == "LogAppendTime"
