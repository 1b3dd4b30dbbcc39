"""A minimal asyncio HTTP/1.1 client for JSON POSTs (etcd's v3 gateway is all it serves).

Why our own and not aiohttp/httpx or aetcd: the gateway needs POST of a JSON body and a
JSON reply (Content-Length or chunked), nothing more; ~100 lines over asyncio streams add
no dependency, whereas aetcd pulls grpcio and protobuf (tens of MB of wheels) and the
general HTTP clients pull a dozen packages. Connections are kept alive and pooled; every
request has a deadline (an etcd that lost its leader can hold a write for seconds).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


class HttpError(Exception):
    """The server could not be reached, timed out, or answered other than 200 (one sentence)."""


class JsonHttpClient:
    """POST JSON to one host:port over pooled keep-alive connections."""

    def __init__(self, host: str, port: int, timeout_s: float = 5.0) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The decoded JSON reply of POST `path` with `body`; HttpError on any failure."""
        try:
            return await asyncio.wait_for(self._post(path, body), self.timeout_s)
        except asyncio.TimeoutError:
            raise HttpError(f"http://{self.host}:{self.port}{path} did not answer within "
                            f"{self.timeout_s:g}s") from None
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            raise HttpError(f"http://{self.host}:{self.port}{path}: {exc}") from exc

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        payload = json.dumps(body).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode()
        reader, writer = self._idle.pop() if self._idle else await asyncio.open_connection(
            self.host, self.port)
        try:
            writer.write(head + payload)
            await writer.drain()
            status, headers = await self._read_head(reader)
            data = await self._read_body(reader, headers)
        except BaseException:
            writer.close()
            raise
        if headers.get("connection", "").lower() == "close":
            writer.close()
        else:
            self._idle.append((reader, writer))
        if status != 200:
            raise HttpError(f"http://{self.host}:{self.port}{path} answered {status}: "
                            f"{data[:200].decode(errors='replace')}")
        return _first_json(data)

    @staticmethod
    async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
        line = await reader.readuntil(b"\r\n")
        parts = line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ValueError(f"not an HTTP status line: {line[:80]!r}")
        headers: dict[str, str] = {}
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers

    @staticmethod
    async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        if "content-length" in headers:
            return await reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() != "chunked":
            raise ValueError("reply has neither Content-Length nor chunked encoding")
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return b"".join(chunks)
            chunks.append(chunk[:-2])

    async def close(self) -> None:
        """Close every pooled connection."""
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


def _first_json(data: bytes) -> dict[str, Any]:
    """The first JSON object of `data` (a streamed gateway reply may hold several lines)."""
    text = data.decode()
    value, _ = json.JSONDecoder().raw_decode(text.lstrip())
    if not isinstance(value, dict):
        raise ValueError("reply is not a JSON object")
    return value
