"""What is on one host, and the steps that change it, over its one SSH connection.

Layout under the host's base_dir::

    releases/<version>-<hash>/   the wheel, venv/, and .complete once pip finished
    current -> releases/<name>   swapped atomically (a new link renamed over the old)
    history                      release names in the order they were made current
    wheelhouse/                  dependency wheels, shared by releases, uploaded once
    dcmirror.yaml                the dcmirror config the roles run (relative paths resolve here)
    services/<name>.json         what each service was last started with (its fingerprint)
    run/<name>.pid, log/<name>.log   (process backend)

Files are uploaded over SFTP as ``<name>.part`` and renamed into place, so a dropped
connection never leaves a half file under the real name; a release directory counts only
with ``.complete`` in it, so an interrupted install is redone by the next deploy.
"""

from __future__ import annotations

import json
import logging
import posixpath
from dataclasses import dataclass, field


from deploy.inventory import Host
from deploy.release import Release
from deploy.services import CONFIG_NAME, ProcessBackend, ServiceSpec, SystemdBackend, backend_for
from deploy.ssh import asyncssh, DeployError, q, run

log = logging.getLogger(__name__)


@dataclass
class HostState:
    base: str  # absolute base_dir on the host
    python_tag: str  # "3.11 x86_64" of the host's interpreter, "" when it has none
    current: str | None = None
    releases: list[str] = field(default_factory=list)  # complete releases, oldest first
    history: list[str] = field(default_factory=list)
    config_text: str | None = None
    records: dict[str, dict] = field(default_factory=dict)  # service name -> services/<name>.json
    running: dict[str, int | None] = field(default_factory=dict)  # service name -> pid (None: stopped)

    def previous(self) -> str | None:
        """The release that was current before the current one, if it is still on the host."""
        for name in reversed(self.history):
            if name != self.current and name in self.releases:
                return name
        return None


