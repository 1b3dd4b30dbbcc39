"""Small asyncio client for any Kafka-protocol cluster (used by the mirror, tools and tests)."""
