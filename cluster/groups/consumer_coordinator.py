"""The coordinator's side of KIP-848 groups: heartbeats, describe, and the switch between kinds.

A mixin of `GroupCoordinator` (cluster/groups/coordinator.py) so that file stays about the
classic protocol; both kinds live in the same `groups` dict and journal, as in Kafka's
`__consumer_offsets`, and a group id is one kind at a time. An empty group changes kind
when a member of the other protocol arrives (its committed offsets are kept), as Kafka's
upgrade/downgrade of an empty group does; a non-empty group refuses the other protocol
(GROUP_ID_NOT_FOUND for a heartbeat, INCONSISTENT_GROUP_PROTOCOL for a JoinGroup), where
Kafka 4.x would also migrate a live group member by member (not implemented).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode

from cluster.groups.consumer import ConsumerGroup
from cluster.groups.consumer_model import ConsumerConfig, HeartbeatRequest, StaticTopics, TopicImage
from cluster.groups.model import CommittedOffset, Effect, GroupState, PersistOffsets
from cluster.groups.offsets import OffsetToCommit
from cluster.groups.state import Group

if TYPE_CHECKING:
    from cluster.groups.store import GroupStore

logger = logging.getLogger(__name__)
E = ErrorCode


class ConsumerGroupsMixin:
    """KIP-848 APIs of the coordinator; expects `groups`, `clock`, `_apply` and `config`."""

    groups: dict[str, Any]
    store: "GroupStore"
    consumer_config: ConsumerConfig
    topics: TopicImage

    def _init_consumer(self, consumer_config: ConsumerConfig | None) -> None:
        self.consumer_config = consumer_config or ConsumerConfig()
        self.topics = StaticTopics({})

    def _consumer_group(self, group_id: str, create: bool) -> ConsumerGroup | None | ErrorCode:
        group = self.groups.get(group_id)
        if isinstance(group, ConsumerGroup):
            return group
        if group is not None and (group.members or group.state not in (GroupState.EMPTY, GroupState.DEAD)):
            return E.group_id_not_found
        if not create:
            return None
        fresh = ConsumerGroup(group_id, self.consumer_config)
        if group is not None:  # an empty classic group becomes a consumer group, offsets kept
            fresh.offsets = group.offsets
            logger.info("group %s: empty classic group upgraded to the consumer protocol", group_id)
        self.groups[group_id] = fresh
        return fresh

    def classic_from_consumer(self, group_id: str) -> bool:
        """Before a JoinGroup: False if `group_id` is a non-empty consumer group, else make
        an empty consumer group a classic one (offsets kept)."""
        group = self.groups.get(group_id)
        if not isinstance(group, ConsumerGroup):
            return True
        if group.members:
            return False
        fresh = Group(group_id, self.config, self.new_member_id)  # type: ignore[attr-defined]
        fresh.offsets = group.offsets
        self.groups[group_id] = fresh
        logger.info("group %s: empty consumer group downgraded to the classic protocol", group_id)
        return True

    async def consumer_group_heartbeat(self, group_id: str, req: HeartbeatRequest) -> dict[str, Any]:
        if not group_id:
            return _hb_error(E.invalid_request, "GroupId can't be empty.")
        group = self._consumer_group(group_id, create=req.member_epoch == 0)
        if isinstance(group, int):
            return _hb_error(group, f"Group {group_id} is not a consumer group.")
        if group is None:
            return _hb_error(E.group_id_not_found, f"Group {group_id} not found.")
        result, effects = group.heartbeat(req, self.topics, self.clock())  # type: ignore[attr-defined]
        self._apply(effects)  # type: ignore[attr-defined]
        assignment = None
        if result.assignment is not None:
            assignment = {"topic_partitions": [{"topic_id": tid, "partitions": list(ps)}
                                               for tid, ps in result.assignment]}
        return {"error_code": result.error, "error_message": result.message, "member_id": result.member_id,
                "member_epoch": result.member_epoch, "heartbeat_interval": result.heartbeat_interval_ms,
                "assignment": assignment}

    async def consumer_group_describe(self, group_ids: list[str]) -> list[dict[str, Any]]:
        out = []
        for gid in group_ids:
            group = self.groups.get(gid)
            if isinstance(group, ConsumerGroup) and not group.dead:
                out.append(group.describe(self.topics))
                continue
            message = f"Group {gid} not found." if group is None else f"Group {gid} is not a consumer group."
            out.append({"error_code": E.group_id_not_found, "error_message": message, "group_id": gid,
                        "group_state": "", "group_epoch": -1, "assignment_epoch": -1, "assignor_name": "",
                        "members": [], "authorized_operations": -(2**31)})
        return out

    def consumer_offset_commit(self, group: ConsumerGroup, member_id: str, member_epoch: int,
                               wanted: list[OffsetToCommit], api_version: int = 9,
                               ) -> tuple[list[ErrorCode], list[Effect]]:
        error = group.commit_error(member_id, member_epoch, [(o.topic, o.partition) for o in wanted])
        if error is None and member_id in group.members and api_version < 9:
            error = E.unsupported_version  # Kafka: a consumer-protocol member commits with v9+
        if error is not None:
            return [error] * len(wanted), []
        now = self.clock()  # type: ignore[attr-defined]
        errors: list[ErrorCode] = []
        written: list[tuple[str, int, CommittedOffset | None]] = []
        for o in wanted:
            metadata = o.metadata or ""
            if len(metadata.encode()) > self.config.max_metadata_size:  # type: ignore[attr-defined]
                errors.append(E.offset_metadata_too_large)
                continue
            value = CommittedOffset(o.offset, o.leader_epoch, metadata, now)
            group.offsets[(o.topic, o.partition)] = value
            written.append((o.topic, o.partition, value))
            errors.append(E.none)
        return errors, [PersistOffsets(group.group_id, tuple(written))] if written else []


def _hb_error(code: int, message: str | None) -> dict[str, Any]:
    return {"error_code": code, "error_message": message, "member_id": None, "member_epoch": -1,
            "heartbeat_interval": 0, "assignment": None}
