"""The record formats dcmirror keeps on the `__dcmirror.*` topics (offset syncs, checkpoints, link state), each next to its decoder."""
