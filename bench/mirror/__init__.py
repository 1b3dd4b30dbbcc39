"""Mirror benchmark: dcmirror's mirror next to a per-record confluent-kafka mirror and Apache
Kafka MirrorMaker 2, on the same data in one run (`python -m bench.mirror`).

Why these three: MirrorMaker 2 is what users run today, and the per-record
consume/produce loop is what they write when they do not run MM2. dcmirror's claim is that
copying raw batches (no decompression, no per-record work) costs a fraction of the CPU of
either, at a replication latency that stays low on loopback."""
