"""Size-prefixed Kafka frames, as a sans-I/O buffer in the style of h11.

Every Kafka request and response is an int32 big-endian length followed by that many bytes.
The reader is fed raw bytes and hands out whole frames; it never blocks and never owns a
socket, so the broker, the client and the tests share it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

DEFAULT_MAX_FRAME = 100 * 1024 * 1024
_SIZE = struct.Struct(">i")


class FrameTooLarge(Exception):
    """The peer announced a frame beyond the configured limit; the connection must close."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class NegativeFrameSize(Exception):
    """The size prefix was negative: garbage on the wire."""


@dataclass
class FrameReader:
    """Accumulates bytes and yields complete frame bodies (without the size prefix)."""

    max_frame: int = DEFAULT_MAX_FRAME

    def __post_init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_frame(self) -> bytes | None:
        """Return one whole frame body, or None when more bytes are needed."""
        if len(self._buf) < 4:
            return None
        (size,) = _SIZE.unpack_from(self._buf, 0)
        if size < 0:
            raise NegativeFrameSize(f"negative frame size {size}")
        if size > self.max_frame:
            raise FrameTooLarge(size, self.max_frame)
        end = 4 + size
        if len(self._buf) < end:
            return None
        frame = bytes(self._buf[4:end])
        del self._buf[:end]
        return frame

    @property
    def buffered(self) -> int:
        return len(self._buf)


def frame(body: bytes | bytearray | memoryview) -> bytes:
    """Prefix a body with its int32 size."""
    return _SIZE.pack(len(body)) + bytes(body)


def read_size(prefix: bytes) -> int:
    """Decode a 4-byte size prefix (for stream readers that read exactly 4 bytes first)."""
    return _SIZE.unpack(prefix)[0]
