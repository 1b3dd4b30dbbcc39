"""`dcmirror cluster users add/list/delete`: the bootstrap path for the first admin, with the
broker stopped; one-sentence errors; the password never on the command line or in output."""

from __future__ import annotations

from click.testing import CliRunner

from cluster.auth.credentials import CredentialStore
from cluster.cli import cluster_group

PW = "Boot-strap-pw-42"


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(cluster_group, ["users", *args], env=env or {}, catch_exceptions=False)


def test_add_list_delete(tmp_path) -> None:
    d = str(tmp_path / "data")
    res = run("add", "--data-dir", d, "--user", "admin", "--mechanism", "SCRAM-SHA-512",
              "--password-env", "ADMIN_PW", env={"ADMIN_PW": PW})
    assert res.exit_code == 0 and PW not in res.output
    assert CredentialStore(tmp_path / "data" / "meta").check_plain("admin", PW)
    res = run("add", "--data-dir", d, "--user", "bob", "--password-env", "P", env={"P": "x"})
    assert res.exit_code == 0
    res = run("list", "--data-dir", d)
    assert "admin\tSCRAM-SHA-512 (iterations 8192)" in res.output
    assert "bob\tSCRAM-SHA-256 (iterations 8192), SCRAM-SHA-512 (iterations 8192)" in res.output
    assert run("delete", "--data-dir", d, "--user", "bob", "--mechanism", "SCRAM-SHA-256").exit_code == 0
    assert CredentialStore(tmp_path / "data" / "meta").users() == {"admin": {"SCRAM-SHA-512": 8192},
                                                                   "bob": {"SCRAM-SHA-512": 8192}}
    assert run("delete", "--data-dir", d, "--user", "bob").exit_code == 0
    assert "bob" not in run("list", "--data-dir", d).output


def test_errors_are_one_sentence(tmp_path) -> None:
    d = str(tmp_path / "data")
    res = run("add", "--data-dir", d, "--user", "a", "--password-env", "NOPE")
    assert res.exit_code == 1 and "NOPE is not set" in res.output and "Traceback" not in res.output
    res = run("delete", "--data-dir", d, "--user", "ghost")
    assert res.exit_code == 1 and "does not exist" in res.output
    res = run("list", "--data-dir", str(tmp_path / "missing"))
    assert res.exit_code == 1 and "does not exist" in res.output
    res = run("add", "--data-dir", d, "--user", "a", "--mechanism", "MD5", "--password-env", "P", env={"P": "x"})
    assert res.exit_code == 2 and "MD5" in res.output


async def test_refused_while_broker_runs(tmp_path) -> None:
    from cluster.broker.config import BrokerConfig
    from cluster.broker.server import Broker

    b = Broker(BrokerConfig(name="t", data_dir=tmp_path / "data", port=0))
    await b.start()
    try:
        res = run("add", "--data-dir", str(tmp_path / "data"), "--user", "a", "--password-env", "P", env={"P": "x"})
        assert res.exit_code == 1 and "a broker is running" in res.output
        assert run("list", "--data-dir", str(tmp_path / "data")).exit_code == 0
    finally:
        await b.stop()
    res = run("add", "--data-dir", str(tmp_path / "data"), "--user", "a", "--password-env", "P", env={"P": "x"})
    assert res.exit_code == 0
