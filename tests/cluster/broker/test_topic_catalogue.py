"""The topic catalogue as an append-only journal: replay, migration, torn tails, rollback."""

from __future__ import annotations

import errno
import json
import uuid
from pathlib import Path

from kio.schema.errors import ErrorCode

from cluster.broker.config import BrokerConfig
from cluster.broker.server import Broker
from cluster.broker.topics import TopicCatalogue
from tests.cluster.broker.rawconn import RawConn
from tests.cluster.broker.test_topic_limits import create_partitions, create_topics, metadata_names, topic


def test_changes_replay_from_the_journal(tmp_path: Path) -> None:
    cat = TopicCatalogue(tmp_path)
    a = cat.create("a", 2, {"retention.ms": "5"})
    cat.create("b", 1, {})
    with cat.batch():
        for i in range(100):
            cat.create(f"bulk.{i}", 1, {})
        cat.set_configs("a", {"retention.ms": "7"})
    cat.add_partitions("b", 4)
    cat.delete("bulk.3")
    assert cat.bump_leader_epoch("a", 1) == 1
    cat.close()
    again = TopicCatalogue(tmp_path)
    assert again.existed
    assert set(again.topics) == {"a", "b"} | {f"bulk.{i}" for i in range(100) if i != 3}
    ra = again.topics["a"]
    assert (ra.topic_id, ra.configs, ra.leader_epochs) == (a.topic_id, {"retention.ms": "7"}, [0, 1])
    assert again.topics["b"].partitions == 4 and again.topics["b"].leader_epochs == [0] * 4
    assert again.by_id[uuid.UUID(a.topic_id)] is ra
    assert not (tmp_path / "meta" / "topics.json").exists()
    again.close()


def test_torn_tail_is_dropped(tmp_path: Path) -> None:
    cat = TopicCatalogue(tmp_path)
    cat.create("whole", 1, {})
    cat.create("torn", 3, {})
    cat.close()
    journal = tmp_path / "meta" / "topics" / "journal"
    journal.write_bytes(journal.read_bytes()[:-7])  # the last record half-written
    again = TopicCatalogue(tmp_path)
    assert set(again.topics) == {"whole"}
    again.create("next", 1, {})
    again.close()
    assert set(TopicCatalogue(tmp_path).topics) == {"whole", "next"}


def test_legacy_json_catalogue_is_migrated(tmp_path: Path) -> None:
    meta = tmp_path / "meta"
    meta.mkdir()
    tid = str(uuid.uuid4())
    doc = {"version": 1, "topics": [
        {"name": "old", "topic_id": tid, "partitions": 2, "configs": {"cleanup.policy": "compact"},
         "leader_epochs": [3, 4]}]}
    (meta / "topics.json").write_text(json.dumps(doc, indent=1))
    cat = TopicCatalogue(tmp_path)
    assert cat.existed
    old = cat.topics["old"]
    assert (old.topic_id, old.partitions, old.configs, old.leader_epochs) == (
        tid, 2, {"cleanup.policy": "compact"}, [3, 4])
    assert not (meta / "topics.json").exists() and (meta / "topics" / "journal").exists()
    cat.create("new", 1, {})
    cat.close()
    assert set(TopicCatalogue(tmp_path).topics) == {"old", "new"}


def test_migration_cut_before_removing_the_old_file(tmp_path: Path) -> None:
    """A crash after the journal was renamed into place but before topics.json was removed:
    the journal wins (it may already hold newer changes)."""
    cat = TopicCatalogue(tmp_path)
    cat.create("current", 1, {})
    cat.close()
    stale = {"version": 1, "topics": [{"name": "stale", "topic_id": str(uuid.uuid4()),
                                       "partitions": 1, "configs": {}, "leader_epochs": [0]}]}
    (tmp_path / "meta" / "topics.json").write_text(json.dumps(stale))
    again = TopicCatalogue(tmp_path)
    assert set(again.topics) == {"current"}
    assert not (tmp_path / "meta" / "topics.json").exists()
    again.close()


async def test_failed_journal_write_rolls_back_the_whole_request(broker, monkeypatch) -> None:
    conn = await RawConn.open(broker.config.port)
    try:
        assert (await create_topics(conn, topic("before", 2)))["before"].error_code == 0

        def full_disk(records) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(broker.catalogue._store, "append", full_disk)
        res = await create_topics(conn, topic("x", 3), topic("y", 4), topic("before", 1))
        assert [res[n].error_code for n in ("x", "y")] == [ErrorCode.unknown_server_error] * 2
        assert "No space left" in res["x"].error_message
        assert res["before"].error_code == ErrorCode.topic_already_exists
        assert (await create_partitions(conn, "before", 5)).error_code == ErrorCode.unknown_server_error
        monkeypatch.undo()
        assert await metadata_names(conn) == {"before": 2}
        assert sorted(broker.partitions) == [("before", 0), ("before", 1)]
        res = await create_topics(conn, topic("x", 3))
        assert res["x"].error_code == 0
        assert await metadata_names(conn) == {"before": 2, "x": 3}
    finally:
        conn.close()


async def test_topics_come_back_after_restart(tmp_path: Path) -> None:
    cfg = BrokerConfig(name="t", data_dir=tmp_path / "b", port=0)
    b = Broker(cfg)
    await b.start()
    conn = await RawConn.open(cfg.port)
    try:
        res = await create_topics(conn, *(topic(f"many.{i}", 1) for i in range(2000)))
        assert all(r.error_code == 0 for r in res.values())
        assert (await create_partitions(conn, "many.7", 3)).error_code == 0
    finally:
        conn.close()
        await b.stop()
    cfg.port = 0
    b = Broker(cfg)
    await b.start()
    conn = await RawConn.open(cfg.port)
    try:
        names = await metadata_names(conn)
        assert len(names) == 2000 and names["many.7"] == 3 and names["many.1999"] == 1
    finally:
        conn.close()
        await b.stop()
