"""Durable key -> value journal for committed offsets and group metadata.

Kafka keeps these in the compacted `__consumer_offsets` topic; we keep the equivalent in
`<data_dir>/__groups/journal`: an append-only file of framed records, replayed on start.
The promise is that anything acknowledged survives `kill -9`: each batch is written with
one `os.write` to an O_APPEND descriptor before the driver answers, so it is in the page
cache even if the process dies the next instant. Surviving power loss is a separate choice,
the fsync policy: "always" (fsync every batch), "interval" (the owner calls `sync()` on a
timer) or "never".

Frame: u32 payload length | u32 CRC32C(payload) | payload, where
payload = u32 key length | key | u8 has_value | value. has_value = 0 is a tombstone.
A short or corrupt frame at the tail (a torn write) ends replay and is truncated away.
When the journal grows past `compact_ratio` times the live data, it is rewritten with only
the live records to `journal.tmp`, fsynced and renamed over the journal: a crash at any
point leaves either the old or the new complete file.
"""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path
from typing import Iterable

import crc32c

logger = logging.getLogger(__name__)

_FRAME = struct.Struct(">II")
_KLEN = struct.Struct(">I")
FSYNC_POLICIES = ("always", "interval", "never")


def _encode(key: bytes, value: bytes | None) -> bytes:
    payload = _KLEN.pack(len(key)) + key + (b"\x00" if value is None else b"\x01" + value)
    return _FRAME.pack(len(payload), crc32c.crc32c(payload)) + payload


def _decode_payload(payload: bytes) -> tuple[bytes, bytes | None]:
    (klen,) = _KLEN.unpack_from(payload, 0)
    key = payload[4 : 4 + klen]
    flag = payload[4 + klen]
    return key, (payload[5 + klen :] if flag else None)


def read_records(data: bytes) -> tuple[list[tuple[bytes, bytes | None]], int]:
    """Decode frames from `data`: (records, length of the valid prefix)."""
    records: list[tuple[bytes, bytes | None]] = []
    pos = 0
    while pos + _FRAME.size <= len(data):
        length, crc = _FRAME.unpack_from(data, pos)
        end = pos + _FRAME.size + length
        if end > len(data):
            break
        payload = data[pos + _FRAME.size : end]
        if crc32c.crc32c(payload) != crc:
            break
        try:
            records.append(_decode_payload(payload))
        except (IndexError, struct.error):
            break
        pos = end
    return records, pos


class GroupStore:
    """The journal of one coordinator. Not thread-safe; owned by the asyncio driver."""

    def __init__(
        self,
        directory: Path,
        fsync: str = "never",
        compact_ratio: float = 4.0,
        compact_min_bytes: int = 1 << 20,
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync policy must be one of {FSYNC_POLICIES}, not {fsync!r}")
        self.directory = Path(directory)
        self.path = self.directory / "journal"
        self.fsync = fsync
        self.compact_ratio = compact_ratio
        self.compact_min_bytes = compact_min_bytes
        self.live: dict[bytes, bytes] = {}
        self._live_bytes = 0
        self._journal_bytes = 0
        self._fd: int | None = None
        self._dirty = False

    def open(self) -> dict[bytes, bytes]:
        """Replay the journal (truncating a torn tail) and open it for appending."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        if tmp.exists():
            tmp.unlink()  # an interrupted compaction; the journal itself is intact
        data = self.path.read_bytes() if self.path.exists() else b""
        records, valid = read_records(data)
        if valid < len(data):
            logger.warning("%s: truncating %d torn/corrupt bytes at offset %d", self.path, len(data) - valid, valid)
            with open(self.path, "r+b") as f:
                f.truncate(valid)
                f.flush()
                os.fsync(f.fileno())
        self.live = {}
        for key, value in records:
            if value is None:
                self.live.pop(key, None)
            else:
                self.live[key] = value
        self._live_bytes = sum(len(_encode(k, v)) for k, v in self.live.items())
        self._journal_bytes = valid
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        logger.info("%s: loaded %d live records from %d bytes", self.path, len(self.live), valid)
        return dict(self.live)

    def append(self, records: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Make `records` survive a process crash (and power loss if fsync="always")."""
        if self._fd is None:
            raise RuntimeError("store is not open")
        frames = []
        for key, value in records:
            frame = _encode(key, value)
            frames.append(frame)
            old = self.live.pop(key, None)
            if old is not None:
                self._live_bytes -= len(_encode(key, old))
            if value is not None:
                self.live[key] = value
                self._live_bytes += len(frame)
        if not frames:
            return
        blob = b"".join(frames)
        view = memoryview(blob)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._journal_bytes += len(blob)
        if self.fsync == "always":
            os.fsync(self._fd)
        else:
            self._dirty = True
        if self._journal_bytes > self.compact_min_bytes and self._journal_bytes > self.compact_ratio * self._live_bytes:
            self.compact()

    def sync(self) -> None:
        """fsync if anything was written since the last one (for the "interval" policy)."""
        if self._fd is not None and self._dirty:
            os.fsync(self._fd)
            self._dirty = False

    def compact(self) -> None:
        """Rewrite the journal with only the live records (tmp file, fsync, rename)."""
        tmp = self.path.with_suffix(".tmp")
        blob = b"".join(_encode(k, v) for k, v in self.live.items())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        logger.info("%s: compacted %d bytes to %d", self.path, self._journal_bytes, len(blob))
        self._journal_bytes = len(blob)
        self._live_bytes = len(blob)
        self._dirty = False

    def journal_bytes(self) -> int:
        return self._journal_bytes

    def close(self) -> None:
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            self._fd = None
