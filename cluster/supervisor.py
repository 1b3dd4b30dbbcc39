"""`dcmirror cluster start --brokers N`: N broker processes on consecutive ports, kept running.

One process per broker, as Kafka runs, so one broker's crash (or a kill -9) never stops the
others: the supervisor starts `dcmirror broker start` N times (node ids 1..N, ports P..P+N-1,
data dirs D/broker-<id>, one metadata store, by default the SQLite file D/metadata.db),
waits until each answers on its port, logs one ready line with every address, and restarts
a broker that exits (after 1 s, doubling up to 30 s while it keeps failing within a minute
of starting). SIGINT/SIGTERM stop every broker (SIGTERM, then SIGKILL after 30 s).

Options of `cluster start` other than the ones the supervisor sets per broker are passed on
to every broker unchanged; the per-listener ones (--listener, --advertised) and --node-id
cannot be and are refused with a one-sentence usage error.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

log = logging.getLogger("dcmirror.supervisor")

SET_PER_BROKER = ("port", "data_dir", "node_id", "metadata")
REFUSED = {"listener_specs": "--listener", "advertised_specs": "--advertised", "node_id": "--node-id"}
RESTART_MIN_S, RESTART_MAX_S, STABLE_S = 1.0, 30.0, 60.0


@dataclass
class BrokerProcess:
    """One supervised broker: its command line, its process, its restart backoff."""

    node_id: int
    host: str
    port: int
    args: list[str]
    proc: asyncio.subprocess.Process | None = None
    backoff_s: float = RESTART_MIN_S
    started_at: float = 0.0
    restarts: int = field(default=0)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def passthrough_args(ctx: click.Context, opts: dict[str, Any]) -> list[str]:
    """The command-line form of every option the user gave that each broker takes as is."""
    by_name = {p.name: p for p in ctx.command.params if isinstance(p, click.Option)}
    args: list[str] = []
    for name, value in opts.items():
        if name in SET_PER_BROKER or ctx.get_parameter_source(name) != ParameterSource.COMMANDLINE:
            continue
        param = by_name[name]
        flag = max(param.opts, key=len)
        if param.is_flag:
            if value:
                args.append(flag)
        elif param.multiple:
            for item in value:
                args += [flag, str(item)]
        else:
            args += [flag, str(value)]
    return args


def supervise_from_cli(ctx: click.Context, name: str, brokers: int, opts: dict[str, Any]) -> None:
    """Validate `cluster start --brokers N`'s options, then supervise until stopped."""
    for key, flag in REFUSED.items():
        if ctx.get_parameter_source(key) == ParameterSource.COMMANDLINE:
            raise click.UsageError(f"{flag} cannot be used with --brokers {brokers}: each broker gets its "
                                   f"own port (--port P gives P..P+{brokers - 1}) and node id (1..{brokers})")
    if opts.get("port") is None or opts["port"] == 0:
        raise click.UsageError(f"--brokers {brokers} needs --port P: the brokers listen on P..P+{brokers - 1}")
    if opts["port"] + brokers - 1 > 65535:
        raise click.UsageError(f"--port {opts['port']} leaves no room for {brokers} consecutive ports")
    data_dir: Path = opts["data_dir"]
    metadata = opts.get("metadata") or f"sqlite://{data_dir.resolve() / 'metadata.db'}"
    host = opts.get("host") or "127.0.0.1"
    advertised = opts.get("advertised_host") or host
    common = passthrough_args(ctx, opts)
    procs = [BrokerProcess(n, advertised, opts["port"] + n - 1, [
        "broker", "start", "--cluster", name, "--node-id", str(n), "--metadata", metadata,
        "--port", str(opts["port"] + n - 1), "--data-dir", str(data_dir / f"broker-{n}"), *common])
        for n in range(1, brokers + 1)]
    data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(Supervisor(name, procs, metadata).run())


def _stop_with_supervisor() -> None:
    """In the child before exec: SIGTERM when the supervisor dies (Linux PR_SET_PDEATHSIG),
    so a SIGKILLed supervisor leaves no orphaned brokers holding ports and data dirs."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass  # not Linux: orphans are possible, as with any supervisor killed by SIGKILL


class Supervisor:
    """Starts, watches and restarts the broker processes; stops them on a signal."""

    def __init__(self, name: str, procs: list[BrokerProcess], metadata: str) -> None:
        self.name, self.procs, self.metadata = name, procs, metadata
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        try:
            for bp in self.procs:
                await self._spawn(bp)
            for bp in self.procs:
                await self._wait_listening(bp)
            if not self.stopping.is_set():
                log.info("cluster %s ready: %d brokers on %s (metadata in %s)", self.name, len(self.procs),
                         ", ".join(bp.address for bp in self.procs), self.metadata)
            watchers = [asyncio.create_task(self._watch(bp)) for bp in self.procs]
            await self.stopping.wait()
            for w in watchers:
                w.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
        finally:
            log.info("cluster %s stopping", self.name)
            await asyncio.gather(*(self._stop(bp) for bp in self.procs))

    async def _spawn(self, bp: BrokerProcess) -> None:
        bp.proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "dcmirror_cli", *bp.args,
                                                       preexec_fn=_stop_with_supervisor)
        bp.started_at = asyncio.get_running_loop().time()

    async def _wait_listening(self, bp: BrokerProcess, timeout_s: float = 60.0) -> bool:
        """Until the broker answers on its port: True; False when it exited first (_watch
        restarts it), the supervisor is stopping, or `timeout_s` passed."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self.stopping.is_set() and asyncio.get_running_loop().time() < deadline:
            if bp.proc is None or bp.proc.returncode is not None:
                return False
            try:
                _, writer = await asyncio.open_connection(bp.host, bp.port)
                writer.close()
                return True
            except OSError:
                await asyncio.sleep(0.05)
        if not self.stopping.is_set():
            log.warning("broker %d does not answer on %s after %.0f s", bp.node_id, bp.address, timeout_s)
        return False

    async def _watch(self, bp: BrokerProcess) -> None:
        """Restart the broker whenever it exits, with a backoff while it keeps failing."""
        loop = asyncio.get_running_loop()
        while True:
            assert bp.proc is not None
            code = await bp.proc.wait()
            lived = loop.time() - bp.started_at
            bp.backoff_s = RESTART_MIN_S if lived > STABLE_S else min(bp.backoff_s * 2, RESTART_MAX_S)
            wait = RESTART_MIN_S if lived > STABLE_S else bp.backoff_s / 2
            log.warning("broker %d (%s) exited with %s; restarting in %.0f s", bp.node_id, bp.address,
                        code, wait)
            try:
                await asyncio.wait_for(self.stopping.wait(), wait)
                return
            except asyncio.TimeoutError:
                pass
            bp.restarts += 1
            await self._spawn(bp)
            if await self._wait_listening(bp):
                log.info("broker %d restarted on %s", bp.node_id, bp.address)

    async def _stop(self, bp: BrokerProcess) -> None:
        proc = bp.proc
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
