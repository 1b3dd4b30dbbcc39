"""Pure API version negotiation: what the broker offers, what kio can encode, what we want.

Kept apart from the connection so it can be tested without sockets and reused by tools
that print a broker's version table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cluster.wire.codec import known_versions

from .errors import KafkaUnsupportedVersion


@dataclass(frozen=True)
class VersionRange:
    min_version: int
    max_version: int


@dataclass
class ApiVersionTable:
    """The broker's advertised (min, max) per API key, from its ApiVersions response."""

    ranges: dict[int, VersionRange] = field(default_factory=dict)

    @classmethod
    def from_response(cls, api_keys: tuple) -> "ApiVersionTable":
        return cls({int(k.api_key): VersionRange(int(k.min_version), int(k.max_version)) for k in api_keys})

    def supports(self, api_key: int) -> bool:
        return api_key in self.ranges

    def version_for(self, api_key: int, wanted_max: int | None = None, wanted_min: int = 0) -> int:
        """The highest version the broker, kio and the caller all accept."""
        broker = self.ranges.get(api_key)
        if broker is None:
            raise KafkaUnsupportedVersion(api_key, "broker does not offer this API")
        ours = known_versions(api_key)
        if ours is None:
            raise KafkaUnsupportedVersion(api_key, "kio has no schema for this API")
        hi = min(broker.max_version, ours[1], wanted_max if wanted_max is not None else ours[1])
        lo = max(broker.min_version, ours[0], wanted_min)
        if hi < lo:
            raise KafkaUnsupportedVersion(
                api_key,
                f"no common version: broker {broker.min_version}-{broker.max_version}, "
                f"kio {ours[0]}-{ours[1]}, wanted {wanted_min}-{wanted_max}",
            )
        return hi
