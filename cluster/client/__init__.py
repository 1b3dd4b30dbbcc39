"""Small asyncio client for any Kafka-protocol cluster (used by the mirror, tools and tests).

Public API: `KafkaClient` and the data types its methods take and return.
"""

from .admin import ClusterDescription, ConfigEntry, NewTopic
from .client import KafkaClient
from .connection import BrokerConnection
from .data import EARLIEST, LATEST, MAX_TIMESTAMP, FetchPosition, FetchResult, ProduceResult
from .dial import Dialer, default_dial
from .errors import (
    KafkaAuthenticationError,
    KafkaConnectionError,
    KafkaError,
    KafkaProtocolError,
    KafkaTimeoutError,
    KafkaTlsError,
    KafkaUnsupportedVersion,
)
from .security import ClientSecurity, SaslCredentials, tls_context
from .groups import GroupDescription, GroupListing, MemberDescription
from .metadata import BrokerInfo, ClusterMetadata, PartitionMetadata, TopicMetadata
from .partitioner import murmur2, partition_for_key

__all__ = [
    "BrokerConnection", "BrokerInfo", "ClientSecurity", "KafkaAuthenticationError", "KafkaTlsError",
    "SaslCredentials", "tls_context", "ClusterDescription", "ClusterMetadata", "ConfigEntry", "Dialer",
    "EARLIEST", "FetchPosition", "FetchResult", "GroupDescription", "GroupListing", "KafkaClient",
    "KafkaConnectionError", "KafkaError", "KafkaProtocolError", "KafkaTimeoutError", "KafkaUnsupportedVersion",
    "LATEST", "MAX_TIMESTAMP", "MemberDescription", "NewTopic", "PartitionMetadata", "ProduceResult",
    "TopicMetadata", "default_dial", "murmur2", "partition_for_key",
]
