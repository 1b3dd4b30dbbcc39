"""TLS records through asyncio's real TLS protocol (Python 3.11 sslproto) into the
FrameReader, with the ciphertext cut wherever a socket read might cut it: records split
across reads, a record larger than the lent buffer, close_notify as EOF. No sockets: a
client SSLObject on memory BIOs writes the records and the test hands the bytes over.
Then, on a broker: a client asking to renegotiate is refused with one log line."""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from cluster.auth.listeners import parse_listener
from cluster.broker.config import BrokerConfig
from cluster.broker.server import Broker
from cluster.broker.tls import server_contexts
from cluster.broker.tls_stream import FrameReader, TlsFrameProtocol
from peers.certs import make_pki
from tests.cluster.broker.rawconn import RawConn
from tests.cluster.broker.tls_helpers import client_context

RECORD = 16 * 1024  # the largest TLS record: one SSLObject.write of more is split


class _Wire:
    """The socket transport under the TLS protocol: keeps what it is asked to send."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.closing = False

    def write(self, data: bytes) -> None:
        self.out += data

    def writelines(self, chunks) -> None:
        for c in chunks:
            self.write(c)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    abort = close

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default=None):
        return default


class _Pair:
    """A client SSLObject and a server-side sslproto.SSLProtocol over a FrameReader."""

    def __init__(self, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, reader: FrameReader) -> None:
        loop = asyncio.get_running_loop()
        self.reader = reader
        self.handshake: asyncio.Future[None] = loop.create_future()
        self.server = asyncio.sslproto.SSLProtocol(loop, TlsFrameProtocol(reader), server_ctx,
                                                   self.handshake, server_side=True)
        self.wire = _Wire()
        self.server.connection_made(self.wire)  # type: ignore[arg-type]
        self.c_in, self.c_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.client = client_ctx.wrap_bio(self.c_in, self.c_out, server_hostname="localhost")

    def to_server(self, data: bytes, piece: int) -> None:
        """As the socket transport: reads of at most `piece` bytes into the lent buffer."""
        pos = 0
        while pos < len(data):
            buf = self.server.get_buffer(-1)
            n = min(len(buf), piece, len(data) - pos)
            buf[:n] = data[pos:pos + n]
            self.server.buffer_updated(n)
            pos += n

    def to_client(self) -> None:
        self.c_in.write(bytes(self.wire.out))
        self.wire.out.clear()

    async def shake_hands(self) -> None:
        for _ in range(10):
            try:
                self.client.do_handshake()
            except ssl.SSLWantReadError:
                pass
            self.to_server(self.c_out.read(), 1 << 20)
            self.to_client()
            await asyncio.sleep(0)
            if self.handshake.done():
                break
        await asyncio.wait_for(self.handshake, 10)

    def records(self, data: bytes, size: int) -> bytes:
        """`data` as TLS records of `size` plaintext bytes each (one write per record)."""
        for i in range(0, len(data), size):
            self.client.write(data[i:i + size])
        return self.c_out.read()


@pytest.fixture
def contexts(tmp_path):
    pki = make_pki(tmp_path / "pki")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(pki.server_cert, pki.server_key)
    return server, client_context(pki.ca)


def _frames() -> list[bytes]:
    return [os.urandom(n) for n in (1, 700, 20_000, 3, 300_000, 0, 5)]


async def _read_frames(reader: FrameReader, count: int) -> list[bytes]:
    return [await reader.readexactly(int.from_bytes(await reader.readexactly(4), "big")) for _ in range(count)]


# (plaintext bytes per TLS record, bytes per socket read): reads that end inside a record
# header, inside a record, on record boundaries, and many records per read
CUTS = [(37, 1000), (37, 256 * 1024), (1024, 1), (1024, 1000), (1024, 5 + 1024 + 17),
        (1024, 256 * 1024), (RECORD, 1), (RECORD, 1000), (RECORD, 256 * 1024)]


@pytest.mark.parametrize(("record", "piece"), CUTS)
async def test_records_cut_across_socket_reads_arrive_as_sent(contexts, record, piece) -> None:
    pair = _Pair(*contexts, FrameReader(scratch=64 * 1024))
    await pair.shake_hands()
    frames = _frames()
    wire = pair.records(b"".join(len(f).to_bytes(4, "big") + f for f in frames), record)
    task = asyncio.create_task(_read_frames(pair.reader, len(frames)))
    for i in range(0, len(wire), 128 * 1024):
        pair.to_server(wire[i:i + 128 * 1024], piece)
        await asyncio.sleep(0)
    assert await asyncio.wait_for(task, 30) == frames


async def test_a_record_larger_than_the_lent_buffer(contexts) -> None:
    # A 1 KiB scratch buffer and frames read through it (none decrypted into its own
    # buffer): every 16 KiB record is taken out in 1 KiB reads.
    pair = _Pair(*contexts, FrameReader(scratch=1024, direct_min=1 << 30))
    await pair.shake_hands()
    frames = [os.urandom(40_000), os.urandom(10)]
    task = asyncio.create_task(_read_frames(pair.reader, len(frames)))
    pair.to_server(pair.records(b"".join(len(f).to_bytes(4, "big") + f for f in frames), RECORD), 1 << 20)
    assert await asyncio.wait_for(task, 30) == frames


async def test_close_notify_is_eof_after_the_last_frame(contexts) -> None:
    pair = _Pair(*contexts, FrameReader())
    await pair.shake_hands()
    frame = os.urandom(50_000)
    data = pair.records(len(frame).to_bytes(4, "big") + frame, RECORD)
    try:
        pair.client.unwrap()
    except ssl.SSLWantReadError:
        pass
    pair.to_server(data + pair.c_out.read(), 3000)
    assert await _read_frames(pair.reader, 1) == [frame]
    with pytest.raises(asyncio.IncompleteReadError):
        await asyncio.wait_for(pair.reader.readexactly(4), 10)
    assert pair.reader.at_eof()


async def test_close_notify_inside_a_frame_is_an_incomplete_read(contexts) -> None:
    pair = _Pair(*contexts, FrameReader())
    await pair.shake_hands()
    data = pair.records((100_000).to_bytes(4, "big") + b"y" * 30_000, RECORD)
    try:
        pair.client.unwrap()
    except ssl.SSLWantReadError:
        pass
    pair.to_server(data + pair.c_out.read(), 1 << 20)
    assert await pair.reader.readexactly(4) == (100_000).to_bytes(4, "big")
    with pytest.raises(asyncio.IncompleteReadError) as err:
        await asyncio.wait_for(pair.reader.readexactly(100_000), 10)
    assert err.value.partial == b"y" * 30_000


def test_server_contexts_refuse_renegotiation(tmp_path) -> None:
    pki = make_pki(tmp_path / "pki")
    cfg = BrokerConfig(name="t", data_dir=tmp_path / "d",
                       listeners=[parse_listener("S=SSL://127.0.0.1:0"), parse_listener("P=SASL_SSL://127.0.0.1:0")],
                       ssl_certfile=pki.server_cert, ssl_keyfile=pki.server_key,
                       sasl_mechanisms=("PLAIN",), allow_unauthenticated=True)
    for ctx in server_contexts(cfg).values():
        assert ctx.options & ssl.OP_NO_RENEGOTIATION


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command line tool")
async def test_a_renegotiating_client_is_refused_with_one_log_line(tmp_path, caplog) -> None:
    pki = make_pki(tmp_path / "pki")
    caplog.set_level(logging.INFO, logger="cluster.broker.connection")
    b = Broker(BrokerConfig(name="tls", data_dir=tmp_path / "d",
                            listeners=[parse_listener("SECURE=SSL://127.0.0.1:0")],
                            ssl_certfile=pki.server_cert, ssl_keyfile=pki.server_key))
    await b.start()
    try:
        port = b.config.listener("SECURE").port
        r, w = await asyncio.open_connection("127.0.0.1", port, ssl=client_context(pki.ca),
                                             server_hostname="127.0.0.1")
        bystander = RawConn(r, w)
        # s_client renegotiates on an input line "R" (TLS 1.2: 1.3 has no renegotiation)
        proc = await asyncio.create_subprocess_exec(
            "openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", "-CAfile", str(pki.ca),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert proc.stdin is not None and proc.stdout is not None
        seen = b""
        async with asyncio.timeout(30):
            while b"Verify return code" not in seen:
                seen += await proc.stdout.read(4096) or b"EOF"
                assert not seen.endswith(b"EOF"), seen
            proc.stdin.write(b"R\n")
            await proc.stdin.drain()
            seen += await proc.stdout.read()
            await proc.wait()
        assert b"no renegotiation" in seen
        lines = []
        async with asyncio.timeout(10):
            while not lines:
                lines = [r.getMessage() for r in caplog.records if "TLS" in r.getMessage()]
                await asyncio.sleep(0.01)
        assert len(lines) == 1 and "closing" in lines[0], lines
        assert not [r for r in caplog.records if r.exc_info]
        md = await bystander.call(3, 12, {"topics": None, "allow_auto_topic_creation": False,
                                          "include_topic_authorized_operations": False})
        assert md.brokers[0].port == port
        bystander.close()
    finally:
        await b.stop()
