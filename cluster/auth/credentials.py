"""SCRAM credentials of a broker's users, stored salted (KIP-84), and PLAIN checked against them.

What is stored per user and mechanism is what RFC 5802 lets a server keep: salt,
iteration count, StoredKey = H(HMAC(SaltedPassword, "Client Key")) and
ServerKey = HMAC(SaltedPassword, "Server Key"). Never the password, never SaltedPassword.
Kafka's AlterUserScramCredentials sends SaltedPassword (its client salts and hashes), so
`upsert_salted` derives the two keys from it and drops it.

Unknown users are answered exactly like known ones with a wrong password, in the same
time: `scram_or_dummy` returns a stable fake credential (salt derived from the user name
and a per-store secret, so asking twice shows the same salt) and `check_plain` hashes
against it. Users change rarely, so the store is one JSON file rewritten atomically
(temporary file, fsync, rename, directory fsync) with mode 0600.

Written by hand because no library keeps SCRAM verifiers on disk; `scramp` (the SASL
exchange) and `hashlib.pbkdf2_hmac` (the key derivation) do the cryptography.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MECHANISMS: dict[str, str] = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
# Kafka's ScramMechanism bounds for AlterUserScramCredentials iterations.
MIN_ITERATIONS = 4096
MAX_ITERATIONS = 16384
DEFAULT_ITERATIONS = 8192
FILE_NAME = "scram-credentials.json"


class CredentialError(ValueError):
    """An upsert Kafka would refuse with UNACCEPTABLE_CREDENTIAL or UNSUPPORTED_SASL_MECHANISM."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code  # "unacceptable_credential" | "unsupported_sasl_mechanism" | "resource_not_found"


@dataclass(frozen=True)
class ScramCredential:
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int

    def to_json(self) -> dict:
        b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
        return {"salt": b64(self.salt), "stored_key": b64(self.stored_key),
                "server_key": b64(self.server_key), "iterations": self.iterations}

    @staticmethod
    def from_json(d: dict) -> "ScramCredential":
        return ScramCredential(base64.b64decode(d["salt"]), base64.b64decode(d["stored_key"]),
                               base64.b64decode(d["server_key"]), int(d["iterations"]))


