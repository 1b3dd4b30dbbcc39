"""The asyncio broker: listeners, ordered per-connection replies, one handler module per API."""
