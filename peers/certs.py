"""Throw-away X.509 material for TLS tests, made at test time (never committed).

`make_pki(dir)` writes a CA, a server certificate valid for 127.0.0.1 and localhost (PEM
and a PKCS12 keystore for Java), a client certificate signed by the same CA, and a second,
unrelated CA with its own client certificate for "untrusted" cases.
"""
from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEYSTORE_PASSWORD = "keystore-pass"


@dataclass(frozen=True)
class Pki:
    ca: Path                 # CA certificate (PEM): clients' ssl_cafile, the broker's truststore
    server_cert: Path
    server_key: Path
    server_p12: Path         # PKCS12 keystore (password KEYSTORE_PASSWORD) for Kafka
    client_cert: Path
    client_key: Path
    other_ca: Path           # an unrelated CA: trusting it instead of `ca` must fail
    other_client_cert: Path  # a client certificate the broker must not trust
    other_client_key: Path
    ca_key: Path             # the CA's key, to sign more certificates in a test


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject: str, key, issuer: x509.Name, issuer_key, *, ca: bool,
          sans: list[x509.GeneralName] | None = None, usage=None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(hours=1))
         .not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), True)
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if usage:
        b = b.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _write(path: Path, *objs) -> Path:
    out = b""
    for o in objs:
        if isinstance(o, x509.Certificate):
            out += o.public_bytes(serialization.Encoding.PEM)
        else:
            out += o.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    path.write_bytes(out)
    return path


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, other_key = _key(), _key()
    ca = _cert("dcmirror test CA", ca_key, _name("dcmirror test CA"), ca_key, ca=True)
    other = _cert("unrelated CA", other_key, _name("unrelated CA"), other_key, ca=True)
    skey = _key()
    server = _cert("localhost", skey, ca.subject, ca_key, ca=False,
                   sans=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
                   usage=[ExtendedKeyUsageOID.SERVER_AUTH])
    ckey, okey = _key(), _key()
    client = _cert("mirror-client", ckey, ca.subject, ca_key, ca=False, usage=[ExtendedKeyUsageOID.CLIENT_AUTH])
    oclient = _cert("stranger", okey, other.subject, other_key, ca=False, usage=[ExtendedKeyUsageOID.CLIENT_AUTH])
    p12 = directory / "server.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"server", skey, server, [ca], serialization.BestAvailableEncryption(KEYSTORE_PASSWORD.encode())))
    return Pki(
        ca=_write(directory / "ca.pem", ca),
        server_cert=_write(directory / "server.pem", server),
        server_key=_write(directory / "server.key", skey),
        server_p12=p12,
        client_cert=_write(directory / "client.pem", client),
        client_key=_write(directory / "client.key", ckey),
        other_ca=_write(directory / "other-ca.pem", other),
        other_client_cert=_write(directory / "other-client.pem", oclient),
        other_client_key=_write(directory / "other-client.key", okey),
        ca_key=_write(directory / "ca.key", ca_key),
    )
