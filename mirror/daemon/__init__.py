"""The mirror daemon process: links it runs, members sharing the work, its HTTP endpoint and metrics."""
