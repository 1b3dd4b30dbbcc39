"""The deploy inventory: which hosts exist, how to reach them over SSH, and what each runs.

Ansible-like on purpose (``hosts:`` with ``ssh_host``/``ssh_user``/``roles``) so operators
recognise it. It is read with the mirror config's node reader (mirror's YAML loader), so a
mistake is reported the same way: ``file:line:column``, the key path and one sentence, and
every key is either honoured or refused. The dcmirror config the roles run (clusters and
links) is the ordinary mirror YAML, named by ``config:`` and loaded by the mirror's own
``load_config``: a broker role runs that config's ``local:`` block of its cluster on the
host, a mirror role runs ``dcmirror mirror`` for its links.

SSH safety is decided here, at load: ``known_hosts`` is required for every host (there is
no way to turn host key checking off), and a key file is required unless the inventory
says ``ssh_agent: true``; ``~/.ssh/config`` is read only when ``ssh_config`` names a file.
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

from mirror.config.model import MirrorConfig, load_config
from mirror.config.yaml_loader import (
    ConfigError,
    Field,
    NodeReader,
    bool_field,
    choice_field,
    float_field,
    int_field,
    node_field,
    read_fields,
    str_field,
)

log = logging.getLogger(__name__)

_HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
Backend = Literal["process", "systemd"]


@dataclass(frozen=True)
class BrokerRole:
    """The single broker of ``cluster`` (clusters have one broker until replication lands)."""

    cluster: str
    node_id: int


@dataclass(frozen=True)
class MirrorRole:
    """``dcmirror mirror CONFIG --link ...`` for these links, its /healthz on metrics_port."""

    links: tuple[str, ...]
    metrics_port: int | None = None


@dataclass(frozen=True)
class Host:
    name: str
    ssh_host: str
    ssh_port: int
    ssh_user: str
    known_hosts: Path
    dc: str
    ssh_key: Path | None = None
    ssh_agent: bool = False
    ssh_config: Path | None = None
    connect_timeout_s: float = 10.0
    base_dir: str = "dcmirror"  # on the host; relative to the login's home
    python: str = "python3"  # the host's interpreter that creates each release's venv
    service: Backend = "process"
    systemd_unit_dir: str = "/etc/systemd/system"
    broker: BrokerRole | None = None
    mirror: MirrorRole | None = None


@dataclass(frozen=True)
class Inventory:
    path: Path
    config_path: Path
    config: MirrorConfig = field(repr=False)
    config_text: str = field(repr=False)
    hosts: tuple[Host, ...]
    keep_releases: int = 3
    parallel: int = 4
    health_timeout_s: float = 60.0

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    def broker_hosts(self) -> list[Host]:
        return [h for h in self.hosts if h.broker is not None]


# Keys a host (or `defaults:`) may set; `roles` only on a host.
_HOST_FIELDS: dict[str, Field] = {
    "ssh_host": str_field,
    "ssh_port": int_field(1),
    "ssh_user": str_field,
    "ssh_key": str_field,
    "ssh_agent": bool_field,
    "ssh_config": str_field,
    "known_hosts": str_field,
    "connect_timeout_s": float_field(0.1),
    "dc": str_field,
    "base_dir": str_field,
    "python": str_field,
    "service": choice_field("process", "systemd"),
    "systemd_unit_dir": str_field,
    "roles": node_field,
}
_DEFAULT_FIELDS = {k: v for k, v in _HOST_FIELDS.items() if k != "roles"}
_SETTINGS_FIELDS: dict[str, Field] = {
    "keep_releases": int_field(2),
    "parallel": int_field(1),
    "health_timeout_s": float_field(1),
}


def load_inventory(path: str | Path, env: Mapping[str, str] | None = None, *, check_files: bool = True) -> Inventory:
    """Read and validate an inventory and the dcmirror config it names; ConfigError on any problem.
    ``check_files=False`` skips checking that key and known_hosts files exist (for examples)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the file is not UTF-8 text: {exc.reason}", file=str(path)) from None
    file = str(path)
    loader = yaml.SafeLoader(text)
    loader.name = file
    r = NodeReader(file=file, base_dir=path.resolve().parent, env=os.environ if env is None else env,
                   loader=loader)
    try:
        return _parse(r, loader, path, env, check_files)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        sentence = ": ".join(s for s in (exc.context, exc.problem) if s)
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise ConfigError(f"YAML error: {sentence}", file=file, line=line, column=column) from None
    finally:
        loader.dispose()


