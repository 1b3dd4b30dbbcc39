"""Checkpoints fail closed on a real target (issue 11, scenario c): the target is a dcmirror
cluster with SASL_SSL and ACLs, and DescribeGroups fails there for the link's principal
(an explicit DENY Describe on the group, while Read, which OffsetCommit needs, stays
granted). The mirror copies the data but commits no checkpoint for the group, and says
why in its log; once the DENY is removed, the group's offsets converge on the target."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.mirror.conftest import link
from tests.mirror.failover_helpers import committed as plain_committed
from tests.mirror.failover_helpers import consume_group
from tests.processes import MirrorProcess, wait_until
from tests.secure_link import (LINK_PASSWORD, LINK_PASSWORD_ENV, LINK_USER, SecureDcmirror, committed, ends,
                               grant_what_check_misses, mirror_config)
from tests import clients

PRINCIPAL = f"User:{LINK_USER}"
P = 2
REFUSED = "not committing checkpoints: DescribeGroups on the target failed"


@pytest.fixture
def west(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(LINK_PASSWORD_ENV, LINK_PASSWORD)
    d = SecureDcmirror(tmp_path, name="west").start()
    yield d
    d.stop()


def _group_describe_acl(admin: dict, group: str, *, add: bool) -> None:
    from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                       AdminClient, ResourcePatternType, ResourceType)

    client = AdminClient(dict(admin))
    args = (ResourceType.GROUP, group, ResourcePatternType.LITERAL, PRINCIPAL, "*", AclOperation.DESCRIBE,
            AclPermissionType.DENY)
    futures = client.create_acls([AclBinding(*args)], request_timeout=30) if add \
        else client.delete_acls([AclBindingFilter(*args)], request_timeout=30)
    for fut in futures.values():
        fut.result(30)


def test_describe_groups_refused_on_the_target_commits_no_checkpoint(cluster, west, tmp_path) -> None:
    topic, group = "orders", "billing"
    clients.create_topic(cluster.bootstrap, topic, P)
    clients.produce_confluent(cluster.bootstrap, topic, [(f"k{i % 7}".encode(), f"v{i}".encode(), []) for i in range(60)], "lz4")
    consume_group(cluster.bootstrap, topic, group, limit=25)
    on_east = {p: o for p, o in plain_committed(cluster.bootstrap, topic, group, P).items() if o >= 0}
    assert sum(on_east.values()) == 25
    cfg = mirror_config(tmp_path / "m.yaml", {"east": (cluster.bootstrap, {}), "west": (west.bootstrap,
                                                                                         west.client_block())},
                        [link("e2w", "east", "west", [re.escape(topic)], groups=[re.escape(group)])])
    grant_what_check_misses(cfg, "e2w", west.admin(), PRINCIPAL)
    _group_describe_acl(west.admin(), group, add=True)
    m = MirrorProcess(cfg).start()
    try:
        wait_until(lambda: sum(ends(west.admin(), topic, P).values()) == 60, what="data mirrored")
        # two checkpoint rounds refused (interval 1 s): each logs why it commits nothing
        wait_until(lambda: m.log_text().count(REFUSED) >= 2, what="two checkpoint rounds refused")
        assert committed(west.admin(), topic, group, P) == {}
        assert "GROUP_AUTHORIZATION_FAILED" in m.log_text()
        _group_describe_acl(west.admin(), group, add=False)
        wait_until(lambda: committed(west.admin(), topic, group, P) == on_east, what="checkpoints converged")
    finally:
        m.stop()
