"""The clusters of the TLS link row (`dcmirror-tls`): a dcmirror broker with a SASL_SSL
listener for the mirror and a PLAINTEXT one for the bench's own clients (backlog producer,
end-offset poller, latency producer and consumer), so the row differs from `dcmirror` only
in how the link talks to both ends and the ratio is the link's cost of TLS.

The link logs in as the bench broker's SCRAM-SHA-512 user with TLS 1.2+ and the broker's
CA verified, the settings of bench.broker's `dcmirror-sasl-ssl` target; the password
reaches the mirror through `${file:...}`. Once a listener authenticates, ACLs apply, so
`User:ANONYMOUS` (the PLAINTEXT clients) joins the bench user as a super user: the row
measures TLS and SASL, not ACL lookups.
"""
from __future__ import annotations

from bench.broker.targets import BENCH_PASSWORD, BENCH_USER, DcmirrorBroker
from bench.mirror.contenders import LinkEnd


class _Broker(DcmirrorBroker):
    def _secure_args(self, env: dict[str, str]) -> list[str]:
        args = super()._secure_args(env)
        if "--super-users" in args:
            args[args.index("--super-users") + 1] += ",User:ANONYMOUS"
        return args


class TlsLinkBroker:
    def __init__(self) -> None:
        self._broker = _Broker(sasl_ssl=True)
        self.link_end: LinkEnd | None = None

    def start(self) -> "TlsLinkBroker":
        b = self._broker.start()
        secret = b.workdir / "link.pw"
        secret.write_text(BENCH_PASSWORD)
        self.link_end = LinkEnd(b.bootstrap, {
            "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": BENCH_USER,
            "sasl_password": f"${{file:{secret}}}", "ssl_cafile": b.client_config["ssl.ca.location"]})
        return self

    @property
    def bootstrap(self) -> str:
        """The PLAINTEXT listener, for the bench's own clients."""
        return f"127.0.0.1:{self._broker.port}"

    @property
    def pid(self) -> int:
        return self._broker.pid

    def stop(self) -> None:
        self._broker.stop()
