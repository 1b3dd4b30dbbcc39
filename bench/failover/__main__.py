"""Failover wall time at scale: `python -m bench.failover [--topics 100] [--partitions 10] [--groups 20]`.

Two dcmirror clusters (east, west) and `dcmirror mirror` run as processes through the CLI;
east gets TOPICS x PARTITIONS partitions with a few records each and GROUPS consumer
groups with commits on every partition; once west has caught up and the groups are
checkpointed, `dcmirror failover --yes --json` (planned: fence, drain, final checkpoint,
promote) runs as a subprocess and is timed. With `--unplanned`, a second, fresh setup is
failed over with `--force` after `kill -9` of east, then east is restarted and `dcmirror
failback` (restore the original direction) is timed too. Prints the wall time of the command
(process start included) and the procedure's own elapsed time; the goal is under 5 s.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cluster.client.admin import NewTopic  # noqa: E402
from cluster.client.client import KafkaClient  # noqa: E402
from cluster.wire.batch_builder import build_batch  # noqa: E402
from tests.mirror.conftest import link, write_config  # noqa: E402
from tests.processes import ClusterProcess, MirrorProcess, wait_until  # noqa: E402

LINK = "east-to-west"


async def populate(boot: str, topics: int, partitions: int, groups: int, records: int) -> list[str]:
    names = [f"orders.t{i:03d}" for i in range(topics)]
    async with KafkaClient(boot) as c:
        await c.create_topics([NewTopic(n, partitions) for n in names])
        now = int(time.time() * 1000)
        sem = asyncio.Semaphore(64)

        async def one(t: str, p: int) -> None:
            async with sem:
                await c.produce(t, p, build_batch([(b"k", b"v%d" % i, [], now) for i in range(records)]))

        await asyncio.gather(*(one(t, p) for t in names for p in range(partitions)))
        for g in range(groups):
            await c.offset_commit(f"group-{g:02d}", {(t, p): records // 2 for t in names for p in range(partitions)})
    return names


async def totals(boot: str, names: list[str], partitions: int) -> int:
    async with KafkaClient(boot) as c:
        total = 0
        for t in names:
            total += sum(o for o, _ in (await c.list_offsets(t, list(range(partitions)), -1)).values())
        return total


async def checkpointed(boot: str, groups: int) -> bool:
    async with KafkaClient(boot) as c:
        for g in range(groups):
            if not await c.offset_fetch(f"group-{g:02d}"):
                return False
        return True


def setup(tmp: Path, topics: int, partitions: int, groups: int, records: int):
    east = ClusterProcess("east", tmp / "east").start()
    west = ClusterProcess("west", tmp / "west").start()
    names = asyncio.run(populate(east.bootstrap, topics, partitions, groups, records))
    cfg = write_config(tmp / "dcmirror.yaml", {"east": east.bootstrap, "west": west.bootstrap},
                       [link(LINK, "east", "west", ["orders.*"])])
    mirror = MirrorProcess(cfg).start()
    want = topics * partitions * records
    wait_until(lambda: asyncio.run(totals(west.bootstrap, names, partitions)) == want, timeout=300,
               what="west caught up")
    wait_until(lambda: asyncio.run(checkpointed(west.bootstrap, groups)), timeout=120, what="groups checkpointed")
    return east, west, mirror, cfg


def timed_failover(cfg: Path, *extra: str) -> tuple[float, dict]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "dcmirror_cli", "-q", "failover", str(cfg), "--link", LINK,
                           "--json", *extra], capture_output=True, text=True, cwd=ROOT,
                          stdin=subprocess.DEVNULL, timeout=600)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"failover failed ({proc.returncode}):\n{proc.stderr}")
    return wall, json.loads(proc.stdout)


@click.command()
@click.option("--topics", default=100, show_default=True)
@click.option("--partitions", default=10, show_default=True)
@click.option("--groups", default=20, show_default=True)
@click.option("--records", default=10, show_default=True, help="Records per partition.")
@click.option("--unplanned", is_flag=True, help="Also time an unplanned failover (kill -9 east, --force).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
def main(topics: int, partitions: int, groups: int, records: int, unplanned: bool, json_path: Path | None) -> None:
    """Time `dcmirror failover` for TOPICS x PARTITIONS partitions and GROUPS groups."""
    results = {"topics": topics, "partitions": partitions, "groups": groups, "runs": []}
    kinds = ["planned"] + (["unplanned"] if unplanned else [])
    for kind in kinds:
        with tempfile.TemporaryDirectory(prefix="dcmirror-bench-failover-") as d:
            east, west, mirror, cfg = setup(Path(d), topics, partitions, groups, records)
            try:
                if kind == "unplanned":
                    mirror.stop()
                    east.kill9()
                wall, rep = timed_failover(cfg, "--yes", *(["--force"] if kind == "unplanned" else []))
                run = {"kind": kind, "wall_s": round(wall, 3), "procedure_s": rep["elapsed_s"],
                       "partitions": len(rep["partitions"]), "groups": len(rep["groups"]),
                       "loss": rep["total_loss"], "steps": rep.get("steps", {})}
                print(f"{kind} failover of {topics} topics x {partitions} partitions, {groups} groups: "
                      f"{wall:.2f} s wall ({rep['elapsed_s']:.2f} s in the procedure; goal < 5 s), "
                      f"{run['partitions']} partitions promoted, loss {rep['total_loss']}; steps {run['steps']}",
                      flush=True)
                if kind == "unplanned":
                    east.start()
                    started = time.monotonic()
                    back = subprocess.run([sys.executable, "-m", "dcmirror_cli", "-q", "failback", str(cfg),
                                           "--link", LINK, "--yes", "--json"], capture_output=True, text=True, cwd=ROOT,
                                          stdin=subprocess.DEVNULL, timeout=600)
                    if back.returncode != 0:
                        raise SystemExit(f"failback failed ({back.returncode}):\n{back.stderr}")
                    rep_back = json.loads(back.stdout)
                    run["failback_wall_s"] = round(time.monotonic() - started, 3)
                    run["failback_procedure_s"] = rep_back["elapsed_s"]
                    print(f"failback of the same: {run['failback_wall_s']:.2f} s wall "
                          f"({rep_back['elapsed_s']:.2f} s in the procedure), state {rep_back['state']}", flush=True)
                results["runs"].append(run)
            finally:
                mirror.stop()
                east.stop()
                west.stop()
    if json_path is not None:
        json_path.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
