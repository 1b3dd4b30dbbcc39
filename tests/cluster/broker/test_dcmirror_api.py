"""The dcmirror API keys and topic configs are defined once (cluster/wire/dcmirror_api.py):
the broker serves and accepts exactly those, and the mirror asks for the same ones."""

from __future__ import annotations

from cluster.broker import topic_config
from cluster.broker.registry import HANDLERS
from cluster.wire import codec, dcmirror_api


def test_broker_serves_every_private_api_with_its_borrowed_schema() -> None:
    from cluster.broker.server import load_handlers

    load_handlers()
    for key, versions in dcmirror_api.PRIVATE_APIS.items():
        h = HANDLERS[key]
        assert (h.min_version, h.max_version) == (min(versions), max(versions))
        for v, (public_key, public_version) in versions.items():
            assert codec.request_schema(key, v) is codec.request_schema(public_key, public_version)


def test_private_topic_configs_are_the_shared_names() -> None:
    private = {k for k in topic_config.TOPIC_CONFIGS if k.startswith(dcmirror_api.CONFIG_PREFIX)}
    assert private == {dcmirror_api.MIRROR_SOURCE, dcmirror_api.FENCED}
    from mirror.incident import failover_ops
    from mirror.replication import existing

    assert existing.MIRROR_SOURCE == failover_ops.MIRROR_SOURCE == dcmirror_api.MIRROR_SOURCE
    assert failover_ops.FENCED == dcmirror_api.FENCED
