"""Errors the partition log raises; each maps onto one Kafka error code in the broker."""

from __future__ import annotations


class LogError(Exception):
    """Base class of partition-log errors."""


class OffsetOutOfRange(LogError):
    """Requested offset is below the log start or beyond the log end (OFFSET_OUT_OF_RANGE)."""

    def __init__(self, offset: int, log_start_offset: int, log_end_offset: int) -> None:
        super().__init__(
            f"offset {offset} is outside the log range [{log_start_offset}, {log_end_offset}]"
        )
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset


class OffsetOutOfOrder(LogError):
    """An offset-preserving append would go backwards (the mirror's batches overlap the log)."""


class LogClosed(LogError):
    """The log was used after close()."""
