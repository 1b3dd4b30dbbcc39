"""Serving client connections: ordered replies, fair turns, deadlines and limits.

Why this module exists: probed as a hostile client would, one connection with 2,000
pipelined Metadata requests held every other client for 109 s, because
`StreamReader.readexactly` returns at once while requests sit in its buffer and most
handlers never await, so the serve loop never gave the event loop back. And nothing closed
dead or trickling connections. What this module guarantees:

- **Order**: each connection has one request in flight, as Apache Kafka mutes a channel
  while a request is processed, so replies leave in request order.
- **Fairness**: after every request the connection yields to the event loop, so ready
  connections take turns (the loop runs ready tasks round-robin) and a pipeliner costs
  others one request's work per turn, not its whole backlog.
- **Deadlines**: `connections.max.idle.ms` closes a connection with no request activity
  (waiting for a request, or for the client to take a reply) for that long;
  `dcmirror.connections.request.read.timeout.ms` closes one whose frame does not arrive
  in full within that time of its size prefix (Kafka has no such key; a trickled frame
  would otherwise pin a connection and its buffer until the idle deadline). One reaper
  task checks the deadlines, so a request costs a float store, not a timer.
- **Budget**: `queued.max.request.bytes` bounds the request bytes read off sockets and not
  yet answered, broker-wide; when it is spent, connections stop reading (TCP backpressure)
  until bytes are released. Like Kafka's memory pool it is not strict: a request is
  admitted while any budget is left, so one request larger than the budget still runs.
  Requests never wait on the budget once read, so nothing acknowledged is dropped.
- **Limits**: `max.connections` and `max.connections.per.ip` close a connection over the
  limit as soon as it is accepted, with a log line.
- **Identity**: each connection's task binds a `session.Session` (listener, security
  protocol, client address; `authenticated=False` on SASL listeners until SASL succeeds),
  which every handler of that connection reads through `session.current()`.

- **SASL gating**: on a connection whose session is not authenticated (a SASL_* listener
  before SaslAuthenticate succeeds) only ApiVersions, SaslHandshake and SaslAuthenticate
  are served; anything else, or a frame over `sasl.server.max.receive.size`, closes the
  connection. A failed authentication is answered after
  `connection.failed.authentication.delay.ms`, then the connection is closed. A session
  past its `connections.max.reauth.ms` deadline is closed at its next other request (KIP-368).

A bad frame costs its connection, never the broker.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import math
import socket
import ssl
import struct
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cluster.broker import registry, session
from cluster.auth import x509_name
from cluster.auth.listeners import Listener
from cluster.broker.sendfile import can_sendfile, send_reply, unsent_bytes
from cluster.broker.tls_stream import FrameReader, TlsFrameProtocol
from cluster.wire import codec
from cluster.wire.build import build
from cluster.wire.framing import read_size

if TYPE_CHECKING:
    from cluster.broker.server import Broker

log = logging.getLogger(__name__)

# StreamReader limit: a connection buffers at most about twice this (plus one socket read)
# beyond the frame it is reading before asyncio pauses its transport. That read-ahead is
# outside queued.max.request.bytes, so it is kept small (it was 1 MiB, which was no faster
# for pipelined 1 MB Produce requests when this was changed). readexactly() of a larger
# frame still works: it resumes the transport while it waits.
READ_AHEAD_BYTES = 64 * 1024

# What a connection's deadline guards; the reaper logs it when it closes the connection.
# What an unauthenticated connection may ask: ApiVersions, SaslHandshake, SaslAuthenticate.
SASL_APIS = frozenset((17, 18, 36))

IDLE = "idle"
READ = "read"
BUSY = "busy"  # a handler runs: no deadline (long-poll Fetch, JoinGroup wait on purpose)


class RequestBytesBudget:
    """`queued.max.request.bytes`: request bytes held between read and reply, broker-wide.

    Not strict, as Kafka's SimpleMemoryPool: `acquire` succeeds while anything is left, so a
    request larger than the whole budget still runs (alone). Waiters are served in order.
    A negative limit means unlimited.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def waiting(self) -> int:
        """Connections stopped reading until bytes are released."""
        return sum(1 for f in self._waiters if not f.done())

    async def acquire(self, n: int) -> None:
        if self.limit < 0:
            return
        if self.used >= self.limit or self._waiters:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._wake()  # the turn we were given passes to the next waiter
                raise
            finally:
                try:
                    self._waiters.remove(fut)
                except ValueError:
                    pass
        self.used += n
        self._wake()  # non-strict: the next waiter may go too if budget is left

    def release(self, n: int) -> None:
        if self.limit < 0:
            return
        self.used -= n
        self._wake()

    def _wake(self) -> None:
        if self.used >= self.limit:
            return
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
                return