def _parse(r: NodeReader, loader: yaml.SafeLoader, path: Path, env: Mapping[str, str] | None,
           check_files: bool) -> Inventory:
    root = loader.get_single_node()
    if root is None:
        raise ConfigError("the file is empty; it needs 'config' and 'hosts'", file=r.file, line=1, column=1)
    table = {"config": node_field, "defaults": node_field, "hosts": node_field, "settings": node_field}
    top, items = read_fields(r, root, "", table, ("config", "hosts"), extensions=True)
    config_path = r.path_value(top["config"], "config")
    try:
        config = load_config(config_path, env=env)
    except ConfigError as exc:
        # The config's own location first (that is where the fix goes), then who named it.
        raise ConfigError(f"{exc.message} (the config named by {r.file})", file=exc.file, line=exc.line,
                          column=exc.column, key_path=exc.key_path) from None
    defaults, ditems = read_fields(r, top["defaults"], "defaults", _DEFAULT_FIELDS) if "defaults" in top else ({}, {})
    settings = read_fields(r, top["settings"], "settings", _SETTINGS_FIELDS)[0] if "settings" in top else {}
    host_items = r.mapping(top["hosts"], "hosts")
    if not host_items:
        raise r.error(top["hosts"], "hosts", "needs at least one host")
    hosts = []
    for name, (key_node, value_node) in host_items.items():
        hpath = r.join("hosts", name)
        if not _HOST_RE.fullmatch(name):
            raise r.error(key_node, hpath, f"host name {name!r} may only use letters, digits, '.', '_' and '-'")
        hosts.append(_host(r, name, value_node, hpath, defaults, ditems, config, check_files))
    _check_roles(r, hosts, config, items)
    return Inventory(path=path.resolve(), config_path=config_path, config=config,
                     config_text=config_path.read_text(encoding="utf-8"), hosts=tuple(hosts), **settings)


def _host(r: NodeReader, name: str, node: yaml.Node, path: str, defaults: dict, ditems: dict,
          config: MirrorConfig, check_files: bool) -> Host:
    values, items = read_fields(r, node, path, _HOST_FIELDS)
    merged = {**defaults, **values}
    where = {**{k: ("defaults", v) for k, v in ditems.items()}, **{k: (path, v) for k, v in items.items()}}
    for key in ("ssh_host", "ssh_user", "known_hosts", "dc"):
        if key not in merged:
            raise r.error(node, r.join(path, key), f"missing required key {key!r} (set it here or in defaults)")
    if "ssh_key" not in merged and not merged.get("ssh_agent", False):
        message = "missing 'ssh_key' (or say ssh_agent: true to use the SSH agent; default keys are never tried)"
        raise r.error(node, r.join(path, "ssh_key"), message)

    def local_path(key: str) -> Path | None:
        if key not in merged:
            return None
        raw = Path(merged[key]).expanduser()
        return raw if raw.is_absolute() else (r.base_dir / raw).resolve()

    known_hosts = local_path("known_hosts")
    assert known_hosts is not None
    if check_files and not known_hosts.is_file():
        kpath, (_, knode) = where["known_hosts"][0], where["known_hosts"][1]
        raise r.error(knode, r.join(kpath, "known_hosts"),
                      f"known_hosts file {known_hosts} does not exist (host keys are always verified)")
    ssh_key = local_path("ssh_key")
    if check_files and ssh_key is not None and not ssh_key.is_file():
        kpath, (_, knode) = where["ssh_key"][0], where["ssh_key"][1]
        raise r.error(knode, r.join(kpath, "ssh_key"), f"key file {ssh_key} does not exist")
    broker, mirror = _roles(r, values.get("roles"), r.join(path, "roles"), config)
    if merged.get("service") == "systemd" and not str(merged.get("base_dir", "dcmirror")).startswith("/"):
        bpath, (_, bnode) = where.get("base_dir", (path, (None, node)))
        raise r.error(bnode, r.join(bpath, "base_dir"), "systemd units need an absolute base_dir (e.g. /opt/dcmirror)")
    return Host(
        name=name, ssh_host=merged["ssh_host"], ssh_port=merged.get("ssh_port", 22), ssh_user=merged["ssh_user"],
        known_hosts=known_hosts, dc=merged["dc"], ssh_key=ssh_key, ssh_agent=merged.get("ssh_agent", False),
        ssh_config=local_path("ssh_config"), connect_timeout_s=merged.get("connect_timeout_s", 10.0),
        base_dir=merged.get("base_dir", "dcmirror").rstrip("/") or "/", python=merged.get("python", "python3"),
        service=merged.get("service", "process"),
        systemd_unit_dir=merged.get("systemd_unit_dir", "/etc/systemd/system"), broker=broker, mirror=mirror,
    )


