"""Listeners: the addresses a broker accepts clients on, each with its security protocol.

Pure (no sockets) so the broker, its CLI and the cluster YAML reader (`mirror.config.model`,
which may not import `cluster.broker`) share one parser and one set of refusals.

Why a separate module: the CLI, the cluster YAML and tests all describe listeners in
Kafka's own spelling (`NAME=PROTOCOL://HOST:PORT`, plus an advertised `NAME=HOST:PORT`),
and each must refuse the same mistakes with the same sentence. A broker serves every
listener at once; Metadata, FindCoordinator and DescribeCluster answer with the advertised
address of the listener the client came in on, as Kafka does, so a client that reached
the TLS port is never sent to the plaintext one.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
CLIENT_AUTH = ("none", "requested", "required")

_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_LISTENER_RE = re.compile(r"(?P<name>[^=]*)=(?P<proto>[^:/]*)://(?P<addr>.*)")
_WILDCARDS = ("0.0.0.0", "::", "")


@dataclass
class Listener:
    """One listener. `port` 0 asks for a free port; `Broker.start` writes the bound one
    back, and the advertised port too when it was not given."""

    name: str
    protocol: str
    host: str
    port: int
    advertised_host: str | None = None
    advertised_port: int | None = None

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def advertised(self) -> tuple[str, int]:
        """What clients that came in on this listener are told to connect to."""
        return (self.advertised_host or self.host,
                self.port if self.advertised_port is None else self.advertised_port)

    def url(self) -> str:
        return f"{self.name}://{_join(self.host, self.port)}"

    def describe(self) -> str:
        """`NAME=PROTOCOL://HOST:PORT`, with the advertised address when it differs."""
        text = f"{self.name}={self.protocol}://{_join(self.host, self.port)}"
        adv = self.advertised
        if adv != (self.host, self.port):
            text += f" (advertised {_join(*adv)})"
        return text


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_host_port(text: str, what: str) -> tuple[str, int]:
    """`HOST:PORT` or `[IPV6]:PORT`; ValueError with a sentence naming `what`."""
    m = re.fullmatch(r"\[(?P<v6>[^\]]*)\]:(?P<p6>[^:]*)|(?P<host>[^:\[\]]*):(?P<port>[^:]*)", text)
    if not m:
        raise ValueError(f"{what} {text!r} must be HOST:PORT (an IPv6 address in brackets: [::1]:9092)")
    host = m["v6"] if m["v6"] is not None else m["host"]
    port_text = m["p6"] if m["v6"] is not None else m["port"]
    if not host:
        raise ValueError(f"{what} {text!r} has no host; give one (0.0.0.0 listens on every interface)")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{what} {text!r} has port {port_text!r}, which is not a number in 0..65535")
    return host, int(port_text)


def parse_listener(text: str) -> Listener:
    """`NAME=PROTOCOL://HOST:PORT` (Kafka's listener syntax with the security protocol
    map inline). ValueError with one sentence."""
    m = _LISTENER_RE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"listener {text!r} must look like NAME=PROTOCOL://HOST:PORT, "
                         f"e.g. INTERNAL=SASL_SSL://0.0.0.0:9093")
    name, proto = m["name"], m["proto"].upper()
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"listener name {name!r} in {text!r} must start with a letter and use only "
                         f"letters, digits, '_' and '-'")
    if proto not in PROTOCOLS:
        raise ValueError(f"listener {name} has protocol {m['proto']!r}; use one of {', '.join(PROTOCOLS)}")
    host, port = split_host_port(m["addr"], f"listener {name} address")
    return Listener(name=name, protocol=proto, host=host, port=port)


def parse_advertised(text: str) -> tuple[str, str, int]:
    """`NAME=HOST:PORT` -> (name, host, port)."""
    name, sep, addr = text.strip().partition("=")
    if not sep or not name:
        raise ValueError(f"advertised address {text!r} must look like NAME=HOST:PORT, e.g. "
                         f"EXTERNAL=broker1.example.com:9093")
    host, port = split_host_port(addr, f"advertised address of listener {name}")
    if port == 0:
        raise ValueError(f"advertised address of listener {name} has port 0; clients need the real port")
    return name, host, port


def apply_advertised(listeners: list[Listener], advertised: list[str]) -> None:
    """Set each `NAME=HOST:PORT` on the listener it names (once each)."""
    by_name = {lst.name.upper(): lst for lst in listeners}
    seen: set[str] = set()
    for text in advertised:
        name, host, port = parse_advertised(text)
        lst = by_name.get(name.upper())
        if lst is None:
            raise ValueError(f"advertised address {text!r} names listener {name!r}, which is not defined; "
                             f"listeners: {', '.join(x.name for x in listeners)}")
        if name.upper() in seen:
            raise ValueError(f"listener {name} is given more than one advertised address")
        seen.add(name.upper())
        lst.advertised_host, lst.advertised_port = host, port


def check_listeners(listeners: list[Listener]) -> None:
    """Names unique (case-insensitively, as Kafka), fixed ports not shared, advertised
    addresses routable. ValueError with one sentence."""
    if not listeners:
        raise ValueError("a broker needs at least one listener")
    names: dict[str, Listener] = {}
    ports: dict[int, Listener] = {}
    for lst in listeners:
        other = names.get(lst.name.upper())
        if other is not None:
            raise ValueError(f"listener name {lst.name} is used twice; each listener needs its own name")
        names[lst.name.upper()] = lst
        if lst.port:
            other = ports.get(lst.port)
            if other is not None:
                raise ValueError(f"listeners {other.name} and {lst.name} both use port {lst.port}")
            ports[lst.port] = lst
        if lst.advertised_host is None and lst.host in _WILDCARDS:
            raise ValueError(f"listener {lst.name} listens on {lst.host}, which clients cannot connect to; "
                             f"give its advertised address (--advertised {lst.name}=HOST:PORT)")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: addresses only this machine can reach."""
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def authenticates(listener: Listener, ssl_client_auth: str) -> bool:
    """SASL listeners authenticate; so do SSL listeners that require a client certificate."""
    return listener.sasl or (listener.protocol == "SSL" and ssl_client_auth == "required")


