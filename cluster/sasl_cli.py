"""SASL on the command line: `cluster start`'s SASL options, and `dcmirror cluster users`.

Why `users` works on the data directory and not through the broker: the first admin has
to exist before anyone can authenticate to create users through Kafka's API
(AlterUserScramCredentials, what `kafka-configs --alter --entity-type users` sends). So
`users add/list/delete` edit `DATA_DIR/meta/scram-credentials.json` directly, and refuse
while a broker runs on that directory (it holds the store in memory and would overwrite
the change); a running broker's users are managed through the API.

The password comes from an environment variable (`--password-env VAR`), never from the
command line, where `ps` and shell history would show it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable

import click

from cluster.auth.credentials import DEFAULT_ITERATIONS, MAX_ITERATIONS, MECHANISMS, MIN_ITERATIONS, \
    CredentialError, CredentialStore
from cluster.auth.sasl_server import SASL_MECHANISMS

SASL_OPTION_NAMES = ("sasl_mechanisms", "sasl_plain_over_plaintext", "connections_max_reauth_ms",
                     "connection_failed_authentication_delay_ms", "sasl_server_max_receive_size")


def sasl_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The SASL options of `cluster start` (passed on to BrokerConfig by `sasl_settings`)."""
    options = [
        click.option("--sasl-mechanisms", default=None, metavar="M1,M2",
                     help=f"SASL mechanisms SASL_* listeners offer, of {','.join(SASL_MECHANISMS)} "
                          f"[default: SCRAM-SHA-256,SCRAM-SHA-512]."),
        click.option("--sasl-plain-over-plaintext", is_flag=True,
                     help="Offer PLAIN on SASL_PLAINTEXT listeners too (passwords cross in the clear)."),
        click.option("--connections-max-reauth-ms", type=click.IntRange(0), default=0, show_default=True,
                     help="SASL sessions last this long, then must re-authenticate (KIP-368; 0: forever)."),
        click.option("--connection-failed-authentication-delay-ms", type=click.IntRange(0), default=100,
                     show_default=True, help="Wait this long before answering a failed authentication."),
        click.option("--sasl-server-max-receive-size", type=click.IntRange(1), default=524_288,
                     show_default=True, help="Largest request accepted before authentication; larger closes."),
    ]
    return functools.reduce(lambda f, opt: opt(f), reversed(options), fn)


def sasl_settings(values: dict[str, Any]) -> dict[str, Any]:
    """BrokerConfig keyword arguments from `sasl_options` values (None/False: not given)."""
    out = {k: values[k] for k in SASL_OPTION_NAMES if k in values}
    if out.get("sasl_mechanisms") is None:
        out.pop("sasl_mechanisms", None)
    return out


@click.group("users")
def users_group() -> None:
    """Manage a cluster's SASL/SCRAM users in its data directory (the broker stopped)."""


def _store(data_dir: Path, *, writing: bool) -> CredentialStore:
    if data_dir.exists() and not data_dir.is_dir():
        raise click.ClickException(f"{data_dir} is not a directory")
    if not writing and not data_dir.is_dir():
        raise click.ClickException(f"{data_dir} does not exist")
    if writing:  # the first admin may be added before the cluster's first start
        (data_dir / "meta").mkdir(parents=True, exist_ok=True)
    if writing and _broker_running(data_dir):
        raise click.ClickException(f"a broker is running on {data_dir}; stop it first, or change users through "
                                   f"it (kafka-configs --alter --entity-type users)")
    try:
        return CredentialStore(data_dir / "meta")
    except (OSError, ValueError, KeyError) as exc:
        raise click.ClickException(f"cannot read the users of {data_dir}: {exc}") from None


def _broker_running(data_dir: Path) -> bool:
    """A running broker holds a shared lock on meta/broker.lock (Broker._hold_running_lock)."""
    lock = data_dir / "meta" / "broker.lock"
    if not lock.exists():
        return False
    import fcntl

    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False


_mechanism = click.option("--mechanism", "mechanisms", multiple=True, type=click.Choice(list(MECHANISMS)),
                          help="SCRAM mechanism (repeatable) [default: both].")


@users_group.command("add")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--user", required=True)
@_mechanism
@click.option("--password-env", required=True, metavar="VAR", help="Environment variable holding the password.")
@click.option("--iterations", type=click.IntRange(MIN_ITERATIONS, MAX_ITERATIONS), default=DEFAULT_ITERATIONS,
              show_default=True)
def add(data_dir: Path, user: str, mechanisms: tuple[str, ...], password_env: str, iterations: int) -> None:
    """Add a user, or set a user's password (SCRAM credentials, stored salted)."""
    password = os.environ.get(password_env)
    if not password:
        raise click.ClickException(f"environment variable {password_env} is not set or empty; put the password "
                                   f"there (it is never taken on the command line)")
    store = _store(data_dir, writing=True)
    try:
        for mech in mechanisms or tuple(MECHANISMS):
            store.upsert_password(user, mech, password, iterations)
    except CredentialError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"user {user}: {', '.join(mechanisms or MECHANISMS)} set in {data_dir}")


@users_group.command("list")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
def list_users(data_dir: Path) -> None:
    """List users and their SCRAM mechanisms (never salts or keys)."""
    users = _store(data_dir, writing=False).users()
    if not users:
        click.echo("no users")
    for user, mechs in sorted(users.items()):
        click.echo(f"{user}\t" + ", ".join(f"{m} (iterations {it})" for m, it in sorted(mechs.items())))


@users_group.command("delete")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--user", required=True)
@_mechanism
def delete(data_dir: Path, user: str, mechanisms: tuple[str, ...]) -> None:
    """Delete a user's credentials (all mechanisms, or those given)."""
    store = _store(data_dir, writing=True)
    have = store.users().get(user)
    if not have:
        raise click.ClickException(f"user {user} does not exist in {data_dir}")
    for mech in mechanisms or tuple(have):
        try:
            store.delete(user, mech)
        except CredentialError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"user {user}: {', '.join(mechanisms or have)} deleted from {data_dir}")
