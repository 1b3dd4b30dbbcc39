"""The inventory loader: every key honoured or refused at file:line:column (the mirror's
YAML reader), and the systemd backend's unit files and commands, without a host."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.inventory import load_inventory
from deploy.services import ServiceSpec, SystemdBackend, specs_for
from mirror.config.yaml_loader import ConfigError

CONFIG = """\
clusters:
  east: {bootstrap: "10.0.1.10:9092", local: {data_dir: ./data/east, host: 0.0.0.0, allow_unauthenticated: true}}
  west: {bootstrap: "10.0.2.10:9092", local: {data_dir: ./data/west, host: 0.0.0.0, allow_unauthenticated: true}}
links:
  - {name: east-to-west, source: east, target: west, topics: ["orders.*"]}
"""


def write(tmp_path: Path, text: str, config: str = CONFIG) -> Path:
    (tmp_path / "dc.yaml").write_text(config)
    (tmp_path / "known_hosts").write_text("")
    (tmp_path / "id").write_text("")
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    return path


GOOD = """\
config: dc.yaml
defaults: {ssh_user: dcmirror, ssh_key: id, known_hosts: known_hosts, base_dir: /opt/dcmirror}
hosts:
  east-1:
    ssh_host: 10.0.1.10
    dc: east
    roles:
      - broker: {cluster: east, node_id: 1}
  west-1:
    ssh_host: 10.0.2.10
    ssh_port: 2222
    dc: west
    service: systemd
    roles:
      - broker: {cluster: west}
      - mirror: {links: [east-to-west], metrics_port: 9102}
