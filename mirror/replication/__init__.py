"""Moving data and offsets: the link runner, per-partition copiers and their sinks, topic/partition/config sync, existing target topics, checkpoints."""
