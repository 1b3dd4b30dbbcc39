"""A real OpenSSH server on 127.0.0.1 for the deploy tests: one per "host".

Each :class:`Sshd` has its own host key, config, authorized_keys and free port, all in a
temp dir, and runs ``/usr/sbin/sshd -D -e`` until stopped. The "hosts" of a test are
separate sshd instances (each with its own host key, so a wrong host key is a real
mismatch) logging in as the user running the tests, each with its own base_dir: no system
users are created, so nothing outside the temp dir changes (CI runs as root on a machine a
later session gets back, where left-over users would pile up) and the tests run as any
user. Debian's openssh-server is installed by test.sh.
"""

from __future__ import annotations

import getpass
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import free_port, wait_for_port

SSHD = Path("/usr/sbin/sshd")


def keygen(path: Path, comment: str) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True)
    return path


@dataclass
class Sshd:
    dir: Path
    authorized_keys: list[Path]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    user: str = field(default_factory=getpass.getuser)
    extra_config: list[str] = field(default_factory=list)  # first: sshd keeps a keyword's first value
    listen: str = "127.0.0.1"
    prefix: list[str] = field(default_factory=list)  # e.g. ["ip", "netns", "exec", NS]: where sshd runs

    @property
    def host_key(self) -> Path:
        return self.dir / "host_ed25519"

    def known_hosts_line(self) -> str:
        """The known_hosts entry OpenSSH (and asyncssh) look up for [127.0.0.1]:port."""
        key = (self.dir / "host_ed25519.pub").read_text().split()
        return f"[{self.listen}]:{self.port} {key[0]} {key[1]}\n"

    def start(self) -> "Sshd":
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.host_key.exists():
            keygen(self.host_key, f"sshd-{self.port}")
        ak = self.dir / "authorized_keys"
        ak.write_text("".join(Path(str(k) + ".pub").read_text() for k in self.authorized_keys))
        config = self.dir / "sshd_config"
        config.write_text("\n".join([
            *self.extra_config,
            f"ListenAddress {self.listen}",
            f"Port {self.port}",
            f"HostKey {self.host_key}",
            f"AuthorizedKeysFile {ak}",
            f"PidFile {self.dir / 'sshd.pid'}",
            "StrictModes no",  # the temp dir's modes are pytest's, not ~/.ssh's
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "AllowTcpForwarding yes",
            "Subsystem sftp internal-sftp",
            "MaxSessions 64",
            "MaxStartups 64",
            "LogLevel VERBOSE",
            "",
        ]))
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        log = open(self.dir / "sshd.log", "ab")
        self.proc = subprocess.Popen([*self.prefix, str(SSHD), "-D", "-e", "-f", str(config)], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if self.listen == "127.0.0.1":
            wait_for_port(self.port, proc=self.proc)
        else:
            _wait_for(self.listen, self.port, self.proc)
        return self

    @property
    def pid(self) -> int:
        """sshd's own pid (under an `ip netns exec` prefix the Popen pid is that of sshd too:
        ip execs it)."""
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_text(self) -> str:
        path = self.dir / "sshd.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _wait_for(host: str, port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    import socket
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")
