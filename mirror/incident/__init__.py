"""The operator's incident commands: failover, failback, adopt, offsets translate, status."""
