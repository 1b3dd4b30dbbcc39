"""`local:` SASL keys in the cluster YAML: honoured by the broker config, or refused at file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from mirror.config.model import ConfigError, load_config
from dcmirror_cli import broker_config

HEAD = """\
clusters:
  west:
    bootstrap: 127.0.0.1:29092
    local:
      data_dir: ./w
      listeners: [{listener}]
"""


def _load(tmp_path: Path, local: str, listener: str = "INSIDE=PLAINTEXT://127.0.0.1:29092, S=SASL_PLAINTEXT://127.0.0.1:29093"):
    path = tmp_path / "mirror.yaml"
    path.write_text(HEAD.format(listener=listener) + local)
    return load_config(path, env={})


def _error(tmp_path: Path, local: str, **kw) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, local, **kw)
    assert "\n" not in str(info.value)
    return info.value


def test_sasl_keys_reach_the_broker_config(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "      sasl_mechanisms: [PLAIN, SCRAM-SHA-512]\n      sasl_plain_over_plaintext: true\n"
                          "      connections_max_reauth_ms: 60000\n"
                          "      connection_failed_authentication_delay_ms: 250\n"
                          "      sasl_server_max_receive_size: 100000\n")
    bc = broker_config("west", cfg.clusters["west"].local)
    assert bc.sasl_mechanisms == ("PLAIN", "SCRAM-SHA-512") and bc.sasl_plain_over_plaintext
    assert (bc.connections_max_reauth_ms, bc.connection_failed_authentication_delay_ms,
            bc.sasl_server_max_receive_size) == (60000, 250, 100000)
    cfg = _load(tmp_path, "      sasl_mechanisms: SCRAM-SHA-256\n")
    assert broker_config("west", cfg.clusters["west"].local).sasl_mechanisms == ("SCRAM-SHA-256",)
    assert broker_config("west", _load(tmp_path, "").clusters["west"].local).sasl_mechanisms == \
        ("SCRAM-SHA-256", "SCRAM-SHA-512")


def test_sasl_refusals(tmp_path: Path) -> None:
    e = _error(tmp_path, "      sasl_mechanisms: [SCRAM-SHA-256, GSSAPI]\n")
    assert "unknown SASL mechanism 'GSSAPI'" in str(e) and "sasl_mechanisms" in str(e) and ":7:" in str(e)
    e = _error(tmp_path, "      sasl_mechanisms: [PLAIN]\n")
    assert "in the clear" in str(e) and "sasl_mechanisms" in str(e)
    e = _error(tmp_path, "      sasl_mechanisms: [SCRAM-SHA-256]\n", listener="INSIDE=PLAINTEXT://127.0.0.1:29092")
    assert "would be ignored" in str(e)
    e = _error(tmp_path, "      sasl_plain_over_plaintext: true\n")
    assert "sasl_plain_over_plaintext" in str(e) and "would be ignored" in str(e)
    e = _error(tmp_path, "      connection_failed_authentication_delay_ms: -1\n")
    assert "connection_failed_authentication_delay_ms" in str(e)
