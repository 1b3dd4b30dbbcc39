"""Small durable-file helpers: segment names, full writes, atomic checkpoint files.

Everything that must survive a crash in a known state (log start offset, leader-epoch
checkpoint) goes through `atomic_write`, so a reader sees either the old or the new file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIMEINDEX_SUFFIX = ".timeindex"
SEGMENT_SUFFIXES = (LOG_SUFFIX, INDEX_SUFFIX, TIMEINDEX_SUFFIX)


def segment_name(base_offset: int, suffix: str) -> str:
    """Kafka's naming: base offset zero-padded to 20 digits, so names sort like offsets."""
    return f"{base_offset:020d}{suffix}"


def parse_segment_name(name: str) -> int | None:
    """Base offset of a `.log` file name, or None for anything else."""
    if not name.endswith(LOG_SUFFIX):
        return None
    stem = name[: -len(LOG_SUFFIX)]
    if len(stem) != 20 or not stem.isdigit():
        return None
    return int(stem)


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """os.write until every byte is in the page cache (regular files rarely write short)."""
    mv = memoryview(data)
    while mv:
        n = os.write(fd, mv)
        mv = mv[n:]


def pwrite_all(fd: int, data: bytes | bytearray | memoryview, pos: int) -> None:
    """os.pwrite until every byte is in the page cache, starting at file position `pos`."""
    mv = memoryview(data)
    while mv:
        n = os.pwrite(fd, mv, pos)
        mv = mv[n:]
        pos += n


def pread_exact(fd: int, size: int, pos: int) -> bytes:
    """pread that loops on short reads; returns fewer bytes only at end of file."""
    data = os.pread(fd, size, pos)
    if len(data) == size or not data:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = os.pread(fd, size - got, pos + got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def fsync_dir(directory: Path) -> None:
    """Make creations, renames and unlinks in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Replace `path` with `data` via tmp + fsync + rename + dir fsync: all or nothing.
    `sync=False` keeps the rename (all or nothing across a process crash) without the
    fsyncs that make it survive a power cut."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if sync:
        fsync_dir(path.parent)


def write_file(path: Path, data: bytes, *, sync: bool) -> None:
    """Overwrite `path` in place (index files: a torn one is detected and rebuilt)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, data)
        if sync:
            os.fdatasync(fd)
    finally:
        os.close(fd)


def unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
