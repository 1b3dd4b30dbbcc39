"""Apache Kafka with an authorizer on, for the least-privilege tests of a mirror link.

`SecureKafka`'s listeners plus KRaft's `StandardAuthorizer` with deny-by-default: the
PLAINTEXT listener's principal (`User:ANONYMOUS`, also the inter-broker and controller
principal) and `User:admin` are super users, so tests set up topics and ACLs over
PLAINTEXT; the SCRAM user `mirror` can do exactly what the ACLs the test grants allow.
ACLs are managed with confluent-kafka's AdminClient (`grant`/`revoke`) or Kafka's own
`kafka-acls` tool (`acl_tool`).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from peers.kafka_broker import kafka_tool
from peers.kafka_secure import SecureKafka

MIRROR_USER = "mirror"
MIRROR_PASSWORD = "mirror-Least-Priv-41"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin-Super-73"
ACL_COMMAND = "org.apache.kafka.tools.AclCommand"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


class AclKafka(SecureKafka):
    def __init__(self, pki_dir: Path, **kwargs) -> None:
        super().__init__(pki_dir, **kwargs)
        for user, password in ((MIRROR_USER, MIRROR_PASSWORD), (ADMIN_USER, ADMIN_PASSWORD)):
            for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
                self.format_args += ["--add-scram", f"{mech}=[name={user},password={password}]"]
        self.extra_config.update({
            "authorizer.class.name": AUTHORIZER,
            "super.users": f"User:ANONYMOUS;User:{ADMIN_USER}",
            "allow.everyone.if.no.acl.found": "false",
        })

    def acl_tool(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`kafka-acls --bootstrap-server <PLAINTEXT> ARGS` (as a super user)."""
        return kafka_tool(ACL_COMMAND, "--bootstrap-server", self.bootstrap, *args)
