"""Sans-I/O Kafka wire protocol: framing, headers, API messages (kio) and RecordBatch v2.

Nothing in this package imports asyncio or touches sockets.
"""
