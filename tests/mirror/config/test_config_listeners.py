"""`local:` listeners and TLS keys in the cluster YAML: honoured, or refused at file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from mirror.config.model import ConfigError, load_config
from dcmirror_cli import broker_config

HEAD = """\
clusters:
  west:
    bootstrap: {bootstrap}
    local:
      data_dir: ./w
"""


def _load(tmp_path: Path, local: str, bootstrap: str = "127.0.0.1:29092", tail: str = ""):
    path = tmp_path / "mirror.yaml"
    path.write_text(HEAD.format(bootstrap=bootstrap) + local + tail)
    return load_config(path, env={})


def _error(tmp_path: Path, local: str, **kw) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, local, **kw)
    assert "\n" not in str(info.value)
    return info.value


def test_listeners_reach_the_broker_config(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "      listeners: [INSIDE=PLAINTEXT://127.0.0.1:29092, AUTH=SASL_PLAINTEXT://127.0.0.1:29093]\n"
                          "      advertised: [AUTH=auth.example:39093]\n")
    local = cfg.clusters["west"].local
    bc = broker_config("west", local)
    assert [(lst.name, lst.protocol, lst.port) for lst in bc.listeners] == [
        ("INSIDE", "PLAINTEXT", 29092), ("AUTH", "SASL_PLAINTEXT", 29093)]
    assert bc.listeners[1].advertised == ("auth.example", 39093)
    assert bc.authenticates
    assert bc.listeners[0] is not local.listeners[0]  # the broker writes bound ports into its copy


def test_exposed_plaintext_needs_allow_unauthenticated(tmp_path: Path) -> None:
    err = _error(tmp_path, "      host: 0.0.0.0\n")
    assert err.line == 6 and err.key_path == "clusters.west.local.host"
    assert "would let anyone who can reach 0.0.0.0 in" in str(err) and "allow_unauthenticated: true" in str(err)
    cfg = _load(tmp_path, "      host: 0.0.0.0\n      allow_unauthenticated: true\n")
    assert broker_config("west", cfg.clusters["west"].local).allow_unauthenticated


@pytest.mark.parametrize("local, line, key, words", [
    ("      host: 127.0.0.1\n      listeners: [A=PLAINTEXT://127.0.0.1:29092]\n", 6, "local.host",
     "host and listeners both say where to listen"),
    ("      listeners: [A=PLAINTEXT://127.0.0.1:29092, B=HTTP://127.0.0.1:1]\n", 6, "local.listeners[1]",
     "use one of PLAINTEXT"),
    ("      listeners: [A=PLAINTEXT://127.0.0.1:1]\n", 3, "bootstrap", "bootstrap port 29092 is not the port of any listener"),
    ("      advertised: [A=h:1]\n", 6, "local.advertised", "there is no listeners key"),
    ("      listeners: [A=PLAINTEXT://127.0.0.1:29092]\n      advertised: [B=h:1]\n", 7, "local.advertised",
     "not defined"),
    ("      listeners: [A=SSL://127.0.0.1:29092]\n", 6, "local.listeners", "needs the broker's certificate and key"),
    ("      ssl_cafile: ./ca.pem\n", 6, "local.ssl_cafile", "no listener uses SSL or SASL_SSL"),
    ("      ssl_client_auth: sometimes\n", 6, "local.ssl_client_auth", "is not one of none, requested, required"),
    ("      listeners: [A=SASL_PLAINTEXT://127.0.0.1:29092]\n", 3, "bootstrap",
     "is listener A, which speaks SASL_PLAINTEXT, but the client block uses PLAINTEXT"),
])
def test_refusals_are_located(tmp_path: Path, local: str, line: int, key: str, words: str) -> None:
    err = _error(tmp_path, local)
    assert err.key_path == f"clusters.west.{key}" and err.line == line, str(err)
    assert words in str(err)


def test_tls_keys_reach_the_broker_config(tmp_path: Path) -> None:
    for name in ("s.pem", "s.key", "ca.pem"):
        (tmp_path / name).write_text("x")
    tls = ("      listeners: [S=SSL://127.0.0.1:29092]\n      ssl_certfile: ./s.pem\n      ssl_keyfile: ./s.key\n"
           "      ssl_cafile: ./ca.pem\n      ssl_client_auth: required\n")
    client = "    client: {security_protocol: SSL, ssl_cafile: ./ca.pem}\n"
    with pytest.raises(ConfigError, match="ssl_cafile"):  # the client block loads its CA file: 'x' is not one
        _load(tmp_path, tls, tail=client)
    path = tmp_path / "mirror.yaml"
    path.write_text(HEAD.format(bootstrap="127.0.0.1:29092") + tls)
    # the broker side is read (files exist; loaded when the broker starts), and the client
    # block must speak SSL to reach the SSL bootstrap listener
    with pytest.raises(ConfigError, match="which speaks SSL, but the client block uses PLAINTEXT"):
        load_config(path, env={})
    err = _error(tmp_path, tls.replace("./s.key", "./missing.key"))
    assert err.key_path == "clusters.west.local.ssl_keyfile" and "is not a readable file" in str(err)
