"""The broker process: owns cluster state, serves the Kafka protocol over asyncio streams.

One `Broker` owns every piece of state (topic catalogue, partition logs, group
coordinator), so handlers need no locks. Connections (order, fairness, deadlines, limits)
are served by `cluster.broker.connection`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import pkgutil
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

from kio.schema.errors import ErrorCode

from cluster.auth.credentials import CredentialStore
from cluster.auth.acl_store import AclStore
from cluster.broker.fetch_session import FetchSessionCache
from cluster.broker import session, topic_config
from cluster.broker.batch_checks import BatchChecks
from cluster.broker.config import BrokerConfig
from cluster.broker.connection import ConnectionServer
from cluster.broker.internal_topics import InternalTopics
from cluster.broker.log_pool import LogPool, budgets, descriptor_limit, range_budget
from cluster.broker.partition import Partition
from cluster.broker.topics import CatalogueWriteFailed, TopicCatalogue, TopicError, TopicMeta, remove_strays
from cluster.log import LogConfig
from cluster.log.file_range import RANGES
from cluster.log.handles import READ_HANDLES

log = logging.getLogger(__name__)


def load_handlers() -> None:
    """Import every `kNN_*.py` module so their handlers register themselves."""
    import cluster.broker as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name.startswith("k") and mod.name[1:3].isdigit():
            importlib.import_module(f"cluster.broker.{mod.name}")


class Broker:
    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.node_id = config.node_id
        self.data_dir = Path(config.data_dir)
        self._dir_lock = None  # the data dir's exclusive lock while started (data_dir_lock)
        self.partitions: dict[tuple[str, int], Partition] = {}
        self.pool = LogPool(0)  # sized from the descriptor limit in start()
        self._log_configs: dict[frozenset, LogConfig] = {}  # by topic overrides
        self.catalogue: TopicCatalogue | None = None
        self.cluster_id = ""
        self.internal_topics = InternalTopics(self.data_dir / "meta", "")
        self.groups: Any = None
        self.txns: Any = None
        self.producer_state: Any = None
        self.credentials: CredentialStore | None = None  # SCRAM users (meta/scram-credentials.json)
        self.acls: AclStore | None = None
        self.batch_checks = BatchChecks(config.batch_limits())
        # KIP-227 incremental fetch sessions (cluster/broker/k01_fetch.py).
        self.fetch_sessions = FetchSessionCache(config.max_incremental_fetch_session_cache_slots)
        self._servers: list[asyncio.base_events.Server] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.connections = ConnectionServer(self)
        self.started_ms = int(time.time() * 1000)
        # A multi-broker cluster's view (cluster/broker/membership.py); None: single broker.
        self.membership: Any = None

    # ---- identity ---------------------------------------------------------------
    def endpoint(self) -> tuple[str, int]:
        """The advertised address of the listener the current client came in on (the
        primary listener's outside a connection), as Kafka answers Metadata."""
        return self.config.listener(session.current().listener).advertised

    @property
    def advertised_host(self) -> str:
        return self.endpoint()[0]

    @property
    def advertised_port(self) -> int:
        return self.endpoint()[1]

    @property
    def controller_id(self) -> int:
        return self.membership.controller_id if self.membership is not None else self.node_id

    # ---- lifecycle --------------------------------------------------------------
    async def start(self) -> None:
        from cluster.broker.data_dir_lock import lock_data_dir
        from cluster.broker.tls import server_contexts

        contexts = server_contexts(self.config)  # TlsSetupError (one sentence) before anything binds
        load_handlers()
        if getattr(self, "_dir_lock", None) is None:
            self._dir_lock = lock_data_dir(self.data_dir)  # DataDirInUse before anything is read
        try:
            await self._start_in_dir(contexts)
        except BaseException:  # a failed start (port taken...) must not keep the dir locked
            self._dir_lock.close()
            self._dir_lock = None
            raise

    async def _start_in_dir(self, contexts) -> None:
        """Everything `start` does once the data directory is this broker's."""
        self.catalogue = TopicCatalogue(self.data_dir)
        self.cluster_id = self.catalogue.identity(self.config.name, self.node_id).cluster_id
        if self.config.metadata_url is not None:
            from cluster.broker.membership import Membership

            self.membership = Membership(self)
            self.cluster_id = await self.membership.join(self.cluster_id)
        self.internal_topics = InternalTopics(self.data_dir / "meta", self.cluster_id)
        from cluster.broker.producer_state import ProducerState

        self.producer_state = ProducerState(self.data_dir / "meta")
        self.credentials = CredentialStore(self.data_dir / "meta")
        self._hold_running_lock()
        self.acls = AclStore(self.data_dir / "meta", self.config.super_users)
        if not self.config.authenticates and (self.config.super_users or len(self.acls.authorizer)):
            log.warning("ACLs are not enforced: no listener authenticates its clients, so every "
                        "client may do everything (super users and %d stored ACL(s) apply once one does)",
                        len(self.acls.authorizer))
        logs, handles = budgets(descriptor_limit())
        self.pool = LogPool(logs)
        READ_HANDLES.capacity = handles
        RANGES.capacity = range_budget(descriptor_limit())
        if self.membership is not None:
            self.membership.apply()  # the cluster's topics; Partitions for those led here
            self.membership.start_sync()
        else:
            for meta in self.catalogue.topics.values():
                self._add_partitions(meta, range(meta.partitions))
        if self.catalogue.existed:
            remove_strays(self.data_dir, self.catalogue.topics)
        await self._start_groups()
        await self._start_txns()
        try:
            for lst in self.config.listeners:
                self._servers.append(await self.connections.listen(lst, contexts.get(lst.name)))
        except BaseException:
            for srv in self._servers:
                srv.close()
            raise
        first = self.config.listeners[0]
        self.config.host, self.config.port = first.host, first.port
        self.connections.start()
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))

    def _hold_running_lock(self) -> None:
        """A shared lock on meta/broker.lock while running: `dcmirror cluster users` (which
        edits the credential file this broker holds in memory) sees it and refuses."""
        import fcntl

        self._running_lock = open(self.data_dir / "meta" / "broker.lock", "a")
        try:
            fcntl.flock(self._running_lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            pass

    async def _start_groups(self) -> None:
        try:
            from cluster.groups.coordinator import GroupCoordinator
        except ImportError:
            return
        from cluster.broker.group_topics import CatalogueImage

        from cluster.groups.consumer_model import ConsumerConfig

        consumer = ConsumerConfig(session_timeout_ms=self.config.group_consumer_session_timeout_ms,
                                  heartbeat_interval_ms=self.config.group_consumer_heartbeat_interval_ms)
        from cluster.groups.model import GroupConfig

        classic = GroupConfig(initial_rebalance_delay_ms=self.config.group_initial_rebalance_delay_ms,
                              offsets_retention_ms=self.config.offsets_retention_minutes * 60_000)
        self.groups = GroupCoordinator(self.data_dir / "__groups", self.node_id, fsync=self.config.fsync,
                                       config=classic, consumer_config=consumer)
        self.groups.topics = CatalogueImage(self)
        await self.groups.start()

    async def _start_txns(self) -> None:
        from cluster.txn.coordinator import TransactionCoordinator

        self.txns = TransactionCoordinator(self, self.data_dir / "__transactions", fsync=self.config.fsync)
        await self.txns.start()

    async def stop(self) -> None:
        if self.membership is not None:
            await self.membership.stop()
        for srv in self._servers:
            srv.close()
        await self.connections.stop()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.txns is not None:
            await self.txns.close()
        if self.groups is not None:
            await self.groups.close()
        for part in self.partitions.values():
            part.notify()
        self.pool.close_all()
        self.partitions.clear()
        if self.catalogue is not None:
            self.catalogue.close()
        self.batch_checks.close()
        lock = getattr(self, "_running_lock", None)
        if lock is not None:
            lock.close()
        dir_lock = getattr(self, "_dir_lock", None)
        if dir_lock is not None:
            dir_lock.close()
            self._dir_lock = None

    async def serve_forever(self) -> None:
        assert self._servers
        await asyncio.gather(*(srv.serve_forever() for srv in self._servers))

    async def _housekeeping(self) -> None:
        """Retention, compaction and interval fsyncs, off the request path."""
        from cluster.log.cleaner import Cleaner

        interval = 0.2 if self.config.fsync == "interval" else 1.0
        last_retention = 0.0
        # Compaction runs here in small steps (a few segments per partition per tick) so the
        # event loop, the log's only owner, is never blocked for long.
        cleaners: dict[tuple[str, int], Cleaner] = {}
        cleaner_check_ms = min(self.config.retention_check_interval_ms, 15_000)
        while True:
            await asyncio.sleep(interval)
            now_ms = int(time.time() * 1000)
            for part in self.pool.open_partitions():
                try:
                    plog = part.open_log
                    if plog is not None:
                        plog.maybe_flush(now_ms)
                except Exception:
                    log.exception("flush of %s-%d failed", part.topic, part.index)
            if now_ms - last_retention >= self.config.retention_check_interval_ms:
                last_retention = now_ms
                await self._retention_pass(now_ms)
            for key in [k for k, c in cleaners.items()
                        if k not in self.partitions or c.log.closed or not c.log.config.compact]:
                cleaners.pop(key).stop()
            for part in self.pool.open_partitions():
                plog = part.open_log
                if plog is None or not plog.config.compact:
                    continue
                key = (part.topic, part.index)
                cleaner = cleaners.get(key)
                if cleaner is None or cleaner.log is not plog:
                    cleaner = cleaners[key] = Cleaner(plog, check_interval_ms=cleaner_check_ms)
                try:
                    await cleaner.astep(now_ms, self.batch_checks.off_loop)
                except Exception:
                    cleaner.stop()
                    log.exception("compaction of %s-%d failed", part.topic, part.index)

    async def _retention_pass(self, now_ms: int) -> None:
        """Retention over every partition that can have rolled segments; a closed log with
        one segment is skipped without reopening it. Yields to clients every few hundred."""
        for n, part in enumerate(list(self.partitions.values())):
            if n % 256 == 255:
                await asyncio.sleep(0)
            if self.partitions.get((part.topic, part.index)) is not part:
                continue  # deleted meanwhile
            try:
                if not part.needs_housekeeping():
                    continue
                removed = part.log.apply_retention(now_ms)
                if removed:
                    log.info("retention removed %d segment(s) of %s-%d",
                             removed, part.topic, part.index)
            except Exception:
                log.exception("retention of %s-%d failed", part.topic, part.index)

    # ---- topics -----------------------------------------------------------------
    def _partition_dir(self, topic: str, index: int) -> Path:
        return self.data_dir / f"{topic}-{index}"

    def _add_partitions(self, meta: TopicMeta, indexes: range) -> None:
        """Partition objects only: each log opens on first use (see log_pool.py)."""
        key = frozenset(meta.configs.items())
        cfg = self._log_configs.get(key)
        if cfg is None:  # topics created alike share one LogConfig (never mutated in place)
            if len(self._log_configs) > 1024:
                self._log_configs.clear()
            cfg = self._log_configs[key] = topic_config.log_config(
                meta.configs, self.config.fsync, self.config.fsync_interval_ms)
        for i in indexes:
            self.partitions[(meta.name, i)] = Partition(
                meta.name, i, meta.leader_epochs[i], self.data_dir, cfg, self.pool)

    def add_led_partition(self, meta: TopicMeta, index: int, leader_epoch: int) -> None:
        """Multi-broker: this broker became the leader of `meta`'s partition `index`."""
        self._add_partitions(meta, range(index, index + 1))
        self.partitions[(meta.name, index)].leader_epoch = leader_epoch

    def drop_led_partition(self, topic: str, index: int) -> None:
        """Multi-broker: another broker leads it now (its log stays on disk, closed)."""
        part = self.partitions.pop((topic, index), None)
        if part is not None:
            self.producer_state.forget(part)
            part.notify()
            self.pool.forget(part)

    def led_elsewhere(self, topic: str | None, index: int) -> bool:
        """A partition without a Partition here that the cluster has: on a multi-broker
        cluster the request is answered NOT_LEADER_OR_FOLLOWER so the client re-routes."""
        return self.membership is not None and (topic, index) in self.membership.partitions

    def _clear_leftovers(self, name: str, indexes: range) -> None:
        """Remove directories a new partition must not inherit (from a topic of the same
        name whose deletion was cut short): the catalogue says they belong to no one."""
        base = str(self.data_dir)
        for i in indexes:
            path = os.path.join(base, f"{name}-{i}")
            if os.path.lexists(path):
                log.warning("removing leftover directory %s before creating %s-%d", path, name, i)
                shutil.rmtree(path, ignore_errors=True)

    def create_topic(
        self, name: str, partitions: int, configs: dict[str, str], *, validate_only: bool = False
    ) -> TopicMeta:
        """Create a topic (or only check that it could be). Raises TopicError."""
        assert self.catalogue is not None
        from cluster.broker.topics import check_topic_name

        check_topic_name(name)
        if name in self.catalogue.topics:
            raise TopicError(ErrorCode.topic_already_exists, f"topic {name!r} already exists")
        if partitions < 1:
            raise TopicError(ErrorCode.invalid_partitions, "number of partitions must be at least 1")
        self.check_partition_budget(partitions)
        try:
            merged = topic_config.validate({**self.config.default_topic_configs, **configs})
        except topic_config.InvalidConfig as exc:
            raise TopicError(ErrorCode.invalid_config, str(exc)) from None
        if validate_only:
            return TopicMeta(name, "00000000-0000-0000-0000-000000000000", partitions, merged)
        self._clear_leftovers(name, range(partitions))
        try:
            meta = self.catalogue.create(name, partitions, merged)
        except OSError as exc:
            log.error("could not record topic %s: %s", name, exc)
            raise TopicError(ErrorCode.unknown_server_error,
                             f"could not record topic {name!r}: {exc.strerror or exc}") from None
        self._add_partitions(meta, range(partitions))
        log.info("created topic %s with %d partition(s)", name, partitions)
        return meta

    @contextlib.contextmanager
    def topic_batch(self) -> Iterator[None]:
        """One catalogue write for all topic changes inside (see TopicCatalogue.batch); if
        it fails, the partitions of every rolled-back topic are put back to match."""
        assert self.catalogue is not None
        try:
            with self.catalogue.batch():
                yield
        except CatalogueWriteFailed as exc:
            log.error("could not record changes to %d topic(s): %s", len(exc.names), exc)
            for name in exc.names:
                self._resync_partitions(name)
            raise

    def _resync_partitions(self, name: str) -> None:
        assert self.catalogue is not None
        meta = self.catalogue.topics.get(name)
        i = meta.partitions if meta is not None else 0
        while (part := self.partitions.pop((name, i), None)) is not None:
            self.producer_state.forget(part)
            part.notify()
            self.pool.forget(part)
            i += 1
        if meta is not None:
            cfg = topic_config.log_config(meta.configs, self.config.fsync, self.config.fsync_interval_ms)
            for i in range(meta.partitions):
                self.partitions[(name, i)].set_config(cfg)

    def check_partition_budget(self, adding: int) -> None:
        """Refuse growth past the broker-wide `max_partitions` (POLICY_VIOLATION)."""
        total = len(self.partitions)
        if total + adding > self.config.max_partitions:
            raise TopicError(
                ErrorCode.policy_violation,
                f"Adding {adding} partition(s) to the {total} this cluster holds would exceed "
                f"its limit of {self.config.max_partitions} (max_partitions).",
            )

    def delete_topic(self, name: str) -> None:
        assert self.catalogue is not None
        meta = self.catalogue.delete(name)
        for i in range(meta.partitions):
            part = self.partitions.pop((name, i), None)
            if part is not None:
                self.producer_state.forget(part)
                part.notify()
                self.pool.forget(part)
            shutil.rmtree(self._partition_dir(name, i), ignore_errors=True)
        log.info("deleted topic %s", name)

    def add_partitions(self, name: str, total: int) -> None:
        assert self.catalogue is not None
        meta = self.catalogue.topics[name]
        old = meta.partitions
        self.check_partition_budget(total - old)
        self._clear_leftovers(name, range(old, total))
        try:
            self.catalogue.add_partitions(name, total)
        except OSError as exc:
            log.error("could not record %d partitions of %s: %s", total, name, exc)
            raise TopicError(ErrorCode.unknown_server_error,
                             f"could not record the new partitions: {exc.strerror or exc}") from None
        self._add_partitions(meta, range(old, total))
        log.info("topic %s grew from %d to %d partitions", name, old, total)

    def set_topic_configs(self, name: str, configs: dict[str, str]) -> None:
        assert self.catalogue is not None
        meta = self.catalogue.topics[name]
        self.catalogue.set_configs(name, configs)
        cfg = topic_config.log_config(meta.configs, self.config.fsync, self.config.fsync_interval_ms)
        for i in range(meta.partitions):
            self.partitions[(name, i)].set_config(cfg)

    def topic(self, name: str) -> TopicMeta | None:
        assert self.catalogue is not None
        return self.catalogue.topics.get(name)

    def maybe_auto_create(self, name: str) -> TopicMeta | None:
        """Kafka's auto.create.topics.enable: create on first Metadata/Produce reference."""
        meta = self.topic(name)
        if meta is None and self.config.auto_create_topics and not name.startswith("__"):
            try:
                meta = self.create_topic(name, self.config.default_partitions, {})
            except TopicError:
                return None
        return meta
