"""CreateTopics (key 19), v0-v7: partitions, configs, validate-only, topic ids.

A request asking for more than 10,000 partitions in total is refused as a whole, every
topic with POLICY_VIOLATION and KRaft's message, before anything is created; the
broker-wide `max_partitions` ceiling is checked topic by topic.

A single-broker cluster refuses any replication factor above 1 with Kafka's
INVALID_REPLICATION_FACTOR, and manual assignments must name this node. On a multi-broker
cluster (cluster/broker/membership.py) the controller creates the topic and spreads its
partitions over the live brokers: a replication factor above the live brokers is
INVALID_REPLICATION_FACTOR, and one above 1 is refused the same way until replication is
built; manual assignments are refused (INVALID_REPLICA_ASSIGNMENT). Internal topic names
are refused: TOPIC_ALREADY_EXISTS once used (as Kafka), else INVALID_TOPIC_EXCEPTION.
"""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.broker import create_topics_response, topic_config
from cluster.broker.configs import PRIVATE_CONFIG_REFUSED, PRIVATE_PREFIX
from cluster.broker.config import MAX_PARTITIONS_PER_REQUEST
from cluster.broker import authz, internal_topics
from cluster.broker.registry import handler
from cluster.broker.topics import CatalogueWriteFailed, TopicError


def _result(name: str, code: int, message: str | None = None, **extra) -> dict:
    return {"name": name, "error_code": code, "error_message": message,
            "num_partitions": -1, "replication_factor": -1, "configs": None, **extra}


@handler(19, 0, 7)
async def create_topics(broker, hdr, req) -> dict:
    if requested_partitions(broker, req) > MAX_PARTITIONS_PER_REQUEST:
        return {"throttle_time": 0, "topics": [
            _result(t.name, ErrorCode.policy_violation, TOO_MANY_PARTITIONS) for t in req.topics]}
    results: list[dict] = []
    if broker.membership is not None:
        await _create_clustered(broker, req, results)
        if hdr.api_version >= create_topics_response.FIRST_VERSION:
            return create_topics_response.pre_encoded(hdr.api_version, 0, results)
        return {"throttle_time": 0, "topics": results}
    try:
        with broker.topic_batch():  # one catalogue write for the whole request
            _create_all(broker, req, results)
    except CatalogueWriteFailed as exc:  # nothing of the request was kept
        failed = set(exc.names)
        results = [_result(r["name"], ErrorCode.unknown_server_error,
                           f"could not record topic: {exc.strerror}")
                   if r["name"] in failed and r["error_code"] == 0 else r for r in results]
    if hdr.api_version >= create_topics_response.FIRST_VERSION:
        return create_topics_response.pre_encoded(hdr.api_version, 0, results)
    return {"throttle_time": 0, "topics": results}


TOO_MANY_PARTITIONS = "Excessively large number of partitions per request."


def requested_partitions(broker, req) -> int:
    """Upper bound of the partitions a request creates, counted as KRaft counts them."""
    total = 0
    for t in req.topics:
        if t.assignments:
            total += len(t.assignments)
        elif t.num_partitions == -1:
            total += broker.config.default_partitions
        elif t.num_partitions > 0:
            total += t.num_partitions
    return total


