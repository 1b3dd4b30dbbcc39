"""TlsFrameProtocol over a real TLS connection: asyncio's TLS transport decrypts into the
buffers it lends, and the FrameReader above sees exactly the bytes the peer sent (frames
larger than the scratch buffer and than the reader's limit, in order), then EOF. TlsServer.close with a connection arriving in
the same loop turn leaves no traceback."""
from __future__ import annotations

import asyncio
import os
import socket
import ssl

from cluster.auth.listeners import parse_listener
from cluster.broker.connection import TlsServer
from cluster.broker.tls_stream import FrameReader, TlsFrameProtocol
from peers.certs import make_pki


class _Counting(TlsFrameProtocol):
    updates = 0

    def buffer_updated(self, nbytes: int) -> None:
        type(self).updates += 1
        super().buffer_updated(nbytes)


async def test_frames_arrive_whole_through_the_lent_buffer(tmp_path) -> None:
    pki = make_pki(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki.server_cert, pki.server_key)
    client_ctx = ssl.create_default_context(cafile=str(pki.ca))
    frames = [os.urandom(10), os.urandom(3_000_000), b"", os.urandom(70_000), os.urandom(5)]
    got: list[bytes] = []
    finished: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def consume(reader: FrameReader) -> None:
        try:
            for _ in frames:
                size = int.from_bytes(await reader.readexactly(4), "big")
                got.append(await reader.readexactly(size))
            finished.set_result(await reader.read(1) == b"")
        except Exception as exc:  # surfaced by the assertion below
            finished.set_exception(exc)

    def factory() -> TlsFrameProtocol:
        reader = FrameReader(limit=64 * 1024, scratch=16 * 1024)
        asyncio.get_running_loop().create_task(consume(reader))
        return _Counting(reader)

    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx)
    for f in frames:
        writer.write(len(f).to_bytes(4, "big") + f)
    await writer.drain()
    writer.close()
    eof = await asyncio.wait_for(finished, 30)
    server.close()
    assert got == frames and eof
    assert _Counting.updates > 1  # the buffered path was taken


async def test_tls_server_close_with_a_connection_arriving_in_the_same_turn(tmp_path) -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    accepted: list[socket.socket] = []

    class _Connections:
        _handshakes: set = set()

        async def handshake(self, client: socket.socket, *_args) -> None:
            accepted.append(client)

    server = TlsServer(_Connections(), parse_listener("S=SSL://127.0.0.1:0"),  # type: ignore[arg-type]
                       ssl.create_default_context())
    await asyncio.sleep(0)  # the accept task waits on the listening socket
    client = socket.create_connection(server.sock.getsockname())  # queued by the kernel now
    try:
        # close runs first in the next turn, the listening socket's reader event after it
        loop.call_soon(server.close)
        for _ in range(3):
            await asyncio.sleep(0)
        await server.serve_forever()
    finally:
        client.close()
        for c in accepted:
            c.close()
        loop.set_exception_handler(None)
    assert errors == []
