"""`ssh:` on a cluster (links through an SSH bastion): honoured or refused at file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.client.dial import SshVia
from mirror.config.model import parse_config
from mirror.config.yaml_loader import ConfigError


def config(tmp_path: Path, ssh: str, client: str = "") -> str:
    (tmp_path / "id").write_text("")
    (tmp_path / "known_hosts").write_text("")
    return f"""\
clusters:
  east:
    bootstrap: 10.0.1.10:9092
    ssh: {ssh}
{client}  west:
    bootstrap: 127.0.0.1:9093
"""


def test_ssh_block_loads(tmp_path: Path) -> None:
    cfg = parse_config(config(tmp_path, "{via: dcmirror@bastion.east:2222, key: id, known_hosts: known_hosts, "
                                        "keepalive_s: 5}"), tmp_path / "dc.yaml")
    assert cfg.clusters["east"].ssh == SshVia(user="dcmirror", host="bastion.east", port=2222,
                                              known_hosts=tmp_path / "known_hosts", key=tmp_path / "id",
                                              keepalive_s=5.0)
    assert cfg.clusters["west"].ssh is None
    cfg = parse_config(config(tmp_path, "{via: me@bastion, agent: true, known_hosts: known_hosts}"), tmp_path / "d.yaml")
    assert cfg.clusters["east"].ssh.port == 22 and cfg.clusters["east"].ssh.key is None


@pytest.mark.parametrize("ssh,client,where,words", [
    ("{via: bastion:22, key: id, known_hosts: known_hosts}", "", (4, 16), "is not user@host or user@host:port"),
    ("{via: me@bastion, key: id}", "", (4, 10), "missing required key 'known_hosts'"),
    ("{via: me@bastion, known_hosts: known_hosts}", "", (4, 10), "missing 'key' (or say agent: true"),
    ("{via: me@bastion, key: nope, known_hosts: known_hosts}", "", (4, 33), "is not a readable file"),
    ("{via: me@bastion, key: id, known_hosts: known_hosts, window: 1}", "", (4, 63), "unknown key 'window'"),
    ("{via: me@bastion, key: id, known_hosts: known_hosts}",
     "    client: {security_protocol: SSL}\n", (4, 11), "through an SSH tunnel is not supported"),
])
def test_ssh_mistakes(tmp_path: Path, ssh: str, client: str, where: tuple, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(config(tmp_path, ssh, client), tmp_path / "dc.yaml")
    assert words in info.value.message, info.value
    assert (info.value.line, info.value.column) == where, str(info.value)
