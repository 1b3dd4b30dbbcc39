"""The bounded chaos harness: a real mirror between real clusters, under faults, checked.

Two dcmirror clusters run as processes (`dcmirror cluster start`), each with two
listeners: DIRECT for the test's producer and checks, MIRROR advertised as a `FaultProxy`
in front of it, so every byte the mirror moves crosses a proxy the harness controls. A
producer writes unique values (an idempotent librdkafka producer, so the source itself
holds each acknowledged value once); meanwhile the harness injects, in a seeded random
order: mirror SIGKILLs (and restarts), link resets and stalls (both proxies), and SIGKILLs
of the source and the target broker. Then the producer stops, the mirror catches up, and
both sides are read in full:

- every value on the source is on the target (0 missing) — in both modes;
- offset-preserving: the target partition is the source partition, offset for offset
  (0 duplicates);
- translation: duplicates (values more often on the target than on the source) are within
  the README's bound and at most what the mirror itself reports (`dcmirror status --json`,
  summed from the offset syncs that carry the count).

`run(Profile(...), tmp)` returns an `Outcome`; tests/mirror/replication/test_chaos.py runs
the short CI profile. Longer runs: ``python -m tests.faults.chaos --mode translate
--minutes 5`` (prints the outcome as JSON).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.faults.proxy import ThreadedProxy
from tests.processes import ListenerClusterProcess, MirrorProcess, free_port, wait_until

TOPIC = "chaos.events"
FAULTS = ("mirror-kill", "link-reset", "link-stall", "source-kill", "target-kill")


@dataclass
class Profile:
    mode: str  # "preserve-offsets" | "translate"
    seconds: float = 14.0  # of faults while producing
    partitions: int = 3
    rate: int = 3000  # records per second
    #: standing latency on both links: keeps writes and their replies in flight long enough
    #: for kills and resets to land between a produce and its offset sync
    latency_s: float = 0.02
    faults: dict[str, int] = field(default_factory=lambda: {
        "mirror-kill": 2, "link-reset": 2, "link-stall": 1, "source-kill": 1, "target-kill": 1})
    seed: int = 11


@dataclass
class Outcome:
    mode: str
    acknowledged: int  # values the producer had acknowledged
    on_source: int
    on_target: int
    missing: int  # source values absent from the target (or fewer times there)
    duplicates: int  # target values beyond their count on the source
    reported: int  # what the mirror counts as possible duplicates
    offsets_identical: bool  # target partition == source partition, offset for offset
    faults: list[str]


class _Side:
    """One cluster with a DIRECT listener and a MIRROR listener advertised at a proxy."""

    def __init__(self, name: str, tmp: Path) -> None:
        ports = {"DIRECT": free_port(), "MIRROR": free_port()}
        self.proxy = ThreadedProxy("127.0.0.1", ports["MIRROR"])
        self.cluster = ListenerClusterProcess(
            name, tmp / name, {"DIRECT": "PLAINTEXT", "MIRROR": "PLAINTEXT"}, ports=ports,
            extra_args=["--advertised", f"MIRROR=127.0.0.1:{self.proxy.port}"]).start()

    @property
    def direct(self) -> str:
        return self.cluster.bootstrap("DIRECT")

    def kill_and_restart(self, down_s: float, stop: threading.Event) -> None:
        self.cluster.kill9()
        stop.wait(down_s)  # the broker stays down this long (the fault's duration)
        self.cluster.start()

    def close(self) -> None:
        self.cluster.stop()
        self.proxy.close()


class _Producer(threading.Thread):
    """Unique values v<i>, round-robin over partitions, at about ``rate`` per second."""

    def __init__(self, bootstrap: str, partitions: int, rate: int) -> None:
        super().__init__(daemon=True, name="chaos-producer")
        from confluent_kafka import Producer

        self.p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5,
                           "message.timeout.ms": 120000, "log_level": 3})
        self.partitions, self.rate = partitions, rate
        self.stop = threading.Event()
        self.acked = 0
        self.sent = 0

    def _done(self, err, msg) -> None:
        if err is None:
            self.acked += 1

    def run(self) -> None:
        while not self.stop.is_set():
            for _ in range(max(1, self.rate // 20)):
                self.p.produce(TOPIC, f"v{self.sent}".encode(), partition=self.sent % self.partitions,
                               on_delivery=self._done)
                self.sent += 1
            self.p.poll(0)
            self.stop.wait(0.05)  # pacing of the load, 20 slices a second
        self.p.flush(150)


def _read_all(bootstrap: str, partitions: int) -> dict[int, list[tuple[int, bytes]]]:
    from tests.clients import consume_confluent, end_offsets

    ends = end_offsets(bootstrap, TOPIC, partitions)
    out: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}
    for c in consume_confluent(bootstrap, TOPIC, partitions, ends):
        out[c.partition].append((c.offset, c.value or b""))
    return out


def _config(tmp: Path, east: _Side, west: _Side, mode: str) -> Path:
    from tests.mirror.conftest import link, write_config

    return write_config(tmp / "chaos.yaml", {"east": east.proxy.address, "west": west.proxy.address},
                        [link("e2w", "east", "west", [TOPIC], mode=mode)])


def _caught_up(mirror: MirrorProcess, source_ends: dict[int, int]) -> bool:
    links = mirror.status()["links"]
    parts = {p["partition"]: p for p in links[0]["partitions"]} if links else {}
    return all(p in parts and parts[p]["position"] >= end for p, end in source_ends.items())


def _reported(config: Path) -> int:
    out = subprocess.run([sys.executable, "-m", "dcmirror_cli", "status", str(config), "--json"],
                         capture_output=True, text=True, timeout=60)
    report = json.loads(out.stdout)
    return sum(l["summary"].get("possible_duplicates", 0) for l in report["links"])


class _Faults:
    """The fault schedule and its actions."""

    def __init__(self, profile: Profile, east: _Side, west: _Side, start_mirror) -> None:
        self.east, self.west, self.start_mirror = east, west, start_mirror
        self.stop = threading.Event()
        self.done: list[str] = []
        plan = [f for f, n in profile.faults.items() for _ in range(n)]
        unknown = set(plan) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault(s) {sorted(unknown)}; known: {', '.join(FAULTS)}")
        random.Random(profile.seed).shuffle(plan)
        self.plan = plan
        self.gap = profile.seconds / (len(plan) + 1)

    def run(self, mirror_box: list[MirrorProcess]) -> None:
        for fault in self.plan:
            self.stop.wait(self.gap)  # faults are spread over the producing time
            if fault == "mirror-kill":
                mirror_box[0].kill9()
                mirror_box[0] = self.start_mirror()
            elif fault == "link-reset":
                self.east.proxy.reset()
                self.west.proxy.reset()
            elif fault == "link-stall":
                for s in (self.east, self.west):
                    s.proxy.stall()
                self.stop.wait(1.5)  # a silent link for this long
                for s in (self.east, self.west):
                    s.proxy.unstall()
            elif fault == "source-kill":
                self.east.kill_and_restart(1.0, self.stop)
            elif fault == "target-kill":
                self.west.kill_and_restart(1.0, self.stop)
            self.done.append(fault)
        self.stop.wait(self.gap)


def run(profile: Profile, tmp: Path) -> Outcome:
    from tests.clients import create_topic, end_offsets

    east, west = _Side("east", tmp), _Side("west", tmp)
    mirrors: list[MirrorProcess] = []
    producer: _Producer | None = None
    try:
        create_topic(east.direct, TOPIC, profile.partitions)
        config = _config(tmp, east, west, profile.mode)
        for side in (east, west):
            side.proxy.set(latency_s=profile.latency_s)

        def start_mirror() -> MirrorProcess:
            m = MirrorProcess(config).start()
            mirrors.append(m)
            return m

        box = [start_mirror()]
        producer = _Producer(east.direct, profile.partitions, profile.rate)
        producer.start()
        faults = _Faults(profile, east, west, start_mirror)
        faults.run(box)
        producer.stop.set()
        producer.join(180)
        src_ends = end_offsets(east.direct, TOPIC, profile.partitions)
        wait_until(lambda: _caught_up(box[0], src_ends), timeout=120, what="mirror caught up")
        source, target = _read_all(east.direct, profile.partitions), _read_all(west.direct, profile.partitions)
        return _outcome(profile, producer.acked, source, target, _reported(config), faults.done)
    finally:
        if producer is not None:
            producer.stop.set()
        for m in mirrors:
            m.stop()
        east.close()
        west.close()


def _outcome(profile: Profile, acked: int, source: dict, target: dict, reported: int,
             done: list[str]) -> Outcome:
    missing = duplicates = 0
    for p in source:
        s, t = Counter(v for _, v in source[p]), Counter(v for _, v in target[p])
        missing += sum(max(0, n - t[v]) for v, n in s.items())
        duplicates += sum(max(0, n - s[v]) for v, n in t.items())
    return Outcome(profile.mode, acked, sum(map(len, source.values())), sum(map(len, target.values())),
                   missing, duplicates, reported, source == target, done)


def main() -> None:
    import click

    @click.command()
    @click.option("--mode", type=click.Choice(["preserve-offsets", "translate"]), default="translate")
    @click.option("--minutes", type=float, default=1.0, help="Minutes of faults while producing.")
    @click.option("--seed", type=int, default=11)
    def cli(mode: str, minutes: float, seed: int) -> None:
        """Run the chaos harness once and print the outcome as JSON."""
        n = max(1, int(minutes * 60 / 7))  # about one fault every 1.4 s, of each kind alike
        profile = Profile(mode, seconds=minutes * 60, faults={f: n for f in FAULTS}, seed=seed)
        with tempfile.TemporaryDirectory() as tmp:
            click.echo(json.dumps(asdict(run(profile, Path(tmp))), indent=2))

    cli()


if __name__ == "__main__":
    main()
