"""What each role runs on a host, and the two ways of keeping it running.

A :class:`ServiceSpec` is a command line plus a fingerprint: the release, the command and
the part of the dcmirror config the service reads (its cluster's block for a broker, the
whole file for a mirror). A deploy restarts a service exactly when its fingerprint
differs from the one recorded on the host, so an unchanged deploy restarts nothing.

Backends only produce shell commands (run over SSH by the caller), which keeps them
testable without a host: ``process`` (``setsid`` + pidfile + log file, for hosts without
systemd, and what the tests run) and ``systemd`` (a unit file per service, ``systemctl``
to enable and restart it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from deploy.inventory import Host, Inventory
from deploy.ssh import q

CONFIG_NAME = "dcmirror.yaml"  # on the host, in base_dir: relative paths in it resolve there


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # broker-<cluster> or mirror
    role: str  # broker | mirror
    command: tuple[str, ...]
    fingerprint: str
    cluster: str | None = None  # broker: the cluster it serves
    metrics_port: int | None = None  # mirror: where /healthz answers

    def record(self, release: str) -> str:
        """The one-line JSON kept in services/<name>.json on the host."""
        return json.dumps({"name": self.name, "role": self.role, "release": release,
                           "fingerprint": self.fingerprint, "command": list(self.command)}, sort_keys=True)


def broker_command(exe: str, config: str, cluster: str) -> tuple[str, ...]:
    """What runs one cluster's broker from a dcmirror config (its `local:` block)."""
    return (exe, "up", config, "--cluster", cluster, "--no-live")


def mirror_command(exe: str, config: str, links: tuple[str, ...] | list[str] = (),
                   metrics_port: int | None = None) -> tuple[str, ...]:
    """What runs the mirror daemon for ``links`` (all of the config's when empty)."""
    cmd = (exe, "mirror", config, *(a for link in links for a in ("--link", link)))
    return cmd + (("--metrics-port", str(metrics_port)) if metrics_port is not None else ())


def specs_for(inv: Inventory, host: Host, base: str, release: str) -> list[ServiceSpec]:
    """The services ``host`` should run from ``release``; ``base`` is its absolute base_dir."""
    exe = f"{base}/current/venv/bin/dcmirror"
    config = f"{base}/{CONFIG_NAME}"
    out = []
    if host.broker is not None:
        cluster = host.broker.cluster
        cmd = broker_command(exe, config, cluster)
        part = repr(inv.config.clusters[cluster])
        out.append(ServiceSpec(f"broker-{cluster}", "broker", cmd, _fingerprint(release, cmd, part), cluster=cluster))
    if host.mirror is not None:
        cmd = mirror_command(exe, config, host.mirror.links, host.mirror.metrics_port)
        out.append(ServiceSpec("mirror", "mirror", cmd, _fingerprint(release, cmd, inv.config_text),
                               metrics_port=host.mirror.metrics_port))
    return out


def _fingerprint(release: str, command: tuple[str, ...], config_part: str) -> str:
    h = hashlib.sha256(json.dumps([release, list(command), config_part]).encode())
    return h.hexdigest()[:16]


class ProcessBackend:
    """setsid + pidfile + log file under base_dir: run/<name>.pid, log/<name>.log."""

    name = "process"

    def __init__(self, base: str) -> None:
        self.base = base

    def pidfile(self, svc: str) -> str:
        return f"{self.base}/run/{svc}.pid"

    def logfile(self, svc: str) -> str:
        return f"{self.base}/log/{svc}.log"

    def state_command(self, names: list[str]) -> str:
        """Prints ``<name> running <pid>`` or ``<name> stopped`` per service. A pid counts only
        while its command line mentions base_dir (a reused pid is not ours)."""
        lines = []
        for svc in names:
            pf = q(self.pidfile(svc))
            lines.append(
                f"p=$(cat {pf} 2>/dev/null); if [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null && "
                f"tr '\\0' ' ' < /proc/$p/cmdline 2>/dev/null | grep -qF {q(self.base)}; "
                f"then echo {q(svc)} running $p; else echo {q(svc)} stopped; fi")
        return "; ".join(lines) or "true"

    def start_command(self, spec: ServiceSpec) -> str:
        return (f"mkdir -p {q(self.base + '/run', self.base + '/log')} && cd {q(self.base)} && "
                f"(PYTHONUNBUFFERED=1 setsid {q(*spec.command)} >> {q(self.logfile(spec.name))} 2>&1 "
                f"< /dev/null & echo $! > {q(self.pidfile(spec.name))})")

    def stop_command(self, svc: str, timeout_s: int = 30) -> str:
        """SIGTERM, then wait (polling on the host) for the process to be gone; SIGKILL after timeout_s."""
        pf = q(self.pidfile(svc))
        tries = timeout_s * 10
        return (f"p=$(cat {pf} 2>/dev/null); if [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null; then "
                f"kill -TERM \"$p\"; i=0; while kill -0 \"$p\" 2>/dev/null && [ $i -lt {tries} ]; do "
                f"sleep 0.1; i=$((i+1)); done; kill -0 \"$p\" 2>/dev/null && kill -KILL \"$p\"; fi; rm -f {pf}")

    def restart_command(self, spec: ServiceSpec) -> str:
        return f"{self.stop_command(spec.name)}; {self.start_command(spec)}"

    def install_command(self, spec: ServiceSpec) -> str:
        return "true"

    def remove_command(self, svc: str) -> str:
        return self.stop_command(svc)


