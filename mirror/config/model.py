"""The YAML users write, turned into frozen, validated dataclasses, once, at load time.

Every mistake a user can make in the file becomes a :class:`ConfigError` naming
``file:line:column``, the key path (``links[0].source``) and one sentence saying what is
wrong, because a mirror that starts with a subtly wrong config (a typo in a regex, a link
pointing back at its source) fails much later and far from the cause.

We walk PyYAML's node graph ourselves instead of ``yaml.safe_load``: nodes keep their
marks (for locations) and let us see duplicate keys, which ``safe_load`` silently merges.
``${env:VAR}`` (or ``${env:VAR:-default}``) and ``${file:PATH}`` (the file's text, one
trailing newline dropped; relative to the config file) in string values are expanded so
secrets never sit in the YAML; ``$${`` writes a literal ``${``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from cluster.auth.listeners import (
    CLIENT_AUTH,
    Listener,
    apply_advertised,
    check_listeners,
    check_security,
    parse_listener,
)
from cluster.auth.sasl_server import check_sasl_mechanisms, check_sasl_settings
from cluster.client.errors import KafkaTlsError
from cluster.client.security import tls_context
from cluster.client.dial import SshVia
from mirror.config.yaml_loader import (
    ConfigError,
    Field,
    NodeReader,
    bool_field,
    bootstrap_field,
    choice_field,
    did_you_mean,
    float_field,
    int_field,
    kind,
    node_field,
    parse_host_port,
    path_field,
    read_fields,
    regexes_field,
    str_field,
    topic_configs_field,
)
from mirror.config.policy import ReplicationPolicy, filters_may_overlap

log = logging.getLogger(__name__)

Mode = Literal["auto", "preserve-offsets", "translate"]

_ALIAS_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_LINK_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SEPARATOR_RE = re.compile(r"[._-]+")


# -- the model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalClusterConfig:
    """A single-node cluster ``dcmirror up`` runs itself; names follow BrokerConfig."""

    data_dir: Path
    host: str
    port: int
    advertised_host: str
    node_id: int = 1
    fsync: Literal["always", "interval", "never"] = "never"
    fsync_interval_ms: int = 1000
    auto_create_topics: bool = True
    default_partitions: int = 1
    fetch_max_bytes: int = 57_671_680  # Kafka's fetch.max.bytes default (55 MiB)
    default_topic_configs: Mapping[str, str] = field(default_factory=dict, hash=False)
    # Connection deadlines and limits (README "Connections"): only the keys the file sets;
    # the others keep BrokerConfig's defaults. Keys are BrokerConfig field names.
    connections: Mapping[str, int] = field(default_factory=dict, hash=False)
    max_partitions: int | None = None  # None: the broker's default ceiling
    # Caps on the work one produced batch may cause (README "Bad input"), BrokerConfig names.
    batch_limits: Mapping[str, int] = field(default_factory=dict, hash=False)
    # Listeners and TLS (README "Security (broker side)"); empty listeners: one PLAINTEXT
    # listener on host:port. The broker copies the listeners (it writes bound ports back).
    listeners: tuple[Listener, ...] = field(default=(), hash=False)
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_cafile: Path | None = None
    ssl_client_auth: str = "none"
    allow_unauthenticated: bool = False
    # SASL (README "Security (broker side): SASL and users"); None: the broker's default.
    sasl_mechanisms: tuple[str, ...] | None = None
    sasl_plain_over_plaintext: bool = False
    super_users: tuple[str, ...] = ()  # Kafka's super.users (README "ACLs")


@dataclass(frozen=True)
class ClientSettings:
    """How the mirror's clients talk to one cluster (ours, Apache Kafka, Tansu...)."""

    client_id: str | None = None  # None: dcmirror-<role> (dcmirror-<link>, dcmirror-status...)
    request_timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    metadata_max_age_s: float = 60.0
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True  # False only when written; warned about once


@dataclass(frozen=True)
class ClusterConfig:
    name: str
    bootstrap: list[str]
    local: LocalClusterConfig | None = None
    client: ClientSettings = field(default_factory=ClientSettings)
    ssh: SshVia | None = None  # every connection to the cluster through this SSH bastion


