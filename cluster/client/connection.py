"""One TCP connection to one broker: pipelined requests matched by correlation id.

Many requests may be in flight at once (the mirror pipelines fetches and produces); a
single reader task takes each response frame off the socket and completes the waiting
future with the same correlation id. The connection negotiates API versions once, on
open, so callers can ask `version_for` without another round trip.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import struct
from typing import Any

from kio.schema.errors import ErrorCode

from cluster.wire.build import build
from cluster.wire.codec import DecodeError, decode_response, encode_request, request_schema, response_schema
from cluster.wire.framing import DEFAULT_MAX_FRAME, frame, read_size

from .dial import Dialer, default_dial
from .errors import KafkaConnectionError, KafkaError, KafkaTimeoutError, check
from .security import ClientSecurity, authenticate, looks_like_tls, tls_failure
from .versions import ApiVersionTable

log = logging.getLogger(__name__)

API_VERSIONS = 18
_ERR = struct.Struct(">h")
_CID = struct.Struct(">i")
CLIENT_SOFTWARE_NAME = "dcmirror"
CLIENT_SOFTWARE_VERSION = "0.1.0"


def _retrieve(fut: "asyncio.Future[bytes]") -> None:
    if not fut.cancelled():
        fut.exception()


class BrokerConnection:
    """A negotiated, pipelined connection. Create it with `BrokerConnection.open`."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        client_id: str | None = "dcmirror",
        request_timeout_s: float = 30.0,
        address: tuple[str, int] = ("?", 0),
        node_id: int | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.client_id = client_id
        self.request_timeout_s = request_timeout_s
        self.address = address
        self.node_id = node_id
        self._max_frame = max_frame
        self._pending: dict[int, asyncio.Future[bytes]] = {}
        self._next_cid = 0
        self._write_lock = asyncio.Lock()
        self._closed = False
        self._close_reason: str | None = None
        self._close_error: KafkaError | None = None
        self.versions = ApiVersionTable()
        self.security = ClientSecurity()
        self._frames_read = 0
        #: cleared while the connection re-authenticates (KIP-368): new requests wait
        self._gate = asyncio.Event()
        self._gate.set()
        self._idle = asyncio.Event()
        self._reauth_task: asyncio.Task[None] | None = None
        self.reauthentications = 0  # completed in-place SASL renewals (KIP-368)
        self._read_task = asyncio.get_running_loop().create_task(self._read_loop())

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        dial: Dialer = default_dial,
        client_id: str | None = "dcmirror",
        request_timeout_s: float = 30.0,
        connect_timeout_s: float | None = None,
        node_id: int | None = None,
        security: ClientSecurity | None = None,
    ) -> "BrokerConnection":
        """Dial and (with `security`) start TLS, both within connect_timeout_s (default
        request_timeout_s); negotiate API versions; authenticate with SASL. Raises
        KafkaConnectionError, KafkaTlsError or KafkaAuthenticationError."""
        security = security or ClientSecurity()
        connect_timeout = request_timeout_s if connect_timeout_s is None else connect_timeout_s
        try:
            reader, writer = await asyncio.wait_for(dial(host, port), connect_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise KafkaConnectionError(f"cannot connect to {host}:{port}: {exc!r}") from exc
        if security.tls is not None:
            try:
                await asyncio.wait_for(writer.start_tls(security.tls, server_hostname=host), connect_timeout)
            except asyncio.TimeoutError:
                writer.close()
                raise KafkaConnectionError(
                    f"{host}:{port} did not complete the TLS handshake within {connect_timeout:g}s; it "
                    f"may be a plaintext port") from None
            except (OSError, EOFError, ConnectionError) as exc:
                writer.close()
                raise tls_failure(exc, host, port) from None
        conn = cls(
            reader, writer, client_id=client_id, request_timeout_s=request_timeout_s,
            address=(host, port), node_id=node_id,
        )
        conn.security = security
        try:
            await conn.negotiate_versions()
            if security.sasl is not None:
                lifetime = await authenticate(conn, security.sasl)
                log.debug("authenticated to %s:%s as %s", host, port, security.sasl)
                if lifetime is not None:
                    conn._reauth_task = asyncio.get_running_loop().create_task(conn._reauth_loop(lifetime))
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _reauth_loop(self, lifetime_s: float) -> None:
        """Re-authenticate before the broker's session expires (KIP-368), as the Java
        client does: at 85-95% of the lifetime, once no request is in flight, with new
        requests held back meanwhile."""
        import random

        creds = self.security.sasl
        assert creds is not None
        while lifetime_s is not None and not self._closed:
            await asyncio.sleep(lifetime_s * random.uniform(0.85, 0.95))
            self._gate.clear()
            try:
                if self._pending:
                    self._idle.clear()
                    await asyncio.wait_for(self._idle.wait(), max(lifetime_s * 0.05, 0.1))
                lifetime_s = await authenticate(self, creds)  # type: ignore[assignment]
                self.reauthentications += 1
                log.debug("re-authenticated to %s:%s as %s", *self.address, creds)
            except asyncio.TimeoutError:
                self._shutdown("could not re-authenticate before the SASL session expired (busy)")
                return
            except Exception as exc:  # noqa: BLE001 - any failure ends the session
                self._shutdown(f"re-authentication failed: {exc}")
                return
            finally:
                self._gate.set()

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Close the socket and fail every request still waiting."""
        if not self._closed:
            self._shutdown("closed by client")
        if self._reauth_task is not None:
            self._reauth_task.cancel()
        self._read_task.cancel()
        try:
            await self._read_task
        except asyncio.CancelledError:
            _reraise_if_caller_cancelled()   # the reader's own cancellation is expected
        except Exception:
            pass
        try:
            await self._writer.wait_closed()
        except OSError:
            pass
        except asyncio.CancelledError:
            _reraise_if_caller_cancelled()
        # The reader swallows the cancel it is sent, which also eats a cancel of this task
        # that arrived while it waited on the reader: honour that one here.
        _reraise_if_caller_cancelled()

    def _shutdown(self, reason: str, error: KafkaError | None = None) -> None:
        """Close, failing every waiting request with `error` (default: a retriable
        KafkaConnectionError saying "connection to host:port <reason>")."""
        if self._closed:
            return
        self._closed = True
        self._close_reason = reason
        log.debug("connection to %s:%s closing: %s", *self.address, reason)
        self._writer.close()
        err = error or KafkaConnectionError(f"connection to {self.address[0]}:{self.address[1]} {reason}")
        self._close_error = err
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(err)

    async def _read_loop(self) -> None:
        reason = "closed by peer"
        error: KafkaError | None = None
        try:
            while True:
                head = await self._reader.readexactly(4)
                size = read_size(head)
                if size < 4 or size > self._max_frame:
                    if self._frames_read == 0 and self.security.tls is None and looks_like_tls(head):
                        reason = ("answered in TLS: it is a TLS port, so use security_protocol SSL "
                                  "or SASL_SSL")
                    else:
                        reason = f"sent a frame of invalid size {size}"
                    break
                self._frames_read += 1
                data = await self._reader.readexactly(size)
                (cid,) = _CID.unpack_from(data, 0)
                fut = self._pending.pop(cid, None)
                if fut is None:
                    # A response to a request whose caller was cancelled, or garbage.
                    log.debug("%s:%s sent a response for unknown correlation id %d", *self.address, cid)
                    continue
                if not fut.done():
                    fut.set_result(data)
                if not self._pending:
                    self._idle.set()
        except asyncio.IncompleteReadError:
            reason = "closed by peer"
            if self._frames_read == 0:
                reason = self._closed_before_answer_hint()
            elif self._frames_read == 1 and self.security.sasl is None and self.versions.ranges:
                reason = ("was closed by the broker right after ApiVersions; it probably requires SASL "
                          "(security_protocol SASL_PLAINTEXT or SASL_SSL)")
        except ssl.SSLError as exc:  # e.g. the broker's alert: it rejected our certificate
            error = tls_failure(exc, *self.address)
            reason = f"failed in TLS: {error}"
        except (OSError, ConnectionError) as exc:
            reason = f"failed: {exc!r}"
        except asyncio.CancelledError:
            reason = "closed by client"
        finally:
            self._shutdown(reason, error)

    def _closed_before_answer_hint(self) -> str:
        if self.security.tls is None:
            return ("was closed by the broker before it answered; if it is a TLS port use "
                    "security_protocol SSL or SASL_SSL, if it needs SASL use SASL_PLAINTEXT or SASL_SSL")
        if self.security.sasl is None:
            return ("was closed by the broker before it answered; if it needs SASL use security_protocol "
                    "SASL_SSL, else it did not accept our client certificate")
        return "was closed by the broker before it answered"

    # -- requests --------------------------------------------------------------------------

    def version_for(self, api_key: int, wanted_max: int | None = None, wanted_min: int = 0) -> int:
        """Highest version of `api_key` both the broker and kio support (capped by wanted_max)."""
        return self.versions.version_for(api_key, wanted_max, wanted_min)

    def build(self, api_key: int, data: dict[str, Any], wanted_max: int | None = None) -> Any:
        """A kio request entity for `api_key` at the negotiated version, from a dict."""
        version = self.version_for(api_key, wanted_max)
        return build(request_schema(api_key, version), data)

    def _allocate(self) -> int:
        cid = self._next_cid
        self._next_cid = (cid + 1) & 0x7FFFFFFF
        return cid

    async def _write(self, data: bytes | list) -> None:
        if self._closed:
            raise self._close_error or KafkaConnectionError(
                f"connection to {self.address[0]}:{self.address[1]} {self._close_reason}"
            )
        try:
            if isinstance(data, list):
                self._writer.writelines(data)
            else:
                self._writer.write(data)
            async with self._write_lock:
                await self._writer.drain()
        except (OSError, ConnectionError) as exc:
            # The reader usually knows why (a TLS alert, the peer's close): give it a moment
            # to say so, since its reason is the one a user can act on.
            await asyncio.wait([self._read_task], timeout=1.0)
            if self._close_error is not None:
                raise self._close_error from None
            self._shutdown(f"failed on write: {exc!r}")
            raise KafkaConnectionError(f"write to {self.address[0]}:{self.address[1]} failed: {exc!r}") from exc

    async def roundtrip(
        self, body: Any, timeout_s: float | None = None, *, api_key: int | None = None,
        api_version: int | None = None, internal: bool = False,
    ) -> bytes:
        """Send a request entity and return the raw response frame (header included).

        `api_key`/`api_version` send a private API that borrows a public schema
        (codec.PRIVATE_APIS, e.g. dcmirror's offset-preserving append)."""
        return await self.roundtrip_parts(
            lambda cid: frame(encode_request(body, cid, self.client_id, api_key=api_key,
                                             api_version=api_version)),
            type(body).__name__, timeout_s, internal=internal)

    async def roundtrip_parts(self, make: Any, what: str, timeout_s: float | None = None, *,
                              internal: bool = False) -> bytes:
        """Like `roundtrip` for a request the caller encodes itself: `make(correlation_id)`
        returns the framed request as bytes or a list of buffers (sent with writelines,
        so large record batches are not copied into one request buffer first).
        `internal`: part of (re-)authentication, so it does not wait for it."""
        if not internal and not self._gate.is_set():
            await self._gate.wait()
        cid = self._allocate()
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[cid] = fut
        fut.add_done_callback(_retrieve)  # a write failure may leave it failed and unawaited
        try:
            await self._write(make(cid))
            timeout = self.request_timeout_s if timeout_s is None else timeout_s
            try:
                return await asyncio.wait_for(asyncio.shield(fut), timeout)
            except asyncio.TimeoutError:
                self._pending.pop(cid, None)
                fut.cancel()
                self._shutdown(f"timed out after {timeout:.1f}s waiting for {what}")
                raise KafkaTimeoutError(
                    f"{what} to {self.address[0]}:{self.address[1]} timed out after {timeout:.1f}s"
                ) from None
        finally:
            self._pending.pop(cid, None)

    async def send(
        self, body: Any, timeout_s: float | None = None, *, api_key: int | None = None,
        api_version: int | None = None, internal: bool = False,
    ) -> Any:
        """Send a request entity and return the decoded response entity."""
        raw = await self.roundtrip(body, timeout_s, api_key=api_key, api_version=api_version,
                                   internal=internal)
        try:
            _, response = decode_response(raw, response_schema(body.__api_key__, body.__version__))
        except DecodeError as exc:
            self._shutdown(f"sent a malformed response: {exc}")
            raise KafkaConnectionError(str(exc)) from exc
        return response

    async def send_no_response(self, body: Any) -> None:
        """Send a request the broker will not answer (Produce with acks=0)."""
        if not self._gate.is_set():
            await self._gate.wait()
        await self._write(frame(encode_request(body, self._allocate(), self.client_id)))

    # -- version negotiation ---------------------------------------------------------------

    async def negotiate_versions(self, first_version: int = 3) -> ApiVersionTable:
        """ApiVersions at `first_version`; on UNSUPPORTED_VERSION retry at the broker's max
        (from the v0-shaped table it answers with), or v0."""
        version = first_version
        for _ in range(3):
            body = build(
                request_schema(API_VERSIONS, version),
                {"client_software_name": CLIENT_SOFTWARE_NAME, "client_software_version": CLIENT_SOFTWARE_VERSION},
            )
            raw = await self.roundtrip(body)
            (error,) = _ERR.unpack_from(raw, 4)  # ApiVersions responses always use header v0
            if error == ErrorCode.unsupported_version and version > 0:
                try:
                    _, v0 = decode_response(raw, response_schema(API_VERSIONS, 0))
                    offered = ApiVersionTable.from_response(v0.api_keys).ranges.get(API_VERSIONS)
                except DecodeError:
                    offered = None
                version = min(offered.max_version, version - 1) if offered else 0
                log.debug("%s:%s rejected ApiVersions; retrying at v%d", *self.address, version)
                continue
            check(error, context="ApiVersions")
            try:
                _, resp = decode_response(raw, response_schema(API_VERSIONS, version))
            except DecodeError as exc:
                raise KafkaConnectionError(f"malformed ApiVersions response: {exc}") from exc
            self.versions = ApiVersionTable.from_response(resp.api_keys)
            return self.versions
        raise KafkaConnectionError("ApiVersions negotiation did not converge")


def _reraise_if_caller_cancelled() -> None:
    """Re-raise inside an ``except CancelledError`` when the task running close() was
    itself cancelled: swallowing that would leave a cancelled task running (a fetcher's
    stop() hung on it), while the reader task's own cancellation is the normal end."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