def check_security(listeners: list[Listener], *, ssl_certfile: Path | None, ssl_keyfile: Path | None,
                   ssl_cafile: Path | None, ssl_client_auth: str, allow_unauthenticated: bool) -> None:
    """TLS settings present exactly when some listener uses them, and no listener that
    lets anyone in on an address other machines can reach, unless allowed. ValueError
    with one sentence."""
    if ssl_client_auth not in CLIENT_AUTH:
        raise ValueError(f"ssl_client_auth must be one of {', '.join(CLIENT_AUTH)}, got {ssl_client_auth!r}")
    tls = [lst for lst in listeners if lst.tls]
    if tls and (ssl_certfile is None or ssl_keyfile is None):
        raise ValueError(f"listener {tls[0].name} uses {tls[0].protocol}, which needs the broker's "
                         f"certificate and key (ssl_certfile and ssl_keyfile)")
    if not tls:
        for key, value in (("ssl_certfile", ssl_certfile), ("ssl_keyfile", ssl_keyfile),
                           ("ssl_cafile", ssl_cafile)):
            if value is not None:
                raise ValueError(f"{key} is set but no listener uses SSL or SASL_SSL, so it would be ignored")
    if ssl_client_auth != "none":
        if not any(lst.protocol == "SSL" for lst in listeners):
            raise ValueError("ssl_client_auth is set but no listener uses SSL (as in Kafka, it does not "
                             "apply to SASL_SSL, whose clients authenticate with SASL), so it would be ignored")
        if ssl_cafile is None:
            raise ValueError(f"ssl_client_auth {ssl_client_auth} needs ssl_cafile, the CA that "
                             f"signs the client certificates to accept")
    if not allow_unauthenticated:
        for lst in listeners:
            if not authenticates(lst, ssl_client_auth) and not is_loopback(lst.host):
                raise ValueError(
                    f"listener {lst.name} would let anyone who can reach {lst.host} in without "
                    f"authentication; use SASL_SSL, SASL_PLAINTEXT or SSL with ssl_client_auth "
                    f"required, listen on a loopback address, or allow it explicitly "
                    f"(--allow-unauthenticated, or allow_unauthenticated: true under local:)")