@dataclass(frozen=True)
class LinkConfig:
    """One direction of mirroring. Intervals are seconds; regexes match whole names."""

    name: str
    source: str
    target: str
    topics: list[str]
    exclude: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=lambda: [".*"])
    groups_exclude: list[str] = field(default_factory=list)
    rename: Literal["identity", "prefix"] = "identity"
    separator: str = "."
    mode: Mode = "auto"
    sync_interval_s: float = 5.0
    topic_watch_interval_s: float = 0.5  # 0: no watch, new topics wait for the next sync
    checkpoint_interval_s: float = 5.0
    propagate_deletes: bool = False
    sync_configs: bool = True
    exclude_configs: list[str] = field(default_factory=list)
    replication_factor: int = -1
    start_from: Literal["earliest", "latest"] = "earliest"

    def resolved_mode(self, target_preserves_offsets: bool) -> Literal["preserve-offsets", "translate"]:
        """``auto`` preserves offsets when the target can append at given offsets (a
        dcmirror cluster), else translates; the daemon asks the target which it is."""
        if self.mode == "auto":
            return "preserve-offsets" if target_preserves_offsets else "translate"
        return self.mode


@dataclass(frozen=True)
class MetricsConfig:
    host: str = "127.0.0.1"
    port: int = 9464


@dataclass(frozen=True)
class MirrorConfig:
    clusters: dict[str, ClusterConfig]
    links: list[LinkConfig]
    path: Path
    metrics: MetricsConfig | None = None

    def link(self, name: str) -> LinkConfig:
        for link in self.links:
            if link.name == name:
                return link
        raise KeyError(name)

    def policy(self, link: LinkConfig) -> ReplicationPolicy:
        return ReplicationPolicy.for_link(link, known_aliases=self.clusters.keys())


def principals_field(r: NodeReader, n: yaml.Node, p: str) -> list[str]:
    """Kafka principals (`User:admin`): a list, or one comma-separated string."""
    if isinstance(n, yaml.SequenceNode):
        entries = [(r.string(item, r.join(p, i)), item) for i, item in enumerate(n.value)]
    else:
        entries = [(part.strip(), n) for part in r.string(n, p).split(",") if part.strip()]
    for text, node in entries:
        kind_, sep, name = text.partition(":")
        if not sep or not kind_ or not name:
            raise r.error(node, p, f"{text!r} is not a principal of the form User:NAME")
    return [t for t, _ in entries]


_LOCAL_FIELDS: dict[str, Field] = {
    "data_dir": path_field,
    "host": str_field,
    "node_id": int_field(0),
    "fsync": choice_field("always", "interval", "never"),
    "fsync_interval_ms": int_field(1),
    "auto_create_topics": bool_field,
    "default_partitions": int_field(1),
    "fetch_max_bytes": int_field(1024),
    "topic_defaults": topic_configs_field,
    "connections_max_idle_ms": int_field(1),
    "request_read_timeout_ms": int_field(1),
    "queued_max_request_bytes": int_field(-1),
    "max_connections": int_field(0),
    "max_connections_per_ip": int_field(0),
    "max_partitions": int_field(1),
    "max_batch_records": int_field(1),
    "max_batch_inflate_bytes": int_field(1 << 20),
    "listeners": lambda r, n, p: r.strings(n, p, what="listeners (NAME=PROTOCOL://HOST:PORT)"),
    "advertised": lambda r, n, p: r.strings(n, p, what="advertised addresses (NAME=HOST:PORT)"),
    "ssl_certfile": path_field,
    "ssl_keyfile": path_field,
    "ssl_cafile": path_field,
    "ssl_client_auth": choice_field(*CLIENT_AUTH),
    "allow_unauthenticated": bool_field,
    "sasl_mechanisms": lambda r, n, p: _sasl_mechanisms(r, n, p),
    "sasl_plain_over_plaintext": bool_field,
    "connections_max_reauth_ms": int_field(0),
    "connection_failed_authentication_delay_ms": int_field(0),
    "sasl_server_max_receive_size": int_field(1),
    "super_users": principals_field,
}
_LOCAL_SECURITY_KEYS = ("ssl_certfile", "ssl_keyfile", "ssl_cafile", "ssl_client_auth", "allow_unauthenticated",
                        "sasl_mechanisms", "sasl_plain_over_plaintext")
