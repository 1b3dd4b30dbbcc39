"""Version negotiation is the intersection of broker, kio and caller ranges."""

import pytest

from cluster.client.errors import KafkaUnsupportedVersion
from cluster.client.versions import ApiVersionTable, VersionRange
from cluster.wire.codec import known_versions


def test_highest_common_version() -> None:
    kio_fetch = known_versions(1)
    assert kio_fetch is not None
    table = ApiVersionTable({1: VersionRange(0, 11)})
    assert table.version_for(1) == 11
    assert table.version_for(1, wanted_max=7) == 7
    big = ApiVersionTable({1: VersionRange(0, 999)})
    assert big.version_for(1) == kio_fetch[1]


def test_broker_min_above_kio_or_wanted() -> None:
    table = ApiVersionTable({0: VersionRange(0, 2)})  # kio produce starts at 3
    with pytest.raises(KafkaUnsupportedVersion):
        table.version_for(0)
    table = ApiVersionTable({3: VersionRange(5, 12)})
    with pytest.raises(KafkaUnsupportedVersion):
        table.version_for(3, wanted_max=4)
    assert table.version_for(3, wanted_min=12) == 12


def test_api_missing_on_broker() -> None:
    table = ApiVersionTable({3: VersionRange(0, 12)})
    assert not table.supports(23)
    with pytest.raises(KafkaUnsupportedVersion):
        table.version_for(23)
