"""The replicator: YAML links, per-partition copiers, offset syncs, checkpoints, failover."""
