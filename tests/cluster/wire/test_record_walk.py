"""The C record walker against its Python oracle: same verdict, message and record index on
valid batches and on random corruptions of them."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.wire import record_walk
from cluster.wire.batch_builder import build_batch
from cluster.wire.record_batch import HEADER_SIZE


def test_c_walker_is_built_where_required() -> None:
    if not record_walk.ACCELERATED:
        if os.environ.get("DCMIRROR_REQUIRE_C_WALKER"):
            pytest.fail("the C record walker did not build (pip install -e . needs a C compiler)")
        pytest.skip("C record walker not built here; the Python walker is in use")


def _verdict(fn, buf: bytes, count: int, sequential: bool, lod: int):
    try:
        return fn(buf, count, sequential, lod)
    except record_walk.RecordDefect as exc:
        return (exc.message, exc.record_index)


records = st.lists(
    st.tuples(st.one_of(st.none(), st.binary(max_size=20)), st.one_of(st.none(), st.binary(max_size=40)),
              st.lists(st.tuples(st.text(max_size=5), st.one_of(st.none(), st.binary(max_size=5))), max_size=3),
              st.integers(0, 10**6)),
    min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(records, st.data())
def test_c_and_python_agree(recs, data) -> None:
    if not record_walk.ACCELERATED:
        pytest.skip("C record walker not built")
    batch = bytearray(build_batch([(k, v, h, ts) for k, v, h, ts in recs]))
    payload = bytes(batch[HEADER_SIZE:])
    n = len(recs)
    assert _verdict(record_walk.walk, payload, n, True, n - 1) == _verdict(
        record_walk.walk_python, payload, n, True, n - 1)
    mutated = bytearray(payload)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(mutated) - 1))
        mutated[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(mutated)))
    for buf in (bytes(mutated), bytes(mutated[:cut])):
        for sequential in (True, False):
            count = data.draw(st.integers(0, n + 1))
            assert _verdict(record_walk.walk, buf, count, sequential, n - 1) == _verdict(
                record_walk.walk_python, buf, count, sequential, n - 1)
