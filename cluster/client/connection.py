"""One TCP connection to one broker: pipelined requests matched by correlation id.

Many requests may be in flight at once (the mirror pipelines fetches and produces); a
single reader task takes each response frame off the socket and completes the waiting
future with the same correlation id. The connection negotiates API versions once, on
open, so callers can ask `version_for` without another round trip.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any

from kio.schema.errors import ErrorCode

from cluster.wire.build import build
from cluster.wire.codec import DecodeError, decode_response, encode_request, request_schema, response_schema
from cluster.wire.framing import DEFAULT_MAX_FRAME, frame, read_size

from .dial import Dialer, default_dial
from .errors import KafkaConnectionError, KafkaTimeoutError, check
from .versions import ApiVersionTable

log = logging.getLogger(__name__)

API_VERSIONS = 18
_ERR = struct.Struct(">h")
_CID = struct.Struct(">i")
CLIENT_SOFTWARE_NAME = "dcmirror"
CLIENT_SOFTWARE_VERSION = "0.1.0"


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
        self.versions = ApiVersionTable()
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
    ) -> "BrokerConnection":
        """Dial (within connect_timeout_s, default request_timeout_s), then negotiate API
        versions; raises KafkaConnectionError on failure."""
        connect_timeout = request_timeout_s if connect_timeout_s is None else connect_timeout_s
        try:
            reader, writer = await asyncio.wait_for(dial(host, port), connect_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise KafkaConnectionError(f"cannot connect to {host}:{port}: {exc!r}") from exc
        conn = cls(
            reader, writer, client_id=client_id, request_timeout_s=request_timeout_s,
            address=(host, port), node_id=node_id,
        )
        try:
            await conn.negotiate_versions()
        except BaseException:
            await conn.close()
            raise
        return conn

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Close the socket and fail every request still waiting."""
        if not self._closed:
            self._shutdown("closed by client")
        self._read_task.cancel()
        try:
            await self._read_task
        except (asyncio.CancelledError, Exception):
            pass
        try:
            await self._writer.wait_closed()
        except (OSError, asyncio.CancelledError):
            pass

    def _shutdown(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self._close_reason = reason
        log.debug("connection to %s:%s closing: %s", *self.address, reason)
        self._writer.close()
        err = KafkaConnectionError(f"connection to {self.address[0]}:{self.address[1]} {reason}")
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(err)

    async def _read_loop(self) -> None:
        reason = "closed by peer"
        try:
            while True:
                size = read_size(await self._reader.readexactly(4))
                if size < 4 or size > self._max_frame:
                    reason = f"sent a frame of invalid size {size}"
                    break
                data = await self._reader.readexactly(size)
                (cid,) = _CID.unpack_from(data, 0)
                fut = self._pending.pop(cid, None)
                if fut is None:
                    # A response to a request whose caller was cancelled, or garbage.
                    log.debug("%s:%s sent a response for unknown correlation id %d", *self.address, cid)
                    continue
                if not fut.done():
                    fut.set_result(data)
        except asyncio.IncompleteReadError:
            reason = "closed by peer"
        except (OSError, ConnectionError) as exc:
            reason = f"failed: {exc!r}"
        except asyncio.CancelledError:
            reason = "closed by client"
        finally:
            self._shutdown(reason)

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
            raise KafkaConnectionError(
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
            self._shutdown(f"failed on write: {exc!r}")
            raise KafkaConnectionError(f"write to {self.address[0]}:{self.address[1]} failed: {exc!r}") from exc

    async def roundtrip(
        self, body: Any, timeout_s: float | None = None, *, api_key: int | None = None,
        api_version: int | None = None,
    ) -> bytes:
        """Send a request entity and return the raw response frame (header included).

        `api_key`/`api_version` send a private API that borrows a public schema
        (codec.PRIVATE_APIS, e.g. dcmirror's offset-preserving append)."""
        return await self.roundtrip_parts(
            lambda cid: frame(encode_request(body, cid, self.client_id, api_key=api_key,
                                             api_version=api_version)),
            type(body).__name__, timeout_s)

    async def roundtrip_parts(self, make: Any, what: str, timeout_s: float | None = None) -> bytes:
        """Like `roundtrip` for a request the caller encodes itself: `make(correlation_id)`
        returns the framed request as bytes or a list of buffers (sent with writelines,
        so large record batches are not copied into one request buffer first)."""
        cid = self._allocate()
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[cid] = fut
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
        api_version: int | None = None,
    ) -> Any:
        """Send a request entity and return the decoded response entity."""
        raw = await self.roundtrip(body, timeout_s, api_key=api_key, api_version=api_version)
        try:
            _, response = decode_response(raw, response_schema(body.__api_key__, body.__version__))
        except DecodeError as exc:
            self._shutdown(f"sent a malformed response: {exc}")
            raise KafkaConnectionError(str(exc)) from exc
        return response

    async def send_no_response(self, body: Any) -> None:
        """Send a request the broker will not answer (Produce with acks=0)."""
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
