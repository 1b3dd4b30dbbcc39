"""The principal of a TLS client certificate, spelled exactly as Apache Kafka spells it.

Why our own DER reading: ACLs name principals as strings (`User:CN=alice,O=Example`), so
the string must be byte-for-byte what Kafka's DefaultKafkaPrincipalBuilder produces,
which is Java's `X500Principal.getName()` (RFC 2253): RDNs in reverse order, the keywords
CN C L ST O OU STREET DC UID, any other attribute as `OID=#<hex of its DER value>`, and
Java's escaping (`,=+<>#;"\\` and leading/trailing spaces get a backslash). The stdlib
`ssl` module only offers a lossy dict of the subject, and `cryptography` is not a runtime
dependency (and escapes `=` differently), so this reads the few DER structures needed.
"""

from __future__ import annotations

# RFC 2253 keywords, as sun.security.x509.AVAKeyword lists them for RFC 2253 output.
_KEYWORDS = {
    "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O",
    "2.5.4.11": "OU", "2.5.4.9": "STREET", "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}
# String types Java prints as text (DerValue.isDerString): tag -> codec.
_STRINGS = {12: "utf-8", 19: "ascii", 20: "latin-1", 22: "ascii", 27: "latin-1", 30: "utf-16-be"}
_ESCAPE = ',=+<>#;"\\'


class DerError(ValueError):
    """The bytes are not the DER structure expected."""


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the element at `pos`."""
    if pos + 2 > len(data):
        raise DerError("truncated DER element")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise DerError("unsupported DER length")
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise DerError("DER element runs past its container")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, value start, value end, element start) of each element in data[start:end]."""
    out = []
    pos = start
    while pos < end:
        tag, vs, ve = _tlv(data, pos)
        out.append((tag, vs, ve, pos))
        pos = ve
    return out


def _oid(raw: bytes) -> str:
    if not raw:
        raise DerError("empty OID")
    parts, value = [], 0
    for b in raw:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(value)
            value = 0
    first = parts[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(p) for p in head + parts[1:])


def _escape(text: str) -> str:
    out = []
    for c in text:
        if c == "\0":
            out.append("\\00")
        else:
            out.append("\\" + c if c in _ESCAPE else c)
    chars = "".join(out)
    # Java escapes leading and trailing spaces (and CRs) one by one.
    lead = len(chars) - len(chars.lstrip(" \r"))
    trail = len(chars) - len(chars.rstrip(" \r"))
    if lead == len(chars):
        return "".join("\\" + c for c in chars)
    body = chars[lead:len(chars) - trail]
    return "".join("\\" + c for c in chars[:lead]) + body + "".join("\\" + c for c in chars[len(chars) - trail:])


def _ava(data: bytes, start: int, end: int) -> str:
    kids = _children(data, start, end)
    if len(kids) != 2 or kids[0][0] != 0x06:
        raise DerError("attribute is not (OID, value)")
    oid = _oid(data[kids[0][1]:kids[0][2]])
    tag, vs, ve, el = kids[1]
    keyword = _KEYWORDS.get(oid)
    if keyword is not None and tag in _STRINGS:
        try:
            return f"{keyword}={_escape(data[vs:ve].decode(_STRINGS[tag]))}"
        except UnicodeDecodeError:
            pass
    return f"{keyword or oid}=#{data[el:ve].hex()}"


def name_rfc2253(data: bytes, start: int = 0, end: int | None = None) -> str:
    """An X.501 Name (the DER SEQUENCE at `start`) as Java's RFC 2253 string."""
    tag, vs, ve = _tlv(data, start)
    if tag != 0x30 or (end is not None and ve != end):
        raise DerError("a Name must be a SEQUENCE")
    rdns = []
    for rtag, rs, re_, _ in _children(data, vs, ve):
        if rtag != 0x31:
            raise DerError("an RDN must be a SET")
        rdns.append("+".join(_ava(data, s, e) for t, s, e, _ in _children(data, rs, re_)))
    return ",".join(reversed(rdns))


def subject_rfc2253(cert_der: bytes) -> str:
    """The subject of a DER certificate, as `X500Principal.getName()` gives it."""
    tag, cs, ce = _tlv(cert_der, 0)
    if tag != 0x30:
        raise DerError("a certificate must be a SEQUENCE")
    tag, ts, te = _tlv(cert_der, cs)
    if tag != 0x30:
        raise DerError("tbsCertificate must be a SEQUENCE")
    fields = _children(cert_der, ts, te)
    if fields and fields[0][0] == 0xA0:  # [0] EXPLICIT version
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject
    if len(fields) < 5:
        raise DerError("tbsCertificate is missing fields")
    return name_rfc2253(cert_der, fields[4][3])


def principal(cert_der: bytes) -> str:
    """`User:<subject>`: Kafka's default principal for a TLS client certificate."""
    return "User:" + subject_rfc2253(cert_der)
