"""One SSH connection per host, opened with only what the inventory says.

asyncssh, left to its defaults, reads ``~/.ssh/config``, asks the SSH agent, tries every
default key in ``~/.ssh`` and GSSAPI. A deploy tool that does that behaves differently on
each operator's laptop, so every source is passed explicitly: the inventory's key, its
known_hosts (always; there is no path that skips host key verification), the agent only
with ``ssh_agent: true`` and an OpenSSH config only when ``ssh_config`` names one.

Every failure becomes a :class:`DeployError`: one sentence naming the host, never a
traceback, and never a key's contents or a passphrase.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import socket
from dataclasses import dataclass

# One decision for both SSH users (tunnelled links and deploys): the cipher order and how
# asyncssh is imported (DSA warning silenced, its INFO chatter off) live in the tunnel.
from cluster.client.tunnel import CIPHERS, asyncssh

from deploy.inventory import Host

log = logging.getLogger(__name__)

__all__ = ["asyncssh", "CIPHERS", "DeployError", "client_options", "connect", "dialer", "q", "run"]


class DeployError(Exception):
    """A deploy cannot go on; ``str()`` is one sentence for the operator."""


@dataclass
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str


def _where(host: Host) -> str:
    return f"host {host.name} ({host.ssh_user}@{host.ssh_host}:{host.ssh_port})"


def client_options(host: Host) -> dict:
    """The keyword arguments of asyncssh.connect for ``host``; nothing left to asyncssh's defaults."""
    return dict(
        host=host.ssh_host,
        port=host.ssh_port,
        username=host.ssh_user,
        known_hosts=str(host.known_hosts),
        client_keys=[str(host.ssh_key)] if host.ssh_key is not None else None,
        agent_path=() if host.ssh_agent else None,
        config=[str(host.ssh_config)] if host.ssh_config is not None else None,
        password_auth=False,
        kbdint_auth=False,
        gss_auth=False,
        gss_kex=False,
        encryption_algs=list(CIPHERS),
        connect_timeout=host.connect_timeout_s,
        keepalive_interval=15,
        keepalive_count_max=4,
    )


async def connect(host: Host) -> asyncssh.SSHClientConnection:
    """Open the host's one connection, or raise DeployError naming the host and why."""
    where = _where(host)
    try:
        return await asyncssh.connect(**client_options(host))
    except asyncssh.HostKeyNotVerifiable as exc:
        raise DeployError(f"{where}: its host key is not in {host.known_hosts} or does not match it "
                          f"({exc.reason}); refusing to connect") from None
    except asyncssh.PermissionDenied:
        raise DeployError(f"{where}: the server refused the login as {host.ssh_user} with "
                          f"{'the agent' if host.ssh_key is None else host.ssh_key}") from None
    except asyncssh.KeyImportError as exc:
        raise DeployError(f"{where}: cannot read the key file {host.ssh_key}: {exc}") from None
    except asyncssh.DisconnectError as exc:
        raise DeployError(f"{where}: the SSH server disconnected: {exc.reason}") from None
    except (asyncio.TimeoutError, TimeoutError):
        raise DeployError(f"{where} is unreachable: no SSH answer within {host.connect_timeout_s:g} s") from None
    except socket.gaierror as exc:
        raise DeployError(f"{where} is unreachable: cannot resolve {host.ssh_host} ({exc.strerror})") from None
    except OSError as exc:
        raise DeployError(f"{where} is unreachable: {exc.strerror or exc}") from None


async def run(conn: asyncssh.SSHClientConnection, host: Host, command: str, *, check: bool = True,
              timeout: float = 600.0) -> CommandResult:
    """Run a shell command on the host; with ``check`` a non-zero exit is a DeployError."""
    log.debug("%s: $ %s", host.name, command)
    try:
        res = await conn.run(command, check=False, timeout=timeout)
    except asyncssh.Error as exc:
        raise DeployError(f"{_where(host)}: SSH failed while running a command: {exc}") from None
    except (asyncio.TimeoutError, TimeoutError):
        raise DeployError(f"{_where(host)}: a command did not finish within {timeout:g} s: {command}") from None
    out = CommandResult(res.exit_status if res.exit_status is not None else -1,
                        str(res.stdout or ""), str(res.stderr or ""))
    if check and out.exit_status != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        raise DeployError(f"{_where(host)}: `{command}` exited {out.exit_status}: {' | '.join(tail)}")
    return out


def q(*parts: str) -> str:
    """Shell-quote and join."""
    return " ".join(shlex.quote(p) for p in parts)


def dialer(conn: asyncssh.SSHClientConnection, window: int = 8 << 20):
    """A cluster.client Dialer whose TCP connections are direct-tcpip channels of ``conn``:
    the broker is dialled from the host's side, so it need not be reachable from here."""

    async def dial(addr: str, port: int):
        reader, writer = await conn.open_connection(addr, port, window=window)
        return reader, writer

    return dial