_LOCAL_BATCH_KEYS = ("max_batch_records", "max_batch_inflate_bytes")
_LOCAL_CONNECTION_KEYS = ("connections_max_idle_ms", "request_read_timeout_ms",
                          "queued_max_request_bytes", "max_connections", "max_connections_per_ip",
                          "connections_max_reauth_ms", "connection_failed_authentication_delay_ms",
                          "sasl_server_max_receive_size")

_CLIENT_FIELDS: dict[str, Field] = {
    "client_id": str_field,
    "request_timeout_s": float_field(0.001),
    "connect_timeout_s": float_field(0.001),
    "metadata_max_age_s": float_field(0.001),
    "security_protocol": choice_field("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
    "sasl_mechanism": choice_field("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
    "sasl_username": str_field,
    "sasl_password": str_field,
    "ssl_cafile": path_field,
    "ssl_certfile": path_field,
    "ssl_keyfile": path_field,
    "ssl_check_hostname": bool_field,
}

_LINK_FIELDS: dict[str, Field] = {
    "name": str_field,
    "source": str_field,
    "target": str_field,
    "topics": regexes_field,
    "exclude": regexes_field,
    "groups": regexes_field,
    "groups_exclude": regexes_field,
    "rename": choice_field("identity", "prefix"),
    "separator": str_field,
    "mode": choice_field("auto", "preserve-offsets", "translate"),
    "sync_interval_s": float_field(0.01),
    "topic_watch_interval_s": float_field(0.0),
    "checkpoint_interval_s": float_field(0.01),
    "propagate_deletes": bool_field,
    "sync_configs": bool_field,
    "exclude_configs": regexes_field,
    "replication_factor": int_field(-1),
    "start_from": choice_field("earliest", "latest"),
}


def _refuse_brokers(r: NodeReader, node: yaml.Node, lpath: str) -> None:
    """`brokers:` under `local:` names a multi-broker cluster, which `dcmirror up` cannot run yet."""
    if not isinstance(node, yaml.MappingNode):
        return
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "brokers":
            raise r.error(value, r.join(lpath, "brokers"),
                          "multi-broker local clusters are not supported by `dcmirror up` yet; run "
                          "`dcmirror cluster start --brokers N` and point this cluster's bootstrap at it")


def _cluster(r: NodeReader, alias: str, node: yaml.Node, path: str) -> ClusterConfig:
    table = {"bootstrap": bootstrap_field, "local": node_field, "client": node_field, "ssh": node_field}
    values, items = read_fields(r, node, path, table, ("bootstrap",))
    bootstrap: list[str] = values["bootstrap"]
    local = None
    if "local" in values:
        lpath = r.join(path, "local")
        _refuse_brokers(r, values["local"], lpath)
        lvalues, litems = read_fields(r, values["local"], lpath, _LOCAL_FIELDS, ("data_dir",))
        if lvalues.get("queued_max_request_bytes") == 0:
            raise r.error(litems["queued_max_request_bytes"][1],
                          r.join(lpath, "queued_max_request_bytes"),
                          "queued_max_request_bytes must be positive, or -1 for unlimited")
        if lvalues.get("max_batch_inflate_bytes", 0) > 64 << 20:
            raise r.error(litems["max_batch_inflate_bytes"][1], r.join(lpath, "max_batch_inflate_bytes"),
                          "max_batch_inflate_bytes can be at most 67108864 (64 MiB)")
        if len(bootstrap) != 1:
            raise r.error(items["bootstrap"][1], r.join(path, "bootstrap"),
                          "a local cluster is a single node, so bootstrap must be exactly one host:port")
        adv_host, port = parse_host_port(bootstrap[0])
        listeners = _local_listeners(r, lpath, lvalues, litems, items, port)
        local = LocalClusterConfig(
            data_dir=lvalues["data_dir"],
            host=listeners[0].host if listeners else lvalues.get("host", adv_host),
            port=listeners[0].port if listeners else port,
            advertised_host=adv_host,
            listeners=tuple(listeners),
            **{k: lvalues[k] for k in _LOCAL_SECURITY_KEYS if k in lvalues},
            node_id=lvalues.get("node_id", 1),
            fsync=lvalues.get("fsync", "never"),
            fsync_interval_ms=lvalues.get("fsync_interval_ms", 1000),
            auto_create_topics=lvalues.get("auto_create_topics", True),
            default_partitions=lvalues.get("default_partitions", 1),
            fetch_max_bytes=lvalues.get("fetch_max_bytes", 57_671_680),
            default_topic_configs=lvalues.get("topic_defaults", {}),
            connections={k: lvalues[k] for k in _LOCAL_CONNECTION_KEYS if k in lvalues},
            max_partitions=lvalues.get("max_partitions"),
            batch_limits={k: lvalues[k] for k in _LOCAL_BATCH_KEYS if k in lvalues},
            super_users=tuple(lvalues.get("super_users", ())),
        )
    client = ClientSettings()
    if "client" in values:
        cpath = r.join(path, "client")
        cvalues, citems = read_fields(r, values["client"], cpath, _CLIENT_FIELDS)
        _check_client(r, values["client"], cpath, cvalues, citems)
        client = ClientSettings(**cvalues)
    if local is not None:
        _check_local_security(r, path, local, client, values, items)
    ssh = _ssh(r, values["ssh"], r.join(path, "ssh"), client) if "ssh" in values else None
    return ClusterConfig(name=alias, bootstrap=bootstrap, local=local, client=client, ssh=ssh)


_SSH_FIELDS: dict[str, Field] = {
    "via": str_field,
    "key": path_field,
    "known_hosts": path_field,
    "agent": bool_field,
    "keepalive_s": float_field(1),
    "connect_timeout_s": float_field(0.1),
}
_VIA_RE = re.compile(r"([^@\s]+)@(\[[0-9A-Fa-f:.]+\]|[^@:\s\[\]]+)(?::(\d+))?")


def _ssh(r: NodeReader, node: yaml.Node, path: str, client: ClientSettings) -> SshVia:
    """``ssh: {via: user@bastion[:port], key:, known_hosts:}``: known_hosts always, a key
    unless ``agent: true``; TLS inside the tunnel is refused (not supported)."""
    values, items = read_fields(r, node, path, _SSH_FIELDS, ("via", "known_hosts"))
    m = _VIA_RE.fullmatch(values["via"])
    if not m or not 1 <= int(m.group(3) or 22) <= 65535:
        raise r.error(items["via"][1], r.join(path, "via"), f"{values['via']!r} is not user@host or user@host:port")
    if "key" not in values and not values.get("agent", False):
        raise r.error(node, r.join(path, "key"),
                      "missing 'key' (or say agent: true to use the SSH agent; default keys are never tried)")
    for key in ("key", "known_hosts"):
        if key in values and not values[key].is_file():
            raise r.error(items[key][1], r.join(path, key), f"{values[key]} is not a readable file")
    if client.security_protocol.endswith("SSL"):
        raise r.error(items["via"][0], path, f"security_protocol {client.security_protocol} through an SSH tunnel "
                      "is not supported (the tunnel encrypts); use PLAINTEXT or SASL_PLAINTEXT with ssh:")
    return SshVia(user=m.group(1), host=m.group(2).strip("[]"), port=int(m.group(3) or 22),
                  known_hosts=values["known_hosts"], key=values.get("key"), agent=values.get("agent", False),
                  keepalive_s=values.get("keepalive_s", 15.0), connect_timeout_s=values.get("connect_timeout_s", 10.0))


def _sasl_mechanisms(r: NodeReader, node: yaml.Node, path: str) -> tuple[str, ...]:
    """A list of mechanism names, or one comma-separated string as on the command line."""
    names = r.strings(node, path, what="SASL mechanisms") if isinstance(node, yaml.SequenceNode) \
        else r.string(node, path, what="SASL mechanisms")
    try:
        return check_sasl_mechanisms(names)
    except ValueError as exc:
        raise r.error(node, path, str(exc)) from None


def _local_listeners(r: NodeReader, lpath: str, lvalues: dict, litems: dict, items: dict,
                     bootstrap_port: int) -> list[Listener]:
    """`listeners:` and `advertised:` under `local:`; [] when absent (host/port shorthand)."""
    if "listeners" not in lvalues:
        if "advertised" in lvalues:
            raise r.error(litems["advertised"][0], r.join(lpath, "advertised"),
                          "advertised names entries of listeners, and there is no listeners key")
        return []
    lnode = litems["listeners"][1]
    if "host" in lvalues:
        raise r.error(litems["host"][0], r.join(lpath, "host"),
                      "host and listeners both say where to listen; give only listeners")
    listeners = []
    for i, spec in enumerate(lvalues["listeners"]):
        try:
            listeners.append(parse_listener(spec))
        except ValueError as exc:
            raise r.error(lnode.value[i], r.join(r.join(lpath, "listeners"), i), str(exc)) from None
    try:
        if "advertised" in lvalues:
            apply_advertised(listeners, lvalues["advertised"])
        check_listeners(listeners)
    except ValueError as exc:
        key = "advertised" if "advertised" in litems and "advertised" in str(exc) else "listeners"
        raise r.error(litems[key][1], r.join(lpath, key), str(exc)) from None
    if not any(bootstrap_port in (lst.port, lst.advertised[1]) for lst in listeners):
        raise r.error(items["bootstrap"][1], r.join(lpath.rsplit(".", 1)[0], "bootstrap"),
                      f"bootstrap port {bootstrap_port} is not the port of any listener of this "
                      f"local cluster, so the mirror could not reach it")
    return listeners


def _check_local_security(r: NodeReader, path: str, local: LocalClusterConfig, client: ClientSettings,
                          values: dict, items: dict) -> None:
    """The TLS keys and the secure-by-default rule, as the broker applies them; and the
    client block must speak the protocol of the listener the bootstrap address names."""
    lpath = r.join(path, "local")
    listeners = list(local.listeners) or [Listener("PLAINTEXT", "PLAINTEXT", local.host, local.port,
                                                   local.advertised_host)]
    try:
        check_security(listeners, ssl_certfile=local.ssl_certfile, ssl_keyfile=local.ssl_keyfile,
                       ssl_cafile=local.ssl_cafile, ssl_client_auth=local.ssl_client_auth,
                       allow_unauthenticated=local.allow_unauthenticated)
    except ValueError as exc:
        text = str(exc)
        key = next((k for k in ("ssl_client_auth", "ssl_certfile", "ssl_keyfile", "ssl_cafile")
                    if text.startswith(k) and r.join(lpath, k) in r.marks), None)
        if key is None:
            key = "listeners" if local.listeners else ("host" if r.join(lpath, "host") in r.marks else None)
        key_path = r.join(lpath, key) if key else lpath
        raise r.error(None, key_path, text) from None
    try:
        check_sasl_settings(listeners, local.sasl_mechanisms, local.sasl_plain_over_plaintext)
    except ValueError as exc:
        key = "sasl_plain_over_plaintext" if str(exc).startswith("sasl_plain") else "sasl_mechanisms"
        if r.join(lpath, key) not in r.marks:
            key = "listeners" if local.listeners else "sasl_mechanisms"
        raise r.error(None, r.join(lpath, key), str(exc)) from None
    for key in ("ssl_certfile", "ssl_keyfile", "ssl_cafile"):
        value = getattr(local, key)
        if value is not None and not value.is_file():
            raise r.error(None, r.join(lpath, key), f"{key} {value} is not a readable file")
    bport = parse_host_port(values["bootstrap"][0])[1]
    entry = next((lst for lst in listeners if bport in (lst.port, lst.advertised[1])), None)
    if entry is not None and entry.protocol != client.security_protocol:
        where = r.join(path, "client.security_protocol") if "client" in values else r.join(path, "bootstrap")
        raise r.error(None, where,
                      f"bootstrap {values['bootstrap'][0]} is listener {entry.name}, which speaks "
                      f"{entry.protocol}, but the client block uses {client.security_protocol}; set "
                      f"client.security_protocol: {entry.protocol} (or point bootstrap at another listener)")


_SASL_KEYS = ("sasl_mechanism", "sasl_username", "sasl_password")
_SSL_KEYS = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname")


def _check_client(r: NodeReader, node: yaml.Node, cpath: str, cvalues: dict, citems: dict) -> None:
    """Keys that would be ignored under the chosen security_protocol are refused, as are
    missing credentials and certificate files that are not there."""
    protocol = cvalues.get("security_protocol", "PLAINTEXT")
    sasl, tls = protocol.startswith("SASL_"), protocol.endswith("SSL")
    for key in _SASL_KEYS if not sasl else ():
        if key in citems:
            raise r.error(citems[key][0], r.join(cpath, key),
                          f"{key} is set but security_protocol is {protocol}, so it would be ignored; "
                          f"use SASL_SSL (or SASL_PLAINTEXT), or remove it")
    for key in _SSL_KEYS if not tls else ():
        if key in citems:
            raise r.error(citems[key][0], r.join(cpath, key),
                          f"{key} is set but security_protocol is {protocol}, so it would be ignored; "
                          f"use SSL or SASL_SSL, or remove it")
    if sasl:
        for key in _SASL_KEYS:
            if key not in cvalues:
                raise r.error(node, r.join(cpath, key),
                              f"missing required key {key!r} (security_protocol is {protocol})")
    if "ssl_keyfile" in cvalues and "ssl_certfile" not in cvalues:
        raise r.error(citems["ssl_keyfile"][0], r.join(cpath, "ssl_keyfile"),
                      "ssl_keyfile needs ssl_certfile (the client certificate it belongs to)")
    for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        if key in cvalues and not cvalues[key].is_file():
            raise r.error(citems[key][1], r.join(cpath, key), f"{key} {cvalues[key]} is not a readable file")
    if tls:  # load the files now, so a bad one is reported here and not at the first dial
        try:
            tls_context(cvalues.get("ssl_cafile"), cvalues.get("ssl_certfile"), cvalues.get("ssl_keyfile"))
        except KafkaTlsError as exc:
            key = "ssl_cafile" if "CA file" in str(exc) else "ssl_certfile"
            raise r.error(citems[key][1], r.join(cpath, key), str(exc)) from None


def _link(r: NodeReader, node: yaml.Node, path: str, clusters: Mapping[str, ClusterConfig]) -> LinkConfig:
    values, items = read_fields(r, node, path, _LINK_FIELDS, ("name", "source", "target", "topics"))
    name = values["name"]
    if not _LINK_NAME_RE.fullmatch(name):
        raise r.error(items["name"][1], r.join(path, "name"),
                      f"link name {name!r} may only use letters, digits, '.', '_' and '-' (it names topics)")
    for end in ("source", "target"):
        alias = values[end]
        if alias not in clusters:
            hint = did_you_mean(alias, clusters) or f"; known clusters: {', '.join(clusters) or 'none'}"
            raise r.error(items[end][1], r.join(path, end), f"unknown cluster {alias!r}{hint}")
    if values["source"] == values["target"]:
        message = f"source and target are both {values['source']!r}; a link must join two different clusters"
        raise r.error(items["target"][1], r.join(path, "target"), message)
    sep = values.get("separator", ".")
    if not _SEPARATOR_RE.fullmatch(sep):
        message = f"separator {sep!r} must be one or more of '.', '_', '-' (characters valid in topic names)"
        raise r.error(items["separator"][1], r.join(path, "separator"), message)
    return LinkConfig(**values)


def _check_links(r: NodeReader, links: list[LinkConfig]) -> None:
    """Cross-link rules: unique names, no identity cycles, no two links writing one topic."""
    for i, link in enumerate(links):
        for j in range(i):
            if links[j].name == link.name:
                first = r.marks[f"links[{j}].name"].line + 1
                raise r.error(None, f"links[{i}].name",
                              f"link name {link.name!r} is already used by links[{j}] on line {first}")
    for i, link in enumerate(links):
        for j in range(i):
            other = links[j]
            if other.target != link.target or other.rename != link.rename:
                continue
            if link.rename == "prefix" and (other.source != link.source or other.separator != link.separator):
                continue
            pair = filters_may_overlap(other.topics, other.exclude, link.topics, link.exclude)
            if pair:
                message = (
                    f"links {other.name!r} and {link.name!r} would both write to the same topics on "
                    f"{link.target!r} (patterns '{pair[0]}' and '{pair[1]}' may match the same topic)"
                )
                raise r.error(None, f"links[{i}].topics", message)
    cycle = _identity_cycle(links)
    if cycle is not None:
        indices, pair = cycle
        names = " -> ".join(f"{links[k].source}" for k in indices) + f" -> {links[indices[0]].source}"
        link_names = ", ".join(repr(links[k].name) for k in indices)
        last = f"links[{indices[-1]}]"
        message = (
            f"links {link_names} use rename: identity in a cycle ({names}) and their topic patterns "
            f"'{pair[0]}' and '{pair[1]}' may match the same topic, so its records would bounce "
            f"between the clusters forever; use rename: prefix for active-active, or make the "
            f"patterns disjoint"
        )
        raise r.error(None, f"{last}.rename" if f"{last}.rename" in r.marks else last, message)


def _identity_cycle(links: list[LinkConfig]) -> tuple[list[int], tuple[str, str]] | None:
    """First cycle of identity links whose topic patterns may all overlap pairwise."""
    identity = [i for i, link in enumerate(links) if link.rename == "identity"]

    def walk(start: int, chain: list[int]) -> tuple[list[int], tuple[str, str]] | None:
        last = links[chain[-1]]
        for k in identity:
            if links[k].source != last.target or k in chain:
                continue
            overlaps = [
                filters_may_overlap(links[a].topics, links[a].exclude, links[k].topics, links[k].exclude)
                for a in chain
            ]
            if not all(overlaps):
                continue
            if links[k].target == links[start].source:
                return chain + [k], overlaps[0]  # type: ignore[return-value]
            visited = {links[c].source for c in chain}
            if links[k].target not in visited:
                found = walk(start, chain + [k])
                if found:
                    return found
        return None

    for start in identity:
        found = walk(start, [start])
        if found:
            return found
    return None


def parse_config(text: str, path: str | Path, env: Mapping[str, str] | None = None) -> MirrorConfig:
    """Parse YAML ``text`` as if read from ``path`` (which anchors relative paths)."""
    path = Path(path)
    file = str(path)
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # control characters are refused up front
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        message = f"the file contains character #x{exc.character:04x}, which YAML does not allow"
        raise ConfigError(message, file=file, line=line, column=column) from None
    loader.name = file
    environ = os.environ if env is None else env
    r = NodeReader(file=file, base_dir=path.resolve().parent, env=environ, loader=loader)
    try:
        return _parse(r, loader, path)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        sentence = ": ".join(s for s in (exc.context, exc.problem) if s)
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise ConfigError(f"YAML error: {sentence}", file=file, line=line, column=column) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {exc}", file=file, line=1, column=1) from None
    finally:
        loader.dispose()


def _parse(r: NodeReader, loader: yaml.SafeLoader, path: Path) -> MirrorConfig:
    file = r.file
    root = loader.get_single_node()
    if root is None:
        message = "the file is empty; it needs at least a 'clusters' mapping"
        raise ConfigError(message, file=file, line=1, column=1)
    table = {"clusters": node_field, "links": node_field, "metrics": node_field}
    top, _ = read_fields(r, root, "", table, ("clusters",), extensions=True)
    cluster_items = r.mapping(top["clusters"], "clusters")
    if not cluster_items:
        raise r.error(top["clusters"], "clusters", "needs at least one cluster")
    clusters: dict[str, ClusterConfig] = {}
    for alias, (key_node, value_node) in cluster_items.items():
        cpath = r.join("clusters", alias)
        if not _ALIAS_RE.fullmatch(alias):
            message = f"cluster alias {alias!r} may only use letters, digits, '_' and '-' (it prefixes topics)"
            raise r.error(key_node, cpath, message)
        clusters[alias] = _cluster(r, alias, value_node, cpath)
    links: list[LinkConfig] = []
    links_node = top.get("links")
    empty = isinstance(links_node, yaml.ScalarNode) and r.plain(links_node) is None  # `links:` alone
    if links_node is not None and not empty:
        if not isinstance(links_node, yaml.SequenceNode):
            got = kind(links_node, r.plain(links_node))
            raise r.error(links_node, "links", f"expected a list of links, got {got}")
        for i, item in enumerate(links_node.value):
            r.marks.setdefault(f"links[{i}]", item.start_mark)
            links.append(_link(r, item, f"links[{i}]", clusters))
    _check_links(r, links)
    metrics = None
    if "metrics" in top:
        mvalues, mitems = read_fields(r, top["metrics"], "metrics", {"listen": str_field}, ("listen",))
        try:
            host, port = parse_host_port(mvalues["listen"])
        except ValueError as exc:
            raise r.error(mitems["listen"][1], "metrics.listen", str(exc)) from None
        metrics = MetricsConfig(host=host, port=port)
    log.debug("loaded %s: %d clusters, %d links", file, len(clusters), len(links))
    return MirrorConfig(clusters=clusters, links=links, path=path.resolve(), metrics=metrics)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> MirrorConfig:
    """Read and validate a config file; every problem is a :class:`ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the file is not UTF-8 text: {exc.reason}", file=str(path)) from None
    return parse_config(text, path, env=env)
