"""`dcmirror cluster ...`: run a local dcmirror cluster in the foreground."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from cluster.auth.acl_store import AclFileError
from cluster.broker.config import DEFAULT_MAX_PARTITIONS, INT_MAX, BrokerConfig
from cluster.auth.listeners import Listener, apply_advertised, parse_listener
from cluster.broker.server import Broker
from cluster.sasl_cli import sasl_options, sasl_settings, users_group
from cluster.broker.malloc_tuning import tune_malloc
from cluster.broker.data_dir_lock import DataDirInUse
from cluster.broker.tls import TlsSetupError
from cluster.metadata.store import StoreError

log = logging.getLogger("dcmirror.cluster")


async def run_broker(config: BrokerConfig, ready_line: bool = True) -> None:
    """Start a broker, log one ready line, and serve until SIGINT/SIGTERM."""
    broker = Broker(config)
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if ready_line and config.metadata_url is not None:  # one of several: the supervisor says "ready"
        log.info("broker %d of cluster %s serving on %s (data in %s, cluster id %s, metadata in %s)",
                 config.node_id, config.name, ", ".join(lst.describe() for lst in config.listeners),
                 config.data_dir, broker.cluster_id, config.metadata_url)
    elif ready_line:
        log.info(
            "cluster %s ready: node %d listening on %s (data in %s, cluster id %s)",
            config.name, config.node_id, ", ".join(lst.describe() for lst in config.listeners),
            config.data_dir, broker.cluster_id,
        )
    try:
        await stop.wait()
    finally:
        log.info("cluster %s stopping", config.name)
        await broker.stop()


def parse_super_users(text: str) -> tuple[str, ...]:
    """`User:admin,User:bob` (Kafka's super.users uses ';'; both separators are accepted)."""
    return tuple(p.strip() for p in text.replace(";", ",").split(",") if p.strip())


@click.group("cluster")
def cluster_group() -> None:
    """Run and inspect local dcmirror clusters."""


@cluster_group.command("start")
@click.option("--name", required=True, help="Cluster name (shown in logs and the cluster id).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port of the single PLAINTEXT listener (shorthand for --listener; 0: a free port).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--host", default=None, help="Address of the single PLAINTEXT listener [default: 127.0.0.1].")
@click.option("--advertised-host", default=None, help="Host clients should connect to (with --host/--port).")
@click.option("--listener", "listener_specs", multiple=True, metavar="NAME=PROTOCOL://HOST:PORT",
              help="A listener (repeatable); PROTOCOL is PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; "
                   "port 0 takes a free port. Replaces --host/--port.")
@click.option("--advertised", "advertised_specs", multiple=True, metavar="NAME=HOST:PORT",
              help="The address clients are told for listener NAME (repeatable; default: its own).")
@click.option("--ssl-certfile", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The broker's certificate (PEM, chain allowed) for SSL and SASL_SSL listeners.")
@click.option("--ssl-keyfile", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The private key of --ssl-certfile (PEM, unencrypted).")
@click.option("--ssl-cafile", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="CA certificates (PEM) that client certificates must chain to.")
@click.option("--ssl-client-auth", type=click.Choice(["none", "requested", "required"]), default=None,
              help="Client certificates on SSL listeners (Kafka's ssl.client.auth) [default: none].")
@click.option("--allow-unauthenticated", is_flag=True,
              help="Allow a listener that does not authenticate clients on a non-loopback address.")
@click.option("--brokers", type=click.IntRange(1), default=1, show_default=True,
              help="Brokers, one process each, on ports P..P+N-1 (see README 'Multi-broker clusters').")
@click.option("--metadata", default=None, metavar="URL",
              help="With --brokers N > 1: the metadata store [default: sqlite:///DATA_DIR/metadata.db].")
@click.option("--broker-session-timeout-ms", type=click.IntRange(1), default=9_000, show_default=True,
              help="With --brokers N > 1: a broker not heard from this long is fenced.")
@click.option("--broker-heartbeat-interval-ms", type=click.IntRange(1), default=500, show_default=True,
              help="With --brokers N > 1: how often each broker heartbeats.")
@click.option("--node-id", type=int, default=1, show_default=True)
@click.option(
    "--fsync",
    type=click.Choice(["always", "interval", "never"]),
    default="never",
    show_default=True,
    help="When log writes are fsynced: see README 'Durability'.",
)
@click.option("--fsync-interval-ms", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--group-consumer-session-timeout-ms", type=click.IntRange(1), default=45_000, show_default=True,
              help="KIP-848 consumer groups: a member not heard from this long is removed.")
@click.option("--group-consumer-heartbeat-interval-ms", type=click.IntRange(1), default=5_000,
              show_default=True, help="KIP-848 consumer groups: how often members heartbeat.")
@click.option("--group-initial-rebalance-delay-ms", type=click.IntRange(0), default=3_000, show_default=True,
              help="Classic groups: an empty group's first rebalance waits this long for more members.")
@click.option("--offsets-retention-minutes", type=click.IntRange(1), default=7 * 24 * 60, show_default=True,
              help="Committed offsets of a group empty this long (standalone commits: this long after "
                   "the commit) expire.")
@click.option("--partitions", "default_partitions", type=click.IntRange(1), default=1,
              show_default=True, help="Partitions of auto-created topics.")
@click.option("--no-auto-create", is_flag=True, help="Refuse to auto-create topics.")
@click.option("--retention-check-interval-ms", type=click.IntRange(10), default=30_000,
              show_default=True, help="How often retention deletes old segments.")
@click.option("--max-batch-records", type=click.IntRange(1), default=BrokerConfig.max_batch_records,
              show_default=True, help="Most records one produced batch may hold.")
@click.option("--max-batch-inflate-bytes", type=click.IntRange(1 << 20, 64 << 20),
              default=BrokerConfig.max_batch_inflate_bytes, show_default=True,
              help="Most bytes one compressed batch may inflate to (it may always reach 64x its size "
                   "or 8 MiB, within this ceiling).")
@click.option("--connections-max-idle-ms", type=click.IntRange(1), default=600_000,
              show_default=True, help="Close a connection with no request activity this long.")
@click.option("--request-read-timeout-ms", type=click.IntRange(1), default=30_000,
              show_default=True,
              help="Close a connection whose request does not arrive whole this soon after its size.")
@click.option("--queued-max-request-bytes", type=click.IntRange(-1), default=100 * 1024 * 1024,
              show_default=True,
              help="Request bytes held broker-wide before it stops reading (-1: unlimited).")
@click.option("--max-connections", type=click.IntRange(0), default=INT_MAX, show_default=True,
              help="Connections the broker accepts at once; more are closed.")
@click.option("--max-connections-per-ip", type=click.IntRange(0), default=INT_MAX,
              show_default=True, help="Connections one client address may hold; more are closed.")
@click.option("--fetch-max-bytes", type=click.IntRange(1024), default=57_671_680, show_default=True,
              help="fetch.max.bytes: the most log bytes one Fetch response carries (KIP-74).")
@click.option("--max-incremental-fetch-session-cache-slots", "fetch_session_slots", type=click.IntRange(0),
              default=1000, show_default=True,
              help="KIP-227 fetch sessions the broker keeps (0: none, every fetch is full).")
@click.option("--max-partitions", type=click.IntRange(1), default=DEFAULT_MAX_PARTITIONS,
              show_default=True, help="Most partitions the cluster holds, all topics together.")
@sasl_options
@click.option("--super-users", default="", metavar="User:A,User:B",
              help="Principals allowed everything when ACLs apply (Kafka's super.users).")
def start(name: str, brokers: int, **opts: Any) -> None:
    """Run one cluster in the foreground until Ctrl-C or SIGTERM (--brokers N: N processes)."""
    ctx = click.get_current_context()
    if brokers > 1:
        from cluster.supervisor import supervise_from_cli

        supervise_from_cli(ctx, name, brokers, opts)
        return
    for key in MULTI_BROKER_ONLY:
        if ctx.get_parameter_source(key) == ParameterSource.COMMANDLINE:
            raise click.UsageError(f"--{key.replace('_', '-')} applies to a cluster of several brokers: "
                                   f"give --brokers N > 1 too")
        opts.pop(key)
    _run_config(name, _config(name, **opts))


MULTI_BROKER_ONLY = ("metadata", "broker_session_timeout_ms", "broker_heartbeat_interval_ms")


def _config(name: str, port: int | None, data_dir: Path, host: str | None, advertised_host: str | None,
            listener_specs: tuple[str, ...], advertised_specs: tuple[str, ...], ssl_certfile: Path | None,
            ssl_keyfile: Path | None, ssl_cafile: Path | None, ssl_client_auth: str | None,
            allow_unauthenticated: bool, node_id: int, fsync: str, fsync_interval_ms: int,
            default_partitions: int, no_auto_create: bool, retention_check_interval_ms: int,
            connections_max_idle_ms: int, request_read_timeout_ms: int, queued_max_request_bytes: int,
            max_connections: int, max_connections_per_ip: int, fetch_max_bytes: int,
            fetch_session_slots: int, max_partitions: int,
            max_batch_records: int, max_batch_inflate_bytes: int, super_users: str,
            group_consumer_session_timeout_ms: int, group_consumer_heartbeat_interval_ms: int,
            group_initial_rebalance_delay_ms: int, offsets_retention_minutes: int,
            **rest: Any) -> BrokerConfig:
    """The BrokerConfig the options describe (UsageError for a value it refuses)."""
    cluster = {k: rest.pop(k) for k in ("metadata_url", "rack", "broker_session_timeout_ms",
                                         "broker_heartbeat_interval_ms") if k in rest}
    sasl = rest
    try:
        listeners = _listeners(port, host, advertised_host, listener_specs, advertised_specs)
        config = BrokerConfig(
            name=name, data_dir=data_dir, listeners=listeners,
            ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, ssl_cafile=ssl_cafile,
            ssl_client_auth=ssl_client_auth or "none", allow_unauthenticated=allow_unauthenticated,
            node_id=node_id, fsync=fsync, fsync_interval_ms=fsync_interval_ms,
            default_partitions=default_partitions, auto_create_topics=not no_auto_create,
            retention_check_interval_ms=retention_check_interval_ms,
            connections_max_idle_ms=connections_max_idle_ms,
            request_read_timeout_ms=request_read_timeout_ms,
            queued_max_request_bytes=queued_max_request_bytes,
            max_connections=max_connections, max_connections_per_ip=max_connections_per_ip,
            fetch_max_bytes=fetch_max_bytes,
            max_incremental_fetch_session_cache_slots=fetch_session_slots,
            max_partitions=max_partitions,
            max_batch_records=max_batch_records, max_batch_inflate_bytes=max_batch_inflate_bytes,
            group_consumer_session_timeout_ms=group_consumer_session_timeout_ms,
            group_consumer_heartbeat_interval_ms=group_consumer_heartbeat_interval_ms,
            group_initial_rebalance_delay_ms=group_initial_rebalance_delay_ms,
            offsets_retention_minutes=offsets_retention_minutes,
            **sasl_settings(sasl),
            super_users=parse_super_users(super_users),
            **cluster,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc))
    return config


def _run_config(name: str, config: BrokerConfig) -> None:
    """Run the broker of `config` until stopped; startup failures as one sentence."""
    tune_malloc()  # request-sized buffers reuse heap memory (see malloc_tuning)
    try:
        asyncio.run(run_broker(config))
    except TlsSetupError as exc:
        raise click.ClickException(f"cannot start cluster {name}: {exc}")
    except (AclFileError, DataDirInUse) as exc:
        raise click.ClickException(str(exc))
    except (RuntimeError, StoreError) as exc:  # could not join a multi-broker cluster
        raise click.ClickException(f"cannot start a broker of cluster {name}: {exc}")
    except OSError as exc:
        where = ", ".join(lst.url() for lst in config.listeners)
        raise click.ClickException(f"cannot start cluster {name} on {where}: {exc.strerror or exc}")


def _listeners(port: int | None, host: str | None, advertised_host: str | None,
               specs: tuple[str, ...], advertised: tuple[str, ...]) -> list[Listener]:
    """--listener/--advertised, or the --host/--port shorthand (one PLAINTEXT listener)."""
    if specs:
        given = [flag for flag, value in (("--host", host), ("--port", port),
                                          ("--advertised-host", advertised_host)) if value is not None]
        if given:
            raise ValueError(f"{'/'.join(given)} and --listener both say where to listen; give only "
                             f"--listener (and --advertised), or only --host/--port")
        listeners = [parse_listener(spec) for spec in specs]
        apply_advertised(listeners, list(advertised))
        return listeners
    if port is None:
        raise ValueError("say where to listen: --port PORT (with --host), or one or more --listener")
    if advertised and advertised_host is not None:
        raise ValueError("--advertised-host and --advertised both say what clients are told; give one "
                         "(--advertised PLAINTEXT=HOST:PORT also sets the port)")
    # the shorthand's listener is named PLAINTEXT: --advertised PLAINTEXT=HOST:PORT (behind NAT,
    # a port-forward or a proxy) tells clients a port other than the one it binds
    listeners = [Listener("PLAINTEXT", "PLAINTEXT", host or "127.0.0.1", port, advertised_host)]
    apply_advertised(listeners, list(advertised))
    return listeners


cluster_group.add_command(users_group)


@click.group("broker")
def broker_group() -> None:
    """Run one broker process of a multi-broker cluster."""


def _broker_start(cluster: str, node_id: int, metadata: str, rack: str | None,
                  broker_session_timeout_ms: int, broker_heartbeat_interval_ms: int, **opts: Any) -> None:
    """One broker of cluster NAME: its metadata (brokers, topics, leaders) in the --metadata store."""
    _run_config(cluster, _config(cluster, node_id=node_id, metadata_url=metadata, rack=rack,
                                 broker_session_timeout_ms=broker_session_timeout_ms,
                                 broker_heartbeat_interval_ms=broker_heartbeat_interval_ms, **opts))


BROKER_ONLY_OPTIONS = [
    click.Option(["--cluster"], required=True, help="The cluster's name (the same on every broker)."),
    click.Option(["--node-id"], type=click.IntRange(0), required=True, help="This broker's id in the cluster."),
    click.Option(["--metadata"], required=True, metavar="URL",
                 help="The metadata store: sqlite:///path/metadata.db (brokers of one machine) "
                      "or etcd://host:port/prefix (brokers on several hosts)."),
    click.Option(["--rack"], default=None, help="This broker's rack (rack-aware replica placement)."),
    click.Option(["--broker-session-timeout-ms"], type=click.IntRange(1), default=9_000, show_default=True,
                 help="A broker the controller has not heard from this long is fenced."),
    click.Option(["--broker-heartbeat-interval-ms"], type=click.IntRange(1), default=500, show_default=True,
                 help="How often this broker heartbeats to the controller."),
]

broker_group.add_command(click.Command(
    "start", callback=_broker_start, help=_broker_start.__doc__,
    params=BROKER_ONLY_OPTIONS + [p for p in start.params if p.name not in ("name", "brokers", "node_id")]))
