"""DescribeCluster (key 60), v0-v2: this cluster's id, controller and brokers.

As in Kafka (AuthHelper.computeDescribeClusterResponse) the call itself needs no ACL; the
KIP-430 cluster authorized operations, when asked for, are the principal's operations on
the cluster if it may Describe it, else 0.
"""

from __future__ import annotations

from cluster.broker import authz
from cluster.broker.registry import handler


@handler(60, 0, 2)
async def describe_cluster(broker, hdr, req) -> dict:
    ops = authz.NOT_REQUESTED
    if getattr(req, "include_cluster_authorized_operations", False):
        ops = (authz.authorized_operations(broker, authz.CLUSTER, authz.CLUSTER_NAME)
               if authz.allowed_cluster(broker, authz.Op.DESCRIBE) else 0)
    return {
        "throttle_time": 0,
        "error_code": 0,
        "error_message": None,
        "endpoint_type": getattr(req, "endpoint_type", 1),
        "cluster_id": broker.cluster_id,
        "controller_id": broker.controller_id,
        "brokers": ([{"broker_id": b.node_id, "host": b.host, "port": b.port, "rack": b.rack,
                      "is_fenced": b.fenced} for b in sorted(broker.membership.brokers.values(),
                                                             key=lambda b: b.node_id)]
                    if broker.membership is not None else
                    [{"broker_id": broker.node_id, "host": broker.advertised_host,
                      "port": broker.advertised_port, "rack": None, "is_fenced": False}]),
        "cluster_authorized_operations": ops,
    }
