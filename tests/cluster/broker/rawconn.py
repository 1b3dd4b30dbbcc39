"""A bare-bones raw connection for protocol tests: send one request, read one reply."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from cluster.wire import codec
from cluster.wire.build import build
from cluster.wire.framing import frame


class RawConn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.cid = 0

    @classmethod
    async def open(cls, port: int) -> "RawConn":
        r, w = await asyncio.open_connection("127.0.0.1", port)
        return cls(r, w)

    async def call(self, api_key: int, version: int, body: dict) -> Any:
        self.cid += 1
        req = build(codec.request_schema(api_key, version), body)
        self.writer.write(frame(codec.encode_request(req, self.cid, "raw-test", api_key=api_key, api_version=version)))
        await self.writer.drain()
        return await self.reply(codec.response_schema(api_key, version))

    async def reply(self, schema: type) -> Any:
        size = int.from_bytes(await asyncio.wait_for(self.reader.readexactly(4), 10), "big")
        data = await asyncio.wait_for(self.reader.readexactly(size), 10)
        cid, body = codec.decode_response(data, schema)
        assert cid == self.cid
        return body

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def closed_by_peer(self) -> bool:
        try:
            data = await asyncio.wait_for(self.reader.read(1), 10)
        except ConnectionError:
            return True
        return data == b""

    def close(self) -> None:
        self.writer.close()


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
