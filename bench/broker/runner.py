"""Runs the benchmark plan: rounds of A B C (each target started fresh per round), every
workload per target per round, then medians. One target failing is recorded and the run
goes on with the others."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from bench.broker import workloads as w
from bench.broker.targets import TARGETS, Running, client_conf
from peers.common import cpu_seconds, rss_bytes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Params:
    rounds: int = 5
    partitions: int = 4
    small_size: int = 100
    # Counts sized so every measurement lasts seconds, not a fraction of one: consume runs
    # at 1+ M msg/s and 0.8+ GB/s, and shorter runs were dominated by scheduling noise.
    small_count: int = 4_000_000
    large_size: int = 1024
    large_count: int = 1_000_000
    latency_samples: int = 2_000
    warmup_count: int = 50_000  # 1 KB records produced+consumed unmeasured (JIT, caches)
    idle_partitions: int = 1_000  # 0 skips the RSS measurement
    sizes: tuple[str, ...] = ("100B", "1KB")  # record sizes measured (--sizes)
    pin: bool = False  # broker on CPU 0, load generator on CPU 1
    fetch_queue_backoff_ms: int = w.FETCH_QUEUE_BACKOFF_MS  # consumer; 1000 = librdkafka's


@dataclass
class TargetResult:
    runs: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    rss: dict[str, int] = field(default_factory=dict)

    def add(self, workload: str, values: dict[str, float]) -> None:
        self.runs.setdefault(workload, []).append(values)


def throughput_workloads(p: Params) -> list[tuple[str, int, int, str]]:
    """(name, record size, count, acks) for every produce measurement."""
    out = []
    for size, count in ((p.small_size, p.small_count), (p.large_size, p.large_count)):
        if _fmt(size) not in p.sizes:
            continue
        for acks in ("1", "all"):
            out.append((f"produce {_fmt(size)} acks={acks}", size, count, acks))
    return out


def _fmt(size: int) -> str:
    return f"{size // 1024}KB" if size % 1024 == 0 else f"{size}B"


def _start_pinned(start: Callable[[], Running], pin: bool) -> Running:
    """Start a broker; with `pin`, it inherits CPU 0 and this thread moves to CPU 1.
    Threads inherit the creating thread's affinity, so clients made afterwards (librdkafka
    threads included) stay on CPU 1."""
    if not pin:
        return start()
    os.sched_setaffinity(0, {0})
    try:
        return start()
    finally:
        os.sched_setaffinity(0, {1})


def _add_throughput(result: TargetResult, target: str, workload: str, tp: w.Throughput,
                    broker_cpu_s: float) -> None:
    """Record one throughput run with the broker's CPU per GB of record values: the small-
    record runs are bound by the load generator, so MB/s alone cannot tell the brokers
    apart there, while the CPU a broker spends on the same bytes can."""
    cpu_gb = broker_cpu_s / (tp.bytes / 1e9)
    result.add(workload, {"mb_s": tp.mb_s, "msgs_s": tp.msgs_s, "seconds": tp.seconds,
                          "broker_cpu_s_per_gb": cpu_gb})
    log.info("%s %s: %.1f MB/s %.0f msgs/s, broker %.2f CPU-s/GB", target, workload,
             tp.mb_s, tp.msgs_s, cpu_gb)


def measure_target(name: str, p: Params, result: TargetResult) -> None:
    target = TARGETS[name]
    t0 = time.monotonic()
    broker = _start_pinned(target.start, p.pin)
    log.info("%s up on %s in %.1fs", name, broker.bootstrap, time.monotonic() - t0)
    try:
        b = client_conf(broker)
        if p.warmup_count:
            topic = w.new_topic(b, p.partitions, prefix="warmup")
            w.produce_throughput(b, topic, 1024, p.warmup_count, "1")
            w.consume_throughput(b, topic, p.partitions, p.warmup_count, 1024)
        for wname, size, count, acks in throughput_workloads(p):
            topic = w.new_topic(b, p.partitions)
            cpu0 = cpu_seconds(broker.pid)
            tp = w.produce_throughput(b, topic, size, count, acks)
            _add_throughput(result, name, wname, tp, cpu_seconds(broker.pid) - cpu0)
            if acks == "1":
                cpu0 = cpu_seconds(broker.pid)
                ct = w.consume_throughput(b, topic, p.partitions, count, size,
                                          fetch_queue_backoff_ms=p.fetch_queue_backoff_ms)
                _add_throughput(result, name, f"consume {_fmt(size)}", ct,
                                cpu_seconds(broker.pid) - cpu0)
        topic = w.new_topic(b, 1)
        lat = w.produce_latency(b, topic, p.latency_samples)
        result.add("produce latency acks=1", {"p50_ms": lat.p50_ms, "p99_ms": lat.p99_ms})
        log.info("%s latency p50 %.2f ms p99 %.2f ms", name, lat.p50_ms, lat.p99_ms)
    finally:
        broker.stop()


def measure_idle_rss(name: str, p: Params, result: TargetResult) -> None:
    """RSS of a fresh broker (and its child processes) before and after creating
    `idle_partitions` partitions (100 topics x N/100) that then sit idle."""
    broker = _start_pinned(TARGETS[name].start, p.pin)
    try:
        time.sleep(2)
        result.rss["fresh"] = rss_bytes(broker.pid)
        per_topic = 10
        n_topics = max(1, p.idle_partitions // per_topic)
        names = [f"idle-{i:04d}" for i in range(n_topics)]
        for i in range(0, len(names), 50):  # modest request sizes for every broker
            w.create_topics(client_conf(broker), names[i:i + 50], per_topic, timeout=300)
        time.sleep(5)
        result.rss[f"{n_topics * per_topic} idle partitions"] = rss_bytes(broker.pid)
    finally:
        broker.stop()


def run(targets: list[str], p: Params) -> dict[str, TargetResult]:
    results = {t: TargetResult() for t in targets}
    for r in range(p.rounds):
        for t in targets:
            log.info("round %d/%d: %s", r + 1, p.rounds, t)
            try:
                measure_target(t, p, results[t])
            except Exception as e:  # record and go on: one broken target must not end the run
                log.exception("%s failed in round %d", t, r + 1)
                results[t].errors.append(f"round {r + 1}: {type(e).__name__}: {e}"[:500])
    if p.idle_partitions:
        for t in targets:
            try:
                measure_idle_rss(t, p, results[t])
            except Exception as e:
                log.exception("%s idle RSS failed", t)
                results[t].errors.append(f"rss: {type(e).__name__}: {e}"[:500])
    return results


def to_json(targets: list[str], p: Params, results: dict[str, TargetResult],
            setup: dict[str, Any]) -> dict[str, Any]:
    from bench.broker.report import medians
    return {
        "setup": setup, "params": asdict(p),
        "results": {t: {"runs": results[t].runs, "median": medians(results[t]),
                        "rss_bytes": results[t].rss, "errors": results[t].errors}
                    for t in targets},
    }
