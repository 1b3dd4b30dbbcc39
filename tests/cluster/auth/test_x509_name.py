"""Certificate subjects as Kafka's DefaultKafkaPrincipalBuilder names them (RFC 2253 as
Java's X500Principal.getName() writes it), checked against `cryptography`'s RFC 4514
output where the two agree, and against Java's escaping where they do not."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cluster.auth.x509_name import DerError, name_rfc2253, principal, subject_rfc2253


def _cert(name: x509.Name) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def _name(*attrs: tuple) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs])


NAMES = [
    _name((NameOID.COMMON_NAME, "alice")),
    _name((NameOID.COUNTRY_NAME, "US"), (NameOID.ORGANIZATION_NAME, "Example"), (NameOID.COMMON_NAME, "alice")),
    _name((NameOID.DOMAIN_COMPONENT, "com"), (NameOID.DOMAIN_COMPONENT, "example"),
          (NameOID.ORGANIZATIONAL_UNIT_NAME, "Mirror, West"), (NameOID.USER_ID, "u1"),
          (NameOID.COMMON_NAME, "bob+carol")),
    _name((NameOID.STATE_OR_PROVINCE_NAME, "Zürich"), (NameOID.LOCALITY_NAME, "a;b<c>\"d\\"),
          (NameOID.STREET_ADDRESS, "1 Main St"), (NameOID.COMMON_NAME, "Ünïcode")),
    x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "multi"),
                                               x509.NameAttribute(NameOID.ORGANIZATION_NAME, "valued")])]),
]


@pytest.mark.parametrize("name", NAMES, ids=lambda n: n.rfc4514_string()[:30])
def test_subject_matches_rfc4514_where_java_agrees(name: x509.Name) -> None:
    der = _cert(name)
    assert subject_rfc2253(der) == name.rfc4514_string()
    assert name_rfc2253(name.public_bytes()) == name.rfc4514_string()


def test_java_escaping() -> None:
    # Java escapes '=' and '#' anywhere, and leading/trailing spaces one by one.
    der = _cert(_name((NameOID.ORGANIZATION_NAME, " a=b#c  "), (NameOID.COMMON_NAME, "#x")))
    assert principal(der) == "User:CN=\\#x,O=\\ a\\=b\\#c\\ \\ "


def test_other_attributes_are_oid_and_hex_der_as_java_prints_them() -> None:
    der = _cert(_name((NameOID.EMAIL_ADDRESS, "alice@example.com"), (NameOID.SERIAL_NUMBER, "42"),
                      (NameOID.COMMON_NAME, "with-oids")))
    assert subject_rfc2253(der) == ("CN=with-oids,2.5.4.5=#13023432,"
                                    "1.2.840.113549.1.9.1=#1611" + b"alice@example.com".hex())


def test_example_from_the_brief() -> None:
    der = _cert(_name((NameOID.ORGANIZATION_NAME, "Example"), (NameOID.COMMON_NAME, "alice")))
    assert principal(der) == "User:CN=alice,O=Example"


@pytest.mark.parametrize("junk", [b"", b"\x30", b"\x30\x05\x02\x01", b"\x04\x00", b"\x30\x84\xff\xff\xff\xff"])
def test_garbage_is_a_der_error(junk: bytes) -> None:
    with pytest.raises(DerError):
        subject_rfc2253(junk)
