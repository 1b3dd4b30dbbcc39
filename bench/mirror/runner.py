"""Runs the plan: start the source and target clusters each contender needs (dcmirror
clusters for dcmirror and the per-record mirror, Apache Kafka brokers for MM2 and dcmirror
in translation mode, dcmirror clusters with SASL_SSL listeners for the TLS link row), produce the backlog once per source, then rounds of A B C D, each
contender copying the backlog into fresh target topics and then replicating a paced stream
for the latency measurement. One contender failing is recorded and the run goes on."""
from __future__ import annotations

import logging
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from bench.broker.targets import DcmirrorBroker
from bench.broker.workloads import create_topics
from bench.mirror.contenders import CONTENDERS, Contender, NoMirror, RunSpec
from bench.mirror.data import Backlog, lz4_ratio, make_pool, produce_backlog
from bench.mirror.measure import copy_backlog, replication_latency
from bench.mirror.secure import TlsLinkBroker
from peers.kafka_broker import KafkaBroker

log = logging.getLogger(__name__)

DATA_TOPIC = "bench-data"


@dataclass(frozen=True)
class Params:
    gb: float = 1.0
    rounds: int = 2
    partitions: int = 12
    value_size: int = 1024
    batch_kb: int = 64
    latency_s: float = 20.0
    latency_warmup_s: float = 3.0
    latency_rate_mb_s: float | None = None  # None: half of dcmirror's first copy rate, capped
    latency_cap_mb_s: float = 10.0          # what the paced pipeline sustains here (README)
    latency_fallback_mb_s: float = 10.0     # when dcmirror is not among the contenders
    drain_timeout_s: float = 30.0
    copy_timeout_s: float = 1200.0


