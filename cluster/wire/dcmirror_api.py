"""dcmirror's private protocol surface, in the one module both sides may import: the
broker and transaction coordinator that honour it, and the mirror that uses it
(`mirror/` may import `cluster.wire` but never `cluster.broker` or `cluster.txn`).

Private API keys borrow the schema of a public API (`PRIVATE_APIS`: key -> version ->
(public key, public version)). Kafka clients ignore API keys they do not know in
ApiVersions, so advertising them is harmless to them. Private topic configs all start
with ``dcmirror.``; setting or removing them needs ClusterAction (cluster/broker/configs.py).
"""

from __future__ import annotations

DCMIRROR_APPEND = 10000
"""Offset-preserving append (cluster/broker/k10000_mirror_append.py): Produce v9 on the wire."""
DCMIRROR_TRUNCATE = 10001
"""Failback/adopt: truncate mirror partitions to offsets (k10001_mirror_truncate.py): DeleteRecords v2."""
PRIVATE_APIS: dict[int, dict[int, tuple[int, int]]] = {
    DCMIRROR_APPEND: {0: (0, 9)},
    DCMIRROR_TRUNCATE: {0: (21, 2)},
}

CONFIG_PREFIX = "dcmirror."
"""Every private topic config starts with this."""
MIRROR_SOURCE = "dcmirror.mirror.source"
"""Topic config: the topic is a read-only mirror of this source cluster (alias)."""
FENCED = "dcmirror.fenced"
"""Topic config: failover fenced the topic; producers are refused and sent to this cluster."""
