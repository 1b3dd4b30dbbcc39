"""Settings of one broker process (one node of a dcmirror cluster).

Names follow Apache Kafka's broker keys where Kafka has one (see `CONNECTION_SETTINGS`); a value
out of range is refused here with one sentence, whichever front end (CLI, cluster YAML,
tests) built the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cluster.auth.sasl_server import SASL_MECHANISMS, check_sasl_settings  # noqa: F401 (re-exported)
from cluster.auth.listeners import Listener, authenticates, check_listeners, check_security
from cluster.wire.batch_validator import DEFAULT_LIMITS, Limits
from cluster.wire.compression import DECOMPRESS_CEILING
from cluster.wire.framing import DEFAULT_MAX_FRAME

INT_MAX = 2**31 - 1  # Kafka's "unlimited" for max.connections and max.connections.per.ip

# field -> (broker key as DescribeConfigs shows it, smallest value allowed)
CONNECTION_SETTINGS: dict[str, tuple[str, int]] = {
    "connections_max_idle_ms": ("connections.max.idle.ms", 1),
    "request_read_timeout_ms": ("dcmirror.connections.request.read.timeout.ms", 1),
    "queued_max_request_bytes": ("queued.max.request.bytes", -1),
    "max_connections": ("max.connections", 0),
    "max_connections_per_ip": ("max.connections.per.ip", 0),
    # SASL (cluster/broker/k36_sasl_authenticate.py, README "Security (broker side)")
    "connections_max_reauth_ms": ("connections.max.reauth.ms", 0),
    "sasl_server_max_receive_size": ("sasl.server.max.receive.size", 1),
    "connection_failed_authentication_delay_ms": ("connection.failed.authentication.delay.ms", 0),
}



# Apache Kafka's fetch.max.bytes default (55 MiB) and its lower bound.
DEFAULT_FETCH_MAX_BYTES = 57_671_680
MIN_FETCH_MAX_BYTES = 1024

DEFAULT_MAX_PARTITIONS = 100_000
# KRaft's ReplicationControlManager.MAX_PARTITIONS_PER_BATCH: one CreateTopics or
# CreatePartitions request may create at most this many partitions.
MAX_PARTITIONS_PER_REQUEST = 10_000


@dataclass
class BrokerConfig:
    name: str
    data_dir: Path
    # The single-PLAINTEXT shorthand (CLI --host/--port). With `listeners` given, these
    # mirror the first listener (its bound port after start), for callers that want one.
    port: int = 0
    host: str = "127.0.0.1"
    advertised_host: str | None = None
    # Listeners (see cluster/broker/listeners.py); empty: one PLAINTEXT listener from
    # host/port/advertised_host. The first one is the broker's primary address.
    listeners: list[Listener] = field(default_factory=list)
    # Server-side TLS for SSL and SASL_SSL listeners (see cluster/broker/tls.py).
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_cafile: Path | None = None
    ssl_client_auth: str = "none"  # none | requested | required (SSL listeners; Kafka's ssl.client.auth)
    # Listen on a non-loopback address without authenticating clients (README "Security").
    allow_unauthenticated: bool = False
    node_id: int = 1
    auto_create_topics: bool = True
    default_partitions: int = 1
    fsync: str = "never"  # always | interval | never: see README "Durability"
    fsync_interval_ms: int = 1000
    # KIP-848 consumer groups: Kafka's group.consumer.session.timeout.ms / heartbeat.interval.ms.
    group_consumer_session_timeout_ms: int = 45_000
    group_consumer_heartbeat_interval_ms: int = 5_000
    # Classic groups: group.initial.rebalance.delay.ms, Kafka's default (tests set 0).
    group_initial_rebalance_delay_ms: int = 3_000
    # offsets.retention.minutes: committed offsets of empty groups expire (7 days, as Kafka).
    offsets_retention_minutes: int = 7 * 24 * 60
    max_request_bytes: int = DEFAULT_MAX_FRAME
    # fetch.max.bytes: caps every Fetch response (request max_bytes is capped to it).
    fetch_max_bytes: int = DEFAULT_FETCH_MAX_BYTES
    # Fetch log bytes by os.sendfile on plaintext connections (cluster/broker/sendfile.py);
    # False reads them with pread and writes them with writev (tests compare the two).
    fetch_sendfile: bool = True
    # A partition's log bytes shorter than this go by pread + writev even then: measured
    # cheaper below ~128 KiB on loopback (cluster/broker/sendfile.py has the numbers).
    fetch_sendfile_min_bytes: int = 128 * 1024
    # KIP-227 fetch sessions the broker keeps (max.incremental.fetch.session.cache.slots);
    # 0 turns sessions off (cluster/broker/fetch_session.py).
    max_incremental_fetch_session_cache_slots: int = 1000
    retention_check_interval_ms: int = 30_000
    # Broker-wide ceiling on partitions (all topics together): CreateTopics/CreatePartitions
    # that would pass it are refused with POLICY_VIOLATION instead of exhausting the host.
    max_partitions: int = DEFAULT_MAX_PARTITIONS
    default_topic_configs: dict[str, str] = field(default_factory=dict)
    # Caps on the work one produced batch may cause (see cluster/wire/batch_validator.py).
    max_batch_records: int = DEFAULT_LIMITS.max_records
    max_batch_inflate_bytes: int = DEFAULT_LIMITS.decompress_ceiling
    # Connections: see cluster/broker/connection.py and README "Connections".
    connections_max_idle_ms: int = 600_000  # Kafka's default
    request_read_timeout_ms: int = 30_000  # a frame must arrive this soon after its size
    queued_max_request_bytes: int = 100 * 1024 * 1024  # Kafka: -1 (unlimited); -1 allowed
    max_connections: int = INT_MAX
    max_connections_per_ip: int = INT_MAX
    # SASL: the mechanisms SASL_* listeners offer (sasl.enabled.mechanisms); PLAIN on a
    # SASL_PLAINTEXT listener sends passwords in the clear and is refused unless allowed.
    sasl_mechanisms: tuple[str, ...] | None = None  # None: SCRAM-SHA-256 and SCRAM-SHA-512
    sasl_plain_over_plaintext: bool = False  # dcmirror.sasl.plain.over.plaintext.allowed
    connections_max_reauth_ms: int = 0  # Kafka's default: no re-authentication required
    sasl_server_max_receive_size: int = 524_288  # largest frame before authentication
    connection_failed_authentication_delay_ms: int = 100
    # Kafka's super.users: principals ("User:admin") allowed everything when ACLs apply.
    super_users: tuple[str, ...] = ()
    # Multi-broker clusters (cluster/broker/membership.py): the metadata store's URL
    # (sqlite:///path, etcd://host:port/prefix); None: a single-broker cluster as before.
    metadata_url: str | None = None
    rack: str | None = None  # Kafka's broker.rack, for rack-aware replica assignment
    broker_session_timeout_ms: int = 9_000  # fenced when the controller has not heard it this long
    broker_heartbeat_interval_ms: int = 500

    def __post_init__(self) -> None:
        self._check_listeners()
        for name, (key, minimum) in CONNECTION_SETTINGS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{key} must be an integer of at least {minimum}, got {value!r}")
        self._check_sasl()
        if self.metadata_url is not None:
            from cluster.metadata.store import open_store  # refuses an unknown scheme

            open_store(self.metadata_url)
            if any(lst.port == 0 for lst in self.listeners) or (not self.listeners and self.port == 0):
                raise ValueError("a broker of a multi-broker cluster needs a fixed port (port 0 "
                                 "cannot be told to the other brokers)")
            if not 0 < self.broker_heartbeat_interval_ms < self.broker_session_timeout_ms:
                raise ValueError("the broker heartbeat interval must be positive and shorter than the "
                                 "broker session timeout")
        elif self.rack is not None:
            raise ValueError("--rack places replicas of a multi-broker cluster: give --metadata too")
        if not 0 < self.group_consumer_heartbeat_interval_ms < self.group_consumer_session_timeout_ms:
            raise ValueError(f"the consumer group heartbeat interval "
                             f"({self.group_consumer_heartbeat_interval_ms} ms) must be positive and shorter than "
                             f"the session timeout ({self.group_consumer_session_timeout_ms} ms)")
        if isinstance(self.max_partitions, bool) or not isinstance(self.max_partitions, int) \
                or self.max_partitions < 1:
            raise ValueError(f"max_partitions must be an integer of at least 1, got {self.max_partitions!r}")
        if self.queued_max_request_bytes == 0:
            raise ValueError("queued.max.request.bytes must be positive, or -1 for unlimited, got 0")
        f = self.fetch_max_bytes
        if isinstance(f, bool) or not isinstance(f, int) or f < MIN_FETCH_MAX_BYTES:
            raise ValueError(f"fetch.max.bytes must be an integer of at least {MIN_FETCH_MAX_BYTES}, got {f!r}")
        d = self.group_initial_rebalance_delay_ms
        if isinstance(d, bool) or not isinstance(d, int) or d < 0:
            raise ValueError(f"group.initial.rebalance.delay.ms must be an integer of at least 0, got {d!r}")
        r = self.offsets_retention_minutes
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise ValueError(f"offsets.retention.minutes must be an integer of at least 1, got {r!r}")
        slots = self.max_incremental_fetch_session_cache_slots
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 0:
            raise ValueError(f"max.incremental.fetch.session.cache.slots must be an integer of at least 0, "
                             f"got {slots!r}")
        self.super_users = tuple(self.super_users)
        for p in self.super_users:
            kind, sep, name = p.partition(":")
            if not sep or not kind or not name or p != p.strip():
                raise ValueError(f"super user {p!r} is not a principal of the form User:NAME")
        self.batch_limits()  # refuses out-of-range batch caps now, not at the first produce

    def batch_limits(self) -> Limits:
        if self.max_batch_records < 1:
            raise ValueError(f"max_batch_records must be at least 1, got {self.max_batch_records}")
        if not 1 << 20 <= self.max_batch_inflate_bytes <= DECOMPRESS_CEILING:
            raise ValueError(f"max_batch_inflate_bytes must be within {1 << 20}..{DECOMPRESS_CEILING}, "
                             f"got {self.max_batch_inflate_bytes}")
        return Limits(max_records=self.max_batch_records,
                      decompress_floor=min(DEFAULT_LIMITS.decompress_floor, self.max_batch_inflate_bytes),
                      decompress_ceiling=self.max_batch_inflate_bytes)

    def _check_listeners(self) -> None:
        if not self.listeners:
            self.listeners = [Listener("PLAINTEXT", "PLAINTEXT", self.host, self.port, self.advertised_host)]
        else:
            self.listeners = list(self.listeners)
            first = self.listeners[0]
            self.host, self.port, self.advertised_host = first.host, first.port, first.advertised_host
        check_listeners(self.listeners)
        check_security(self.listeners, ssl_certfile=self.ssl_certfile, ssl_keyfile=self.ssl_keyfile,
                       ssl_cafile=self.ssl_cafile, ssl_client_auth=self.ssl_client_auth,
                       allow_unauthenticated=self.allow_unauthenticated)

    def listener_authenticates(self, listener: Listener) -> bool:
        """SASL listeners authenticate; so do SSL listeners that require a client certificate."""
        return authenticates(listener, self.ssl_client_auth)

    def _check_sasl(self) -> None:
        """Refuse SASL settings that would be ignored, and PLAIN where it can only cross in the clear."""
        self.sasl_mechanisms = check_sasl_settings(self.listeners, self.sasl_mechanisms,
                                                   self.sasl_plain_over_plaintext)

    def sasl_offered(self, security_protocol: str) -> list[str]:
        """The mechanisms a listener of this protocol offers: PLAIN only over TLS unless
        `sasl_plain_over_plaintext` allows it."""
        return [m for m in self.sasl_mechanisms
                if m != "PLAIN" or security_protocol == "SASL_SSL" or self.sasl_plain_over_plaintext]

    @property
    def authenticates(self) -> bool:
        """True when some listener authenticates its clients (SASL, or TLS that requires a
        client certificate): then ACLs are enforced and anonymous clients denied by default."""
        return any(self.listener_authenticates(lst) for lst in self.listeners)

    def listener(self, name: str) -> Listener:
        """The listener called `name`; the primary (first) one when there is none (callers
        outside a client connection)."""
        for lst in self.listeners:
            if lst.name == name:
                return lst
        return self.listeners[0]

    @property
    def advertised(self) -> str:
        return self.listeners[0].advertised[0]

