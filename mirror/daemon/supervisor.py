"""A link's runners, supervised: the forward runner always, and the reversed one while the
link state machine says the link copies backwards (`failback --stay`).

After `dcmirror failback --stay` the new primary (the link's target) keeps taking writes
and the old source's topics are read-only mirrors of it (`dcmirror.mirror.source=<target>`).
The running daemon keeps them in sync without a config change: while the link state is
`reversed` it runs a second, reversed link (`<link>.reversed`: target -> source, same topic
filters, offsets preserved, groups checkpointed back) and stops it as soon as the state
changes again (e.g. a later `dcmirror failback` that restores the original direction).
The supervisor owns both runners, so neither runner knows about the other.

Only identity naming reverses cleanly (with prefix naming the reversed names would gain a
second prefix); for prefix links the daemon just holds the link and says so.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from cluster.client.dial import Dialer, default_dial
from mirror.config.model import LinkConfig, MirrorConfig
from mirror.records.link_state import LinkState
from mirror.replication.link import LinkRunner

log = logging.getLogger(__name__)

_COPYING = ("running", "idle")  # runner states of a copier that does its job


def reversed_link(link: LinkConfig) -> LinkConfig | None:
    if link.rename != "identity":
        return None
    return dataclasses.replace(link, name=f"{link.name}.reversed", source=link.target, target=link.source,
                               start_from="earliest")


class LinkSupervisor:
    """Runs ``link`` forward, and backwards while its state's behaviour says so."""

    def __init__(self, cfg: MirrorConfig, link: LinkConfig, *, dial: Dialer = default_dial,
                 assignor=None) -> None:
        self.cfg = cfg
        self.link = link
        self.dial = dial
        self.forward = LinkRunner(cfg, link, dial=dial, assignor=assignor)
        self.forward.on_state = self.follow
        self.reversed: LinkRunner | None = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._stopping: set[asyncio.Task] = set()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self.forward.run(stop)
        finally:
            await self.close()

    def follow(self, state: LinkState) -> None:
        want = state.runs.copies_reversed
        if want and self._task is None:
            rev = reversed_link(self.link)
            if rev is None:
                log.warning("link %s is reversed but uses prefix naming: not copying it backwards; "
                            "add a link %s -> %s to the config", self.link.name, self.link.target,
                            self.link.source)
                return
            self.reversed = LinkRunner(self.cfg, rev, dial=self.dial)
            self._stop = asyncio.Event()
            self._task = asyncio.create_task(self.reversed.run(self._stop), name=rev.name)
            log.info("link %s is reversed: copying %s -> %s", self.link.name, rev.source, rev.target)
        elif not want and self._task is not None:
            log.info("link %s is no longer reversed: stopping %s -> %s", self.link.name,
                     self.link.target, self.link.source)
            assert self._stop is not None
            self._stop.set()
            self._stopping.add(self._task)
            self._task.add_done_callback(self._stopping.discard)
            self._task = None

    def ready(self) -> bool:
        """Connected to both clusters and obeying a link state it has read."""
        return self.forward.link_state is not None and self.forward.progress.state not in ("starting", "connecting")

    def obeys(self) -> str | None:
        """None while the daemon does what the link state asks (BEHAVIOUR), else why not:
        copying when the state copies, holding when it does not (a failed-over link is
        healthy), and the reversed runner copying when the state copies backwards."""
        state = self.forward.link_state
        if state is None:
            return "link state not read yet"
        runs, now = state.runs, self.forward.progress.state
        if runs.copies and now not in _COPYING:
            return f"link state {state.state} copies, the runner is {now}"
        if not runs.copies and now != str(state.state):
            return f"link state {state.state} holds, the runner is {now}"
        if runs.copies_reversed and reversed_link(self.link) is not None:
            rev = self.reversed.progress.state if self.reversed is not None else "not started"
            if rev not in _COPYING:
                return f"link state {state.state} copies backwards, the reversed runner is {rev}"
        return None

    async def close(self) -> None:
        if self._stop is not None:
            self._stop.set()
        tasks = [t for t in (self._task, *self._stopping) if t is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