@dataclass(eq=False)
class Connection:
    """One accepted client connection and the deadline the reaper enforces on it."""

    peer: Any
    ip: str
    writer: asyncio.StreamWriter | None  # None while its TLS handshake runs
    deadline: float = math.inf
    phase: str = IDLE
    closed_by: str = field(default="")
    session: session.Session | None = None
    # Reply bytes still in the transport's buffer and the kernel's send queue at the last
    # reap: a reader taking them is active, and aborting would drop ours.
    buffered: int = 0


class ConnectionServer:
    """Accepts, limits, serves and reaps the broker's client connections."""

    def __init__(self, broker: Broker) -> None:
        cfg = broker.config
        self.broker = broker
        self.idle_s = cfg.connections_max_idle_ms / 1000
        self.read_s = cfg.request_read_timeout_ms / 1000
        self.max_connections = cfg.max_connections
        self.max_connections_per_ip = cfg.max_connections_per_ip
        self.budget = RequestBytesBudget(cfg.queued_max_request_bytes)
        self.connections: set[Connection] = set()
        self.per_ip: collections.Counter[str] = collections.Counter()
        # What was closed, and why, since start (for logs' totals and tests' conditions).
        self.closed: collections.Counter[str] = collections.Counter()
        self._reaper: asyncio.Task[None] | None = None
        # Fetch log bytes by sendfile on plaintext connections (False: pread + writev).
        self.sendfile = cfg.fetch_sendfile
        self._handshakes: set[asyncio.Task[None]] = set()

    # ---- lifecycle --------------------------------------------------------------
    def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap(), name="connection-reaper")

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        for task in list(self._handshakes):
            task.cancel()
        await asyncio.gather(*self._handshakes, return_exceptions=True)
        for conn in list(self.connections):
            if conn.writer is not None:
                conn.writer.close()

    @property
    def reap_interval_s(self) -> float:
        """A tenth of the shortest deadline, between 10 ms and 1 s: closes are that late."""
        return min(1.0, max(0.01, min(self.idle_s, self.read_s) / 10))

    async def _reap(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.reap_interval_s)
            now = loop.time()
            for conn in list(self.connections):
                if conn.deadline <= now and not conn.closed_by and conn.writer is not None:
                    transport = conn.writer.transport
                    buffered = transport.get_write_buffer_size() + unsent_bytes(transport)
                    if conn.phase == IDLE and buffered and buffered != conn.buffered:
                        # The client is still taking the tail of a reply from our buffer
                        # or the kernel's (a reply sent by sendfile is all in the kernel's).
                        conn.buffered, conn.deadline = buffered, now + self.idle_s
                        continue
                    conn.closed_by = conn.phase
                    self.closed[conn.phase] += 1
                    if conn.phase == IDLE:
                        log.info("closing %s: idle for %d ms (connections.max.idle.ms)",
                                 conn.peer, round(self.idle_s * 1000))
                    else:
                        log.warning(
                            "closing %s: request frame not complete within %d ms of its size"
                            " prefix (dcmirror.connections.request.read.timeout.ms)",
                            conn.peer, round(self.read_s * 1000))
                    # abort, not close: close() would wait to flush to a client not reading.
                    conn.writer.transport.abort()

    # ---- accepting --------------------------------------------------------------
    async def listen(self, listener: Listener, tls: ssl.SSLContext | None = None) -> Any:
        """Open `listener`'s server socket (an object with close() and serve_forever());
        a port of 0 becomes the bound port (and the advertised one, unless that was given)."""
        if tls is None:
            server = await asyncio.start_server(
                functools.partial(self.serve, listener=listener), listener.host, listener.port,
                limit=READ_AHEAD_BYTES)
            sock = server.sockets[0]
        else:
            tls_server = TlsServer(self, listener, tls)
            sock = tls_server.sock
            server = tls_server
        if listener.port == 0:
            listener.port = sock.getsockname()[1]
        return server

    async def handshake(self, client: socket.socket, listener: Listener, tls: ssl.SSLContext) -> None:
        """One accepted socket of a TLS listener: admit it, shake hands (within the request
        read timeout), take the principal from a client certificate, then serve it. A
        failed handshake closes the connection with one log line."""
        try:
            peer = client.getpeername()
        except OSError:
            client.close()
            return
        ip = peer[0] if isinstance(peer, tuple) and peer else str(peer)
        conn = Connection(peer, ip, None)
        if not self._admit(conn):
            client.close()
            return
        loop = asyncio.get_running_loop()
        # Decrypts into the frame being read; read-ahead beyond it bounded as plaintext's.
        reader = FrameReader(limit=READ_AHEAD_BYTES)
        protocol = TlsFrameProtocol(reader)
        try:
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol, client, ssl=tls, ssl_handshake_timeout=self.read_s)
        except asyncio.CancelledError:
            self._forget(conn)
            client.close()
            raise
        except (OSError, EOFError) as exc:  # ssl.SSLError, resets, handshake timeout
            self._forget(conn)
            client.close()
            self.closed["tls handshake"] += 1
            reason = handshake_reason(exc)
            # A client that hangs up mid-handshake (a port probe, mostly) is not bad input.
            level = logging.INFO if reason == CLOSED_IN_HANDSHAKE else logging.WARNING
            log.log(level, "closing %s on listener %s: TLS handshake failed: %s", peer, listener.name, reason)
            return
        # No reader for the writer: StreamWriter insists on a StreamReader there, only to
        # raise its error from drain(), which raises on a lost connection anyway.
        writer = asyncio.StreamWriter(transport, protocol, None, loop)
        principal = session.ANONYMOUS
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if der and listener.protocol == "SSL":
            try:
                principal = x509_name.principal(der)
            except x509_name.DerError as exc:  # verified by OpenSSL, so not expected
                log.warning("closing %s on listener %s: cannot read the client certificate's "
                            "subject (%s)", peer, listener.name, exc)
                self._forget(conn)
                transport.abort()
                return
            log.debug("%s on listener %s authenticated by certificate as %s", peer, listener.name, principal)
        await self.serve(reader, writer, listener, principal, conn=conn)  # type: ignore[arg-type]

    def _admit(self, conn: Connection) -> bool:
        if len(self.connections) >= self.max_connections:
            log.info("rejected connection from %s: the broker already has the configured "
                     "maximum of %d connections (max.connections)", conn.peer, self.max_connections)
            self.closed["max.connections"] += 1
            return False
        if self.per_ip[conn.ip] >= self.max_connections_per_ip:
            log.info("rejected connection from %s: address %s already has the configured maximum "
                     "of %d connections (max.connections.per.ip)",
                     conn.peer, conn.ip, self.max_connections_per_ip)
            self.closed["max.connections.per.ip"] += 1
            return False
        self.connections.add(conn)
        self.per_ip[conn.ip] += 1
        return True

    def _forget(self, conn: Connection) -> None:
        self.connections.discard(conn)
        self.per_ip[conn.ip] -= 1
        if self.per_ip[conn.ip] <= 0:
            del self.per_ip[conn.ip]

    # ---- serving ----------------------------------------------------------------
    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    listener: Listener | None = None, principal: str = session.ANONYMOUS,
                    conn: Connection | None = None) -> None:
        """The `asyncio.start_server` callback: one task per connection, on `listener`
        (the primary one when not given); `conn` when `handshake` admitted it already."""
        lst = listener or self.broker.config.listeners[0]
        if conn is None:
            peer = writer.get_extra_info("peername")
            ip = peer[0] if isinstance(peer, tuple) and peer else str(peer)
            conn = Connection(peer, ip, writer)
            if not self._admit(conn):
                writer.transport.abort()
                return
        else:
            conn.writer = writer
        ip = conn.ip
        conn.session = session.Session(principal=principal, listener=lst.name,
                                       security_protocol=lst.protocol, host=ip,
                                       authenticated=not lst.sasl,
                                       sendfile=self.sendfile and can_sendfile(writer.transport))
        token = session.bind(conn.session)
        try:
            await self._serve(conn, reader, writer, lst)
        except asyncio.CancelledError:
            raise
        except ConnectionError:
            pass
        finally:
            session.reset(token)
            self._forget(conn)
            writer.close()

    def _active(self, conn: Connection) -> None:
        conn.deadline = asyncio.get_running_loop().time() + self.idle_s

    async def _serve(self, conn: Connection, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter, listener: Listener) -> None:
        loop = asyncio.get_running_loop()
        max_request = self.broker.config.max_request_bytes
        budget = self.budget
        peer = conn.peer
        while True:
            conn.phase, conn.deadline = IDLE, loop.time() + self.idle_s
            try:
                prefix = await reader.readexactly(4)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            except ssl.SSLError as exc:  # e.g. a refused renegotiation, a bad record
                log.warning("closing %s on listener %s: TLS error: %s", peer, listener.name,
                            handshake_reason(exc))
                return
            size = read_size(prefix)
            if prefix[0] in (0x15, 0x16) and prefix[1] == 0x03 and not listener.tls:
                log.warning("closing %s on listener %s: it began a TLS handshake, but the listener "
                            "speaks %s (use the TLS listener, or no TLS here)",
                            peer, listener.name, listener.protocol)
                return
            sess = session.current()
            if not sess.authenticated and not 0 <= size <= self.broker.config.sasl_server_max_receive_size:
                log.warning("closing %s: request size %d before SASL authentication is outside 0..%d "
                            "(sasl.server.max.receive.size)", peer, size,
                            self.broker.config.sasl_server_max_receive_size)
                self.closed["sasl.server.max.receive.size"] += 1
                return
            if size < 0 or size > max_request:
                log.warning("closing %s: request size %d outside 0..%d", peer, size, max_request)
                return
            conn.phase, conn.deadline = BUSY, math.inf
            await budget.acquire(size)
            try:
                conn.phase, conn.deadline = READ, loop.time() + self.read_s
                try:
                    frame = await reader.readexactly(size)
                except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError) as exc:
                    if not conn.closed_by:
                        log.warning("closing %s: connection ended inside a request%s", peer,
                                    f" (TLS error: {handshake_reason(exc)})"
                                    if isinstance(exc, ssl.SSLError) else "")
                    return
                conn.phase, conn.deadline = BUSY, math.inf
                if sess.sasl_raw:
                    reply = raw_sasl_token(self.broker, sess, frame)
                else:
                    reply = await handle_frame(self.broker, frame, peer)
            finally:
                budget.release(size)
            if sess.close_after_reply_s is not None:
                # A failed or refused authentication: answered (after the failed-auth delay,
                # which slows password guessing), then closed.
                self.closed["sasl"] += 1
                if sess.close_after_reply_s > 0:
                    await asyncio.sleep(sess.close_after_reply_s)
                if isinstance(reply, bytes):
                    writer.write(reply)
                    await writer.drain()
                await _linger(reader, writer)
                return
            if reply is False:
                return
            if reply is not None:
                conn.phase, conn.deadline = IDLE, loop.time() + self.idle_s
                if isinstance(reply, list):
                    # Framed buffers around log bytes (or file ranges, sent by sendfile);
                    # each chunk the client takes is activity, so a big reply to a slow
                    # but reading client is not idle.
                    await send_reply(writer, reply, on_progress=lambda: self._active(conn))
                else:
                    writer.write(reply)  # already framed
                    await writer.drain()
                del reply  # a Fetch reply's log bytes go now, not at the next request
            # Fairness: give every other ready connection its turn before our next request.
            await asyncio.sleep(0)


