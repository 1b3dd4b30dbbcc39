"""Deploy, rollback and status across all hosts of an inventory.

Order of a deploy: connect to every host (one SSH connection each, bounded parallelism)
and read its state; plan; stop here for ``--dry-run``. Then install the release on every
host that lacks it (in parallel: nothing running is touched), then roll: one host at a
time, brokers first, each host's config written, ``current`` swapped and only its changed
services restarted, and a host with a broker must answer ApiVersions and Metadata (through
its own SSH connection, so the broker need not be reachable from here) before the next
host is touched. A failed health check stops the roll with a sentence naming the host;
hosts after it keep their old release.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar


from cluster.client import KafkaError
from deploy.inventory import Host, Inventory
from deploy.plan import HostPlan, plan_host, render
from deploy.release import Release
from deploy.remote import HostState, RemoteHost
from deploy.services import ServiceSpec, specs_for
from deploy.ssh import asyncssh, DeployError, connect, dialer
from mirror.config.clients import client_for_cluster

log = logging.getLogger(__name__)
T = TypeVar("T")


async def bounded(limit: int, jobs: list[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run jobs with at most ``limit`` at once; the first error is raised after all finish."""
    sem = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with sem:
            return await job()

    results = await asyncio.gather(*(one(j) for j in jobs), return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results  # type: ignore[return-value]


@dataclass
class Session:
    """Every host's connection and state, opened together and closed together."""

    inv: Inventory
    remotes: dict[str, RemoteHost]
    states: dict[str, HostState]

    @classmethod
    async def open(cls, inv: Inventory, hosts: list[Host] | None = None) -> "Session":
        hosts = list(inv.hosts) if hosts is None else hosts
        conns: dict[str, asyncssh.SSHClientConnection] = {}

        def opener(h: Host) -> Callable[[], Awaitable[None]]:
            async def job() -> None:
                conns[h.name] = await connect(h)
            return job

        try:
            await bounded(inv.parallel, [opener(h) for h in hosts])
            remotes = {h.name: RemoteHost(h, conns[h.name]) for h in hosts}
            states = await bounded(inv.parallel, [remotes[h.name].read_state for h in hosts])
        except BaseException:
            for c in conns.values():
                c.close()
            raise
        return cls(inv, remotes, dict(zip((h.name for h in hosts), states)))

    def close(self) -> None:
        for r in self.remotes.values():
            r.conn.close()


def check_python(inv: Inventory, session: Session, release: Release) -> None:
    for h in inv.hosts:
        tag = session.states[h.name].python_tag
        if not tag:
            raise DeployError(f"host {h.name}: {h.python} does not run there (set python: in the inventory)")
        if tag != release.python_tag:
            raise DeployError(f"host {h.name} runs Python {tag}, but the wheels were built for {release.python_tag}; "
                              "deploy from a machine with the same Python, or pass --wheelhouse built for it")


def roll_order(inv: Inventory, plans: list[HostPlan]) -> list[HostPlan]:
    """Hosts with a broker restart first (inventory order), then the rest."""
    changed = [p for p in plans if p.changes]
    return [p for p in changed if p.restarts_broker] + [p for p in changed if not p.restarts_broker]


async def health(inv: Inventory, remote: RemoteHost, spec: ServiceSpec) -> None:
    """Wait until ``spec`` answers: a broker ApiVersions+Metadata, a mirror its /healthz (when
    it has a metrics port) — or raise DeployError naming the host once health_timeout_s passed."""
    deadline = time.monotonic() + inv.health_timeout_s
    last = "no answer yet"
    while True:
        running = (await remote.service_states([spec.name])).get(spec.name)
        if running is None:
            tail = await remote.log_tail(spec.name)
            raise DeployError(f"host {remote.host.name}: {spec.name} exited after its restart"
                              + (f" (log: {tail})" if tail else "") + "; stopping the roll here")
        try:
            if spec.role == "broker":
                assert spec.cluster is not None
                await _broker_answers(inv, remote, spec.cluster)
                return
            if spec.metrics_port is None:
                return
            await _http_ok(remote, spec.metrics_port)
            return
        except (KafkaError, OSError, asyncssh.Error, asyncio.TimeoutError, ValueError) as exc:
            last = str(exc) or type(exc).__name__
        if time.monotonic() >= deadline:
            raise DeployError(f"host {remote.host.name}: {spec.name} failed its health check for "
                              f"{inv.health_timeout_s:g} s ({last}); stopping the roll here")
        await asyncio.sleep(0.5)


async def _broker_answers(inv: Inventory, remote: RemoteHost, cluster: str) -> None:
    client = client_for_cluster(inv.config.clusters[cluster], "deploy", dial=dialer(remote.conn),
                                request_timeout_s=5.0, retry_deadline_s=5.0)
    try:
        meta = await asyncio.wait_for(client.metadata(), 10)  # ApiVersions, then Metadata
        if not meta.brokers:
            raise ValueError("Metadata listed no broker")
    finally:
        await client.close()


async def _http_ok(remote: RemoteHost, port: int) -> None:
    reader, writer = await remote.conn.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /healthz HTTP/1.0\r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
    if b" 200 " not in status:
        raise ValueError(f"/healthz answered {status.decode(errors='replace').strip() or 'nothing'}")


async def apply(session: Session, plans: list[HostPlan], release: Release | None,
                echo: Callable[[str], None]) -> None:
    inv = session.inv
    if release is not None:
        need = [p for p in plans if p.install]
        await bounded(inv.parallel, [lambda p=p: session.remotes[p.host].install(release) for p in need])
        for p in need:
            echo(f"host {p.host}: release {release.name} installed")
    for p in roll_order(inv, plans):
        remote = session.remotes[p.host]
        if p.config_changed:
            await remote.write_config(inv.config_text)
        if session.states[p.host].current != p.target:
            await remote.activate(p.target)
        changes = {c.name: c for c in p.services}
        for name, c in changes.items():
            if c.action == "remove":
                await remote.remove(name)
                echo(f"host {p.host}: {name} removed")
        for spec in sorted(p.specs, key=lambda s: s.role != "broker"):
            c = changes[spec.name]
            if c.action == "keep":
                continue
            await remote.start(spec, p.target, restart=c.action == "restart")
            await health(inv, remote, spec)
            echo(f"host {p.host}: {spec.name} {'restarted' if c.action == 'restart' else 'started'}, healthy")
    for p in plans:
        remote = session.remotes[p.host]
        state = await remote.read_state()
        gone = await remote.prune(inv.keep_releases, state)
        if gone:
            echo(f"host {p.host}: removed old release(s) {', '.join(gone)}")


async def deploy(inv: Inventory, release: Release, *, dry_run: bool,
                 echo: Callable[[str], None], emit_plan: Callable[[list[HostPlan]], None]) -> list[HostPlan]:
    session = await Session.open(inv)
    try:
        check_python(inv, session, release)
        plans = [plan_host(inv, h, session.states[h.name], release.name) for h in inv.hosts]
        emit_plan(plans)
        if dry_run or not any(p.changes for p in plans):
            return plans
        await apply(session, plans, release, echo)
        return plans
    finally:
        session.close()


async def rollback(inv: Inventory, *, dry_run: bool, echo: Callable[[str], None],
                   emit_plan: Callable[[list[HostPlan]], None]) -> list[HostPlan]:
    session = await Session.open(inv)
    try:
        plans = []
        for h in inv.hosts:
            state = session.states[h.name]
            prev = state.previous()
            if prev is None:
                raise DeployError(f"host {h.name}: no previous release to roll back to "
                                  f"(current: {state.current or 'none'})")
            plans.append(plan_host(inv, h, state, prev))
        emit_plan(plans)
        if not dry_run:
            await apply(session, plans, None, echo)
        return plans
    finally:
        session.close()


async def status(inv: Inventory) -> list[dict]:
    session = await Session.open(inv)
    try:
        out = []
        for h in inv.hosts:
            state, remote = session.states[h.name], session.remotes[h.name]
            services = []
            for spec in specs_for(inv, h, state.base, state.current or "(none)"):
                pid = state.running.get(spec.name)
                entry = {"name": spec.name, "running": pid is not None, "pid": pid,
                         "release": state.records.get(spec.name, {}).get("release")}
                if spec.role == "broker" and pid is not None:
                    try:
                        assert spec.cluster is not None
                        await _broker_answers(inv, remote, spec.cluster)
                        entry["healthy"] = True
                    except (KafkaError, OSError, asyncssh.Error, asyncio.TimeoutError, ValueError) as exc:
                        entry["healthy"], entry["error"] = False, str(exc) or type(exc).__name__
                services.append(entry)
            out.append({"host": h.name, "dc": h.dc, "release": state.current, "releases": state.releases,
                        "previous": state.previous(), "config_current": state.config_text == inv.config_text,
                        "services": services})
        return out
    finally:
        session.close()


def render_status(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        lines.append(f"host {r['host']} (dc {r['dc']}): release {r['release'] or '(none)'}"
                     + ("" if r["config_current"] else ", config differs from the inventory's"))
        for s in r["services"]:
            state = f"running (pid {s['pid']})" if s["running"] else "stopped"
            if "healthy" in s:
                state += ", healthy" if s["healthy"] else f", NOT healthy: {s.get('error')}"
            lines.append(f"  {s['name']}: {state}")
    return "\n".join(lines)


__all__ = ["deploy", "rollback", "status", "render", "render_status", "Path"]
