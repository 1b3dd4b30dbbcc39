"""Connections, metadata and leader routing shared by every client operation.

`ClientCore` owns one connection per broker (opened through the configurable dialer), a
merged metadata cache, and the retry policy: operations that fail with a connection loss
or a "wrong broker" error code mark the cache stale, back off (tenacity, exponential with
jitter) and try again until a deadline. The data, admin and group operations build on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Iterable, TypeVar

from kio.schema.errors import ErrorCode
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_delay
from tenacity.wait import wait_base, wait_exponential, wait_random

from .fetch_session import FetchSessionHandler
from .connection import BrokerConnection
from .dial import Dialer, default_dial
from .errors import REROUTE_CODES, KafkaConnectionError, KafkaProtocolError, check, is_retriable
from .security import ClientSecurity
from .metadata import BrokerInfo, ClusterMetadata, parse_metadata

log = logging.getLogger(__name__)

T = TypeVar("T")
TP = tuple[str, int]

METADATA = 3


def backoff() -> wait_base:
    """50 ms doubling to 1 s, plus up to 100 ms of jitter so clients do not retry in step."""
    return wait_exponential(multiplier=0.05, max=1.0) + wait_random(0, 0.1)


def parse_bootstrap(bootstrap: str | list[str]) -> list[tuple[str, int]]:
    """'h1:9092,h2:9093' or ['h1:9092', ...] -> [(host, port)]; IPv6 as [::1]:9092."""
    items = bootstrap.split(",") if isinstance(bootstrap, str) else list(bootstrap)
    out = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        for prefix in ("tcp://", "PLAINTEXT://"):
            if item.startswith(prefix):
                item = item[len(prefix):]
        host, sep, port = item.rpartition(":")
        if not sep:
            host, port = item, "9092"
        out.append((host.strip("[]"), int(port)))
    if not out:
        raise ValueError(f"no bootstrap servers in {bootstrap!r}")
    return out


class ClientCore:
    """Connection pool + metadata cache + retrying router. See KafkaClient for the API."""

    def __init__(
        self,
        bootstrap: str | list[str],
        *,
        client_id: str = "dcmirror",
        dial: Dialer = default_dial,
        request_timeout_s: float = 30.0,
        retry_deadline_s: float | None = None,
        connect_timeout_s: float = 10.0,
        metadata_max_age_s: float = 300.0,
        security: ClientSecurity | None = None,
        fetch_sessions: bool = True,
    ) -> None:
        self.bootstrap = parse_bootstrap(bootstrap)
        self.client_id = client_id
        self.dial = dial
        self.request_timeout_s = request_timeout_s
        self.connect_timeout_s = connect_timeout_s
        #: a full metadata refresh older than this is redone before the next routed call
        #: (Kafka's metadata.max.age.ms), so new partitions and moved leaders are seen
        self.metadata_max_age_s = metadata_max_age_s
        self._meta_at = float("-inf")
        #: TLS and SASL for every connection, bootstrap and advertised brokers alike
        self.security = security or ClientSecurity()
        self.retry_deadline_s = request_timeout_s if retry_deadline_s is None else retry_deadline_s
        self._conns: dict[int, BrokerConnection] = {}
        #: long-poll fetches get their own connection per broker: a broker answers one
        #: connection's requests in order, so a Fetch waiting `max_wait_ms` for data would
        #: hold every metadata, admin and offset request queued behind it
        self._fetch_conns: dict[int, BrokerConnection] = {}
        #: KIP-227 incremental fetch sessions, one per broker (cluster/client/fetch_session.py);
        #: False: every fetch names every partition (sessionless), as before
        self.fetch_sessions = fetch_sessions
        self._fetch_sessions: dict[int, FetchSessionHandler] = {}
        self._dial_locks: dict[tuple[int, bool], asyncio.Lock] = {}
        self._boot_conn: BrokerConnection | None = None
        self._boot_lock = asyncio.Lock()
        self._meta = ClusterMetadata()
        self._stale = True
        self._full_refresh: asyncio.Future[ClusterMetadata] | None = None
        #: group id -> coordinator, filled by GroupsMixin.find_coordinator
        self._coordinator_cache: dict[str, BrokerInfo] = {}

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to a bootstrap server and load the cluster's metadata."""
        await self.metadata()

    async def close(self) -> None:
        conns = list(self._conns.values()) + list(self._fetch_conns.values())
        if self._boot_conn is not None:
            conns.append(self._boot_conn)
        self._conns.clear()
        self._fetch_conns.clear()
        self._boot_conn = None
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)

    async def __aenter__(self) -> "ClientCore":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- connections -----------------------------------------------------------------------

    async def _open(self, host: str, port: int, node_id: int | None) -> BrokerConnection:
        return await BrokerConnection.open(
            host, port, dial=self.dial, client_id=self.client_id,
            request_timeout_s=self.request_timeout_s, connect_timeout_s=self.connect_timeout_s,
            node_id=node_id, security=self.security,
        )

    async def connection(self, node_id: int, address: tuple[str, int] | None = None, *,
                         fetch: bool = False) -> BrokerConnection:
        """The live connection to broker `node_id`, dialing its advertised address (or
        `address`, e.g. from FindCoordinator, when metadata does not know the node).
        ``fetch``: the broker's connection for Fetch requests (see `_fetch_conns`)."""
        pool = self._fetch_conns if fetch else self._conns
        conn = pool.get(node_id)
        if conn is not None and not conn.closed:
            return conn
        lock = self._dial_locks.setdefault((node_id, fetch), asyncio.Lock())
        async with lock:
            conn = pool.get(node_id)
            if conn is not None and not conn.closed:
                return conn
            broker = self._meta.brokers.get(node_id)
            if broker is not None:
                address = (broker.host, broker.port)
            if address is None:
                self._stale = True
                raise KafkaConnectionError(f"broker {node_id} is not in the cluster metadata")
            conn = await self._open(address[0], address[1], node_id)
            pool[node_id] = conn
            return conn

    async def any_connection(self) -> BrokerConnection:
        """Any live connection: an existing one, else a bootstrap server, else a known broker."""
        for conn in self._conns.values():
            if not conn.closed:
                return conn
        if self._boot_conn is not None and not self._boot_conn.closed:
            return self._boot_conn
        async with self._boot_lock:
            if self._boot_conn is not None and not self._boot_conn.closed:
                return self._boot_conn
            candidates = list(self.bootstrap) + [(b.host, b.port) for b in self._meta.brokers.values()]
            failures = []
            for host, port in candidates:
                try:
                    self._boot_conn = await self._open(host, port, None)
                    return self._boot_conn
                except KafkaConnectionError as exc:
                    failures.append(str(exc))
            raise KafkaConnectionError("no broker reachable: " + "; ".join(failures))

    # -- metadata --------------------------------------------------------------------------

    @property
    def cached_metadata(self) -> ClusterMetadata:
        return self._meta

    async def _metadata_once(self, topics: list[str] | None) -> ClusterMetadata:
        conn = await self.any_connection()
        version = conn.version_for(METADATA)
        if topics is None:
            wanted = None if version >= 1 else []
        else:
            wanted = [{"name": t} for t in topics]
        body = conn.build(
            METADATA,
            {
                "topics": wanted,
                "allow_auto_topic_creation": False,
                "include_cluster_authorized_operations": False,
                "include_topic_authorized_operations": False,
            },
        )
        fresh = parse_metadata(await conn.send(body))
        self._meta = self._meta.merged(fresh, topics)
        if topics is None:
            self._stale = False
            self._meta_at = time.monotonic()
        return self._meta

    async def metadata(self, topics: list[str] | None = None) -> ClusterMetadata:
        """Refresh (all topics, or just `topics`) and return the merged cluster view."""
        return await self.retrying(lambda: self._metadata_once(topics), "Metadata")

    async def refresh_all(self) -> ClusterMetadata:
        """One full metadata refresh shared by every concurrent caller (after a failure,
        many in-flight operations want one at the same moment)."""
        if self._full_refresh is None or self._full_refresh.done():
            self._full_refresh = asyncio.ensure_future(self._metadata_once(None))
        return await asyncio.shield(self._full_refresh)

    def _needs_refresh(self) -> bool:
        return self._stale or time.monotonic() - self._meta_at > self.metadata_max_age_s

    async def leader(self, topic: str, partition: int) -> int:
        """Leader node id of topic-partition, refreshing metadata when stale, older than
        metadata_max_age_s, or unknown."""
        if self._needs_refresh():
            await self.refresh_all()
        if self._meta.leader(topic, partition) is None:
            await self._metadata_once([topic])
        leader = self._meta.leader(topic, partition)
        if leader is not None:
            return leader
        t = self._meta.topics.get(topic)
        if t is None:
            code = self._meta.topic_errors.get(topic, ErrorCode.unknown_topic_or_partition)
        elif partition not in t.partitions:
            code = ErrorCode.unknown_topic_or_partition
        else:
            code = t.partitions[partition].error_code or ErrorCode.leader_not_available
        raise KafkaProtocolError(code, context=f"{topic}-{partition}")

    async def controller(self) -> BrokerConnection:
        """Connection to the controller (admin requests Kafka only accepts there)."""
        if self._needs_refresh() or self._meta.controller_id < 0:
            await self.refresh_all()
        if self._meta.controller_id < 0:
            return await self.any_connection()
        return await self.connection(self._meta.controller_id)

    def cached_topic_id(self, topic: str):
        """The topic id from the metadata cache (None if unknown or the broker has none)."""
        return self._meta.topic_id(topic)

    def check_partition(self, error_code: int, message: str | None = None, *, context: str) -> None:
        """Raise for a partition's error code; a "wrong broker" code also marks the
        metadata stale, so the retry that follows is routed afresh."""
        if int(error_code) in REROUTE_CODES:
            self.invalidate()
        check(error_code, message, context=context)

    def invalidate(self) -> None:
        """Mark the metadata stale so the next routed call refreshes it first."""
        self._stale = True

    # -- retries and fan-out ---------------------------------------------------------------

    def _before_sleep(self, what: str) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            self._stale = True
            exc = state.outcome.exception() if state.outcome else None
            # One line per state change: the first retry is worth a line, later ones are
            # noise (callers such as the mirror log their own state changes).
            level = logging.INFO if state.attempt_number == 1 else logging.DEBUG
            log.log(level, "retrying %s after %s (attempt %d)", what, exc, state.attempt_number)

        return before_sleep

    async def retrying(self, op: Callable[[], Awaitable[T]], what: str = "request") -> T:
        """Run `op` until it succeeds, fails for good, or the retry deadline passes."""
        retryer = AsyncRetrying(
            stop=stop_after_delay(self.retry_deadline_s),
            wait=backoff(),
            retry=retry_if_exception(is_retriable),
            before_sleep=self._before_sleep(what),
            reraise=True,
            name=what,
        )
        async for attempt in retryer:
            with attempt:
                return await op()
        raise AssertionError("unreachable")  # pragma: no cover

    async def by_leader(
        self,
        tps: Iterable[TP],
        per_broker: Callable[[BrokerConnection, list[TP]], Awaitable[dict[Any, Any]]],
    ) -> dict[Any, Any]:
        """Group partitions by leader, call `per_broker` for each leader in parallel, and
        merge the dicts they return. Raises the first failure (callers wrap in retrying)."""
        groups: dict[int, list[TP]] = {}
        for tp in tps:
            groups.setdefault(await self.leader(*tp), []).append(tp)

        async def one(node: int, parts: list[TP]) -> dict[Any, Any]:
            return await per_broker(await self.connection(node), parts)

        merged: dict[Any, Any] = {}
        parts = await asyncio.gather(*(one(n, ps) for n, ps in groups.items()), return_exceptions=True)
        for part in parts:  # wait for all, so no request outlives a failed call
            if isinstance(part, BaseException):
                raise part
            merged.update(part)
        return merged
