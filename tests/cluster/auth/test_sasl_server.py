"""The broker's SASL state machines: right, wrong, unknown, tampered and garbage tokens, no sockets."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from scramp import ScramClient

from cluster.auth.credentials import CredentialStore
from cluster.auth.sasl_server import PLAIN_FAILED, SaslFailed, new_exchange, scram_failed

SCRAMS = ["SCRAM-SHA-256", "SCRAM-SHA-512"]


@pytest.fixture
def store(tmp_path) -> CredentialStore:
    s = CredentialStore(tmp_path)
    for mech in SCRAMS:
        s.upsert_password("alice", mech, "pw-alice")
    return s


def scram_run(store, mech, user, password, tamper=None):
    ex = new_exchange(mech, store)
    client = ScramClient([mech], user, password)
    first = ex.step(client.get_client_first().encode())
    client.set_server_first(first.decode())
    final = client.get_client_final()
    if tamper:
        final = tamper(final)
    out = ex.step(final.encode())
    client.set_server_final(out.decode())  # the server proved it knows the credential
    return ex


@pytest.mark.parametrize("mech", SCRAMS)
def test_scram_right_password(store, mech) -> None:
    ex = scram_run(store, mech, "alice", "pw-alice")
    assert ex.complete and ex.user == "alice"


@pytest.mark.parametrize("mech", SCRAMS)
def test_scram_wrong_and_unknown_fail_alike(store, mech) -> None:
    errors = []
    for user, pw in (("alice", "bad-pw-9"), ("mallory", "pw-alice")):
        with pytest.raises(SaslFailed) as info:
            scram_run(store, mech, user, pw)
        errors.append(info.value.message)
        assert "pw-alice" not in info.value.reason and "bad-pw-9" not in info.value.reason + info.value.message
    assert errors[0] == errors[1] == scram_failed(mech)


@pytest.mark.parametrize("mech", SCRAMS)
def test_unknown_user_salt_is_stable(store, mech) -> None:
    def salt_of():
        ex = new_exchange(mech, store)
        return dict(a.split("=", 1) for a in ex.step(ScramClient([mech], "nobody", "x").get_client_first().encode())
                    .decode().split(","))["s"]
    assert salt_of() == salt_of()


@pytest.mark.parametrize("mech", SCRAMS)
def test_tampered_nonce_refused(store, mech) -> None:
    """CVE-2024-56128: a client-final nonce that does not extend the client-first nonce."""
    def swap_client_part(final: str) -> str:
        attrs = final.split(",")
        nonce = attrs[1][2:]
        attrs[1] = "r=" + "X" * 8 + nonce[8:]
        return ",".join(attrs)

    with pytest.raises(SaslFailed) as info:
        scram_run(store, mech, "alice", "pw-alice", tamper=swap_client_part)
    assert "nonce" in info.value.message


@pytest.mark.parametrize("mech", SCRAMS)
def test_tampered_server_nonce_refused(store, mech) -> None:
    with pytest.raises(SaslFailed, match="nonce"):
        scram_run(store, mech, "alice", "pw-alice", tamper=lambda f: f.replace(",p=", "Z,p=", 1))


@pytest.mark.parametrize("mech", SCRAMS)
def test_tokenauth_extension_refused(store, mech) -> None:
    ex = new_exchange(mech, store)
    with pytest.raises(SaslFailed, match="delegation tokens"):
        ex.step(b"n,,n=alice,r=abcdefgh,tokenauth=true")


@pytest.mark.parametrize("mech", SCRAMS)
def test_other_extension_refused(store, mech) -> None:
    with pytest.raises(SaslFailed, match="unsupported SCRAM extensions"):
        new_exchange(mech, store).step(b"n,,n=alice,r=abcdefgh,foo=bar")


@pytest.mark.parametrize("mech", SCRAMS)
def test_authzid_must_match(store, mech) -> None:
    with pytest.raises(SaslFailed, match="authorization id that is different from username"):
        new_exchange(mech, store).step(b"n,a=bob,n=alice,r=abcdefgh")


def rfc5802_run(store, mech: str, user: str, password: str, authzid: str,
                cbind_header: str | None = None) -> object:
    """A SCRAM client written out from RFC 5802 (scramp's client sends no authorization
    id): gs2 header "n,a=AUTHZID,", and `cbind_header` in c= (default: the header sent)."""
    h = "sha256" if mech == "SCRAM-SHA-256" else "sha512"
    gs2 = f"n,a={authzid},"
    bare = f"n={user},r=rOprNGfwEbeRWgbNEkqO"
    ex = new_exchange(mech, store)
    server_first = ex.step((gs2 + bare).encode()).decode()
    attrs = dict(a.split("=", 1) for a in server_first.split(","))
    salted = hashlib.pbkdf2_hmac(h, password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", h).digest()
    stored_key = hashlib.new(h, client_key).digest()
    without_proof = f"c={base64.b64encode((cbind_header or gs2).encode()).decode()},r={attrs['r']}"
    auth_message = f"{bare},{server_first},{without_proof}".encode()
    signature = hmac.new(stored_key, auth_message, h).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    server_final = ex.step(f"{without_proof},p={base64.b64encode(proof).decode()}".encode()).decode()
    server_key = hmac.new(salted, b"Server Key", h).digest()
    assert server_final == "v=" + base64.b64encode(hmac.new(server_key, auth_message, h).digest()).decode()
    return ex


@pytest.mark.parametrize("mech", SCRAMS)
def test_authzid_equal_to_the_user_is_accepted(store, mech) -> None:
    """As Kafka's ScramSaslServer: an authorization id equal to the user name is fine."""
    ex = rfc5802_run(store, mech, "alice", "pw-alice", "alice")
    assert ex.complete and ex.user == "alice"  # type: ignore[attr-defined]
    with pytest.raises(SaslFailed):
        rfc5802_run(store, mech, "alice", "bad-pw-9", "alice")
    # c= must be the gs2 header as sent, authorization id included
    with pytest.raises(SaslFailed, match="invalid SCRAM message"):
        rfc5802_run(store, mech, "alice", "pw-alice", "alice", cbind_header="n,,")


