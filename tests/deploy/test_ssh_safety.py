"""SSH safety and failures through the real CLI and real sshd: a wrong host key refuses, an
unreachable host is one sentence naming it, default keys in ~/.ssh are never tried, and a
broker that fails its health check stops the roll naming its host."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from deploy.inventory import load_inventory
from deploy.ssh import CIPHERS, client_options
from tests.deploy.conftest import Site
from tests.sshd import keygen
from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[2]


def dcmirror(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dcmirror_cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=env)


def one_sentence(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 1, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    return lines[0]


def test_wrong_host_key_refuses_to_connect(site: Site) -> None:
    other = keygen(site.dir / "impostor", "impostor")
    key = Path(str(other) + ".pub").read_text().split()
    site.known_hosts.write_text(f"[127.0.0.1]:{site.east.port} {key[0]} {key[1]}\n" + site.west.known_hosts_line())
    line = one_sentence(dcmirror("deploy", "status", str(site.inventory)))
    assert line.startswith(f"Error: host east-1 ({site.east.user}@127.0.0.1:{site.east.port}): its host key")
    assert "refusing to connect" in line
    assert "Accepted publickey" not in site.east.log_text()  # never authenticated to it


def test_host_missing_from_known_hosts_refuses(site: Site) -> None:
    site.known_hosts.write_text(site.west.known_hosts_line())
    line = one_sentence(dcmirror("deploy", "status", str(site.inventory)))
    assert "host east-1" in line and "host key" in line


def test_unreachable_host_is_one_sentence_naming_it(site: Site) -> None:
    closed = free_port()
    site.write(hosts_extra={"west-1": {"ssh_port": closed}})
    line = one_sentence(dcmirror("deploy", "status", str(site.inventory)))
    assert line.startswith(f"Error: host west-1 ({site.west.user}@127.0.0.1:{closed}) is unreachable: ")


def test_default_keys_and_agent_are_never_tried(site: Site, tmp_path: Path) -> None:
    """The authorized key sits in $HOME/.ssh/id_ed25519 and an agent socket is advertised;
    the inventory names another key, so the login must fail rather than use them."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    for suffix in ("", ".pub"):
        (home / ".ssh" / f"id_ed25519{suffix}").write_bytes(Path(str(site.key) + suffix).read_bytes())
    (home / ".ssh" / "config").write_text(f"Host *\n  IdentityFile {site.key}\n")
    unauthorized = keygen(tmp_path / "not-authorized", "nobody")
    site.write(hosts_extra={"east-1": {"ssh_key": str(unauthorized)}})
    env = {**os.environ, "HOME": str(home), "SSH_AUTH_SOCK": str(tmp_path / "no-agent.sock")}
    line = one_sentence(dcmirror("deploy", "status", str(site.inventory), env=env))
    assert "host east-1" in line and "refused the login" in line


def test_client_options_leave_nothing_to_defaults(site: Site) -> None:
    inv = load_inventory(site.inventory)
    opts = client_options(inv.host("east-1"))
    assert opts["known_hosts"] == str(site.known_hosts)
    assert opts["client_keys"] == [str(site.key)]
    assert opts["agent_path"] is None and opts["config"] is None  # no agent, no ~/.ssh/config
    assert opts["password_auth"] is False and opts["gss_auth"] is False and opts["kbdint_auth"] is False
    assert opts["encryption_algs"][0] == "aes128-gcm@openssh.com" == CIPHERS[0]


def test_failed_health_check_stops_the_roll_naming_the_host(site: Site, wheelhouse: Path) -> None:
    """east's broker port is taken, so broker-east exits: the roll stops at east-1, and
    west-1 (next in the roll) keeps running nothing."""
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", site.ports["east"]))
        squatter.listen()
        res = dcmirror("deploy", str(site.inventory), "--wheelhouse", str(wheelhouse))
    line = one_sentence(type(res)(res.args, res.returncode, res.stdout,
                                  "\n".join(x for x in res.stderr.splitlines() if x.startswith("Error"))))
    assert line.startswith("Error: host east-1: broker-east exited after its restart"), res.stderr
    assert "stopping the roll here" in line
    assert "west-1: broker-west" not in res.stderr and "west-1: mirror" not in res.stderr
    assert not (site.base("west-1") / "current").exists()  # installed, never made current
    assert not (site.base("west-1") / "run").exists()  # nothing started there
