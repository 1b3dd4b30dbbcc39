"""write_buffers: bytes arrive complete and in order whether the kernel takes all, part or
none of a reply at once, and after bytes the transport already had queued; over TLS,
send_buffers hands the TLS transport under two TLS_CHUNKs at a time."""
from __future__ import annotations

import asyncio
import os
import socket
import ssl

import pytest

from cluster.broker.scatter_write import TLS_CHUNK, send_buffers, write_buffers
from peers.certs import make_pki


async def _pair(expected: int, sndbuf: int | None = None, tls: tuple | None = None):
    """A server that reads `expected` bytes, and a client writer to it."""
    got = bytearray()
    done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while len(got) < expected:
            chunk = await reader.read(1 << 16)
            if not chunk:
                break
            got.extend(chunk)
        done.set()
        writer.close()

    server_ctx, client_ctx = tls or (None, None)
    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx)
    if sndbuf:
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    return server, writer, got, done


async def _received(pieces: list, sndbuf: int | None = None, before: bytes = b"") -> tuple[bytes, bytes]:
    """(what the server read, what was sent): `before` through the transport first (so it
    can still be queued there), then `pieces` through write_buffers."""
    want = before + b"".join(bytes(p) for p in pieces)
    server, writer, got, done = await _pair(len(want), sndbuf)
    if before:
        writer.write(before)
    write_buffers(writer, pieces)
    await writer.drain()
    await asyncio.wait_for(done.wait(), 30)
    writer.close()
    server.close()
    return bytes(got), want


@pytest.mark.parametrize("sndbuf", [None, 4096])
async def test_large_reply_arrives_whole_and_in_order(sndbuf: int | None) -> None:
    pieces = [os.urandom(n) for n in (8, 3_000_000, 17, 1, 2_500_000, 5)]
    pieces[3] = memoryview(bytearray(b"m"))  # memoryviews and bytearrays are buffers too
    got, want = await _received(pieces, sndbuf)
    assert got == want


async def test_queued_bytes_are_not_overtaken() -> None:
    # 4 MB is more than the kernel takes at once: the transport keeps a backlog
    got, want = await _received([b"head", os.urandom(1_000_000), b"tail"], 4096,
                                before=os.urandom(4_000_000))
    assert got == want


async def test_more_pieces_than_iov_max() -> None:
    got, want = await _received([bytes([i % 251]) * 3 for i in range(3000)])
    assert got == want


@pytest.mark.parametrize("sndbuf", [None, 4096])
async def test_send_buffers_arrive_whole_and_in_order(sndbuf: int | None) -> None:
    pieces = [os.urandom(n) for n in (8, 3_000_000, 17, 1, 2_500_000, 5)] + [b"x"] * 2000
    want = b"".join(pieces)
    server, writer, got, done = await _pair(len(want), sndbuf)
    await send_buffers(writer, pieces, chunk=100_000)
    await asyncio.wait_for(done.wait(), 30)
    writer.close()
    server.close()
    assert bytes(got) == want


async def test_send_buffers_never_hands_the_transport_the_whole_reply() -> None:
    """A slow reader: the transport (which copies what it buffers) holds about one chunk of
    a 6 MB reply at a time, not the reply."""
    reply = [b"head", os.urandom(6_000_000), b"tail"]
    want = b"".join(reply)
    server, writer, got, done = await _pair(len(want), 4096)
    transport = writer.transport
    most = 0
    real = transport.writelines

    def watch(data) -> None:
        nonlocal most
        real(data)
        most = max(most, transport.get_write_buffer_size())

    transport.writelines = watch  # type: ignore[method-assign]
    await send_buffers(writer, reply, chunk=256 * 1024)
    await asyncio.wait_for(done.wait(), 30)
    writer.close()
    server.close()
    assert bytes(got) == want
    assert 0 < most <= 256 * 1024 + transport.get_write_buffer_limits()[1]


async def test_send_buffers_over_tls_hands_the_transport_small_pieces(tmp_path) -> None:
    """asyncio's TLS transport encrypts whatever it is handed at once; send_buffers gives it
    under two TLS_CHUNKs per write however large its chunk (see scatter_write's docstring)."""
    pki = make_pki(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki.server_cert, pki.server_key)
    client_ctx = ssl.create_default_context(cafile=str(pki.ca))
    reply = [b"head", os.urandom(3_000_000), b"mid", os.urandom(1_000_000), b"tail"]
    want = b"".join(reply)
    server, writer, got, done = await _pair(len(want), tls=(server_ctx, client_ctx))
    transport = writer.transport
    sizes: list[int] = []
    real = transport.writelines

    def watch(data) -> None:
        data = list(data)
        sizes.append(sum(memoryview(d).nbytes for d in data))
        real(data)

    transport.writelines = watch  # type: ignore[method-assign]
    await send_buffers(writer, reply, chunk=4 << 20)
    await asyncio.wait_for(done.wait(), 30)
    writer.close()
    server.close()
    assert bytes(got) == want
    assert sum(sizes) == len(want) and max(sizes) < 2 * TLS_CHUNK