@dataclass
class Result:
    runs: list[dict[str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class Side:
    source: Any
    target: Any
    backlog: Backlog | None = None


def _start_clusters(kind: str) -> tuple[Any, Any]:
    def one() -> Any:
        if kind == "dcmirror":
            return DcmirrorBroker().start()
        if kind == "dcmirror-sasl-ssl":
            return TlsLinkBroker().start()
        b = KafkaBroker(heap="1g")
        try:
            return b.start()
        except BaseException:
            b.stop()
            raise
    s = one()
    try:
        return s, one()
    except BaseException:
        s.stop()
        raise


def _delete_topics(bootstrap: str, topics: list[str]) -> None:
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for f in admin.delete_topics(topics, request_timeout=60).values():
            try:
                f.result(60)
            except Exception as e:  # already gone, or a peer refusing: not the benchmark's point
                log.debug("delete: %s", e)
    except Exception as e:
        log.warning("deleting %s failed: %s", topics, e)


def _wait_topic(bootstrap: str, topic: str, partitions: int, timeout: float = 120) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        md = admin.list_topics(timeout=10)
        t = md.topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{topic} not on the target after {timeout}s")


def measure_one(c: Contender, r: int, side: Side, p: Params, pool: list[bytes],
                rate_mb_s: float | None, workdir: Path) -> dict[str, float]:
    assert side.backlog is not None
    alias = f"r{r}-{c.name}"
    lat_topic = f"lat-{alias}"
    src, tgt = side.source.bootstrap, side.target.bootstrap
    create_topics({"bootstrap.servers": src}, [lat_topic], p.partitions)
    spec = RunSpec(alias, src, tgt, [DATA_TOPIC, lat_topic], workdir,
                   source_link=getattr(side.source, "link_end", None),
                   target_link=getattr(side.target, "link_end", None))
    if c.precreate_target:
        create_topics({"bootstrap.servers": tgt}, [spec.target_topic(t) for t in spec.topics], p.partitions)
    launched = time.monotonic()
    handle = c.start(spec)
    if isinstance(handle, NoMirror):  # the latency floor of this setup, nothing to copy
        try:
            return _latency(c, r, p, pool, src, lat_topic, src, lat_topic,
                            rate_mb_s if rate_mb_s is not None else p.latency_fallback_mb_s)
        finally:
            _delete_topics(src, [lat_topic])
    try:
        cp = copy_backlog(handle, launched, tgt, spec.target_topic(DATA_TOPIC), p.partitions,
                          side.backlog.records, [side.source.pid, side.target.pid],
                          p.copy_timeout_s)
        gb = cp.records * p.value_size / 1e9
        out: dict[str, float] = {
            "mb_s": gb * 1e3 / cp.seconds, "window_s": cp.seconds, "window_gb": gb,
            "from_launch_s": cp.from_launch_s, "cpu_s_per_gb": cp.mirror_cpu_s / gb,
            "broker_cpu_s_per_gb": cp.broker_cpu_s / gb,
        }
        log.info("%s round %d: %.1f MB/s, %.2f CPU-s/GB (brokers %.2f), %.1fs from launch",
                 c.name, r, out["mb_s"], out["cpu_s_per_gb"], out["broker_cpu_s_per_gb"],
                 cp.from_launch_s)
        rate = rate_mb_s if rate_mb_s is not None else min(out["mb_s"] / 2, p.latency_cap_mb_s)
        _wait_topic(tgt, spec.target_topic(lat_topic), p.partitions)
        time.sleep(2)  # let the mirror settle into its steady state (fetch sessions, idle)
        out.update(_latency(c, r, p, pool, src, lat_topic, tgt, spec.target_topic(lat_topic),
                            rate))
        return out
    finally:
        handle.stop()
        _delete_topics(tgt, [spec.target_topic(t) for t in spec.topics])
        _delete_topics(src, [lat_topic])


def _latency(c: Contender, r: int, p: Params, pool: list[bytes], src: str, src_topic: str,
             tgt: str, tgt_topic: str, rate: float) -> dict[str, float]:
    lat = replication_latency(src, src_topic, tgt, tgt_topic, p.partitions, pool, rate,
                              p.latency_s, p.latency_warmup_s, p.batch_kb, p.drain_timeout_s)
    log.info("%s round %d: latency at %.1f MB/s p50 %.1f ms p99 %.1f ms max %.0f ms "
             "(%d/%d arrived)", c.name, r, lat.rate_mb_s, lat.p50_ms, lat.p99_ms,
             lat.max_ms, lat.received, lat.produced)
    return {"lat_rate_mb_s": lat.rate_mb_s, "lat_p50_ms": lat.p50_ms, "lat_p99_ms": lat.p99_ms,
            "lat_max_ms": lat.max_ms, "lat_received_frac": lat.received / max(1, lat.produced)}


def run(names: list[str], p: Params) -> tuple[dict[str, Result], dict[str, Any]]:
    results = {n: Result() for n in names}
    pool = make_pool(p.value_size)
    info: dict[str, Any] = {"lz4_ratio": round(lz4_ratio(pool, p.batch_kb * 1024), 2),
                            "loadavg_start": os.getloadavg()}
    workdir = Path(tempfile.mkdtemp(prefix="dcmirror-benchmirror-"))
    info["workdir"] = str(workdir)  # mirror configs and logs stay here for inspection
    log.info("configs and mirror logs in %s", workdir)
    sides: dict[str, Side] = {}
    try:
        for kind in dict.fromkeys(CONTENDERS[n].clusters for n in names):
            t0 = time.monotonic()
            s, t = _start_clusters(kind)
            sides[kind] = side = Side(s, t)
            create_topics({"bootstrap.servers": s.bootstrap}, [DATA_TOPIC], p.partitions)
            side.backlog = produce_backlog(s.bootstrap, DATA_TOPIC, int(p.gb * 1e9), pool, p.batch_kb)
            info[f"backlog_{kind}"] = asdict(side.backlog)
            log.info("%s clusters up, backlog %d records (%.0f MB) produced in %.1fs "
                     "(%.1fs total)", kind, side.backlog.records, side.backlog.value_bytes / 1e6,
                     side.backlog.produce_seconds, time.monotonic() - t0)
        rate = p.latency_rate_mb_s
        if rate is None and "dcmirror" not in names:
            rate = p.latency_fallback_mb_s
        for r in range(1, p.rounds + 1):
            for n in names:
                c = CONTENDERS[n]
                log.info("round %d/%d: %s", r, p.rounds, n)
                try:
                    res = measure_one(c, r, sides[c.clusters], p, pool, rate, workdir)
                    results[n].runs.append(res)
                    if rate is None and n == "dcmirror":
                        # fixed for every contender from here on
                        rate = min(res["mb_s"] / 2, p.latency_cap_mb_s)
                        info["latency_rate_mb_s"] = round(rate, 1)
                except Exception as e:  # record and go on with the others
                    log.exception("%s failed in round %d", n, r)
                    results[n].errors.append(f"round {r}: {type(e).__name__}: {e}"[:800])
        info.setdefault("latency_rate_mb_s", rate)
        info["loadavg_end"] = os.getloadavg()
    finally:
        for side in sides.values():
            side.source.stop()
            side.target.stop()
    return results, info


def medians(res: Result) -> dict[str, float]:
    if not res.runs:
        return {}
    keys = [k for k in res.runs[0] if all(k in r for r in res.runs)]
    return {k: statistics.median(r[k] for r in res.runs) for k in keys}


def to_json(names: list[str], p: Params, results: dict[str, Result],
            info: dict[str, Any], setup: dict[str, Any]) -> dict[str, Any]:
    return {"setup": setup, "params": asdict(p), "info": info,
            "results": {n: {"label": CONTENDERS[n].label, "clusters": CONTENDERS[n].clusters,
                            "runs": results[n].runs, "median": medians(results[n]),
                            "errors": results[n].errors} for n in names}}