class TlsServer:
    """A TLS listener: our own accept loop, so each handshake runs in a task we control
    (admitted against the connection limits first, timed out, failures logged once),
    which `asyncio.start_server(ssl=...)` does not allow."""

    def __init__(self, connections: ConnectionServer, listener: Listener, tls: ssl.SSLContext) -> None:
        family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
        self.sock = socket.create_server((listener.host, listener.port), family=family, backlog=128)
        self.sock.setblocking(False)
        self._task = asyncio.create_task(self._accept(connections, listener, tls),
                                         name=f"accept-{listener.name}")

    async def _accept(self, connections: ConnectionServer, listener: Listener, tls: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, _ = await loop.sock_accept(self.sock)
            except OSError as exc:  # out of descriptors, mostly: as asyncio's own server
                log.warning("listener %s cannot accept a connection: %s", listener.name, exc)
                await asyncio.sleep(0.1)
                continue
            task = asyncio.create_task(connections.handshake(client, listener, tls))
            connections._handshakes.add(task)
            task.add_done_callback(connections._handshakes.discard)

    def close(self) -> None:
        self._task.cancel()
        # Python 3.11's sock_accept: when a connection arrives in the loop turn that cancels
        # the accept, its reader callback still runs and sets a result on the cancelled
        # future (an InvalidStateError traceback in the log). Take the reader off first.
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()

    async def serve_forever(self) -> None:
        await asyncio.gather(self._task, return_exceptions=True)


CLOSED_IN_HANDSHAKE = "the client closed the connection during the handshake"


def handshake_reason(exc: BaseException) -> str:
    """What a failed server-side handshake most likely means, for the one log line."""
    if not isinstance(exc, ssl.SSLError) and isinstance(exc, (ConnectionError, EOFError)) \
            and "taking longer" not in str(exc):
        return CLOSED_IN_HANDSHAKE
    reason = exc.reason if isinstance(exc, ssl.SSLError) and exc.reason else str(exc) or type(exc).__name__
    text = reason.replace("_", " ").lower()
    if any(w in text for w in ("wrong version number", "http request", "record layer", "packet length",
                               "unknown protocol")):
        return f"{text} (the client did not speak TLS: plaintext to a TLS listener?)"
    if "unsupported protocol" in text or "version too low" in text or "no protocols available" in text:
        return f"{text} (the client offers no TLS version of 1.2 or newer)"
    if "peer did not return a certificate" in text or "certificate required" in text:
        return f"{text} (the listener requires a client certificate)"
    return text


async def handle_frame(broker: Broker, frame: bytes, peer: Any) -> bytes | list | None | bool:
    """The encoded reply, None for no reply, or False to close the connection."""
    sess = session.current()
    if not sess.authenticated:
        # Gated on the header's api_key alone: nothing else of the frame is parsed for an
        # anonymous client on a SASL listener.
        api_key = int.from_bytes(frame[:2], "big", signed=True) if len(frame) >= 2 else -1
        if api_key not in SASL_APIS:
            log.warning("closing %s: api_key=%d before SASL authentication on listener %s",
                        peer, api_key, sess.listener)
            return False
    try:
        request = codec.decode_request(frame)
    except codec.UnsupportedApi as exc:
        if exc.api_key == 18:
            # Kafka answers an unknown ApiVersions version with v0 and its own range.
            from cluster.broker.k18_api_versions import unsupported_version_reply

            return unsupported_version_reply(exc.correlation_id)
        log.warning("closing %s: %s", peer, exc)
        return False
    except codec.DecodeError as exc:
        log.warning("closing %s: %s", peer, exc)
        return False
    hdr = request.header
    if not registry.supported(hdr.api_key, hdr.api_version):
        log.warning(
            "closing %s: api_key=%d version=%d not supported",
            peer, hdr.api_key, hdr.api_version,
        )
        return False
    if hdr.api_key not in SASL_APIS:
        sess = session.current()
        if sess.reauth_deadline != math.inf and time.monotonic() >= sess.reauth_deadline:
            log.info("closing %s: the SASL session of %s expired (connections.max.reauth.ms) and was "
                     "not re-authenticated", peer, sess.principal)
            return False
    h = registry.HANDLERS[hdr.api_key]
    try:
        result = await h.fn(broker, hdr, request.body)
        if result is None or result is False:  # no reply / close (as Kafka for some acks=0 errors)
            return result
        if isinstance(result, registry.PreEncoded):
            return result.encode(hdr.correlation_id)
        body = build(codec.response_schema(hdr.api_key, hdr.api_version), result)
        return codec.encode_response(hdr.correlation_id, body, framed=True)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception(
            "closing %s: handler for api_key=%d v%d failed",
            peer, hdr.api_key, hdr.api_version,
        )
        return False


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout_s: float = 1.0) -> None:
    """Let the client read the last reply, then close: wait for the client to close first
    (it does, having read the error), discarding what it still sends; after `timeout_s` the
    close goes ahead. Closing with unread client bytes in the socket sends a reset, which
    can drop the reply before the client reads it. No half-close (FIN) right after the
    reply either: kafka-python 3.0 drops the bytes it reads together with an EOF, so in
    about 2 of 3 failed logins it saw "socket disconnected" instead of the broker's error."""
    try:
        async with asyncio.timeout(timeout_s):
            while await reader.read(65536):
                pass
    except (TimeoutError, ConnectionError, OSError):
        pass


def raw_sasl_token(broker: Broker, sess: session.Session, frame: bytes) -> bytes | None:
    """After SaslHandshake v0 a frame is a bare SASL token and so is the reply (size-prefixed).
    A failure has no reply: the session is marked for the delayed close."""
    from cluster.auth.sasl_server import SaslFailed
    from cluster.broker.k36_sasl_authenticate import step

    try:
        token, _ = step(broker, sess, frame)
    except SaslFailed:
        return None
    return struct.pack(">i", len(token)) + token
