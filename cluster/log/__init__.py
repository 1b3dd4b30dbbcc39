"""Partition logs: segments of raw record batches, indexes, retention and crash recovery."""
