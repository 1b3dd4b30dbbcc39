"""The mirror daemon: every link of a config in one event loop, plus the HTTP endpoint."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import asdict

from cluster.client.dial import Dialer, default_dial
from mirror.config.model import MirrorConfig
from mirror.daemon.http_endpoint import json_route, serve
from mirror.replication.link import LinkRunner
from mirror.daemon.membership import member_for_link
from mirror.daemon.supervisor import LinkSupervisor
from mirror.daemon.metrics import Metrics

log = logging.getLogger(__name__)


def progress_snapshot(runners: list[LinkRunner]) -> dict:
    """The daemon's live view, as served on /status."""
    now = int(time.time() * 1000)
    links = []
    for r in runners:
        p = r.progress
        parts = []
        for pp in sorted(p.partitions.values(), key=lambda x: (-x.lag, x.topic, x.partition)):
            parts.append({
                "topic": pp.topic, "partition": pp.partition, "target_topic": pp.target_topic,
                "position": pp.position, "source_end": pp.source_end, "lag": pp.lag,
                "lag_seconds": round((now - pp.oldest_unmirrored_ts) / 1000, 3)
                if pp.lag > 0 and pp.oldest_unmirrored_ts > 0 else 0.0,
                "records": pp.records, "bytes": pp.bytes, "state": pp.state, "error": pp.error,
                "possible_duplicates": p.possible_duplicates.get((pp.topic, pp.partition), 0),
                "reason": pp.error or None,
            })
        links.append({"name": p.name, "mode": p.mode, "state": p.state, "error": p.error or None,
                      "retries": p.retries,
                      "partitions": parts, "alarms": [asdict(a) for a in p.alarms],
                      "checkpoints": dict(p.last_checkpoint_ms),
                      "membership": r.assignor.describe() if hasattr(r.assignor, "describe") else None})
    return {"links": links}


class Daemon:
    def __init__(self, cfg: MirrorConfig, *, links: list[str] | None = None,
                 dial: Dialer = default_dial, metrics_port: int | None = None,
                 metrics_host: str = "127.0.0.1", scale_out: bool = True) -> None:
        self.cfg = cfg
        chosen = [l for l in cfg.links if not links or l.name in links]
        # scale_out: the processes of one link share its partitions through a group on the
        # link's target cluster (mirror/daemon/membership.py); alone, a process gets all of them.
        self.supervisors = [LinkSupervisor(cfg, l, dial=dial,
                                           assignor=member_for_link(cfg, l, dial=dial) if scale_out else None)
                            for l in chosen]
        self.runners = [s.forward for s in self.supervisors]
        self.metrics = Metrics([r.progress for r in self.runners])
        for r in self.runners:
            r.latency = self.metrics.latency.labels(r.link.name)
        self.metrics_port = metrics_port
        self.metrics_host = metrics_host
        self.stop_event = asyncio.Event()
        self._http = None

    async def run(self) -> None:
        if self.metrics_port is not None:
            self._http = await serve(self.metrics_host, self.metrics_port, {
                "/metrics": lambda: (200, "text/plain; version=0.0.4", self.metrics.render()),
                "/healthz": json_route(self.health, self.healthy),
                "/readyz": json_route(lambda: {"ok": self.ready()}, self.ready),
                "/status": json_route(lambda: {**progress_snapshot(self.runners), **self.tunnels()}),
            })
            log.info("metrics on http://%s:%d/metrics", self.metrics_host,
                     self._http.sockets[0].getsockname()[1])
        try:
            await asyncio.gather(*(s.run(self.stop_event) for s in self.supervisors))
        finally:
            if self._http is not None:
                self._http.close()

    def tunnels(self) -> dict:
        """``{"tunnels": {alias: state}}`` for clusters reached through an SSH bastion, else {}."""
        aliases = [a for a, c in self.cfg.clusters.items() if c.ssh is not None]
        if not aliases:
            return {}
        from cluster.client.tunnel import tunnel_for

        return {"tunnels": {a: tunnel_for(self.cfg.clusters[a].ssh).status() for a in aliases}}

    def health(self) -> dict:
        """/healthz: per link, whether the daemon does what its link state asks (and why not)."""
        problems = {s.link.name: s.obeys() for s in self.supervisors}
        return {"ok": not any(problems.values()),
                "links": {name: {"ok": why is None, "why": why} for name, why in problems.items()}}

    def healthy(self) -> bool:
        return all(s.obeys() is None for s in self.supervisors)

    def ready(self) -> bool:
        """/readyz: every link connected and obeying a link state it has read."""
        return all(s.ready() for s in self.supervisors)

    def stop(self) -> None:
        self.stop_event.set()


async def run_daemon(daemon: Daemon) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, daemon.stop)
    await daemon.run()