settings: {keep_releases: 4, parallel: 2, health_timeout_s: 30}
"""


def test_good_inventory_loads(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, GOOD))
    east, west = inv.hosts
    assert (east.ssh_host, east.ssh_port, east.ssh_user, east.dc) == ("10.0.1.10", 22, "dcmirror", "east")
    assert east.known_hosts == tmp_path / "known_hosts" and east.ssh_key == tmp_path / "id"
    assert east.broker is not None and east.broker.node_id == 1 and east.mirror is None
    assert west.ssh_port == 2222 and west.service == "systemd" and west.mirror is not None
    assert west.mirror.links == ("east-to-west",) and west.mirror.metrics_port == 9102
    assert (inv.keep_releases, inv.parallel, inv.health_timeout_s) == (4, 2, 30.0)
    assert not east.ssh_agent and east.ssh_config is None


@pytest.mark.parametrize("old,new,where,words", [
    ("    dc: east\n", "    dc: east\n    ssh_hots: x\n", (7, 5), "unknown key 'ssh_hots'; did you mean 'ssh_host'"),
    ("ssh_key: id, ", "", (5, 5), "missing 'ssh_key' (or say ssh_agent: true"),
    ("known_hosts: known_hosts", "known_hosts: nowhere", (2, 58), "does not exist (host keys are always verified)"),
    ("{cluster: east, node_id: 1}", "{cluster: north}", (8, 27), "cluster 'north' is not in dc.yaml"),
    ("{cluster: east, node_id: 1}", "{cluster: east, node_id: 3}", (8, 42), "node_id 3 differs from"),
    ("{cluster: west}", "{cluster: east}", (None, None), "already has its broker on host east-1"),
    ("links: [east-to-west]", "links: [west-to-east]", (16, 26), "no link named 'west-to-east'"),
    ("    service: systemd\n", "    service: upstart\n", (13, 14), "'upstart' is not one of process, systemd"),
    ("base_dir: /opt/dcmirror", "base_dir: dcmirror", (2, 81), "systemd units need an absolute base_dir"),
    ("keep_releases: 4", "keep_releases: 1", (17, 27), "must be at least 2"),
    ("      - broker: {cluster: east, node_id: 1}\n", "      - broker: {cluster: east}\n        mirror: {links: []}\n",
     (8, 9), "each role is one key"),
])
def test_mistakes_are_located(tmp_path: Path, old: str, new: str, where: tuple, words: str) -> None:
    assert old in GOOD
    with pytest.raises(ConfigError) as info:
        load_inventory(write(tmp_path, GOOD.replace(old, new, 1)))
    err = info.value
    assert words in err.message, err
    assert err.file == str(tmp_path / "inventory.yaml")
    if where[0] is not None:
        assert (err.line, err.column) == where, str(err)


def test_a_mistake_in_the_named_config_is_located_there(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_inventory(write(tmp_path, GOOD, CONFIG.replace("topics:", "topicz:")))
    err = info.value
    assert err.file.endswith("dc.yaml") and err.line == 5
    assert "named by" in err.message and "inventory.yaml" in err.message


def test_systemd_unit_and_commands(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, GOOD))
    west = inv.host("west-1")
    specs = specs_for(inv, west, "/opt/dcmirror", "0.1.0-abc")
    assert [s.name for s in specs] == ["broker-west", "mirror"]
    backend = SystemdBackend("/opt/dcmirror", west.systemd_unit_dir, west.ssh_user)
    unit = backend.unit_text(specs[0])
    assert "ExecStart=/opt/dcmirror/current/venv/bin/dcmirror up /opt/dcmirror/dcmirror.yaml --cluster west --no-live" in unit
    for line in ("[Unit]", "Description=dcmirror broker of cluster west (broker-west)", "[Service]", "Type=simple",
                 "User=dcmirror", "WorkingDirectory=/opt/dcmirror", "Restart=on-failure", "KillSignal=SIGTERM",
                 "[Install]", "WantedBy=multi-user.target", f"# dcmirror-fingerprint={specs[0].fingerprint}"):
        assert line in unit.splitlines(), line
    mirror = backend.unit_text(specs[1])
    assert "--link east-to-west --metrics-port 9102" in mirror
    install = backend.install_command(specs[0])
    assert "/etc/systemd/system/dcmirror-broker-west.service.part" in install
    assert "systemctl daemon-reload" in install and "systemctl enable --quiet dcmirror-broker-west.service" in install
    assert backend.restart_command(specs[0]) == "systemctl restart dcmirror-broker-west.service"
    assert "systemctl disable --now" in backend.remove_command("mirror")


def test_fingerprints_follow_what_each_service_reads(tmp_path: Path) -> None:
    """A broker restarts when its cluster's block or the release changes, the mirror when any
    of the config does; the other cluster's broker does not."""
    inv = load_inventory(write(tmp_path, GOOD))
    base = {s.name: s.fingerprint for h in inv.hosts for s in specs_for(inv, h, "/b", "r1")}
    inv2 = load_inventory(write(tmp_path, GOOD, CONFIG.replace("./data/west", "./data/west2")))
    after = {s.name: s.fingerprint for h in inv2.hosts for s in specs_for(inv2, h, "/b", "r1")}
    assert after["broker-east"] == base["broker-east"]
    assert after["broker-west"] != base["broker-west"] and after["mirror"] != base["mirror"]
    release = {s.name: s.fingerprint for h in inv.hosts for s in specs_for(inv, h, "/b", "r2")}
    assert all(release[k] != base[k] for k in base)
    assert isinstance(next(iter(specs_for(inv, inv.hosts[0], "/b", "r1"))), ServiceSpec)


def test_readme_shows_the_inventory_example_verbatim() -> None:
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    section = readme.split("## Deploy to your datacenters", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    example = root / "config" / "deploy-two-dc.yaml"
    assert block == example.read_text()
    inv = load_inventory(example, env={}, check_files=False)
    assert [h.name for h in inv.hosts] == ["east-1", "west-1"] and inv.host("west-1").mirror is not None
    assert all(h.service == "systemd" for h in inv.hosts)


def test_prune_keeps_the_newest_and_never_current_or_previous() -> None:
    from deploy.remote import HostState, releases_to_prune

    state = HostState(base="/b", python_tag="3.11 x86_64", current="r2", releases=["r1", "r2", "r3", "r4", "r5"],
                      history=["r1", "r2", "r5", "r2"])  # rolled back from r5 to r2
    assert state.previous() == "r5"
    assert releases_to_prune(state, 2) == ["r1", "r3"]  # r4, r5 newest; r2 current
    assert releases_to_prune(state, 5) == []
    fresh = HostState(base="/b", python_tag="", current=None, releases=[], history=[])
    assert fresh.previous() is None and releases_to_prune(fresh, 2) == []
