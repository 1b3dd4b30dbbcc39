"""The SSH-tunnelled link row (`dcmirror-ssh`): `dcmirror` with the source reached through
an SSH bastion (a real OpenSSH sshd on 127.0.0.1, aes128-gcm@openssh.com, 8 MiB channel
windows), so its ratio to the `dcmirror` row is the cost of the tunnel.

The mirror's CPU includes the client side of SSH (asyncssh: packet framing in Python,
AES-GCM in OpenSSL); the bastion's sshd is another host's work and is not counted in the
row's CPU-s/GB, but its CPU time is logged.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.sshd import Sshd, keygen


@dataclass
class Bastion:
    sshd: Sshd
    ssh: dict  # the `ssh:` block of the source cluster

    @classmethod
    def start(cls, workdir: Path) -> "Bastion":
        workdir.mkdir(parents=True, exist_ok=True)
        key = keygen(workdir / "tunnel_ed25519", "bench")
        sshd = Sshd(workdir / "bastion", [key]).start()
        known = workdir / "known_hosts"
        known.write_text(sshd.known_hosts_line())
        return cls(sshd, {"via": f"{sshd.user}@127.0.0.1:{sshd.port}", "key": str(key), "known_hosts": str(known)})

    def cpu_s(self) -> float:
        """CPU seconds of the sshd connection processes so far (children of our sshd)."""
        import os
        import subprocess

        total = 0.0
        out = subprocess.run(["pgrep", "-P", str(self.sshd.proc.pid)], capture_output=True, text=True).stdout
        tick = os.sysconf("SC_CLK_TCK")
        for pid in out.split():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
            except (OSError, IndexError, ValueError):
                pass
        return total

    def stop(self) -> None:
        self.sshd.stop()
