"""The SCRAM credential store: verifiers match scramp's, PLAIN checks, unknown users look like wrong passwords."""

from __future__ import annotations

import os
import stat

import pytest
from scramp import ScramClient, ScramMechanism

from cluster.auth.credentials import CredentialError, CredentialStore, derive, salted_password


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_verifiers_match_scramp(mech: str) -> None:
    salt, stored, server, it = ScramMechanism(mech).make_auth_info("s3cret", iteration_count=4096, salt=b"0123456789abcdef")
    cred = derive(mech, salted_password(mech, "s3cret", salt, it), salt, it)
    assert (cred.stored_key, cred.server_key) == (stored, server)


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_exchange_against_stored_credential(tmp_path, mech: str) -> None:
    store = CredentialStore(tmp_path)
    store.upsert_password("alice", mech, "pw-alice")

    def auth_fn(user: str):
        c, _ = store.scram_or_dummy(mech, user)
        return c.salt, c.stored_key, c.server_key, c.iterations

    server = ScramMechanism(mech).make_server(auth_fn)
    client = ScramClient([mech], "alice", "pw-alice")
    server.set_client_first(client.get_client_first())
    client.set_server_first(server.get_server_first())
    server.set_client_final(client.get_client_final())
    client.set_server_final(server.get_server_final())  # raises if the server signature is wrong


def test_persisted_with_mode_0600_and_no_password(tmp_path) -> None:
    store = CredentialStore(tmp_path)
    store.upsert_password("alice", "SCRAM-SHA-256", "the-password-itself")
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert b"the-password-itself" not in store.path.read_bytes()
    again = CredentialStore(tmp_path)
    assert again.users() == {"alice": {"SCRAM-SHA-256": 8192}}
    assert again.check_plain("alice", "the-password-itself")


def test_plain_right_wrong_unknown(tmp_path) -> None:
    store = CredentialStore(tmp_path)
    store.upsert_password("alice", "SCRAM-SHA-512", "pw")
    assert store.check_plain("alice", "pw")
    assert not store.check_plain("alice", "PW")
    assert not store.check_plain("mallory", "pw")


def test_unknown_user_dummy_is_stable(tmp_path) -> None:
    store = CredentialStore(tmp_path)
    a, known = store.scram_or_dummy("SCRAM-SHA-256", "nobody")
    b, _ = store.scram_or_dummy("SCRAM-SHA-256", "nobody")
    assert not known and a == b and a.iterations == 8192


def test_refusals(tmp_path) -> None:
    store = CredentialStore(tmp_path)
    with pytest.raises(CredentialError) as e:
        store.upsert_salted("a", "SCRAM-SHA-256", 1000, b"s", b"p")
    assert e.value.code == "unacceptable_credential"
    with pytest.raises(CredentialError) as e:
        store.upsert_password("a", "SCRAM-SHA-1", "pw")
    assert e.value.code == "unsupported_sasl_mechanism"
    with pytest.raises(CredentialError) as e:
        store.delete("a", "SCRAM-SHA-256")
    assert e.value.code == "resource_not_found"
    store.upsert_password("a", "SCRAM-SHA-256", "pw")
    store.delete("a", "SCRAM-SHA-256")
    assert store.users() == {}
