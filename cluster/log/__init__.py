"""Partition logs: segments of raw record batches, indexes, retention and crash recovery.

The broker opens one PartitionLog per partition directory; see partition_log.py.
"""

from .config import LogConfig
from .errors import LogClosed, LogError, OffsetOutOfOrder, OffsetOutOfRange
from .partition_log import AppendResult, PartitionLog

__all__ = [
    "AppendResult",
    "LogClosed",
    "LogConfig",
    "LogError",
    "OffsetOutOfOrder",
    "OffsetOutOfRange",
    "PartitionLog",
]
