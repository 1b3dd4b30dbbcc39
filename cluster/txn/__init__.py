"""Transactions: the transaction coordinator and the partition-side transaction index.

- `model.py`      transaction metadata, states and their journal encoding
- `machine.py`    the coordinator as a pure state machine (requests in, results + effects out)
- `coordinator.py` the asyncio driver: journal, markers into partition logs, offsets into
                   the group coordinator, timeouts, recovery after a crash
- `partition_index.py` per partition: first offset of each ongoing transaction (the last
                   stable offset) and the aborted-transaction index read_committed fetches use
"""
