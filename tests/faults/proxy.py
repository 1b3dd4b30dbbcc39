"""An asyncio TCP fault proxy for loopback tests: resets, stalls, latency, bandwidth.

`tc netem` is not available on this kernel, so faults between a client and a broker are
injected by a proxy of our own: it listens on 127.0.0.1, forwards each connection to one
upstream address, and the test changes its behaviour while connections are open:

- ``reset()``: every open connection is closed with a TCP RST (SO_LINGER 0), both sides;
- ``stall()`` / ``unstall()``: bytes stop flowing (held, not dropped) — a silent peer;
- ``refuse``: new connections are accepted and reset at once (a dead broker behind a
  live address);
- ``latency_s``: each chunk is delivered that much later (order kept);
- ``bandwidth_bps``: each direction of each connection is paced to that many bytes/s.

A Kafka client follows the broker's metadata, so the broker must advertise the proxy's
address for the client to stay behind it (dcmirror: a second listener with
``--advertised NAME=127.0.0.1:PROXY_PORT``; Kafka: ``advertised.listeners``).

`FaultProxy` runs in the caller's event loop; `ThreadedProxy` runs one in a thread of its
own, for synchronous harnesses that drive subprocesses.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import threading
from dataclasses import dataclass, field

log = logging.getLogger("tests.faults.proxy")
CHUNK = 64 * 1024


@dataclass
class ProxyStats:
    connections: int = 0
    resets: int = 0
    bytes_up: int = 0  # client -> upstream
    bytes_down: int = 0


@dataclass(eq=False)
class _Pipe:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    tasks: list[asyncio.Task] = field(default_factory=list)


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN: the peer sees ECONNRESET, as when a host dies."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int, port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._port = port
        self._server: asyncio.base_events.Server | None = None
        self._pipes: set[_Pipe] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.refuse = False
        self.latency_s = 0.0
        self.bandwidth_bps: float | None = None
        self.stats = ProxyStats()

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._port}"

    async def start(self) -> "FaultProxy":
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self._port)
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self.reset()

    # ---- faults ------------------------------------------------------------------
    def reset(self) -> int:
        """Reset every open connection; returns how many there were."""
        pipes = list(self._pipes)
        for pipe in pipes:
            self._drop(pipe)
        self.stats.resets += len(pipes)
        return len(pipes)

    def stall(self) -> None:
        self._flowing.clear()

    def unstall(self) -> None:
        self._flowing.set()

    @property
    def open_connections(self) -> int:
        return len(self._pipes)

    # ---- forwarding --------------------------------------------------------------
    def _drop(self, pipe: _Pipe) -> None:
        self._pipes.discard(pipe)
        for t in pipe.tasks:
            t.cancel()
        _rst(pipe.client)
        _rst(pipe.upstream)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        if self.refuse:
            _rst(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            _rst(writer)
            return
        pipe = _Pipe(writer, up_writer)
        self._pipes.add(pipe)
        pipe.tasks = [asyncio.ensure_future(self._copy(reader, up_writer, pipe, True)),
                      asyncio.ensure_future(self._copy(up_reader, writer, pipe, False))]

    async def _copy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pipe: _Pipe,
                    up: bool) -> None:
        """One direction: read, wait for the faults in force, write in order."""
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                await self._flowing.wait()
                if self.latency_s > 0:
                    await asyncio.sleep(self.latency_s)
                if self.bandwidth_bps:
                    await asyncio.sleep(len(data) / self.bandwidth_bps)
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
                if up:
                    self.stats.bytes_up += len(data)
                else:
                    self.stats.bytes_down += len(data)
        except (OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            return
        if pipe in self._pipes:  # one side closed: close the other, once
            self._pipes.discard(pipe)
            for t in pipe.tasks:
                if t is not asyncio.current_task():
                    t.cancel()
            for w in (pipe.client, pipe.upstream):
                w.close()


class ThreadedProxy:
    """A `FaultProxy` in its own thread and event loop, controlled from synchronous code."""

    def __init__(self, upstream_host: str, upstream_port: int, port: int = 0) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        self.proxy: FaultProxy = self._call(self._make(upstream_host, upstream_port, port))

    async def _make(self, host: str, port: int, listen: int) -> FaultProxy:
        return await FaultProxy(host, port, listen).start()

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def _do(self, fn):
        async def run():
            return fn()
        return self._call(run())

    @property
    def port(self) -> int:
        return self.proxy.port

    @property
    def address(self) -> str:
        return self.proxy.address

    @property
    def stats(self) -> ProxyStats:
        return self.proxy.stats

    def reset(self) -> int:
        return self._do(self.proxy.reset)

    def stall(self) -> None:
        self._do(self.proxy.stall)

    def unstall(self) -> None:
        self._do(self.proxy.unstall)

    def set(self, *, refuse: bool | None = None, latency_s: float | None = None,
            bandwidth_bps: float | None | bool = False) -> None:
        """Change the standing faults (``bandwidth_bps=None`` lifts the limit)."""
        def apply() -> None:
            if refuse is not None:
                self.proxy.refuse = refuse
            if latency_s is not None:
                self.proxy.latency_s = latency_s
            if bandwidth_bps is not False:
                self.proxy.bandwidth_bps = bandwidth_bps  # type: ignore[assignment]
        self._do(apply)

    def close(self) -> None:
        try:
            self._call(self.proxy.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

