"""Byte ranges of segment files that outlive the log that read them (Fetch by sendfile).

Why a descriptor of its own: a Fetch reply on a plaintext connection carries the log bytes
as (fd, offset, count) ranges that the connection sends with `os.sendfile` later, maybe
seconds later for a slow reader. By then the LogPool may have closed the partition's log
(its descriptor budget), retention may have deleted the segment, or the compaction cleaner
may have renamed a cleaned file over it. So each range holds an `os.dup` of the segment's
descriptor: the same open file, whose inode stays readable after an unlink or a rename over
its name, so a range only ever yields bytes of the file it was read from.

What a dup does not cover is a file cut *in place* (`ftruncate`: DcMirrorTruncate, a
truncation in recovery), after which the same positions may be written again with other
batches. Every in-place cut calls `truncated(path, size)`, which lowers `valid_below` of
the live ranges of that file; the sender checks it before each `sendfile` call and closes
the connection instead of sending bytes past it (as Kafka closes a connection whose
FileRecords shrank during a send: the client retries). Bytes that `sendfile` already gave
the kernel are page-cache references, so a cut can in theory still change the tail of
the last page in flight; the batch CRC lets the client detect that (Kafka has the same
window).

Descriptors are counted against `RANGES.capacity` (broker-wide); over it the reader gets
None and reads bytes instead (pread), so a thousand slow readers never hold a thousand
extra descriptors. Each range must be closed by whoever holds it (`close()`, idempotent;
the garbage collector closes a forgotten one as a last resort).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from .files import pread_exact

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class FileRange:
    """Bytes [offset, offset + count) of an open file (a dup the holder must close)."""

    fd: int
    offset: int
    count: int
    path: str
    # Positions at or past this may no longer hold what was read (an in-place cut).
    valid_below: int = field(default=1 << 62)
    _budget: "RangeBudget | None" = field(default=None, repr=False)

    def __len__(self) -> int:
        return self.count

    @property
    def valid(self) -> bool:
        return self.fd >= 0 and self.offset + self.count <= self.valid_below

    def read(self) -> bytes:
        """The range's bytes (the fallback where a transport cannot sendfile)."""
        return pread_exact(self.fd, self.count, self.offset)

    def close(self) -> None:
        if self.fd < 0:
            return
        fd, self.fd = self.fd, -1
        os.close(fd)
        if self._budget is not None:
            self._budget._release(self)

    def __del__(self) -> None:
        if self.fd >= 0:
            self.close()


# Live ranges by file path, whichever budget gave them out (what `truncated` looks through).
_LIVE: dict[str, set[FileRange]] = {}


class RangeBudget:
    """At most `capacity` live `FileRange`s (each holds a descriptor)."""

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self.count = 0
        self.refused = 0  # ranges not given out because the budget was spent (for tests, logs)

    def open(self, fd: int, path: str, offset: int, count: int) -> FileRange | None:
        """A range over a dup of `fd`, or None when `capacity` ranges are live."""
        if self.count >= self.capacity:
            self.refused += 1
            return None
        rng = FileRange(os.dup(fd), offset, count, path, _budget=self)
        _LIVE.setdefault(path, set()).add(rng)
        self.count += 1
        return rng

    def _release(self, rng: FileRange) -> None:
        live = _LIVE.get(rng.path)
        if live is not None and rng in live:
            live.discard(rng)
            self.count -= 1
            if not live:
                del _LIVE[rng.path]


RANGES = RangeBudget()


def truncated(path: object, size: int) -> None:
    """`path` is about to be cut in place to `size` bytes: live ranges past it must not be
    sent (the segment code calls this before every ftruncate or O_TRUNC)."""
    for rng in _LIVE.get(str(path), ()):
        if rng.offset + rng.count > size:
            logger.info("%s was cut to %d bytes while a reply of its bytes [%d, %d) was in "
                        "flight; that reply's connection will be closed", path, size,
                        rng.offset, rng.offset + rng.count)
        rng.valid_below = min(rng.valid_below, size)