class SystemdBackend:
    """One unit per service in systemd_unit_dir, named dcmirror-<name>.service."""

    name = "systemd"

    def __init__(self, base: str, unit_dir: str, user: str) -> None:
        self.base = base
        self.unit_dir = unit_dir
        self.user = user

    def unit_name(self, svc: str) -> str:
        return f"dcmirror-{svc}.service"

    def unit_path(self, svc: str) -> str:
        return f"{self.unit_dir}/{self.unit_name(svc)}"

    def unit_text(self, spec: ServiceSpec) -> str:
        return unit_text(spec, working_dir=self.base, user=self.user,
                         written_by="`dcmirror deploy`; changes here are overwritten by the next deploy")

    def state_command(self, names: list[str]) -> str:
        lines = [f"if systemctl is-active --quiet {q(self.unit_name(s))}; then echo {q(s)} running "
                 f"$(systemctl show -p MainPID --value {q(self.unit_name(s))}); else echo {q(s)} stopped; fi"
                 for s in names]
        return "; ".join(lines) or "true"

    def install_command(self, spec: ServiceSpec) -> str:
        """Write the unit (.part, then rename) and reload systemd; the text goes through printf."""
        path = self.unit_path(spec.name)
        return (f"printf %s {q(self.unit_text(spec))} > {q(path + '.part')} && mv -f {q(path + '.part', path)} && "
                f"systemctl daemon-reload && systemctl enable --quiet {q(self.unit_name(spec.name))}")

    def start_command(self, spec: ServiceSpec) -> str:
        return f"systemctl start {q(self.unit_name(spec.name))}"

    def restart_command(self, spec: ServiceSpec) -> str:
        return f"systemctl restart {q(self.unit_name(spec.name))}"

    def stop_command(self, svc: str) -> str:
        return f"systemctl stop {q(self.unit_name(svc))}"

    def remove_command(self, svc: str) -> str:
        unit = self.unit_name(svc)
        return (f"systemctl disable --now --quiet {q(unit)}; rm -f {q(self.unit_path(svc))} && "
                "systemctl daemon-reload")


def unit_text(spec: ServiceSpec, *, working_dir: str, user: str, written_by: str) -> str:
    """The systemd unit of one service: the one place a unit is written, for `dcmirror
    deploy` (SystemdBackend) and `dcmirror service unit` alike."""
    what = f"broker of cluster {spec.cluster}" if spec.role == "broker" else "mirror daemon"
    return "\n".join([
        f"# Written by {written_by}.",
        "[Unit]",
        f"Description=dcmirror {what} ({spec.name})",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"User={user}",
        f"WorkingDirectory={working_dir}",
        "Environment=PYTHONUNBUFFERED=1",
        f"ExecStart={' '.join(_systemd_quote(a) for a in spec.command)}",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=30",
        "Restart=on-failure",
        "RestartSec=2",
        "LimitNOFILE=65536",
        f"# dcmirror-fingerprint={spec.fingerprint}",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])


def _systemd_quote(arg: str) -> str:
    """systemd's ExecStart= splits on spaces and honours double quotes with C escapes."""
    if arg and all(c.isalnum() or c in "/._-=:,@+" for c in arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$") + '"'


def backend_for(host: Host, base: str) -> ProcessBackend | SystemdBackend:
    if host.service == "systemd":
        return SystemdBackend(base, host.systemd_unit_dir, host.ssh_user)
    return ProcessBackend(base)
