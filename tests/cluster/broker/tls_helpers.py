"""Test-time TLS material and contexts for broker listener tests (nothing committed)."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from peers.certs import Pki

ALICE = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
                   x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
ALICE_PRINCIPAL = "User:CN=alice,O=Example"


def sign_client(pki: Pki, directory: Path, subject: x509.Name, stem: str = "alice") -> tuple[Path, Path]:
    """A client certificate for `subject`, signed by the PKI's CA: (cert PEM, key PEM)."""
    ca = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def client_context(cafile: Path, cert: Path | None = None, key: Path | None = None, *,
                   max_version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cafile))
    if max_version is not None:
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = max_version
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let OpenSSL offer old versions at all
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx
