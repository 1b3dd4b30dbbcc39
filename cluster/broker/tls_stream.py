"""The read side of TLS connections: asyncio's TLS transport decrypts straight into the
request frame being read, and read-ahead is bounded beyond that frame, not including it.

Why not a StreamReader: with one, every request byte was copied twice after decryption
(into the reader's buffer, then out of it into the frame's bytes), and a Produce frame
larger than twice the reader's limit paused and resumed the transport once per socket
read (the reader pauses above 2 x limit, `readexactly` resumes at once because it still
waits for the rest of its frame): two epoll_ctl calls and a scheduled callback per
256 KiB, 5% of the broker's time under TLS produce load (README "Cost of TLS").

`FrameReader` keeps the `asyncio.StreamReader` contract the serve loop relies on
(`readexactly`, `read`, EOF as `IncompleteReadError`, a transport error raised from the
next read) and `TlsFrameProtocol` is a `StreamReaderProtocol` (so `StreamWriter`,
drain and close behave as before) that is also a `BufferedProtocol`: the TLS transport
(Python 3.11 sslproto) then decrypts into the buffer `get_buffer` lends, all TLS records
of one socket read in one go, with one `buffer_updated` for them.

- A frame that does not fit in what is already buffered gets its own buffer of its full
  size, and the transport decrypts into it directly; it is the frame's memory whether it
  sits here or in the handler, and `queued.max.request.bytes` admitted its size already.
- Any other bytes land in a reused scratch buffer and are appended to the read-ahead.
  The transport is paused while the read-ahead (bytes beyond the frame being read)
  exceeds 2 x `limit`, and resumed once it is at most `limit` or a read needs more.
"""

from __future__ import annotations

import asyncio
from typing import Any

READ_AHEAD_BYTES = 64 * 1024
SCRATCH_BYTES = 256 * 1024  # sslproto's own socket read size: one read decrypts in one go
# A frame that needs at least this many more bytes than are buffered is decrypted into its
# own buffer; smaller ones are not worth a separate allocation.
DIRECT_MIN_BYTES = 16 * 1024


class FrameReader:
    """The `asyncio.StreamReader` subset the serve loop uses, fed by `TlsFrameProtocol`."""

    _source_traceback = None  # StreamReaderProtocol reads it from its reader

    def __init__(self, limit: int = READ_AHEAD_BYTES, scratch: int = SCRATCH_BYTES,
                 direct_min: int = DIRECT_MIN_BYTES) -> None:
        self._limit = limit
        self._direct_min = direct_min
        self._scratch = memoryview(bytearray(scratch))
        self._buf = bytearray()         # read-ahead: received, not yet read
        self._frame: memoryview | None = None  # the frame being decrypted into directly
        self._filled = 0                # bytes of _frame received so far
        self._lent_frame = False        # get_buffer lent _frame (else the scratch buffer)
        self._want = 0                  # bytes the pending read waits for (0: none)
        self._waiter: asyncio.Future[None] | None = None
        self._eof = False
        self._exception: BaseException | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._paused = False

    # ---- fed by the protocol -----------------------------------------------------
    def set_transport(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def get_buffer(self) -> memoryview:
        # Never an empty buffer (the transport would take its 0-byte read for close_notify):
        # a filled frame not yet taken by its reader means the scratch buffer.
        self._lent_frame = self._frame is not None and self._filled < len(self._frame)
        if self._lent_frame:
            return self._frame[self._filled:]  # type: ignore[index]
        return self._scratch

    def buffer_updated(self, nbytes: int) -> None:
        if self._lent_frame:
            self._lent_frame = False
            self._filled += nbytes
            if self._filled == len(self._frame):  # type: ignore[arg-type]
                self._wakeup()
            return
        self.feed_data(self._scratch[:nbytes])

    def feed_data(self, data: Any) -> None:
        if not data:
            return
        frame = self._frame
        if frame is not None and self._filled < len(frame):  # data_received, not lent buffers
            take = min(len(data), len(frame) - self._filled)
            frame[self._filled:self._filled + take] = data[:take]
            self._filled += take
            if self._filled == len(frame):
                self._wakeup()
            data = data[take:]
            if not data:
                return
        self._buf += data
        if len(self._buf) >= self._want:
            self._wakeup()
        if not self._paused and len(self._buf) - self._want > 2 * self._limit \
                and self._transport is not None:
            self._transport.pause_reading()  # type: ignore[attr-defined]
            self._paused = True

    def feed_eof(self) -> None:
        self._eof = True
        self._wakeup()

    def set_exception(self, exc: BaseException) -> None:
        self._exception = exc
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def exception(self) -> BaseException | None:
        return self._exception

    def at_eof(self) -> bool:
        return self._eof and not self._buf

    def _wakeup(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---- read by the serve loop --------------------------------------------------
    async def _wait(self) -> None:
        """Until the protocol wakes us: more data, EOF or an error."""
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()  # type: ignore[attr-defined]
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _take(self, n: int) -> bytes:
        if len(self._buf) == n:
            data = bytes(self._buf)
            self._buf.clear()
        else:
            data = bytes(memoryview(self._buf)[:n])
            del self._buf[:n]
        if self._paused and len(self._buf) <= self._limit and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()  # type: ignore[attr-defined]
        return data

    async def readexactly(self, n: int) -> bytes:
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        if self._exception is not None:
            raise self._exception
        if n == 0:
            return b""
        if len(self._buf) >= n:
            return self._take(n)
        if n - len(self._buf) >= self._direct_min:
            return await self._read_direct(n)
        self._want = n
        try:
            while len(self._buf) < n:
                if self._exception is not None:
                    raise self._exception
                if self._eof:
                    partial = bytes(self._buf)
                    self._buf.clear()
                    raise asyncio.IncompleteReadError(partial, n)
                await self._wait()
        finally:
            self._want = 0
        return self._take(n)

    async def _read_direct(self, n: int) -> bytes:
        frame = memoryview(bytearray(n))
        have = len(self._buf)
        frame[:have] = self._buf
        self._buf.clear()
        self._frame, self._filled = frame, have
        try:
            while self._filled < n:
                if self._exception is not None:
                    raise self._exception
                if self._eof:
                    raise asyncio.IncompleteReadError(bytes(frame[:self._filled]), n)
                await self._wait()
            return bytes(frame)
        finally:
            self._frame = None

    async def read(self, n: int = -1) -> bytes:
        """Up to `n` buffered bytes (all for -1), waiting for some; b"" at EOF."""
        if self._exception is not None:
            raise self._exception
        if n == 0:
            return b""
        while not self._buf and not self._eof:
            await self._wait()
            if self._exception is not None:
                raise self._exception
        return self._take(len(self._buf) if n < 0 else min(n, len(self._buf)))


class TlsFrameProtocol(asyncio.StreamReaderProtocol, asyncio.BufferedProtocol):
    """A StreamReaderProtocol over a `FrameReader`, lending the TLS transport the reader's
    buffer (the frame being read, or the scratch buffer)."""

    def __init__(self, reader: FrameReader) -> None:
        super().__init__(reader)  # type: ignore[arg-type]
        self._frames = reader

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._frames.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self._frames.buffer_updated(nbytes)
