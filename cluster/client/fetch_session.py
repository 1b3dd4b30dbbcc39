"""The client's side of one broker's incremental fetch session (KIP-227), without I/O.

Why: the mirror's copier fetches the same partitions over and over; without a session
each Fetch names every partition and each answer lists every partition, even idle ones.
With one, a request names only the partitions whose position (offset, max bytes, leader
epoch) changed since the broker last heard, and `forgotten_topics_data` the ones dropped
(a reassignment); the answer omits partitions with nothing new, which this handler fills
in from the last answer (no records, the same watermarks).

Modelled on the Java client's FetchSessionHandler:
- no session yet (or after any top-level error, a lost or cancelled request, a change of
  request version or of a topic's id): a full request at epoch 0, naming the old session
  id so the broker closes it; the answer's session id (0: the broker made none) starts
  the next epoch at 1, or leaves the next request full again;
- an answered incremental request moves the epoch on (wrapping to 1 after 2^31-1).
One request at a time uses the session (`busy`); a concurrent fetch to the same broker
goes sessionless (epoch -1), which leaves the session alone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

TP = tuple[str, int]
_INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class SessionRequest:
    """What one Fetch request carries for the session."""

    session_id: int
    epoch: int
    send: dict[TP, Any]  # the positions to name in `topics`
    forget: tuple[TP, ...]
    wanted: dict[TP, Any]  # every partition the caller asked for
    ids: dict[str, uuid.UUID | None]
    version: int

    @property
    def full(self) -> bool:
        return self.epoch in (0, -1)


def sessionless(wanted: dict[TP, Any], ids: dict[str, uuid.UUID | None], version: int) -> SessionRequest:
    """A request that neither uses nor creates a session (epoch -1)."""
    return SessionRequest(0, -1, dict(wanted), (), dict(wanted), dict(ids), version)


def _key(pos: Any) -> tuple[int, int, int]:
    return (pos.offset, pos.max_bytes, pos.current_leader_epoch)


@dataclass
class FetchSessionHandler:
    session_id: int = 0
    epoch: int = 0  # next epoch to send; 0: the next request is full
    busy: bool = False
    version: int = -1
    ids: dict[str, uuid.UUID | None] = field(default_factory=dict)
    sent: dict[TP, tuple[int, int, int]] = field(default_factory=dict)  # what the broker holds
    last: dict[TP, Any] = field(default_factory=dict)  # last answer per partition (FetchResult)

    def build(self, wanted: dict[TP, Any], ids: dict[str, uuid.UUID | None], version: int) -> SessionRequest:
        if version < 7:
            return sessionless(wanted, ids, version)
        changed_ids = any(self.ids.get(t, i) != i for t, i in ids.items())
        if self.epoch == 0 or self.session_id == 0 or version != self.version or changed_ids:
            return SessionRequest(self.session_id, 0, dict(wanted), (), dict(wanted), dict(ids), version)
        send = {tp: pos for tp, pos in wanted.items() if self.sent.get(tp) != _key(pos)}
        forget = tuple(tp for tp in self.sent if tp not in wanted)
        return SessionRequest(self.session_id, self.epoch, send, forget, dict(wanted), dict(ids), version)

    def answered(self, req: SessionRequest, error_code: int, session_id: int) -> bool:
        """Record the broker's answer; False means the session is gone and the caller
        should ask again (the next request is full)."""
        if req.epoch == -1:
            return error_code == 0
        if error_code or (not req.full and session_id != req.session_id):
            self.reset()
            return False
        self.version = req.version
        self.ids = dict(req.ids)
        self.sent = {tp: _key(pos) for tp, pos in req.wanted.items()}
        self.last = {tp: r for tp, r in self.last.items() if tp in req.wanted}
        if req.full:
            self.session_id, self.epoch = session_id, (1 if session_id else 0)
        else:
            self.epoch = 1 if self.epoch == _INT32_MAX else self.epoch + 1
        return True

    def reset(self) -> None:
        """The broker's session state is unknown: the next request is full (and closes it)."""
        self.epoch = 0
        self.sent.clear()
        self.last.clear()
