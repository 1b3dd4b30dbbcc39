"""Transactional records in a Produce without a transactional id fail the whole request with
TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53) before validation, as Kafka's
KafkaApis.handleProduceRequest answers with or without an authorizer (raw frames)."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from cluster.wire import codec
from cluster.wire.batch_builder import build_batch
from cluster.wire.build import build
from cluster.wire.control import build_control_batch
from cluster.wire.framing import frame
from tests.cluster.broker.rawconn import RawConn
from tests.cluster.broker.test_bad_input import PRODUCE_V, create, fetch_all, produce

TS = 1_700_000_000_000


def _plain(value: bytes) -> bytes:
    return build_batch([(b"k", value, [], TS)])


def _txn(value: bytes) -> bytes:
    return build_batch([(b"k", value, [], TS)], producer_id=9, producer_epoch=0, base_sequence=0,
                       transactional=True)


def _body(tid: str | None, acks: int, parts: list[tuple[str, int, bytes]]) -> dict:
    topics: dict[str, list[dict]] = {}
    for topic, index, records in parts:
        topics.setdefault(topic, []).append({"index": index, "records": records})
    return {"transactional_id": tid, "acks": acks, "timeout": 5000,
            "topic_data": [{"name": n, "partition_data": p} for n, p in topics.items()]}


async def test_whole_request_fails_and_nothing_is_written(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    assert (await create(conn, "a", 2)).error_code == 0
    before = [await fetch_all(conn, "a", i) for i in (0, 1)]
    # One partition's first batch is transactional: every partition of the request,
    # including a plain one and one of a topic that does not exist, gets 53.
    resp = await conn.call(0, PRODUCE_V, _body(None, -1, [
        ("a", 0, _plain(b"plain")), ("a", 1, _txn(b"txn")), ("missing", 0, _plain(b"x"))]))
    answers = {(t.name, p.index): p for t in resp.responses for p in t.partition_responses}
    assert set(answers) == {("a", 0), ("a", 1), ("missing", 0)}
    for p in answers.values():
        assert p.error_code == ErrorCode.transactional_id_authorization_failed
        assert p.base_offset == -1 and p.log_start_offset == -1 and not p.record_errors
    assert [await fetch_all(conn, "a", i) for i in (0, 1)] == before
    # The connection stays usable and plain data is still accepted.
    ok = await produce(conn, "a", 0, _plain(b"after"))
    assert (ok.error_code, ok.base_offset) == (0, 0)
    conn.close()


async def test_control_batch_without_transactional_id(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    assert (await create(conn, "c")).error_code == 0
    marker = build_control_batch(9, 0, True, 0, TS)
    answer = await produce(conn, "c", 0, marker)
    assert answer.error_code == ErrorCode.transactional_id_authorization_failed
    # With a transactional id the batch reaches the validator: control batches never come
    # from clients (Kafka's LogValidator: INVALID_RECORD).
    answer = await produce(conn, "c", 0, marker, transactional_id="tid")
    assert answer.error_code == ErrorCode.invalid_record
    assert await fetch_all(conn, "c", 0) == b""
    conn.close()


async def test_idempotent_records_need_no_transactional_id(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    assert (await create(conn, "i")).error_code == 0
    r = await conn.call(22, 4, {"transactional_id": None, "transaction_timeout": 60000,
                                "producer_id": -1, "producer_epoch": -1})
    batch = build_batch([(b"k", b"v", [], TS)], producer_id=r.producer_id, producer_epoch=r.producer_epoch,
                        base_sequence=0)
    answer = await produce(conn, "i", 0, batch)
    assert (answer.error_code, answer.base_offset) == (0, 0)
    conn.close()


async def test_acks0_closes_the_connection(broker) -> None:
    conn = await RawConn.open(broker.config.port)
    assert (await create(conn, "z")).error_code == 0
    req = build(codec.request_schema(0, PRODUCE_V), _body(None, 0, [("z", 0, _txn(b"t"))]))
    await conn.send_raw(frame(codec.encode_request(req, 99, "raw-test", api_key=0, api_version=PRODUCE_V)))
    assert await conn.closed_by_peer()
    conn.close()
    conn = await RawConn.open(broker.config.port)
    assert await fetch_all(conn, "z", 0) == b""
    conn.close()
