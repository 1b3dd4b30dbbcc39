"""The fault proxy itself (tests/faults/proxy.py): it forwards both ways, and each fault
does what it says — reset (the peer sees a reset), stall (bytes held, then delivered),
refuse (new connections reset), latency and bandwidth (delivery no earlier than due)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.proxy import FaultProxy


@pytest.fixture
async def echo():
    async def serve(reader, writer):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    proxy = await FaultProxy("127.0.0.1", server.sockets[0].getsockname()[1]).start()
    yield proxy
    await proxy.stop()
    server.close()
    await server.wait_closed()


async def roundtrip(proxy: FaultProxy, payload: bytes, timeout: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(payload)
    await writer.drain()
    got = await asyncio.wait_for(reader.readexactly(len(payload)), timeout)
    writer.close()
    return got


async def test_forwards_both_ways(echo) -> None:
    assert await roundtrip(echo, b"x" * 300_000) == b"x" * 300_000
    assert echo.stats.bytes_up == 300_000 and echo.stats.bytes_down == 300_000


async def test_reset_breaks_open_connections_with_a_reset(echo) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", echo.port)
    writer.write(b"ping")
    assert await reader.readexactly(4) == b"ping"
    assert echo.reset() == 1
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(1), 5)
    assert await roundtrip(echo, b"after") == b"after"  # new connections work again


async def test_a_stall_holds_bytes_until_it_ends(echo) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", echo.port)
    echo.stall()
    writer.write(b"held")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(reader.readexactly(4), 0.3)
    echo.unstall()
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"held"
    writer.close()


async def test_refused_connections_are_reset(echo) -> None:
    echo.refuse = True
    reader, writer = await asyncio.open_connection("127.0.0.1", echo.port)
    writer.write(b"hello")
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError, BrokenPipeError)):
        await asyncio.wait_for(reader.readexactly(5), 5)
    echo.refuse = False
    assert await roundtrip(echo, b"ok") == b"ok"


async def test_latency_and_bandwidth_delay_delivery(echo) -> None:
    echo.latency_s = 0.2
    started = time.monotonic()
    await roundtrip(echo, b"a")
    assert time.monotonic() - started >= 0.4  # both directions
    echo.latency_s = 0.0
    echo.bandwidth_bps = 200_000
    started = time.monotonic()
    await roundtrip(echo, b"b" * 40_000)
    assert time.monotonic() - started >= 0.35  # 40 kB each way at 200 kB/s