def salted_password(mechanism: str, password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac(MECHANISMS[mechanism], password.encode("utf-8"), salt, iterations)


def derive(mechanism: str, salted: bytes, salt: bytes, iterations: int) -> ScramCredential:
    """StoredKey and ServerKey from SaltedPassword (RFC 5802 section 3)."""
    h = MECHANISMS[mechanism]
    client_key = hmac.new(salted, b"Client Key", h).digest()
    stored_key = hashlib.new(h, client_key).digest()
    server_key = hmac.new(salted, b"Server Key", h).digest()
    return ScramCredential(salt, stored_key, server_key, iterations)


def check_mechanism(mechanism: str) -> None:
    if mechanism not in MECHANISMS:
        raise CredentialError("unsupported_sasl_mechanism",
                              f"Unsupported SCRAM mechanism {mechanism!r}; supported: "
                              f"{', '.join(MECHANISMS)}.")


class CredentialStore:
    """The users of one broker: {user: {mechanism: ScramCredential}}, persisted in `meta_dir`."""

    def __init__(self, meta_dir: Path) -> None:
        self.path = Path(meta_dir) / FILE_NAME
        self._users: dict[str, dict[str, ScramCredential]] = {}
        self._secret = b""
        self._load()

    # ---- persistence ------------------------------------------------------------
    def _load(self) -> None:
        if not self.path.exists():
            self._secret = secrets.token_bytes(32)
            return
        data = json.loads(self.path.read_text())
        self._secret = base64.b64decode(data["secret"])
        self._users = {user: {m: ScramCredential.from_json(c) for m, c in mechs.items()}
                       for user, mechs in data["users"].items()}

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"secret": base64.b64encode(self._secret).decode("ascii"),
                "users": {u: {m: c.to_json() for m, c in mechs.items()}
                          for u, mechs in sorted(self._users.items())}}
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps(data, indent=1).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    # ---- reading ----------------------------------------------------------------
    def users(self) -> dict[str, dict[str, int]]:
        """{user: {mechanism: iterations}}: what DescribeUserScramCredentials shows."""
        return {u: {m: c.iterations for m, c in mechs.items()} for u, mechs in self._users.items()}

    def scram(self, mechanism: str, user: str) -> ScramCredential | None:
        return self._users.get(user, {}).get(mechanism)

    def scram_or_dummy(self, mechanism: str, user: str) -> tuple[ScramCredential, bool]:
        """The user's credential, or a stable fake one (and False) so that an unknown user's
        exchange looks and takes like a wrong password's."""
        cred = self.scram(mechanism, user)
        if cred is not None:
            return cred, True
        h = MECHANISMS[mechanism]
        salt = hmac.new(self._secret, f"salt:{mechanism}:{user}".encode(), h).digest()[:16]
        junk = hmac.new(self._secret, f"key:{mechanism}:{user}".encode(), h).digest()
        return ScramCredential(salt, junk, junk, DEFAULT_ITERATIONS), False

    def check_plain(self, user: str, password: str) -> bool:
        """PLAIN against the SCRAM store: the password is right if it derives the stored key
        of the user's strongest mechanism. Unknown users cost the same hashing."""
        mechs = self._users.get(user, {})
        mechanism = next((m for m in ("SCRAM-SHA-512", "SCRAM-SHA-256") if m in mechs), "SCRAM-SHA-512")
        cred, known = self.scram_or_dummy(mechanism, user)
        salted = salted_password(mechanism, password, cred.salt, cred.iterations)
        ok = hmac.compare_digest(derive(mechanism, salted, cred.salt, cred.iterations).stored_key,
                                 cred.stored_key)
        return ok and known

    # ---- changing ---------------------------------------------------------------
    def upsert_salted(self, user: str, mechanism: str, iterations: int, salt: bytes,
                      salted: bytes, *, save: bool = True) -> None:
        """What AlterUserScramCredentials asks: SaltedPassword in, verifiers stored."""
        check_mechanism(mechanism)
        if not user:
            raise CredentialError("unacceptable_credential", "Username must not be empty.")
        if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
            raise CredentialError("unacceptable_credential",
                                  f"Iterations {iterations} not within {MIN_ITERATIONS}..{MAX_ITERATIONS} "
                                  f"for {mechanism}.")
        if not salt or not salted:
            raise CredentialError("unacceptable_credential", "Salt and salted password must not be empty.")
        self._users.setdefault(user, {})[mechanism] = derive(mechanism, salted, salt, iterations)
        if save:
            self._save()
        log.info("SCRAM credential for %s (%s) set", user, mechanism)

    def upsert_password(self, user: str, mechanism: str, password: str,
                        iterations: int = DEFAULT_ITERATIONS) -> None:
        """The bootstrap path (`dcmirror cluster users add`): a fresh 16-byte salt."""
        check_mechanism(mechanism)
        salt = secrets.token_bytes(16)
        self.upsert_salted(user, mechanism, iterations, salt,
                           salted_password(mechanism, password, salt, iterations))

    def delete(self, user: str, mechanism: str, *, save: bool = True) -> None:
        check_mechanism(mechanism)
        mechs = self._users.get(user, {})
        if mechanism not in mechs:
            raise CredentialError("resource_not_found",
                                  f"Attempt to delete a user credential that does not exist: {user} {mechanism}.")
        del mechs[mechanism]
        if not mechs:
            del self._users[user]
        if save:
            self._save()
        log.info("SCRAM credential for %s (%s) deleted", user, mechanism)

    def save(self) -> None:
        """Persist changes made with save=False (one rewrite for a whole request)."""
        self._save()
