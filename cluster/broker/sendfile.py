"""Send a Fetch reply whose log bytes are file ranges: headers by the transport, the ranges
by `os.sendfile` from the page cache, never read into the broker's memory.

Why: with pread + writev every consumer byte was copied twice by the broker (file -> our
buffer -> socket) and a reply to a slow reader held its log bytes in memory for as long as
the reader took. `sendfile` hands pages to the socket in the kernel; a slow reader holds
only a descriptor (see cluster/log/file_range.py for why each range has its own).

How it fits asyncio's transport: bytes may only go past the transport when its buffer is
empty, or they would overtake queued ones. So the header pieces before a range are written
as usual (`send_buffers`: one `writev`, the rest via the transport), then the transport's
buffer is drained to empty (write limits of zero for that wait, so `drain()` resumes only
when it is empty), then the range goes by `sendfile` on the socket. Nothing else writes to
the transport meanwhile: a connection has one request in flight and its serve task is the
one sending. When the socket is full (EAGAIN) the sender waits for it to be writable on a
`dup` of the socket's descriptor (the loop refuses a second watcher on a transport's own
descriptor), or for the connection to close (the idle reaper aborts a reader that stopped
reading; the wait must end then, since a socket nobody reads never becomes writable).

Each `sendfile` call that moves bytes calls `on_progress` (the idle deadline: a slow reader
that reads is active, as for `send_buffers`' chunks). A peer that closes mid-reply makes
`sendfile` fail with a ConnectionError, which ends the connection like any write error;
a range whose file was cut in place (`FileRange.valid`) ends it with `ReplyCut`, as Kafka
closes a connection whose file shrank during a send. Every range is closed when the reply
ends, however it ends.

The whole reply is sent under TCP_CORK (one push at the end): uncorked, each piece
(header, range, the tail after it) was pushed alone, and on loopback each push cost about
as much as writing 16 KiB.

Which partitions go by sendfile, by measurement (`BrokerConfig.fetch_sendfile_min_bytes`,
128 KiB): the system calls a range adds (dup,
close, cork, uncork, a write of the header apart from the bytes) cost more than the
copies they save for small ranges. Broker CPU per Fetch of one partition, this machine
(2 cores, loopback, median of 2 alternated runs each, an in-process broker, the client
another process; `python -m bench.broker.fetch_sizes` measures the same per size):
16 KiB 96 us by sendfile vs 74 by pread + writev; 32 KiB 108 vs 78; 64 KiB 107 vs 92;
128 KiB 144 vs 145; 256 KiB 136 vs 150; 1 MiB 296 vs 415. So a range of under 128 KiB is
read with pread and written with the header bytes in one writev; from 128 KiB it goes by
sendfile.

Where `sendfile` is not possible (TLS, or a transport that is not a plain TCP socket's),
ranges are read with pread a chunk at a time and sent as bytes, so memory stays bounded
by a chunk per connection. TLS connections never get ranges in the first place (their
Fetch reads bytes, as before: `session.sendfile` is False there).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import socket
import struct
import termios
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from cluster.broker.scatter_write import CHUNK, send_buffers
from cluster.log.file_range import FileRange

log = logging.getLogger(__name__)

# At most this much per sendfile call: the granularity of on_progress.
SENDFILE_CHUNK = CHUNK


@dataclass
class SendfileStats:
    """Process-wide counters (logs, tests): what went by sendfile, and how replies ended."""

    bytes: int = 0
    replies: int = 0
    cut: int = 0  # replies ended by ReplyCut
    waits: int = 0  # times a reply waited for the socket to take more (EAGAIN)


STATS = SendfileStats()


class ReplyCut(ConnectionError):
    """A range's file was cut in place while its reply was leaving: the connection closes."""


def can_sendfile(transport: asyncio.BaseTransport) -> bool:
    """True for a plaintext TCP (or Unix stream) socket transport."""
    if transport.get_extra_info("sslcontext") is not None:
        return False
    sock = transport.get_extra_info("socket")
    return (sock is not None and sock.type == socket.SOCK_STREAM
            and hasattr(transport, "get_write_buffer_size") and hasattr(os, "sendfile"))


def unsent_bytes(transport: Any) -> int:
    """Reply bytes the kernel still holds for the peer (TIOCOUTQ: not yet acknowledged),
    0 where unknown. A reply sent by sendfile leaves nothing in the transport's buffer but
    up to the socket's whole send buffer (megabytes on loopback) in the kernel; while that
    shrinks, the reader is taking the reply and is not idle."""
    get = getattr(transport, "get_extra_info", None)
    sock = get("socket") if get is not None else None
    if sock is None:
        return 0
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
    except (OSError, ValueError):
        return 0


def has_ranges(parts: Sequence[object]) -> bool:
    return any(isinstance(p, FileRange) for p in parts)


