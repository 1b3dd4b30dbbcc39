"""Every example under config/ must load: they are the documentation users copy from."""

from __future__ import annotations

from pathlib import Path

import pytest

from mirror.config.model import load_config

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
# deploy-*.yaml are deploy inventories (tests/deploy/test_inventory.py loads them); every
# other file is a mirror config.
INVENTORIES = sorted(p for p in CONFIG_DIR.iterdir() if p.name.startswith("deploy-"))
EXAMPLES = sorted(p for p in CONFIG_DIR.iterdir() if p.suffix in (".yaml", ".yml") and p not in INVENTORIES)


def test_examples_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"two-dc.yaml", "active-active.yaml", "foreign-target.yaml"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_loads(path: Path) -> None:
    cfg = load_config(path, env={})
    assert cfg.clusters, path
    for link in cfg.links:
        policy = cfg.policy(link)
        assert policy.source_alias in cfg.clusters and policy.target_alias in cfg.clusters
    for cluster in cfg.clusters.values():
        if cluster.local is not None:
            assert cluster.local.data_dir.is_relative_to(CONFIG_DIR)


@pytest.mark.parametrize("path", INVENTORIES, ids=lambda p: p.name)
def test_inventory_example_loads(path: Path) -> None:
    from deploy.inventory import load_inventory

    inv = load_inventory(path, env={}, check_files=False)  # its key files live on the operator's machine
    assert inv.hosts and inv.config_path.parent == CONFIG_DIR


def test_quick_start_is_what_the_readme_promises() -> None:
    cfg = load_config(CONFIG_DIR / "two-dc.yaml", env={})
    assert cfg.clusters["east"].bootstrap == ["127.0.0.1:19092"]
    assert cfg.clusters["west"].bootstrap == ["127.0.0.1:29092"]
    assert cfg.clusters["east"].local and cfg.clusters["west"].local
    (link,) = cfg.links
    assert (link.name, link.source, link.target) == ("east-to-west", "east", "west")
    policy = cfg.policy(link)
    assert policy.should_mirror_topic("orders.eu") and policy.should_mirror_topic("payments")
    assert not policy.should_mirror_topic("payments-archive")
    assert policy.should_mirror_group("billing")


def test_active_active_never_loops() -> None:
    cfg = load_config(CONFIG_DIR / "active-active.yaml", env={})
    ew, we = cfg.link("east-to-west"), cfg.link("west-to-east")
    assert cfg.policy(ew).target_topic("orders") == "east.orders"
    assert not cfg.policy(we).should_mirror_topic("east.orders")
    assert cfg.policy(we).should_mirror_topic("orders")


def test_foreign_target_translates_and_takes_env(tmp_path: Path) -> None:
    cfg = load_config(CONFIG_DIR / "foreign-target.yaml", env={"DR_KAFKA_BOOTSTRAP": "10.1.2.3:9092"})
    assert cfg.clusters["dr"].local is None
    assert cfg.clusters["dr"].bootstrap == ["10.1.2.3:9092"]
    assert cfg.link("primary-to-dr").resolved_mode(target_preserves_offsets=False) == "translate"
