"""What the coordinator writes to its journal, and how groups are rebuilt from it.

Two kinds of record, as in Kafka's `__consumer_offsets`: one per committed offset keyed by
(group, topic, partition) and one per group holding its last persisted generation. Keys and
values are JSON (bytes as base64): the volume is small, and a human can read the journal
with `strings`. On restart a group with members comes back Stable at its persisted
generation with each member's session restarted, so consumers carry on without a rebalance
(Kafka does the same when a coordinator moves).
"""

from __future__ import annotations

import base64
import json
from typing import Callable

from cluster.groups.model import CommittedOffset, GroupConfig, GroupState, Member
from cluster.groups.state import Group, default_member_id


def group_key(group_id: str) -> bytes:
    return json.dumps(["g", group_id]).encode()


def offset_key(group_id: str, topic: str, partition: int) -> bytes:
    return json.dumps(["o", group_id, topic, partition]).encode()


def encode_offset(value: CommittedOffset) -> bytes:
    return json.dumps(
        {"o": value.offset, "e": value.leader_epoch, "m": value.metadata, "t": value.commit_timestamp_ms}
    ).encode()


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def encode_group(group: Group) -> bytes:
    """The group as of its current generation; only the selected protocol's metadata."""
    members = [
        {
            "id": m.member_id,
            "iid": m.group_instance_id,
            "cid": m.client_id,
            "host": m.client_host,
            "st": m.session_timeout_ms,
            "rt": m.rebalance_timeout_ms,
            "meta": _b64(m.metadata(group.protocol_name)),
            "asg": _b64(m.assignment),
        }
        for m in group.members.values()
    ]
    return json.dumps(
        {
            "type": group.protocol_type,
            "gen": group.generation_id,
            "proto": group.protocol_name,
            "leader": group.leader_id,
            "members": members if group.state == GroupState.STABLE else [],
        }
    ).encode()


def restore(
    live: dict[bytes, bytes],
    now_ms: int,
    config: GroupConfig | None = None,
    new_member_id: Callable[[str], str] = default_member_id,
) -> dict[str, Group]:
    """Rebuild every group from the journal's live records."""
    groups: dict[str, Group] = {}

    def get(gid: str) -> Group:
        if gid not in groups:
            groups[gid] = Group(gid, config, new_member_id)
        return groups[gid]

    for key, value in live.items():
        k = json.loads(key)
        v = json.loads(value)
        if k[0] == "o":
            _, gid, topic, partition = k
            get(gid).offsets[(topic, partition)] = CommittedOffset(v["o"], v["e"], v["m"], v["t"])
        elif k[0] == "g":
            g = get(k[1])
            g.protocol_type = v["type"]
            g.generation_id = v["gen"]
            g.protocol_name = v["proto"]
            for m in v["members"]:
                member = Member(
                    member_id=m["id"],
                    group_instance_id=m["iid"],
                    client_id=m["cid"],
                    client_host=m["host"],
                    session_timeout_ms=m["st"],
                    rebalance_timeout_ms=m["rt"],
                    protocol_type=v["type"] or "",
                    protocols=((v["proto"], base64.b64decode(m["meta"])),),
                    assignment=base64.b64decode(m["asg"]),
                    last_heartbeat_ms=now_ms,
                )
                g.members[member.member_id] = member
                if member.group_instance_id is not None:
                    g.static[member.group_instance_id] = member.member_id
            if g.members:
                g.state = GroupState.STABLE
                g.leader_id = v["leader"] if v["leader"] in g.members else next(iter(g.members))
    return groups
