"""DescribeCluster (key 60), v0-v2: this cluster's id, controller and brokers."""

from __future__ import annotations

from cluster.broker.registry import handler


@handler(60, 0, 2)
async def describe_cluster(broker, hdr, req) -> dict:
    return {
        "throttle_time": 0,
        "error_code": 0,
        "error_message": None,
        "endpoint_type": getattr(req, "endpoint_type", 1),
        "cluster_id": broker.cluster_id,
        "controller_id": broker.controller_id,
        "brokers": [{"broker_id": broker.node_id, "host": broker.advertised_host,
                     "port": broker.advertised_port, "rack": None, "is_fenced": False}],
        "cluster_authorized_operations": -(2**31),
    }
