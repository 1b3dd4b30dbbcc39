"""The broker's topic catalogue as the group coordinator's `TopicImage` (KIP-848 assignors).

The consumer-group machine (cluster/groups/consumer.py) sees topics only through this
narrow view, so it stays free of broker types and its tests can use a fixed image.
Internal topics are not in the catalogue, so a regex subscription never matches them.
"""

from __future__ import annotations

import uuid
from typing import Any


class CatalogueImage:
    def __init__(self, broker: Any) -> None:
        self.broker = broker

    def partitions(self, name: str) -> int | None:
        meta = self.broker.catalogue.topics.get(name)
        return None if meta is None else meta.partitions

    def topic_id(self, name: str) -> uuid.UUID | None:
        meta = self.broker.catalogue.topics.get(name)
        return None if meta is None else meta.uuid

    def name(self, topic_id: uuid.UUID) -> str | None:
        meta = self.broker.catalogue.by_id.get(topic_id)
        return None if meta is None else meta.name

    def names(self) -> list[str]:
        return list(self.broker.catalogue.topics)
