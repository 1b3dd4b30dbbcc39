"""`dcmirror up`: the local clusters of a config and the mirror daemon in one process."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal

from cluster.broker.config import BrokerConfig
from cluster.broker.server import Broker
from cluster.broker.tls import TlsSetupError
from mirror.config import MirrorConfig
from mirror.daemon import Daemon

log = logging.getLogger(__name__)


class UpError(Exception):
    """A local cluster cannot start (its TLS files cannot be loaded...); one sentence."""


def broker_config(alias: str, local) -> BrokerConfig:
    limits = {} if local.max_partitions is None else {"max_partitions": local.max_partitions}
    return BrokerConfig(
        name=alias, data_dir=local.data_dir, port=local.port, host=local.host,
        advertised_host=local.advertised_host, node_id=local.node_id, fsync=local.fsync,
        fsync_interval_ms=local.fsync_interval_ms, auto_create_topics=local.auto_create_topics,
        default_partitions=local.default_partitions, fetch_max_bytes=local.fetch_max_bytes,
        default_topic_configs=dict(local.default_topic_configs),
        **dict(local.connections), **limits,
        **dict(local.batch_limits),
        listeners=[dataclasses.replace(lst) for lst in local.listeners],
        ssl_certfile=local.ssl_certfile, ssl_keyfile=local.ssl_keyfile, ssl_cafile=local.ssl_cafile,
        ssl_client_auth=local.ssl_client_auth, allow_unauthenticated=local.allow_unauthenticated,
        sasl_mechanisms=local.sasl_mechanisms, sasl_plain_over_plaintext=local.sasl_plain_over_plaintext,
    )


async def run_up(cfg: MirrorConfig, *, metrics_port: int | None = None, live: bool = False) -> None:
    brokers = []
    try:
        for alias, c in cfg.clusters.items():
            if c.local is None:
                continue
            b = Broker(broker_config(alias, c.local))
            try:
                await b.start()
            except TlsSetupError as exc:
                raise UpError(f"cluster {alias}: {exc}") from None
            brokers.append(b)
            log.info("cluster %s ready on %s (data in %s)", alias,
                     ", ".join(lst.describe() for lst in b.config.listeners), c.local.data_dir)
        daemon = Daemon(cfg, metrics_port=metrics_port)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, daemon.stop)
        if live:
            from mirror.live_view import run_live

            await asyncio.gather(daemon.run(), run_live(daemon))
        else:
            await daemon.run()
    finally:
        for b in brokers:
            await b.stop()
        log.info("all stopped")
