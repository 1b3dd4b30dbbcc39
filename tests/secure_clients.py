"""Real clients (confluent-kafka, kafka-python, aiokafka) with TLS and SASL settings, for
tests of our secured listeners: one `Sec` says how to connect, each library gets it in
its own spelling, and `produce`/`consume` run a short round trip."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

LIBRARIES = ("confluent", "kafka-python", "aiokafka")


@dataclass(frozen=True)
class Sec:
    protocol: str = "PLAINTEXT"  # PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    mechanism: str | None = None
    username: str | None = None
    password: str | None = None

    def confluent(self) -> dict:
        c: dict = {"security.protocol": self.protocol}
        for key, value in (("ssl.ca.location", self.cafile), ("ssl.certificate.location", self.certfile),
                           ("ssl.key.location", self.keyfile), ("sasl.mechanism", self.mechanism),
                           ("sasl.username", self.username), ("sasl.password", self.password)):
            if value is not None:
                c[key] = str(value)
        return c

    def kafka_python(self) -> dict:
        c: dict = {"security_protocol": self.protocol}
        for key, value in (("ssl_cafile", self.cafile), ("ssl_certfile", self.certfile),
                           ("ssl_keyfile", self.keyfile), ("sasl_mechanism", self.mechanism),
                           ("sasl_plain_username", self.username), ("sasl_plain_password", self.password)):
            if value is not None:
                c[key] = str(value)
        return c

    def aiokafka(self) -> dict:
        c: dict = {"security_protocol": self.protocol}
        if self.protocol.endswith("SSL"):
            from aiokafka.helpers import create_ssl_context

            c["ssl_context"] = create_ssl_context(
                cafile=str(self.cafile) if self.cafile else None,
                certfile=str(self.certfile) if self.certfile else None,
                keyfile=str(self.keyfile) if self.keyfile else None)
        for key, value in (("sasl_mechanism", self.mechanism), ("sasl_plain_username", self.username),
                           ("sasl_plain_password", self.password)):
            if value is not None:
                c[key] = value
        return c


def produce(lib: str, bootstrap: str, topic: str, values: list[bytes], sec: Sec) -> None:
    if lib == "confluent":
        from confluent_kafka import Producer

        p = Producer({"bootstrap.servers": bootstrap, "acks": "all", **sec.confluent()})
        errors: list = []
        for v in values:
            p.produce(topic, value=v, on_delivery=lambda e, m: e and errors.append(e))
        assert p.flush(30) == 0 and not errors, errors
    elif lib == "kafka-python":
        from kafka import KafkaProducer

        kp = KafkaProducer(bootstrap_servers=bootstrap, acks="all", **sec.kafka_python())
        for f in [kp.send(topic, value=v) for v in values]:
            f.get(timeout=30)
        kp.close()
    else:
        from aiokafka import AIOKafkaProducer

        async def run() -> None:
            ap = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **sec.aiokafka())
            await ap.start()
            try:
                for v in values:
                    await ap.send_and_wait(topic, value=v)
            finally:
                await ap.stop()

        asyncio.run(run())


def consume(lib: str, bootstrap: str, topic: str, n: int, sec: Sec) -> list[bytes]:
    """The first `n` values of partition 0 of `topic`."""
    out: list[bytes] = []
    deadline = time.monotonic() + 60
    if lib == "confluent":
        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False,
                      **sec.confluent()})
        c.assign([TopicPartition(topic, 0, 0)])
        while len(out) < n and time.monotonic() < deadline:
            out += [m.value() for m in c.consume(100, timeout=1) if not m.error()]
        c.close()
    elif lib == "kafka-python":
        from kafka import KafkaConsumer, TopicPartition

        kc = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                           auto_offset_reset="earliest", **sec.kafka_python())
        kc.assign([TopicPartition(topic, 0)])
        kc.seek_to_beginning()
        while len(out) < n and time.monotonic() < deadline:
            for batch in kc.poll(timeout_ms=1000).values():
                out += [m.value for m in batch]
        kc.close()
    else:
        from aiokafka import AIOKafkaConsumer, TopicPartition as ATP

        async def run() -> list[bytes]:
            ac = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                  auto_offset_reset="earliest", **sec.aiokafka())
            await ac.start()
            got: list[bytes] = []
            try:
                ac.assign([ATP(topic, 0)])
                await ac.seek_to_beginning()
                while len(got) < n and time.monotonic() < deadline:
                    for batch in (await ac.getmany(timeout_ms=1000)).values():
                        got += [m.value for m in batch]
            finally:
                await ac.stop()
            return got

        out = asyncio.run(run())
    return out[:n]
