"""A process-wide LRU of read-only file descriptors for inactive segment files.

Thousands of idle partitions with many segments each must not hold a descriptor per file:
only active segments keep their own handle, every other read borrows one from here.
Not thread-safe beyond the lock below; the broker drives logs from one event loop.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict

logger = logging.getLogger(__name__)


class HandleCache:
    """Path -> O_RDONLY fd, closing the least recently used beyond `capacity`."""

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str) -> int:
        """A descriptor for `path`; valid until the next get() or evict() on this cache."""
        with self._lock:
            fd = self._fds.get(path)
            if fd is not None:
                self._fds.move_to_end(path)
                return fd
            fd = os.open(path, os.O_RDONLY)
            self._fds[path] = fd
            while len(self._fds) > self.capacity:
                _, old = self._fds.popitem(last=False)
                os.close(old)
            return fd

    def evict(self, path: str) -> None:
        """Close the cached descriptor of a file about to be truncated, replaced or deleted."""
        with self._lock:
            fd = self._fds.pop(path, None)
            if fd is not None:
                os.close(fd)

    def evict_under(self, directory: str) -> None:
        prefix = directory.rstrip(os.sep) + os.sep
        with self._lock:
            for path in [p for p in self._fds if p.startswith(prefix)]:
                os.close(self._fds.pop(path))

    def __len__(self) -> int:
        return len(self._fds)

    def close_all(self) -> None:
        with self._lock:
            while self._fds:
                _, fd = self._fds.popitem()
                os.close(fd)


READ_HANDLES = HandleCache()
