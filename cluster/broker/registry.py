"""Registry of API handlers; ApiVersions is built from what is registered (as in kfake).

A handler module (`k00_produce.py`, `k01_fetch.py`, ...) registers an async function with
the versions it serves. The function receives the broker (the one owner of cluster state,
so no locks), the request header and the decoded kio body, and returns a dict (or kio
entity) for the response; the dispatcher builds the response of the request's version
with `cluster.wire.build.build`. Returning None sends no response (Produce with acks=0);
False closes the connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from cluster.wire import codec

if TYPE_CHECKING:
    from cluster.wire.codec import RequestHeader

HandlerFn = Callable[[Any, "RequestHeader", Any], Awaitable[Any]]


@dataclass(frozen=True)
class Handler:
    api_key: int
    min_version: int
    max_version: int
    fn: HandlerFn


HANDLERS: dict[int, Handler] = {}


@dataclass(frozen=True)
class PreEncoded:
    """A handler result that encodes itself: `encode(correlation_id)` returns the framed
    response as a list of buffers (hot paths that avoid copying record bytes)."""

    encode: Callable[[int], list]


def handler(api_key: int, min_version: int, max_version: int) -> Callable[[HandlerFn], HandlerFn]:
    """Register `fn` for `api_key`, clamped to the versions kio can encode."""

    def register(fn: HandlerFn) -> HandlerFn:
        known = codec.known_versions(api_key)
        if known is None:
            raise ValueError(f"kio has no schema for api key {api_key}")
        lo, hi = max(min_version, known[0]), min(max_version, known[1])
        if api_key in HANDLERS:
            raise ValueError(f"api key {api_key} registered twice")
        HANDLERS[api_key] = Handler(api_key, lo, hi, fn)
        return fn

    return register


def supported(api_key: int, api_version: int) -> bool:
    h = HANDLERS.get(api_key)
    return h is not None and h.min_version <= api_version <= h.max_version
