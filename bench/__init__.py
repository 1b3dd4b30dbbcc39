"""Benchmarks that measure dcmirror next to real peers (Apache Kafka, Tansu, MirrorMaker 2)
started in the same run, so every number comes with a ratio measured on the same machine
at the same moment. See bench/README.md for how to run them and what the setup is."""
