"""`super_users` under a cluster's `local:` block reaches the broker, or is refused at load."""

from __future__ import annotations

import pytest

from mirror.config.model import parse_config
from mirror.config.yaml_loader import ConfigError
from dcmirror_cli import broker_config

YAML = """clusters:
  east:
    bootstrap: 127.0.0.1:9092
    local:
      data_dir: /tmp/east
      super_users: {value}
links: []
"""


@pytest.mark.parametrize("value", ["[User:admin, 'User:mirror']", "User:admin, User:mirror"])
def test_super_users_reach_the_broker_config(value: str) -> None:
    cfg = parse_config(YAML.format(value=value), "m.yaml")
    assert broker_config("east", cfg.clusters["east"].local).super_users == ("User:admin", "User:mirror")


def test_a_name_without_principal_type_is_refused_with_its_position() -> None:
    with pytest.raises(ConfigError, match=r"m.yaml:6:21: .*'admin' is not a principal of the form User:NAME"):
        parse_config(YAML.format(value="[admin]"), "m.yaml")
