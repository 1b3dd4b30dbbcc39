"""A tiny HTTP/1.0 endpoint in the daemon's own event loop: /metrics, /healthz, /readyz, /status.

Hand-written on asyncio streams because the daemon needs four read-only GET routes and
nothing else; a web framework (and a thread, as prometheus_client's server uses) would
be more moving parts than the feature.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Callable

log = logging.getLogger(__name__)

Route = Callable[[], tuple[int, str, bytes]]


async def serve(host: str, port: int, routes: dict[str, Route]) -> asyncio.base_events.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = line.decode("latin-1").split()
            path = parts[1].split("?")[0] if len(parts) >= 2 else "/"
            route = routes.get(path)
            if parts[:1] != ["GET"]:
                status, ctype, body = 405, "text/plain", b"only GET\n"
            elif route is None:
                status, ctype, body = 404, "text/plain", b"try /metrics, /healthz, /readyz or /status\n"
            else:
                status, ctype, body = route()
            reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Unavailable"}.get(status, "")
            writer.write(f"HTTP/1.0 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)


def json_route(fn: Callable[[], object], healthy: Callable[[], bool] | None = None) -> Route:
    def route() -> tuple[int, str, bytes]:
        ok = healthy() if healthy else True
        return (200 if ok else 503), "application/json", json.dumps(fn(), indent=1).encode() + b"\n"

    return route
