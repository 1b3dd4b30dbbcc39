"""In-memory Kafka peers for client tests: no sockets, answers written by the test.

A FakePeer decodes what the client writes with our own sans-I/O codec, answers ApiVersions
itself, and either queues other requests for the test to answer (in any order) or hands
them to a `handler` that returns the response body (or None to stay silent).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from kio.schema.errors import ErrorCode

from cluster.wire.build import build
from cluster.wire.codec import Request, decode_request, encode_response, response_schema
from cluster.wire.framing import FrameReader, frame


class FakeWriter:
    """The client's StreamWriter: hands every written request to the peer."""

    def __init__(self, peer: "FakePeer") -> None:
        self.peer = peer
        self.closed = False

    def write(self, data: bytes) -> None:
        self.peer.received(data)

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    async def wait_closed(self) -> None:
        return None

    def get_extra_info(self, name: str) -> Any:
        return None


class FakePeer:
    """A broker stand-in: answers ApiVersions itself, queues every other request."""

    def __init__(
        self,
        api_versions_max: int = 3,
        table: dict[int, tuple[int, int]] | None = None,
        handler: Callable[["FakePeer", Request], Any] | None = None,
    ) -> None:
        self.handler = handler
        self.reader = asyncio.StreamReader()
        self.writer = FakeWriter(self)
        self.frames = FrameReader()
        self.api_versions_max = api_versions_max
        self.table = table or {18: (0, api_versions_max), 3: (0, 12), 1: (4, 13)}
        self.requests: asyncio.Queue[Request] = asyncio.Queue()
        self.api_versions_seen: list[int] = []

    def received(self, data: bytes) -> None:
        self.frames.feed(data)
        while (f := self.frames.next_frame()) is not None:
            req = decode_request(f)
            if req.header.api_key == 18:
                self._answer_api_versions(req)
            elif self.handler is not None:
                body = self.handler(self, req)
                if body is not None:
                    self.respond(req.header.correlation_id, body)
            else:
                self.requests.put_nowait(req)

    def _answer_api_versions(self, req: Request) -> None:
        v = req.header.api_version
        self.api_versions_seen.append(v)
        keys = [{"api_key": k, "min_version": lo, "max_version": hi} for k, (lo, hi) in self.table.items()]
        if v > self.api_versions_max:  # what Kafka does: a v0 body with the error and its table
            body = build(response_schema(18, 0), {"error_code": ErrorCode.unsupported_version, "api_keys": keys})
        else:
            body = build(response_schema(18, v), {"api_keys": keys})
        self.respond(req.header.correlation_id, body)

    def respond(self, correlation_id: int, body: Any) -> None:
        self.reader.feed_data(frame(encode_response(correlation_id, body)))
