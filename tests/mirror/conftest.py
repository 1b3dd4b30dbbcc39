"""Two real clusters (east, west) started through the CLI, a YAML config, and mirrors."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.processes import ClusterProcess, MirrorProcess


def write_config(path: Path, clusters: dict[str, str], links: list[dict]) -> Path:
    import yaml

    doc = {
        "clusters": {name: {"bootstrap": boot} for name, boot in clusters.items()},
        "links": links,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def link(name: str, source: str, target: str, topics: list[str], **extra) -> dict:
    return {"name": name, "source": source, "target": target, "topics": topics,
            "sync_interval_s": 1, "checkpoint_interval_s": 1, **extra}


class DC:
    """east + west clusters and helpers to start mirrors over them."""

    def __init__(self, tmp: Path, cluster_factory) -> None:
        self.tmp = tmp
        self.east: ClusterProcess = cluster_factory("east")
        self.west: ClusterProcess = cluster_factory("west")
        self.mirrors: list[MirrorProcess] = []

    def config(self, links: list[dict], name: str = "dcmirror.yaml") -> Path:
        return write_config(self.tmp / name, {"east": self.east.bootstrap, "west": self.west.bootstrap}, links)

    def mirror(self, config: Path, *extra: str) -> MirrorProcess:
        m = MirrorProcess(config, extra_args=list(extra)).start()
        self.mirrors.append(m)
        return m


@pytest.fixture
def dc(tmp_path: Path, cluster_factory) -> Iterator[DC]:
    d = DC(tmp_path, cluster_factory)
    yield d
    for m in d.mirrors:
        m.stop()
