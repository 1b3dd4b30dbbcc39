"""Fault injection for loopback tests: a TCP fault proxy and the bounded chaos harness."""
