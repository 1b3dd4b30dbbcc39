"""A source that serves garbage cannot corrupt a dcmirror target (issue 9: "the mirror path
validates too"). A CRC-valid batch whose records_count lies is planted in the source's log
file while the source is down (recovery checks headers and CRCs, not records, so the source
serves it); the target's DcMirrorAppend refuses it, the link retries naming the error, and
the target keeps exactly the good batches before it, byte for byte."""

from __future__ import annotations

import struct

from tests import clients
from tests.cluster.wire.malformed import probes
from tests.mirror.conftest import link
from tests.mirror.replication.test_mirror_e2e import ends, raw_batches
from tests.processes import wait_until

TOPIC = "orders"


def _plant(segment_dir, base_offset: int) -> None:
    """Append the lying batch at `base_offset` to the partition's last segment file, with the
    leader epoch of the batch before it (base offset and epoch sit outside the CRC)."""
    seg = max(segment_dir.glob("*.log"))
    data = seg.read_bytes()
    pos = epoch = 0
    while pos < len(data):
        epoch = struct.unpack_from(">i", data, pos + 12)[0]
        pos += 12 + struct.unpack_from(">i", data, pos + 8)[0]
    poison = bytearray(next(p for p in probes() if p.name == "records_count>records").batch)
    struct.pack_into(">qii", poison, 0, base_offset, len(poison) - 12, epoch)
    with open(seg, "ab") as f:
        f.write(poison)


def test_garbage_from_the_source_never_reaches_the_target(dc) -> None:
    clients.create_topic(dc.east.bootstrap, TOPIC, 1)
    clients.produce_confluent(dc.east.bootstrap, TOPIC, clients.make_records("good", 10), "none")
    m = dc.mirror(dc.config([link("east-to-west", "east", "west", [TOPIC])]))
    wait_until(lambda: ends(dc.west.bootstrap, TOPIC, 1) == {0: 10}, what="west caught up")
    before = raw_batches(dc.west.bootstrap, TOPIC, 1)
    assert before == raw_batches(dc.east.bootstrap, TOPIC, 1)

    dc.east.kill9()
    _plant(dc.east.data_dir / f"{TOPIC}-0", 10)
    dc.east.start()
    assert ends(dc.east.bootstrap, TOPIC, 1) == {0: 14}  # the source serves the lie (4 records)
    clients.produce_confluent(dc.east.bootstrap, TOPIC, clients.make_records("after", 5), "none")

    wait_until(lambda: "INVALID_RECORD" in m.log_text().upper(), what="the link names the refusal")
    status = wait_until(lambda: (s := m.status()["links"][0])["state"] == "retrying"
                        and "INVALID_RECORD" in (s["error"] or "").upper() and s, what="/status names it")
    assert status["partitions"][0]["position"] == 10
    assert ends(dc.west.bootstrap, TOPIC, 1) == {0: 10}
    assert raw_batches(dc.west.bootstrap, TOPIC, 1) == before  # nothing written past the lie