async def send_reply(writer: asyncio.StreamWriter, parts: Sequence[object], *,
                     on_progress: Callable[[], None] | None = None) -> None:
    """Write a framed reply of bytes and file ranges in order, then drain; closes the ranges."""
    try:
        if not has_ranges(parts):
            await send_buffers(writer, parts, on_progress=on_progress)  # type: ignore[arg-type]
        elif can_sendfile(writer.transport):
            STATS.replies += 1
            await _send_sendfile(writer, parts, on_progress)
        else:
            await _send_read(writer, parts, on_progress)
    except ReplyCut as exc:
        STATS.cut += 1
        log.warning("closing %s: %s", writer.get_extra_info("peername"), exc)
        raise
    finally:
        for p in parts:
            if isinstance(p, FileRange):
                p.close()


async def _send_read(writer: asyncio.StreamWriter, parts: Sequence[object],
                     on_progress: Callable[[], None] | None) -> None:
    """The bytes fallback: each range read a chunk at a time when its turn comes."""
    pending: list = []
    for p in parts:
        if not isinstance(p, FileRange):
            pending.append(p)
            continue
        for start in range(p.offset, p.offset + p.count, CHUNK):
            if not p.valid:
                raise ReplyCut(f"{p.path} was cut while a reply of its bytes was being sent")
            data = os.pread(p.fd, min(CHUNK, p.offset + p.count - start), start)
            if not data:
                raise ReplyCut(f"{p.path} ended early while a reply of its bytes was being sent")
            pending.append(data)
            await send_buffers(writer, pending, on_progress=on_progress)
            pending = []
    await send_buffers(writer, pending, on_progress=on_progress)


class _Waker:
    """Waits for the socket to be writable (on a dup of its descriptor) or the connection
    to close; made on the first EAGAIN of a reply, closed when the reply ends."""

    def __init__(self, writer: asyncio.StreamWriter, sock_fd: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.fd = os.dup(sock_fd)
        self.closed = asyncio.ensure_future(writer.wait_closed())

    async def writable(self) -> None:
        fut = self.loop.create_future()
        self.loop.add_writer(self.fd, _resolve, fut)
        try:
            await asyncio.wait((fut, self.closed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.loop.remove_writer(self.fd)
            if not fut.done():
                fut.cancel()
        if self.closed.done():
            raise ConnectionResetError("the connection closed while a reply was being sent")

    def close(self) -> None:
        os.close(self.fd)
        if self.closed.done():
            if not self.closed.cancelled():
                self.closed.exception()  # retrieved: the connection's end is reported elsewhere
        else:
            self.closed.cancel()


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def _send_sendfile(writer: asyncio.StreamWriter, parts: Sequence[object],
                         on_progress: Callable[[], None] | None) -> None:
    transport = writer.transport
    sock = transport.get_extra_info("socket")
    sock_fd = sock.fileno()
    cork = sock.family in (socket.AF_INET, socket.AF_INET6)
    waker: _Waker | None = None
    pending: list = []
    if cork:
        # One push for the whole reply: without it every piece (header, ranges, the tail)
        # is pushed alone, and on loopback each push costs as much as writing 16 KiB.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    try:
        for p in parts:
            if not isinstance(p, FileRange):
                pending.append(p)
                continue
            if pending:
                await send_buffers(writer, pending, on_progress=on_progress)
                pending = []
            await _flushed(writer)
            offset, end = p.offset, p.offset + p.count
            while offset < end:
                if transport.is_closing():
                    raise ConnectionResetError("the connection closed while a reply was being sent")
                if end > p.valid_below:
                    raise ReplyCut(f"{p.path} was cut while a reply of its bytes was being sent")
                try:
                    n = os.sendfile(sock_fd, p.fd, offset, min(end - offset, SENDFILE_CHUNK))
                except (BlockingIOError, InterruptedError):
                    STATS.waits += 1
                    if waker is None:
                        waker = _Waker(writer, sock_fd)
                    await waker.writable()
                    continue
                if n == 0:
                    raise ReplyCut(f"{p.path} ended early while a reply of its bytes was being sent")
                offset += n
                STATS.bytes += n
                if on_progress is not None:
                    on_progress()
        await send_buffers(writer, pending, on_progress=on_progress)
    finally:
        if cork and not transport.is_closing():
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
            except OSError:
                pass  # the connection is gone; its end is reported by the caller's error
        if waker is not None:
            waker.close()


async def _flushed(writer: asyncio.StreamWriter) -> None:
    """Wait until the transport has handed every queued byte to the kernel."""
    transport = writer.transport
    if not transport.get_write_buffer_size():
        return
    low, high = transport.get_write_buffer_limits()
    transport.set_write_buffer_limits(high=0, low=0)
    try:
        while transport.get_write_buffer_size():
            if transport.is_closing():
                raise ConnectionResetError("the connection closed while a reply was being sent")
            await writer.drain()
    finally:
        transport.set_write_buffer_limits(high=high, low=low)