class RemoteHost:
    """One host's connection plus the commands deploy runs there."""

    def __init__(self, host: Host, conn: asyncssh.SSHClientConnection) -> None:
        self.host = host
        self.conn = conn
        self.base = ""
        self.backend: ProcessBackend | SystemdBackend | None = None

    async def sh(self, command: str, **kw) -> str:
        return (await run(self.conn, self.host, command, **kw)).stdout

    async def read_state(self) -> HostState:
        h = self.host
        base_expr = q(h.base_dir) if h.base_dir.startswith("/") else f"\"$HOME\"/{q(h.base_dir)}"
        py = q(h.python)
        out = await self.sh(
            f"B={base_expr}; echo \"base=$B\"; "
            f"echo \"py=$({py} -c 'import sys,sysconfig; print(\"%d.%d\" % sys.version_info[:2], "
            f"sysconfig.get_platform().split(\"-\")[-1])' 2>/dev/null)\"; "
            "cd \"$B\" 2>/dev/null || exit 0; "
            "echo \"current=$(basename \"$(readlink current 2>/dev/null)\" 2>/dev/null)\"; "
            "for r in $(ls -tr releases 2>/dev/null); do [ -f releases/$r/.complete ] && echo \"release=$r\"; done; "
            "[ -f history ] && sed 's/^/history=/' history; "
            "for f in services/*.json; do [ -f \"$f\" ] && echo \"record=$(cat \"$f\")\"; done; true")
        state = HostState(base="", python_tag="")
        for line in out.splitlines():
            key, _, value = line.partition("=")
            if key == "base":
                state.base = value
            elif key == "py":
                state.python_tag = value.strip()
            elif key == "current":
                state.current = value or None
            elif key == "release":
                state.releases.append(value)
            elif key == "history" and value:
                state.history.append(value)
            elif key == "record":
                try:
                    rec = json.loads(value)
                    state.records[rec["name"]] = rec
                except (ValueError, KeyError):
                    log.warning("%s: ignoring an unreadable service record", h.name)
        if not state.base:
            raise DeployError(f"host {h.name}: could not read its base directory {h.base_dir}")
        self.base = state.base
        self.backend = backend_for(h, state.base)
        if state.current is not None and state.current not in state.releases:
            state.current = None  # a dangling link is no release
        try:
            async with self.conn.start_sftp_client() as sftp:
                async with sftp.open(f"{state.base}/{CONFIG_NAME}", "r") as f:
                    state.config_text = await f.read()
        except (asyncssh.SFTPError, OSError):
            state.config_text = None
        state.running = await self.service_states(sorted(state.records))
        return state

    async def service_states(self, names: list[str]) -> dict[str, int | None]:
        assert self.backend is not None
        out = await self.sh(self.backend.state_command(names))
        running: dict[str, int | None] = {n: None for n in names}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] in running:
                running[parts[0]] = int(parts[2]) if parts[1] == "running" and len(parts) > 2 and parts[2].isdigit() else None
        return running

    # -- install ----------------------------------------------------------------------------

    async def install(self, release: Release) -> None:
        """Upload the missing wheels and the release, make its venv, pip install --no-index."""
        h, base = self.host, self.base
        rdir = f"{base}/releases/{release.name}"
        await self.sh(f"mkdir -p {q(base + '/wheelhouse', base + '/releases')} && rm -rf {q(rdir)} && mkdir -p {q(rdir)}")
        async with self.conn.start_sftp_client() as sftp:
            have = set(await sftp.listdir(f"{base}/wheelhouse"))
            for wheel in sorted(release.wheelhouse.glob("*.whl")):
                if wheel.name not in have:
                    await _put(sftp, wheel, f"{base}/wheelhouse/{wheel.name}")
            await _put(sftp, release.wheel, f"{rdir}/{release.wheel.name}")
        log.info("%s: installing release %s", h.name, release.name)
        await self.sh(
            f"cd {q(rdir)} && {q(h.python)} -m venv venv && "
            f"venv/bin/python -m pip install -q --disable-pip-version-check --no-index "
            f"--find-links {q(base + '/wheelhouse')} {q(release.wheel.name)} && touch .complete",
            timeout=900)

    async def write_config(self, text: str) -> None:
        async with self.conn.start_sftp_client() as sftp:
            path = f"{self.base}/{CONFIG_NAME}"
            async with sftp.open(path + ".part", "w") as f:
                await f.write(text)
            await sftp.posix_rename(path + ".part", path)

    async def activate(self, name: str) -> None:
        """Point `current` at releases/<name> with one rename, and note it in history."""
        b = q(self.base)
        await self.sh(f"cd {b} && ln -sfn {q('releases/' + name)} current.new && mv -T current.new current && "
                      f"echo {q(name)} >> history")

    async def write_record(self, spec: ServiceSpec, release: str) -> None:
        await self.sh(f"mkdir -p {q(self.base + '/services')} && printf '%s\\n' {q(spec.record(release))} > "
                      f"{q(self.base + '/services/' + spec.name + '.json.part')} && mv -f "
                      f"{q(self.base + '/services/' + spec.name + '.json.part', self.base + '/services/' + spec.name + '.json')}")

    async def start(self, spec: ServiceSpec, release: str, *, restart: bool) -> None:
        assert self.backend is not None
        await self.sh(self.backend.install_command(spec))
        await self.write_record(spec, release)
        await self.sh(self.backend.restart_command(spec) if restart else self.backend.start_command(spec))

    async def remove(self, name: str) -> None:
        assert self.backend is not None
        await self.sh(f"{self.backend.remove_command(name)}; rm -f {q(self.base + '/services/' + name + '.json')}")

    async def log_tail(self, name: str, lines: int = 5) -> str:
        if not isinstance(self.backend, ProcessBackend):
            return ""
        out = await self.sh(f"tail -n {lines} {q(self.backend.logfile(name))} 2>/dev/null", check=False)
        return " | ".join(line.strip() for line in out.splitlines() if line.strip())

    async def prune(self, keep: int, state: HostState) -> list[str]:
        """Remove complete releases beyond the newest ``keep`` (never current or its predecessor);
        ``state`` is read after the release was made current."""
        doomed = releases_to_prune(state, keep)
        if doomed:
            await self.sh(" && ".join(f"rm -rf {q(self.base + '/releases/' + r)}" for r in doomed))
        return doomed


def releases_to_prune(state: HostState, keep: int) -> list[str]:
    """Complete releases beyond the newest ``keep`` (install order), never current or previous."""
    protect = {state.current, state.previous()}
    return [r for r in state.releases[:-keep] if r not in protect]


async def _put(sftp: asyncssh.SFTPClient, local, remote: str) -> None:
    part = remote + ".part"
    await sftp.put(str(local), part)
    await sftp.posix_rename(part, remote)
    log.debug("uploaded %s", posixpath.basename(remote))
