"""Cluster metadata: a small store interface, its backends, the model and the controller.

Why a store of our own shape and not a consensus protocol of our own: the brokers of one
cluster agree on metadata (brokers, topics, partition leaders, epochs, ISR) through an
existing, proven store that offers exactly three things — compare-and-set on versioned
keys, range reads by prefix, and leases (keys that vanish when their holder stops
renewing). Every metadata write the controller makes is a compare-and-set against the
versions (and so the epochs) it read, so a stale controller or broker is refused by the
store, never by a clock.

Backends (`open_store(url)`):
- `sqlite:///path/metadata.db` (or a bare path): one file shared by the broker processes of
  one machine (WAL, synchronous=FULL, BEGIN IMMEDIATE for every write). Nothing to install.
- `etcd://host:port/prefix`: etcd's v3 JSON gateway over HTTP, for brokers on several hosts.
"""
