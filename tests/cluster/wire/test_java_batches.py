"""Our batches against Apache Kafka's own record code (kafka-clients, run on the JVM).

The reference implementation is the one whose quirks matter: snappy-java's xerial framing,
KafkaLZ4BlockInputStream (which refuses linked LZ4 blocks), zstd-jni, and the Java
MemoryRecordsBuilder's header conventions. `java/BatchCheck.java` validates and dumps what
we built, rebuilds the same records with Java, and writes two transaction markers; this
test compares all of that with our encoder and decoder. One JVM run serves every check.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.wire.batch_builder import build_batch
from cluster.wire.control import build_control_batch, parse_control_record
from cluster.wire.records import decode_batches

pytestmark = pytest.mark.interop

_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from peers.common import PeerUnavailable  # noqa: E402
from peers.fetch import ensure_kafka, java_path  # noqa: E402

CHECKER = Path(__file__).parent / "java" / "BatchCheck.java"
BIG = bytes(range(256)) * 400  # 100 KiB: several xerial (32 KiB) and lz4 (64 KiB) blocks
RECORDS = [
    (b"key-0", b"value-0" * 30, [("trace", b"abc"), ("null", None), ("\u00e9t\u00e9", b"")], 1_700_000_000_500),
    (None, b"no key", [], 1_700_000_000_100),
    (b"no value", None, [], 1_700_000_000_900),
    (b"", b"", [], 1_700_000_000_200),
    (b"big", BIG, [], 1_700_000_000_300),
]
OFFSET_DELTAS = [0, 1, 5, 6, 20]  # gaps, as after compaction
PRODUCER = {"producer_id": 4_000, "producer_epoch": 2, "base_sequence": 10}


def _hex(data: bytes | None) -> str:
    return "~" if data is None else "x" + data.hex()


def _expected_dump_records(base_offset: int) -> list[str]:
    lines = []
    for delta, (key, value, headers, ts) in zip(OFFSET_DELTAS, RECORDS):
        parts = ["REC", str(base_offset + delta), str(ts), _hex(key), _hex(value), str(len(headers))]
        for hkey, hvalue in headers:
            parts += [_hex(hkey.encode()), _hex(hvalue)]
        lines.append(" ".join(parts))
    return lines


def _unavailable(reason: str) -> None:
    """Skip off CI; fail on CI, where a silently skipped interop test proves nothing."""
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"Java peer unavailable on CI: {reason}", pytrace=False)
    pytest.skip(f"Java peer unavailable: {reason}")


@pytest.fixture(scope="module")
def java_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[str], bytes, bytes]:
    try:
        java = java_path()
        libs = ensure_kafka()
    except PeerUnavailable as exc:
        _unavailable(str(exc))
    modules = subprocess.run([java, "--list-modules"], capture_output=True, text=True).stdout
    if "jdk.compiler@" not in modules:
        # `java File.java` compiles in memory, which a JRE cannot do.
        _unavailable("running BatchCheck.java needs a JDK (apt-get install openjdk-17-jdk-headless)")
    ours = b"".join(
        build_batch(RECORDS, base_offset=100 * codec, codec=codec, offset_deltas=OFFSET_DELTAS, **PRODUCER)
        for codec in range(5)
    ) + build_control_batch(4_000, 2, True, 17, 1_700_000_000_999, base_offset=500)
    tmp = tmp_path_factory.mktemp("java")
    (tmp / "ours.bin").write_bytes(ours)
    res = subprocess.run(
        [java, "-Xmx256m", "-cp", f"{libs}/*", str(CHECKER),
         str(tmp / "ours.bin"), str(tmp / "java.bin"), str(tmp / "markers.bin")],
        capture_output=True, text=True, timeout=180,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    dump = [line for line in res.stdout.splitlines() if line]
    return ours, dump, (tmp / "java.bin").read_bytes(), (tmp / "markers.bin").read_bytes()


def test_java_validates_and_reads_our_batches(java_run) -> None:  # type: ignore[no-untyped-def]
    _, dump, _, _ = java_run
    expected: list[str] = []
    for codec in range(5):
        base = 100 * codec
        expected.append(f"BATCH {base} {codec} false false 4000 2 10 1700000000900 {base + 20}")
        expected += _expected_dump_records(base)
    expected += [
        "BATCH 500 0 true true 4000 2 -1 1700000000999 500",
        f"REC 500 1700000000999 x00000001 x{(0).to_bytes(2, 'big').hex()}{(17).to_bytes(4, 'big').hex()} 0",
        "MARKER COMMIT 17",
    ]
    assert dump == expected


def test_we_read_batches_java_builds(java_run) -> None:  # type: ignore[no-untyped-def]
    _, _, rebuilt, _ = java_run
    batches = decode_batches(rebuilt, allow_partial_tail=False)
    assert [h.compression for h, _ in batches] == [0, 1, 2, 3, 4]
    for codec, (header, records) in enumerate(batches):
        assert (header.producer_id, header.producer_epoch, header.base_sequence) == (4_000, 2, 10)
        assert header.base_timestamp == RECORDS[0][3]
        assert [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in records] == [
            (100 * codec + d, ts, k, v, h) for d, (k, v, h, ts) in zip(OFFSET_DELTAS, RECORDS)
        ]


def test_uncompressed_batch_is_byte_identical_to_java(java_run) -> None:  # type: ignore[no-untyped-def]
    ours, _, rebuilt, _ = java_run
    first = int.from_bytes(ours[8:12], "big") + 12
    assert rebuilt[:first] == ours[:first]


def test_transaction_markers_are_byte_identical_to_java(java_run) -> None:  # type: ignore[no-untyped-def]
    _, _, _, markers = java_run
    commit = build_control_batch(4_000, 2, True, 17, 1_700_000_000_000, base_offset=55, partition_leader_epoch=3)
    abort = build_control_batch(4_000, 2, False, 18, 1_700_000_000_001, base_offset=56, partition_leader_epoch=3)
    assert markers == commit + abort
    decoded = decode_batches(markers)
    assert [parse_control_record(rs[0]) for _, rs in decoded] == [(True, 17), (False, 18)]
