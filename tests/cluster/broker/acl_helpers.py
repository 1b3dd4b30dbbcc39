"""In-process brokers that enforce ACLs, and requests sent as a chosen principal.

ACLs apply once a listener authenticates (`BrokerConfig.authenticates`); these tests need
no SASL listener for that: they force it with a subclass and bind the `Session` a
connection would have around each request, which goes through the real decode/dispatch/encode path
(`connection.handle_frame`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cluster.auth.acl import AclBinding, Operation, PatternType, Permission, ResourceType
from cluster.broker import session
from cluster.broker.config import BrokerConfig
from cluster.broker.connection import handle_frame
from cluster.broker.server import Broker
from cluster.wire import codec
from cluster.wire.build import build

ALICE = "User:alice"


class EnforcingConfig(BrokerConfig):
    """A broker config whose ACLs apply, as when a SASL listener exists."""

    @property
    def authenticates(self) -> bool:  # type: ignore[override]
        return True


async def enforcing_broker(data_dir: Path, **kw: Any) -> Broker:
    b = Broker(EnforcingConfig(name="secure", data_dir=data_dir, port=0, **kw))
    await b.start()
    return b


def grant(broker: Broker, op: Operation, rtype: ResourceType = ResourceType.TOPIC, name: str = "*",
          *, principal: str = ALICE, pattern: PatternType = PatternType.LITERAL,
          permission: Permission = Permission.ALLOW, host: str = "*") -> None:
    broker.acls.create([AclBinding(rtype, name, pattern, principal, host, op, permission)])


async def call(broker: Broker, api_key: int, version: int, body: dict, *, principal: str = ALICE,
               host: str = "127.0.0.1") -> Any:
    """Send one request as `principal` from `host`; the decoded response (None if none)."""
    req = build(codec.request_schema(api_key, version), body)
    data = codec.encode_request(req, 7, "acl-test", api_key=api_key, api_version=version)
    token = session.bind(session.Session(principal=principal, host=host))
    try:
        reply = await handle_frame(broker, data, "acl-test")
    finally:
        session.reset(token)
    if reply is None:
        return None
    assert reply is not False, "the broker closed the connection"
    raw = b"".join(bytes(x) for x in reply) if isinstance(reply, list) else reply
    cid, out = codec.decode_response(raw[4:], codec.response_schema(api_key, version))
    assert cid == 7
    return out


class ThreadedBroker:
    """An enforcing broker on its own event loop thread, for blocking clients (confluent-kafka,
    Java tools). `with ThreadedBroker(dir, super_users=...) as b: b.bootstrap`."""

    def __init__(self, data_dir: Path, **kw: Any) -> None:
        self.data_dir, self.kw = data_dir, kw
        self.broker: Broker | None = None

    def __enter__(self) -> "ThreadedBroker":
        import asyncio
        import threading

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="threaded-broker", daemon=True)
        self.thread.start()
        self.broker = asyncio.run_coroutine_threadsafe(
            enforcing_broker(self.data_dir, **self.kw), self.loop).result(30)
        return self

    @property
    def bootstrap(self) -> str:
        assert self.broker is not None
        return f"127.0.0.1:{self.broker.config.port}"

    def run(self, fn: Any) -> Any:
        """Call `fn(broker)` on the broker's loop (its state has one owner) and return the result."""
        import asyncio

        async def inside() -> Any:
            return fn(self.broker)

        return asyncio.run_coroutine_threadsafe(inside(), self.loop).result(30)

    def __exit__(self, *exc: Any) -> None:
        import asyncio

        if self.broker is not None:
            asyncio.run_coroutine_threadsafe(self.broker.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()
