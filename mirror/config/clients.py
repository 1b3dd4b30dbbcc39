"""One place that turns a cluster's YAML ``client:`` block into a `KafkaClient`.

The mirror, the scale-out membership, failover/failback, offset translation and status
all talk to the clusters of a config; building every client here is what makes each
``client:`` key (client id, timeouts, metadata age, TLS, SASL) apply to all of them
instead of to whichever call site remembered it.
"""

from __future__ import annotations

import functools
import logging
import ssl

from cluster.client.client import KafkaClient
from cluster.client.dial import Dialer, default_dial
from cluster.client.security import ClientSecurity, SaslCredentials, tls_context
from mirror.config.model import ClientSettings, ClusterConfig

log = logging.getLogger(__name__)

_warned_hostname: set[str] = set()


@functools.lru_cache(maxsize=64)
def _tls(settings: ClientSettings) -> ssl.SSLContext:
    return tls_context(settings.ssl_cafile, settings.ssl_certfile, settings.ssl_keyfile,
                       check_hostname=settings.ssl_check_hostname)


def security_for(cluster: ClusterConfig) -> ClientSecurity:
    """TLS context and SASL credentials of a cluster's ``client:`` block."""
    s = cluster.client
    protocol = s.security_protocol
    tls = _tls(s) if protocol in ("SSL", "SASL_SSL") else None
    if tls is not None and not s.ssl_check_hostname and cluster.name not in _warned_hostname:
        _warned_hostname.add(cluster.name)
        log.warning("cluster %s: ssl_check_hostname is false, so any certificate signed by the CA is "
                    "accepted for any broker name (a man in the middle holding one is not detected)",
                    cluster.name)
    sasl = None
    if protocol.startswith("SASL_"):
        assert s.sasl_mechanism and s.sasl_username is not None and s.sasl_password is not None
        sasl = SaslCredentials(s.sasl_mechanism, s.sasl_username, s.sasl_password)
    return ClientSecurity(tls=tls, sasl=sasl)


def ssh_dialer(cluster: ClusterConfig) -> Dialer:
    """Dial through the cluster's SSH bastion: one SSH connection per bastion and event loop,
    shared by every client of the process (cluster/client/tunnel.py)."""
    via = cluster.ssh
    assert via is not None

    async def dial(host: str, port: int):
        from cluster.client.tunnel import tunnel_for  # asyncssh only for configs with a tunnel

        return await tunnel_for(via).dial(host, port)

    return dial


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
    if cluster.ssh is not None and dial is default_dial:
        dial = ssh_dialer(cluster)
    return KafkaClient(
        cluster.bootstrap,
        client_id=s.client_id or f"dcmirror-{role}",
        dial=dial,
        request_timeout_s=timeout,
        retry_deadline_s=retry_deadline_s,
        connect_timeout_s=s.connect_timeout_s,
        metadata_max_age_s=s.metadata_max_age_s,
        security=security_for(cluster),
    )
