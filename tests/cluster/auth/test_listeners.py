"""Listener syntax and the security refusals, without sockets (cluster.auth.listeners)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.auth.listeners import (
    Listener,
    apply_advertised,
    authenticates,
    check_listeners,
    check_security,
    is_loopback,
    parse_listener,
)


def test_parse_listener_forms() -> None:
    assert parse_listener("INTERNAL=sasl_ssl://0.0.0.0:9093") == Listener("INTERNAL", "SASL_SSL", "0.0.0.0", 9093)
    assert parse_listener("V6=PLAINTEXT://[::1]:0") == Listener("V6", "PLAINTEXT", "::1", 0)
    lst = parse_listener("EXT=SSL://10.0.0.5:9094")
    apply_advertised([lst], ["EXT=broker1.example.com:19094"])
    assert lst.advertised == ("broker1.example.com", 19094)
    assert lst.describe() == "EXT=SSL://10.0.0.5:9094 (advertised broker1.example.com:19094)"
    assert lst.tls and not lst.sasl


@pytest.mark.parametrize("spec, words", [
    ("PLAINTEXT://127.0.0.1:9092", "must look like NAME=PROTOCOL://HOST:PORT"),
    ("A=TLS://127.0.0.1:9092", "use one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
    ("A=PLAINTEXT://127.0.0.1:99999", "not a number in 0..65535"),
    ("A=PLAINTEXT://:9092", "has no host"),
    ("9A=PLAINTEXT://127.0.0.1:9092", "must start with a letter"),
    ("A=PLAINTEXT://127.0.0.1", "must be HOST:PORT"),
])
def test_bad_listener_is_one_sentence(spec: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_listener(spec)


def test_listener_set_refusals() -> None:
    a, b = parse_listener("A=PLAINTEXT://127.0.0.1:9092"), parse_listener("a=SSL://127.0.0.1:9093")
    with pytest.raises(ValueError, match="used twice"):
        check_listeners([a, b])
    with pytest.raises(ValueError, match="both use port 9092"):
        check_listeners([a, parse_listener("B=SSL://127.0.0.1:9092")])
    with pytest.raises(ValueError, match="clients cannot connect to"):
        check_listeners([parse_listener("W=SASL_SSL://0.0.0.0:9092")])
    with pytest.raises(ValueError, match="not defined"):
        apply_advertised([a], ["B=h:1"])
    with pytest.raises(ValueError, match="port 0"):
        apply_advertised([a], ["A=h:0"])


def _security(listeners, **kw) -> None:
    args = dict(ssl_certfile=None, ssl_keyfile=None, ssl_cafile=None, ssl_client_auth="none",
                allow_unauthenticated=False)
    check_security(listeners, **{**args, **kw})


def test_secure_by_default() -> None:
    exposed = [Listener("EXT", "PLAINTEXT", "10.1.2.3", 9092)]
    with pytest.raises(ValueError, match="would let anyone who can reach 10.1.2.3 in"):
        _security(exposed)
    _security(exposed, allow_unauthenticated=True)
    _security([Listener("EXT", "SASL_PLAINTEXT", "10.1.2.3", 9092)])
    pem = Path("x.pem")
    ssl = [Listener("EXT", "SSL", "10.1.2.3", 9092)]
    with pytest.raises(ValueError, match="would let anyone"):
        _security(ssl, ssl_certfile=pem, ssl_keyfile=pem, ssl_cafile=pem, ssl_client_auth="requested")
    _security(ssl, ssl_certfile=pem, ssl_keyfile=pem, ssl_cafile=pem, ssl_client_auth="required")
    _security([Listener("L", "PLAINTEXT", "127.0.0.2", 1), Listener("M", "PLAINTEXT", "::1", 2),
               Listener("N", "PLAINTEXT", "localhost", 3)])
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")


def test_tls_settings_present_exactly_when_used() -> None:
    pem = Path("x.pem")
    with pytest.raises(ValueError, match="needs the broker's certificate and key"):
        _security([Listener("S", "SSL", "127.0.0.1", 1)], ssl_certfile=pem)
    with pytest.raises(ValueError, match="no listener uses SSL or SASL_SSL, so it would be ignored"):
        _security([Listener("P", "PLAINTEXT", "127.0.0.1", 1)], ssl_cafile=pem)
    with pytest.raises(ValueError, match="does not apply to SASL_SSL"):
        _security([Listener("S", "SASL_SSL", "127.0.0.1", 1)], ssl_certfile=pem, ssl_keyfile=pem,
                  ssl_cafile=pem, ssl_client_auth="required")
    with pytest.raises(ValueError, match="needs ssl_cafile"):
        _security([Listener("S", "SSL", "127.0.0.1", 1)], ssl_certfile=pem, ssl_keyfile=pem,
                  ssl_client_auth="requested")


def test_which_listeners_authenticate() -> None:
    assert authenticates(Listener("A", "SASL_PLAINTEXT", "h", 1), "none")
    assert authenticates(Listener("A", "SASL_SSL", "h", 1), "none")
    assert authenticates(Listener("A", "SSL", "h", 1), "required")
    assert not authenticates(Listener("A", "SSL", "h", 1), "requested")
    assert not authenticates(Listener("A", "PLAINTEXT", "h", 1), "required")