@pytest.mark.parametrize("token", [b"", b"\xff\xfe", b"garbage", b"n,,", b"n,,n=alice", b"p=tls-unique,,n=a,r=b",
                                   b"n,,n=alice,r=", b"x" * 10000, b"n,,m=ext,n=a,r=b"])
@pytest.mark.parametrize("mech", SCRAMS)
def test_scram_garbage_first(store, mech, token) -> None:
    with pytest.raises(SaslFailed):
        new_exchange(mech, store).step(token)


@pytest.mark.parametrize("mech", SCRAMS)
def test_scram_garbage_final_and_extra_token(store, mech) -> None:
    ex = new_exchange(mech, store)
    ex.step(ScramClient([mech], "alice", "pw").get_client_first().encode())
    with pytest.raises(SaslFailed):
        ex.step(b"c=biws,p=AAAA")
    with pytest.raises(SaslFailed):
        ex.step(b"anything")
    done = scram_run(store, mech, "alice", "pw-alice")
    with pytest.raises(SaslFailed):
        done.step(b"more")


def test_plain(store) -> None:
    ex = new_exchange("PLAIN", store)
    assert ex.step(b"\0alice\0pw-alice") == b"" and ex.complete and ex.user == "alice"
    assert new_exchange("PLAIN", store).step(b"alice\0alice\0pw-alice") == b""
    msgs = []
    for token in (b"\0alice\0bad-pw-9", b"\0mallory\0pw-alice"):
        with pytest.raises(SaslFailed) as info:
            new_exchange("PLAIN", store).step(token)
        msgs.append(info.value.message)
        assert "pw-alice" not in info.value.reason and "bad-pw-9" not in info.value.reason
    assert msgs == [PLAIN_FAILED, PLAIN_FAILED]


@pytest.mark.parametrize("token", [b"", b"\xff", b"nonul", b"\0\0", b"\0alice\0", b"\0\0pw", b"bob\0alice\0pw",
                                   b"a\0b\0c\0d"])
def test_plain_garbage(store, token) -> None:
    with pytest.raises(SaslFailed):
        new_exchange("PLAIN", store).step(token)
