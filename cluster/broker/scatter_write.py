"""Hand a reply made of several buffers to the socket with one `writev`, without joining it.

Why by hand: on Python 3.11, `StreamWriter.writelines` joins the buffers into one bytes
object, i.e. copies every Fetch response's record bytes once more, and the transport then
copies whatever the kernel did not take at once into its own buffer. Fetch replies are a
few header pieces around megabytes of log bytes, so those copies were most of the broker's
work per consumer Fetch. Python 3.12's transport does the same scatter-gather send itself;
this module is that, for the one place that needs it.

Only done when the transport's own buffer is empty (so bytes never overtake queued ones)
and on a plain socket; whatever the kernel does not take goes to the transport as usual,
which keeps flow control (`drain`) and error handling the transport's job.

`send_buffers` is what the broker uses: the same first `writev`, then the rest handed to
the transport a chunk at a time, draining in between. The transport copies what it
buffers, so handing it a 55 MiB Fetch reply at once held the reply twice per connection
(ours plus its copy) for as long as a slow reader took; chunked, a connection holds its
reply plus at most one chunk.

Over TLS the chunk is smaller (`TLS_CHUNK`, half the TLS transport's 512 KiB write
high-water mark). asyncio's TLS transport (Python 3.11 sslproto, a MemoryBIO) encrypts all
it is handed at once into its memory BIO, copies that out and hands it to the socket
transport, which copies the part the kernel does not take: sending 20 MB to a reader that
paused, the two transports held at most 2.0 MiB with 1 MiB chunks, 0.8 MiB with 256 KiB.
Throughput did not change measurably (consume 1 KB over SASL_SSL, 10 interleaved rounds:
596 MB/s with 1 MiB chunks, 599 with 256 KiB, broker 0.71 and 0.66 CPU-s/GB; 64 KiB
chunks were slower). README "Cost of TLS" has what the profile shows.
"""

from __future__ import annotations

import asyncio
import os
from typing import Callable, Sequence

from cluster.wire.produce_request import Buffer

# Linux's IOV_MAX; a reply with more pieces sends the first IOV_MAX now, the rest queued.
_IOV_MAX = 1024


# What send_buffers hands the transport at a time (it copies what the kernel does not take).
CHUNK = 1 << 20
# The same over TLS: half asyncio's TLS write high-water mark (FLOW_CONTROL_HIGH_WATER_SSL_WRITE).
TLS_CHUNK = 256 * 1024


def write_buffers(writer: asyncio.StreamWriter, buffers: Sequence[Buffer]) -> None:
    """Write `buffers` in order: as much as the kernel takes now, the rest via the transport."""
    rest = _write_now(writer, buffers)
    if rest:
        writer.writelines(rest)


async def send_buffers(writer: asyncio.StreamWriter, buffers: Sequence[Buffer], *,
                       chunk: int = CHUNK, on_progress: Callable[[], None] | None = None) -> None:
    """Write `buffers` in order and drain, handing the transport under two `chunk`s at a
    time, so it never holds more than that beyond its high-water mark. `on_progress` is
    called each time the peer has taken a chunk (the broker's idle deadline: a slow reader
    that reads is not idle). Over TLS the chunk is at most `TLS_CHUNK` (module docstring)."""
    if writer.transport.get_extra_info("sslcontext") is not None:
        chunk = min(chunk, TLS_CHUNK)
    group: list[Buffer] = []
    size = 0
    for buf in _write_now(writer, buffers):
        mv = memoryview(buf).cast("B")
        for start in range(0, mv.nbytes, chunk):
            piece = mv[start:start + chunk]
            group.append(piece)
            size += piece.nbytes
            if size >= chunk:
                writer.writelines(group)
                group, size = [], 0
                await writer.drain()
                if on_progress is not None:
                    on_progress()
    if group:
        writer.writelines(group)
    await writer.drain()


def _write_now(writer: asyncio.StreamWriter, buffers: Sequence[Buffer]) -> Sequence[Buffer]:
    """One `writev` of what the kernel takes now, when that cannot overtake queued bytes;
    returns what is left to write (everything if the fast path does not apply)."""
    transport = writer.transport
    sock = transport.get_extra_info("socket")
    if (sock is None or transport.is_closing() or transport.get_write_buffer_size()
            or transport.get_extra_info("sslcontext") is not None):
        return buffers
    try:
        sent = os.writev(sock.fileno(), buffers[:_IOV_MAX])
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError:
        # A broken connection: let the transport meet the same error and report it its way.
        return buffers
    rest: list[Buffer] = []
    for buf in buffers:
        size = memoryview(buf).nbytes
        if sent >= size:
            sent -= size
            continue
        rest.append(memoryview(buf)[sent:] if sent else buf)
        sent = 0
    return rest
