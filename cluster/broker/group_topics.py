"""The broker's topic catalogue as the group coordinator's `TopicImage` (KIP-848 assignors).

The consumer-group machine (cluster/groups/consumer.py) sees topics only through this
narrow view, so it stays free of broker types and its tests can use a fixed image.
Internal topics that Metadata lists are in it too: Kafka's broker-side regex resolution
matches them like any topic (franz-go's Test848RegexBrokerResolves relies on it).
"""

from __future__ import annotations

import uuid
from typing import Any

from cluster.broker import authz, internal_topics


class CatalogueImage:
    def __init__(self, broker: Any) -> None:
        self.broker = broker

    def partitions(self, name: str) -> int | None:
        if name in self.broker.internal_topics.used:
            return internal_topics.PARTITIONS[name]
        meta = self.broker.catalogue.topics.get(name)
        return None if meta is None else meta.partitions

    def topic_id(self, name: str) -> uuid.UUID | None:
        if name in self.broker.internal_topics.used:
            return self.broker.internal_topics.topic_id(name)
        meta = self.broker.catalogue.topics.get(name)
        return None if meta is None else meta.uuid

    def name(self, topic_id: uuid.UUID) -> str | None:
        meta = self.broker.catalogue.by_id.get(topic_id)
        return meta.name if meta is not None else self.broker.internal_topics.by_id(topic_id)

    def visible(self, principal: str, host: str, name: str) -> bool:
        """Describe on the topic, checked for the member's principal as Kafka's authorizer
        filters a regex subscription (everyone sees everything when ACLs are not enforced)."""
        if not authz.enforced(self.broker) or not principal:
            return True
        return self.broker.acls.authorizer.authorize(principal, host, authz.Op.DESCRIBE, authz.TOPIC, name)

    def names(self) -> list[str]:
        return [*self.broker.catalogue.topics, *sorted(self.broker.internal_topics.used)]
