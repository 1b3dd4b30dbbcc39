"""Broker benchmark: produce/consume throughput, produce latency and idle-partition memory
of dcmirror's broker against Apache Kafka and Tansu (`python -m bench.broker`)."""
