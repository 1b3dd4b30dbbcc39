"""Prometheus metrics read straight from the links' progress at scrape time.

A custom collector means the copier's hot path keeps plain integers and never touches a
metrics library; scraping turns them into samples. Latency is the one histogram fed as
batches are written (record timestamp -> written to the target).
"""

from __future__ import annotations

import time
from typing import Iterable

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from mirror.replication.progress import LinkProgress

_STATES = {"starting": 0, "connecting": 1, "idle": 2, "running": 3, "retrying": 4,
           "failed-over": 5, "stopped": 6, "error": 7, "paused": 8, "failing-over": 9,
           "failing-back": 10, "reversed": 11}


class ProgressCollector:
    def __init__(self, links: Iterable[LinkProgress]) -> None:
        self.links = list(links)

    def collect(self):
        now = int(time.time() * 1000)
        lag = GaugeMetricFamily("dcmirror_replication_lag_records", "Records on the source not yet mirrored",
                                labels=["link", "topic", "partition"])
        lag_s = GaugeMetricFamily("dcmirror_replication_lag_seconds",
                                  "Age of the oldest record not yet mirrored", labels=["link", "topic", "partition"])
        records = CounterMetricFamily("dcmirror_records", "Records copied", labels=["link", "topic", "partition"])
        nbytes = CounterMetricFamily("dcmirror_bytes", "Bytes of record batches copied",
                                     labels=["link", "topic", "partition"])
        retries = CounterMetricFamily("dcmirror_retries", "Copy iterations retried after a fault", labels=["link"])
        alarms = CounterMetricFamily("dcmirror_alarms", "Alarms raised", labels=["link", "kind"])
        lost = CounterMetricFamily("dcmirror_records_lost", "Records deleted by source retention before mirroring",
                                   labels=["link", "topic", "partition"])
        state = GaugeMetricFamily("dcmirror_link_state", "Link state: " + ", ".join(
            f"{v}={k}" for k, v in _STATES.items()), labels=["link"])
        pstate = GaugeMetricFamily("dcmirror_partition_state",
                                   "1 for each partition's current state (starting, running, retrying, "
                                   "conflict, error); conflict and error need an operator",
                                   labels=["link", "topic", "partition", "state"])
        doubtful = CounterMetricFamily("dcmirror_possible_duplicates",
                                       "Target records the mirror could not rule out as duplicates it "
                                       "wrote (translation mode's resume check)",
                                       labels=["link", "topic", "partition"])
        checkpoint = GaugeMetricFamily("dcmirror_checkpoint_age_seconds",
                                       "Seconds since the group's offsets were last checkpointed",
                                       labels=["link", "group"])
        for link in self.links:
            state.add_metric([link.name], _STATES.get(link.state, -1))
            retries.add_metric([link.name], link.retries)
            for (topic, p), pp in list(link.partitions.items()):
                labels = [link.name, topic, str(p)]
                lag.add_metric(labels, max(pp.lag, 0))
                age = (now - pp.oldest_unmirrored_ts) / 1000 if pp.lag > 0 and pp.oldest_unmirrored_ts > 0 else 0
                lag_s.add_metric(labels, max(age, 0.0))
                records.add_metric(labels, pp.records)
                pstate.add_metric([*labels, pp.state], 1)
                nbytes.add_metric(labels, pp.bytes)
                if link.mode == "translate":
                    doubtful.add_metric(labels, link.possible_duplicates.get((topic, p), 0))
            kinds: dict[str, int] = {}
            for a in link.alarms:
                kinds[a.kind] = kinds.get(a.kind, 0) + 1
                if a.kind == "records-lost":
                    lost.add_metric([link.name, a.topic, str(a.partition)], a.count)
            for k, n in kinds.items():
                alarms.add_metric([link.name, k], n)
            for group, at in link.last_checkpoint_ms.items():
                checkpoint.add_metric([link.name, group], (now - at) / 1000)
        yield from (lag, lag_s, records, nbytes, retries, alarms, lost, state, pstate, doubtful, checkpoint)


class Metrics:
    def __init__(self, links: Iterable[LinkProgress]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(ProgressCollector(links))
        self.latency = Histogram(
            "dcmirror_replication_latency_seconds",
            "Record timestamp (CreateTime) to written on the target",
            ["link"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