def _create_all(broker, req, results: list) -> None:
    # One config list per distinct set of overrides: topics created alike share it, and
    # the response encoder encodes it once.
    shared: dict[frozenset, list[dict]] = {}
    cluster_create = authz.allowed_cluster(broker, authz.Op.CREATE)
    for t in req.topics:
        if not cluster_create and not authz.allowed(broker, authz.Op.CREATE, authz.TOPIC, t.name):
            results.append(_result(t.name, ErrorCode.topic_authorization_failed,
                                   "Authorization failed."))
            continue
        if any(c.name.startswith(PRIVATE_PREFIX) for c in t.configs) and not authz.allowed_cluster(
                broker, authz.Op.CLUSTER_ACTION):
            results.append(_result(t.name, ErrorCode.cluster_authorization_failed, PRIVATE_CONFIG_REFUSED))
            continue
        if internal_topics.is_internal(t.name):
            results.append(_internal(broker, t.name))
            continue
        if t.assignments:
            bad = [b for a in t.assignments for b in a.broker_ids if b != broker.node_id]
            if bad or len({len(a.broker_ids) for a in t.assignments}) != 1:
                results.append(_result(t.name, ErrorCode.invalid_replica_assignment,
                                       f"replica assignment names unknown brokers {sorted(set(bad))}"))
                continue
            partitions = len(t.assignments)
            rf = len(t.assignments[0].broker_ids)
        else:
            partitions = t.num_partitions if t.num_partitions != -1 else broker.config.default_partitions
            rf = t.replication_factor if t.replication_factor != -1 else 1
        if rf != 1:
            results.append(_result(t.name, ErrorCode.invalid_replication_factor,
                                   f"Replication factor: {rf} larger than available brokers: 1."))
            continue
        configs = {c.name: c.value for c in t.configs}
        try:
            meta = broker.create_topic(t.name, partitions, configs, validate_only=req.validate_only)
        except TopicError as exc:
            results.append(_result(t.name, exc.code, str(exc)))
            continue
        key = frozenset(meta.configs.items())
        if (entries := shared.get(key)) is None:
            entries = shared[key] = _config_entries(meta.configs)
        results.append({
            "name": t.name,
            "topic_id": meta.uuid,
            "error_code": 0,
            "error_message": None,
            "num_partitions": partitions,
            "replication_factor": 1,
            "configs": entries,
        })


async def _create_clustered(broker, req, results: list) -> None:
    """Multi-broker: validate here, let the controller assign and record the topic."""
    cluster_create = authz.allowed_cluster(broker, authz.Op.CREATE)
    live = len(broker.membership.live_brokers())
    for t in req.topics:
        if not cluster_create and not authz.allowed(broker, authz.Op.CREATE, authz.TOPIC, t.name):
            results.append(_result(t.name, ErrorCode.topic_authorization_failed, "Authorization failed."))
            continue
        if internal_topics.is_internal(t.name):
            results.append(_internal(broker, t.name))
            continue
        if t.assignments:
            results.append(_result(t.name, ErrorCode.invalid_replica_assignment, "manual replica "
                                   "assignments are not supported on a multi-broker cluster yet"))
            continue
        partitions = t.num_partitions if t.num_partitions != -1 else broker.config.default_partitions
        rf = t.replication_factor if t.replication_factor != -1 else 1
        if rf > live:
            results.append(_result(t.name, ErrorCode.invalid_replication_factor,
                                   f"Replication factor: {rf} larger than available brokers: {live}."))
            continue
        if rf > 1:
            results.append(_result(t.name, ErrorCode.invalid_replication_factor,
                                   f"replication factor {rf}: replication is not built yet, so topics "
                                   f"of a multi-broker cluster have replication factor 1"))
            continue
        configs = {c.name: c.value for c in t.configs}
        try:
            meta = broker.create_topic(t.name, partitions, configs, validate_only=True)
        except TopicError as exc:
            results.append(_result(t.name, exc.code, str(exc)))
            continue
        if not req.validate_only:
            out = await broker.membership.create_topic(t.name, partitions, rf, meta.configs)
            if not out.ok:
                results.append(_result(t.name, out.error, out.message))
                continue
            meta = broker.topic(t.name) or meta
        results.append({"name": t.name, "topic_id": meta.uuid, "error_code": 0, "error_message": None,
                        "num_partitions": partitions, "replication_factor": rf,
                        "configs": _config_entries(meta.configs)})


def _internal(broker, name: str) -> dict:
    """Kafka creates internal topics itself; one already used exists, as Kafka answers."""
    if name in broker.internal_topics.used:
        return _result(name, ErrorCode.topic_already_exists, f"Topic '{name}' already exists.")
    return _result(name, ErrorCode.invalid_topic_exception,
                   f"{name} is an internal topic; the broker creates it on first use")


def _config_entries(overrides: dict[str, str]) -> list[dict]:
    return [
        {"name": k, "value": v, "read_only": False,
         "config_source": 1 if k in overrides else 5, "is_sensitive": False}
        for k, v in topic_config.effective(overrides).items() if not k.startswith(PRIVATE_PREFIX)
    ]
