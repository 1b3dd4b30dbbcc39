"""Group coordinator: a pure state machine and the asyncio driver around it."""