def _roles(r: NodeReader, node: yaml.Node | None, path: str,
           config: MirrorConfig) -> tuple[BrokerRole | None, MirrorRole | None]:
    """``roles:`` is a list of one-key mappings: ``- broker: {...}`` and ``- mirror: {...}``."""
    if node is None:
        raise r.error(None, path, "missing required key 'roles' (a list of broker: and mirror: roles)")
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        raise r.error(node, path, "expected a non-empty list of roles (- broker: {...} or - mirror: {...})")
    broker = mirror = None
    for i, item in enumerate(node.value):
        ipath = r.join(path, i)
        values, items = read_fields(r, item, ipath, {"broker": node_field, "mirror": node_field})
        if len(values) != 1:
            raise r.error(item, ipath, "each role is one key: broker or mirror")
        ((kind_, body),) = values.items()
        rpath = r.join(ipath, kind_)
        if kind_ == "broker":
            if broker is not None:
                raise r.error(items[kind_][0], rpath, "a host runs at most one broker")
            b, bitems = read_fields(r, body, rpath, {"cluster": str_field, "node_id": int_field(0)}, ("cluster",))
            cluster = config.clusters.get(b["cluster"])
            if cluster is None or cluster.local is None:
                what = "is not in" if cluster is None else "has no local: block in"
                raise r.error(bitems["cluster"][1], r.join(rpath, "cluster"),
                              f"cluster {b['cluster']!r} {what} {config.path.name} (a broker runs that block)")
            node_id = b.get("node_id", cluster.local.node_id)
            if node_id != cluster.local.node_id:
                raise r.error(bitems["node_id"][1], r.join(rpath, "node_id"),
                              f"node_id {node_id} differs from clusters.{b['cluster']}.local.node_id "
                              f"({cluster.local.node_id}) in {config.path.name}")
            broker = BrokerRole(cluster=b["cluster"], node_id=node_id)
        else:
            if mirror is not None:
                raise r.error(items[kind_][0], rpath, "a host runs at most one mirror (list all its links in it)")
            fields = {"links": lambda r_, n, p: r_.strings(n, p, what="link names"), "metrics_port": int_field(1)}
            m, mitems = read_fields(r, body, rpath, fields, ("links",))
            names = [link.name for link in config.links]
            for j, link in enumerate(m["links"]):
                if link not in names:
                    raise r.error(mitems["links"][1].value[j], r.join(r.join(rpath, "links"), j),
                                  f"no link named {link!r} in {config.path.name}")
            if not m["links"]:
                raise r.error(mitems["links"][1], r.join(rpath, "links"), "needs at least one link")
            mirror = MirrorRole(links=tuple(m["links"]), metrics_port=m.get("metrics_port"))
    return broker, mirror


def _check_roles(r: NodeReader, hosts: list[Host], config: MirrorConfig, items: dict) -> None:
    seen: dict[str, str] = {}
    for h in hosts:
        if h.broker is None:
            continue
        other = seen.get(h.broker.cluster)
        if other is not None:
            raise r.error(None, f"hosts.{h.name}.roles",
                          f"cluster {h.broker.cluster!r} already has its broker on host {other}; clusters have "
                          "one broker until in-cluster replication lands")
        seen[h.broker.cluster] = h.name
