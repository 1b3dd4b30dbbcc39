"""Kafka-protocol clusters: wire codec, log, broker, group coordinator and a small client."""
