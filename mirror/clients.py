"""One place that turns a cluster's YAML ``client:`` block into a `KafkaClient`.

The mirror, the scale-out membership, failover/failback, offset translation and status
all talk to the clusters of a config; building every client here is what makes each
``client:`` key (client id, timeouts, metadata age, TLS, SASL) apply to all of them
instead of to whichever call site remembered it.
"""

from __future__ import annotations

from cluster.client.client import KafkaClient
from cluster.client.dial import Dialer, default_dial
from mirror.config import ClusterConfig


def client_for_cluster(
    cluster: ClusterConfig,
    role: str,
    *,
    dial: Dialer = default_dial,
    request_timeout_s: float | None = None,
    retry_deadline_s: float | None = None,
) -> KafkaClient:
    """A client to ``cluster``. ``role`` names the default client id (``dcmirror-<role>``)
    when the YAML sets none; a ``client_id`` in the YAML is sent as written, because
    quotas and broker logs on a foreign cluster are keyed by it. ``request_timeout_s``
    overrides the YAML's for callers with their own deadline (status, failover probes)."""
    s = cluster.client
    timeout = s.request_timeout_s if request_timeout_s is None else request_timeout_s
    return KafkaClient(
        cluster.bootstrap,
        client_id=s.client_id or f"dcmirror-{role}",
        dial=dial,
        request_timeout_s=timeout,
        retry_deadline_s=retry_deadline_s,
        connect_timeout_s=s.connect_timeout_s,
        metadata_max_age_s=s.metadata_max_age_s,
    )
