"""The per-record mirror a user writes with confluent-kafka when not running MirrorMaker 2.

Consumer -> Producer, one `produce()` per record, lz4 on the producer; it keeps partition,
key, value, headers and CreateTime (what any mirror must keep) and otherwise sticks to
client defaults (group subscription, auto-commit, acks=all, linger.ms=5). By default records
are fetched with `consume(500, timeout=0.1)`, the cheaper variant of the loop (so CPU numbers
do not flatter dcmirror) — but it waits up to 100 ms for 500 records, which shows in its
latency at low rates. `--poll` fetches with `poll(1.0)`, one record per call, as the client's
own examples do: lowest latency, more CPU.

Run as its own process so its CPU can be read from /proc:
    python -m bench.mirror.naive_mirror --source S --target T --map src=dst [--map ...]
"""
from __future__ import annotations

import argparse
import signal
import sys

from confluent_kafka import Consumer, KafkaException, Producer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--map", action="append", required=True, metavar="SRC=DST",
                    help="source topic = target topic (repeatable)")
    ap.add_argument("--group", default="naive-mirror")
    ap.add_argument("--poll", action="store_true", help="poll() one record at a time")
    args = ap.parse_args(argv)
    mapping = dict(m.split("=", 1) for m in args.map)

    running = True

    def stop(*_: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    consumer = Consumer({"bootstrap.servers": args.source, "group.id": args.group,
                         "auto.offset.reset": "earliest"})
    producer = Producer({"bootstrap.servers": args.target, "compression.type": "lz4"})
    failed: list[object] = []

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            failed.append(err)

    consumer.subscribe(list(mapping))
    try:
        while running:
            if args.poll:
                one = consumer.poll(1.0)
                msgs = [one] if one is not None else []
            else:
                msgs = consumer.consume(num_messages=500, timeout=0.1)
            for m in msgs:
                if m.error():
                    if m.error().fatal():
                        raise KafkaException(m.error())
                    continue
                while True:
                    try:
                        producer.produce(mapping[m.topic()], m.value(), m.key(),
                                         partition=m.partition(), timestamp=m.timestamp()[1],
                                         headers=m.headers(), on_delivery=on_delivery)
                        break
                    except BufferError:
                        producer.poll(0.01)
            producer.poll(0)
            if failed:
                raise KafkaException(failed[0])
    finally:
        producer.flush(30)
        consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
