"""FrameReader without sockets or TLS: bytes lent and filled the way the TLS transport does
(get_buffer, then buffer_updated), frames read back whole and in order, read-ahead paused
only beyond the frame being read, EOF and transport errors as a StreamReader reports them."""
from __future__ import annotations

import asyncio
import os

import pytest

from cluster.broker.tls_stream import FrameReader, TlsFrameProtocol


class _Transport:
    """The pause/resume side of a transport, counted."""

    def __init__(self) -> None:
        self.paused = False
        self.pauses = 0
        self.resumes = 0

    def pause_reading(self) -> None:
        assert not self.paused
        self.paused, self.pauses = True, self.pauses + 1

    def resume_reading(self) -> None:
        assert self.paused
        self.paused, self.resumes = False, self.resumes + 1


def _reader(**kw) -> tuple[FrameReader, TlsFrameProtocol, _Transport]:
    reader = FrameReader(**kw)
    proto = TlsFrameProtocol(reader)
    transport = _Transport()
    reader.set_transport(transport)  # type: ignore[arg-type]
    return reader, proto, transport


def _feed(proto: TlsFrameProtocol, data: bytes, piece: int) -> None:
    """As the TLS transport: ask for a buffer, write at most its size, report the count."""
    pos = 0
    while pos < len(data):
        buf = proto.get_buffer(-1)
        assert len(buf) > 0  # an empty buffer would read as close_notify
        n = min(len(buf), piece, len(data) - pos)
        buf[:n] = data[pos:pos + n]
        proto.buffer_updated(n)
        pos += n



async def test_frames_split_at_every_size_arrive_whole_and_in_order() -> None:
    frames = [os.urandom(n) for n in (0, 1, 3, 5000, 16 * 1024, 300_000, 7, 2_000_000, 40)]
    wire = b"".join(len(f).to_bytes(4, "big") + f for f in frames)
    for piece in (1, 13, 4096, 100_000, len(wire)):
        reader, proto, _ = _reader(scratch=64 * 1024)
        got: list[bytes] = []

        async def consume() -> None:
            for _ in frames:
                got.append(await reader.readexactly(int.from_bytes(await reader.readexactly(4), "big")))

        task = asyncio.create_task(consume())
        await asyncio.sleep(0)
        for i in range(0, len(wire), 250_000):  # in bursts, the reader running in between
            _feed(proto, wire[i:i + 250_000], piece)
            await asyncio.sleep(0)
        await asyncio.wait_for(task, 30)
        assert got == frames, piece


async def test_a_large_frame_is_decrypted_into_its_own_buffer_without_pausing() -> None:
    reader, proto, transport = _reader(limit=64 * 1024, scratch=256 * 1024)
    frame = os.urandom(1_000_000)
    task = asyncio.create_task(reader.readexactly(len(frame)))
    await asyncio.sleep(0)
    lent = proto.get_buffer(-1)
    assert len(lent) == len(frame)  # the frame itself, not the scratch buffer
    for i in range(0, len(frame), 256 * 1024):  # socket reads while the reader waits
        _feed(proto, frame[i:i + 256 * 1024], 256 * 1024)
    assert await task == frame
    assert transport.pauses == 0  # a StreamReader paused and resumed once per read here


async def test_read_ahead_beyond_the_frame_pauses_then_resumes_when_read() -> None:
    reader, proto, transport = _reader(limit=1024, scratch=512)
    small = [os.urandom(100) for _ in range(40)]  # 4 KiB of pipelined frames, none read yet
    _feed(proto, b"".join(small), 512)
    assert transport.paused and transport.pauses == 1
    for f in small:
        assert await reader.readexactly(100) == f
    assert not transport.paused and transport.resumes == 1


async def test_eof_inside_a_frame_is_an_incomplete_read_with_what_arrived() -> None:
    for size in (100, 100_000):  # buffered and direct
        reader, proto, _ = _reader()
        task = asyncio.create_task(reader.readexactly(size))
        await asyncio.sleep(0)
        _feed(proto, b"x" * 60, 60)
        reader.feed_eof()
        with pytest.raises(asyncio.IncompleteReadError) as err:
            await task
        assert err.value.partial == b"x" * 60 and err.value.expected == size
    reader, _, _ = _reader()
    reader.feed_eof()
    assert await reader.read(10) == b"" and reader.at_eof()


async def test_a_transport_error_is_raised_by_the_waiting_and_the_next_read() -> None:
    for size in (4, 100_000):
        reader, _, _ = _reader()
        task = asyncio.create_task(reader.readexactly(size))
        await asyncio.sleep(0)
        reader.set_exception(ConnectionResetError("reset"))
        with pytest.raises(ConnectionResetError):
            await task
        with pytest.raises(ConnectionResetError):
            await reader.readexactly(4)
        assert isinstance(reader.exception(), ConnectionResetError)


async def test_data_received_fills_a_pending_direct_frame_first() -> None:
    # Not the TLS transport's way (it lends buffers), but the StreamReaderProtocol path.
    reader, proto, _ = _reader(direct_min=16)
    task = asyncio.create_task(reader.readexactly(50))
    await asyncio.sleep(0)
    data = os.urandom(80)
    proto.data_received(data)
    assert await task == data[:50]
    assert await reader.readexactly(30) == data[50:]


async def test_read_returns_what_is_buffered_up_to_n() -> None:
    reader, proto, _ = _reader()
    task = asyncio.create_task(reader.read(5))
    await asyncio.sleep(0)
    _feed(proto, b"abcdefgh", 8)
    assert await task == b"abcde"
    assert await reader.read() == b"fgh"
