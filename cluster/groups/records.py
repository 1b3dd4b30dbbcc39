"""What the coordinator writes to its journal, and how groups are rebuilt from it.

Two kinds of record, as in Kafka's `__consumer_offsets`: one per committed offset keyed by
(group, topic, partition) and one per group holding its last persisted generation (a
KIP-848 consumer group: its group epoch, target assignment and members' epochs and
assignments, which come back as they were, each member's session restarted). Keys and
values are JSON (bytes as base64): the volume is small, and a human can read the journal
with `strings`. On restart a group with members comes back Stable at its persisted
generation with each member's session restarted, so consumers carry on without a rebalance
(Kafka does the same when a coordinator moves).
"""

from __future__ import annotations

import base64
import json
from typing import Callable

from cluster.groups.consumer import ConsumerGroup
from cluster.groups.consumer_model import ConsumerConfig, ConsumerMember, MemberState
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
            "es": group.empty_since_ms,  # offset expiry counts from here (Kafka's currentStateTimestamp)
        }
    ).encode()


def _assignment(a: dict[str, list[int]]) -> dict[str, frozenset[int]]:
    return {t: frozenset(ps) for t, ps in a.items()}


def _plain(a: dict[str, frozenset[int]]) -> dict[str, list[int]]:
    return {t: sorted(ps) for t, ps in sorted(a.items())}


def encode_consumer_group(group: ConsumerGroup) -> bytes:
    """What Kafka's ConsumerGroupMetadata, member, target and current-assignment records
    hold: the group epoch, the target at its epoch, each member's epoch and assignment."""
    members = [
        {"id": m.member_id, "iid": m.instance_id, "rack": m.rack_id, "cid": m.client_id, "host": m.client_host,
         "principal": m.principal, "addr": m.host,
         "rt": m.rebalance_timeout_ms, "names": list(m.subscribed_topic_names), "regex": m.subscribed_topic_regex,
         "assignor": m.server_assignor, "epoch": m.member_epoch, "prev": m.previous_member_epoch,
         "state": m.state.value, "asg": _plain(m.assigned), "rev": _plain(m.revoking)}
        for m in group.members.values()
    ]
    return json.dumps({
        "kind": "consumer", "epoch": group.epoch, "aepoch": group.assignment_epoch, "assignor": group.assignor,
        "subscribed": group.subscribed, "target": {m: _plain(a) for m, a in group.target.items()},
        "members": members,
    }).encode()


def encode_any_group(group: Group | ConsumerGroup) -> bytes:
    return encode_consumer_group(group) if isinstance(group, ConsumerGroup) else encode_group(group)


def _restore_consumer(gid: str, v: dict, now_ms: int, config: ConsumerConfig | None) -> ConsumerGroup:
    g = ConsumerGroup(gid, config)
    g.epoch, g.assignment_epoch, g.assignor = v["epoch"], v["aepoch"], v["assignor"]
    g.subscribed = dict(v["subscribed"])
    g.target = {m: _assignment(a) for m, a in v["target"].items()}
    for m in v["members"]:
        member = ConsumerMember(
            m["id"], instance_id=m["iid"], rack_id=m["rack"], client_id=m["cid"], client_host=m["host"],
            principal=m.get("principal", ""), host=m.get("addr", ""),
            rebalance_timeout_ms=m["rt"], subscribed_topic_names=tuple(m["names"]),
            subscribed_topic_regex=m["regex"], server_assignor=m["assignor"], member_epoch=m["epoch"],
            previous_member_epoch=m["prev"], state=MemberState(m["state"]), assigned=_assignment(m["asg"]),
            revoking=_assignment(m["rev"]), session_deadline_ms=now_ms + g.config.session_timeout_ms)
        member.assigned_at = {(t, p): member.member_epoch for t, ps in member.assigned.items() for p in ps}
        if member.revoking:
            member.revocation_deadline_ms = now_ms + member.rebalance_timeout_ms
        g.members[member.member_id] = member
        if member.instance_id is not None:
            g.static[member.instance_id] = member.member_id
    return g


def restore(
    live: dict[bytes, bytes],
    now_ms: int,
    config: GroupConfig | None = None,
    new_member_id: Callable[[str], str] = default_member_id,
    consumer_config: ConsumerConfig | None = None,
) -> dict[str, Group | ConsumerGroup]:
    """Rebuild every group from the journal's live records."""
    groups: dict[str, Group | ConsumerGroup] = {}

    def get(gid: str) -> Group | ConsumerGroup:
        if gid not in groups:
            groups[gid] = Group(gid, config, new_member_id)
        return groups[gid]

    for key, value in live.items():
        k = json.loads(key)
        v = json.loads(value)
        if k[0] == "o":
            _, gid, topic, partition = k
            get(gid).offsets[(topic, partition)] = CommittedOffset(v["o"], v["e"], v["m"], v["t"])
        elif k[0] == "g" and v.get("kind") == "consumer":
            offsets = groups[k[1]].offsets if k[1] in groups else {}
            groups[k[1]] = _restore_consumer(k[1], v, now_ms, consumer_config)
            groups[k[1]].offsets.update(offsets)
        elif k[0] == "g":
            g = get(k[1])
            assert isinstance(g, Group)
            g.protocol_type = v["type"]
            g.generation_id = v["gen"]
            g.protocol_name = v["proto"]
            g.empty_since_ms = v.get("es")
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
            if not g.members and g.protocol_type and g.empty_since_ms is None:
                g.empty_since_ms = now_ms  # emptied before "es" was recorded: count from now
            if g.members:
                g.state = GroupState.STABLE
                g.leader_id = v["leader"] if v["leader"] in g.members else next(iter(g.members))
    return groups
