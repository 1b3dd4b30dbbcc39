"""The plan: per host, what a deploy (or rollback) would change, computed before any change.

It compares what the inventory wants (release, config text, service fingerprints) with
what :class:`deploy.remote.HostState` found, so ``--dry-run`` prints exactly what the real
run does, and a deploy of an unchanged tree plans (and restarts) nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from deploy.inventory import Host, Inventory
from deploy.remote import HostState
from deploy.services import ServiceSpec, specs_for


@dataclass
class ServiceChange:
    name: str
    action: str  # start | restart | keep | remove
    reason: str = ""


@dataclass
class HostPlan:
    host: str
    dc: str
    current: str | None
    target: str
    install: bool  # the release must be uploaded and installed
    config_changed: bool
    services: list[ServiceChange] = field(default_factory=list)
    specs: list[ServiceSpec] = field(default_factory=list, repr=False)

    @property
    def changes(self) -> bool:
        return (self.install or self.config_changed or self.current != self.target
                or any(s.action != "keep" for s in self.services))

    @property
    def restarts_broker(self) -> bool:
        return any(s.action in ("start", "restart") and s.name.startswith("broker-") for s in self.services)

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("specs")
        d["changes"] = self.changes
        return d


def plan_host(inv: Inventory, host: Host, state: HostState, target: str) -> HostPlan:
    specs = specs_for(inv, host, state.base, target)
    changes = []
    for spec in specs:
        rec = state.records.get(spec.name)
        running = state.running.get(spec.name) is not None
        if rec is None:
            changes.append(ServiceChange(spec.name, "start", "new"))
        elif rec.get("fingerprint") != spec.fingerprint:
            why = "release changed" if rec.get("release") != target else "config changed"
            changes.append(ServiceChange(spec.name, "restart" if running else "start", why))
        elif not running:
            changes.append(ServiceChange(spec.name, "start", "not running"))
        else:
            changes.append(ServiceChange(spec.name, "keep"))
    wanted = {s.name for s in specs}
    for name in sorted(state.records):
        if name not in wanted:
            changes.append(ServiceChange(name, "remove", "no longer in the inventory"))
    return HostPlan(host=host.name, dc=host.dc, current=state.current, target=target,
                    install=target not in state.releases, config_changed=state.config_text != inv.config_text,
                    services=changes, specs=specs)


def render(plans: list[HostPlan]) -> str:
    lines = []
    for p in plans:
        if not p.changes:
            lines.append(f"host {p.host} (dc {p.dc}): no change (release {p.current})")
            continue
        if p.current == p.target:
            rel = f"release {p.target}"
        else:
            rel = f"release {p.current or '(none)'} -> {p.target}" + (" (upload, install)" if p.install else "")
        lines.append(f"host {p.host} (dc {p.dc}): {rel}")
        if p.config_changed:
            lines.append("  config: changed")
        for s in p.services:
            lines.append(f"  {s.name}: {s.action}" + (f" ({s.reason})" if s.reason else ""))
    return "\n".join(lines)
