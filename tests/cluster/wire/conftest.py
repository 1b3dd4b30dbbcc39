"""Third-party RecordBatch v2 implementations used as independent peers in wire tests.

aiokafka ships a Cython and a pure-Python batch codec (both bundle every codec through
cramjam); kafka-python has its own pure-Python codec but needs optional packages
(python-snappy, lz4, zstandard) for anything beyond gzip. Each peer is an object with
`build(records, codec, ...) -> bytes` and `read(batch) -> list[(offset, ts, key, value,
headers)]`, so tests can run the same check against all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pytest
from aiokafka.record import default_records as aio
from kafka import codec as kp_codec
from kafka.record import default_records as kp

PeerRecord = tuple[int, int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]


def _kafka_python_has(codec: int) -> bool:
    return {
        0: True,
        1: kp_codec.has_gzip(),
        2: kp_codec.has_snappy(),
        3: kp_codec.has_lz4(),
        4: kp_codec.has_zstd(),
    }[codec]


@dataclass
class Peer:
    name: str
    builder_cls: type
    batch_cls: type
    supports: Callable[[int], bool]

    def build(
        self,
        records: list[tuple[bytes | None, bytes | None, list, int]],
        codec: int = 0,
        *,
        producer_id: int = -1,
        producer_epoch: int = -1,
        base_sequence: int = -1,
        transactional: bool = False,
        offsets: list[int] | None = None,
    ) -> bytes:
        b = self.builder_cls(
            magic=2,
            compression_type=codec,
            is_transactional=transactional,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            base_sequence=base_sequence,
            batch_size=1 << 30,
        )
        for i, (key, value, headers, ts) in enumerate(records):
            offset = offsets[i] if offsets else i
            b.append(offset, timestamp=ts, key=key, value=value, headers=list(headers or []))
        return bytes(b.build())

    def require(self, codec: int) -> None:
        """Skip (visibly) when this peer lacks an optional codec package."""
        if not self.supports(codec):
            pytest.skip(f"{self.name} has no codec {codec} installed")

    def batch(self, data: bytes) -> Any:
        return self.batch_cls(data)

    def read(self, data: bytes) -> list[PeerRecord]:
        batch = self.batch_cls(data)
        assert batch.validate_crc(), f"{self.name} rejects our CRC"
        return [
            (r.offset, r.timestamp, r.key, r.value, [tuple(h) for h in r.headers])
            for r in batch
        ]


PEERS = [
    Peer("aiokafka-c", aio.DefaultRecordBatchBuilder, aio.DefaultRecordBatch, lambda c: True),
    Peer("aiokafka-py", aio._DefaultRecordBatchBuilderPy, aio._DefaultRecordBatchPy, lambda c: True),
    Peer("kafka-python", kp.DefaultRecordBatchBuilder, kp.DefaultRecordBatch, _kafka_python_has),
]


@pytest.fixture(params=PEERS, ids=[p.name for p in PEERS])
def peer(request: pytest.FixtureRequest) -> Peer:
    return request.param

