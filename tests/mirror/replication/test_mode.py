"""A link's mode is decided once (`mirror.replication.mode.resolve_mode`): the mapping it
returns, and the refusal of a ``preserve-offsets`` link whose target cannot preserve
offsets, are the same for the daemon, failover, status and `offsets translate`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest

from mirror.config.model import LinkConfig, load_config
from mirror.incident.failover import run_failover
from mirror.incident.status import link_status
from mirror.incident.translate import translate_group
from mirror.records.offsets import OffsetSync
from mirror.replication.link import LinkRunner
from mirror.replication.mode import IdentityMapping, ModeError, SyncMapping, resolve_mode
from tests.mirror.conftest import link, write_config


@dataclass
class FakeTarget:
    """A target client that only says whether it advertises dcmirror's private append."""

    dcmirror: bool

    async def is_dcmirror(self) -> bool:
        return self.dcmirror


def link_cfg(mode: str) -> LinkConfig:
    return LinkConfig(name="e2w", source="east", target="west", topics=["orders"], mode=mode)  # type: ignore[arg-type]


async def test_auto_preserves_on_dcmirror_and_translates_elsewhere() -> None:
    assert isinstance(await resolve_mode(link_cfg("auto"), FakeTarget(True)), IdentityMapping)  # type: ignore[arg-type]
    assert isinstance(await resolve_mode(link_cfg("auto"), FakeTarget(False)), SyncMapping)  # type: ignore[arg-type]
    assert isinstance(await resolve_mode(link_cfg("translate"), FakeTarget(True)), SyncMapping)  # type: ignore[arg-type]
    assert (await resolve_mode(link_cfg("preserve-offsets"), FakeTarget(True))).mode == "preserve-offsets"  # type: ignore[arg-type]
    with pytest.raises(ModeError, match="mode preserve-offsets needs a dcmirror target, but west"):
        await resolve_mode(link_cfg("preserve-offsets"), FakeTarget(False))  # type: ignore[arg-type]


def test_mappings_translate_and_bound_rereads() -> None:
    identity = IdentityMapping()
    assert identity.translate("t", 0, 12345) == 12345
    assert identity.mirrored("t", 0, 40) == 40 and identity.rereads("t", 0, 7) == 0
    syncs = SyncMapping()
    syncs.add_all([OffsetSync("t", 0, 0, 100, 10, 110), OffsetSync("t", 0, 10, 110, 25, 125)])
    assert syncs.translate("t", 0, 17) == 110 and syncs.rereads("t", 0, 17) == 7
    assert syncs.mirrored("t", 0, 0) == 25  # the newest sync, whatever the target's end
    assert syncs.translate("u", 0, 3) is None and syncs.mirrored("u", 0, 9) is None


@pytest.fixture
def plain_kafka(monkeypatch) -> None:
    """The broker stops advertising DcMirrorAppend: to the mirror it is any Kafka cluster."""
    from cluster.broker import k18_api_versions
    from cluster.wire import codec

    keys = k18_api_versions._api_keys
    monkeypatch.setattr(k18_api_versions, "_api_keys",
                        lambda: [k for k in keys() if k["api_key"] != codec.DCMIRROR_APPEND])


async def test_preserve_offsets_against_plain_kafka_is_refused_alike_everywhere(
        broker, plain_kafka, tmp_path: Path) -> None:
    boot = f"127.0.0.1:{broker.config.port}"
    path = write_config(tmp_path / "dc.yaml", {"east": boot, "west": boot},
                        [link("e2w", "east", "west", ["orders"], mode="preserve-offsets")])
    cfg = load_config(path)
    e2w = cfg.link("e2w")
    expected = ("link e2w: mode preserve-offsets needs a dcmirror target, but west does not offer "
                "the offset-preserving append API")
    with pytest.raises(ModeError) as daemon:
        await LinkRunner(cfg, e2w).run(asyncio.Event())
    with pytest.raises(ModeError) as failover:
        await run_failover(cfg, e2w, force=True, snapshot_dir=tmp_path / "snap")
    with pytest.raises(ModeError) as translate:
        await translate_group(cfg, e2w, "g")
    status = await link_status(cfg, e2w)
    assert [str(daemon.value), str(failover.value), str(translate.value), status["error"]] == [expected] * 4
    assert not (tmp_path / "snap").exists()  # failover refused before changing or saving anything
