"""ListTransactions (key 66), v0-v2: transactional ids, filtered as Kafka filters them.

Filters: states (unknown names are echoed in `unknown_state_filters`), producer ids,
v1 `duration_filter` (open longer than this many ms), v2 `transactional_id_pattern`
(a regular expression that must match the whole id, like Java's `matches()`).
"""

from __future__ import annotations

import re
import time

from kio.schema.errors import ErrorCode

from cluster.broker import authz
from cluster.broker.registry import handler
from cluster.txn.model import TxnState

_STATES = {s.value for s in TxnState}


@handler(66, 0, 2)
async def list_transactions(broker, hdr, req) -> dict:
    states = set(req.state_filters or ())
    pids = set(req.producer_id_filters or ())
    duration = getattr(req, "duration_filter", -1)
    pattern = getattr(req, "transactional_id_pattern", None)
    try:
        regex = re.compile(pattern) if pattern else None
    except re.error:
        return {"throttle_time": 0, "error_code": ErrorCode.invalid_regular_expression,
                "unknown_state_filters": [], "transaction_states": []}
    listed = []
    now = int(time.time() * 1000)
    machine = broker.txns.machine if broker.txns is not None else None
    for tid, md in sorted(machine.txns.items() if machine else ()):
        if states and md.state.value not in states:
            continue
        if pids and md.producer_id not in pids:
            continue
        if duration >= 0 and (md.start_ms < 0 or now - md.start_ms < duration):
            continue
        if regex is not None and not regex.fullmatch(tid):
            continue
        if not authz.allowed(broker, authz.Op.DESCRIBE, authz.TXN_ID, tid):
            continue
        listed.append({"transactional_id": tid, "producer_id": md.producer_id,
                       "transaction_state": md.state.value})
    return {"throttle_time": 0, "error_code": ErrorCode.none,
            "unknown_state_filters": sorted(states - _STATES), "transaction_states": listed}
