"""How the client opens TCP connections, as a swappable function.

Every connection the client makes (bootstrap servers and each broker address advertised
in Metadata) goes through a `Dialer`, so SSH tunnels, address rewriting and the
fault-injecting test proxy plug in without the client knowing. The SSH tunnel dialer is
in tunnel.py (it imports asyncssh, so only users of a tunnel load it); what a tunnel
goes through (:class:`SshVia`) is here, for configs to name without that import.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

Dialer = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]

#: StreamReader buffer limit. Fetch responses are read with readexactly (not readline),
#: so this only bounds buffering; large enough that a 50 MiB fetch streams without stalls.
READ_LIMIT = 64 * 1024 * 1024


async def default_dial(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Plain TCP with Nagle off: requests are small and latency-bound."""
    reader, writer = await asyncio.open_connection(host, port, limit=READ_LIMIT)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # not a TCP socket (e.g. a unix socket in tests)
            pass
    return reader, writer


@dataclass(frozen=True)
class SshVia:
    """``ssh: {via: user@host:port, key:, known_hosts:}`` of a cluster."""

    user: str
    host: str
    port: int
    known_hosts: Path
    key: Path | None = None
    agent: bool = False
    keepalive_s: float = 15.0
    connect_timeout_s: float = 10.0

    def describe(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"
