"""Authentication and authorization state of a dcmirror broker, without I/O.

`credentials` keeps SCRAM credentials (salted, as KIP-84) and checks PLAIN passwords
against them; the SASL exchanges and the ACL authorizer live beside it. The broker's
asyncio code (`cluster.broker`) is the only caller; nothing here opens a socket.
"""
