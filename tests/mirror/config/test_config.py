"""The YAML contract: what users write loads as documented; every mistake is located."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mirror.config.model import ConfigError, LinkConfig, load_config, parse_config

CONTRACT = """\
clusters:
  east:
    bootstrap: 127.0.0.1:19092      # any Kafka-protocol cluster
    local:                          # optional: `dcmirror up` runs this cluster itself
      data_dir: ./data/east         # relative paths are relative to this file
  west:
    bootstrap: 127.0.0.1:29092
    local:
      data_dir: ./data/west
links:
  - name: east-to-west
    source: east
    target: west
    topics: ["orders.*", "payments"]
    exclude: []
    groups: [".*"]
    rename: identity
"""

TWO_CLUSTERS = """\
clusters:
  east: {bootstrap: "127.0.0.1:1"}
  west: {bootstrap: "127.0.0.1:2"}
"""


def write(tmp_path: Path, text: str, name: str = "mirror.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def error_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env or {})
    return info.value


def assert_located(err: ConfigError, line: int, key_path: str, *words: str) -> None:
    text = str(err)
    assert "mirror.yaml" in text
    assert f"mirror.yaml:{line}:" in text, text
    assert err.line == line
    assert key_path in text and err.key_path == key_path, text
    for word in words:
        assert word in text, text
    assert "\n" not in text


def test_contract_loads_as_documented(tmp_path: Path) -> None:
    path = write(tmp_path, CONTRACT)
    cfg = load_config(path, env={})
    assert set(cfg.clusters) == {"east", "west"}
    east = cfg.clusters["east"]
    assert east.bootstrap == ["127.0.0.1:19092"]
    assert east.local is not None
    assert east.local.data_dir == (tmp_path / "data" / "east").resolve()
    assert (east.local.host, east.local.port) == ("127.0.0.1", 19092)
    (link,) = cfg.links
    assert link == LinkConfig(
        name="east-to-west", source="east", target="west", topics=["orders.*", "payments"],
        exclude=[], groups=[".*"], rename="identity",
    )
    assert link.separator == "." and link.mode == "auto" and link.sync_interval_s == 5.0
    assert link.checkpoint_interval_s == 5.0 and link.propagate_deletes is False
    assert link.topic_watch_interval_s == 0.5
    assert load_config(write(tmp_path, CONTRACT + "    topic_watch_interval_s: 0\n"), env={}).links[0] \
        .topic_watch_interval_s == 0  # the watch off
    assert cfg.path == path.resolve()
    assert cfg.link("east-to-west") is link
    assert cfg.policy(link).target_topic("orders") == "orders"


def test_bootstrap_as_comma_string_or_list(tmp_path: Path) -> None:
    cfg = parse_config(
        'clusters:\n  a: {bootstrap: "h1:1, h2:2"}\n  b:\n    bootstrap: ["[::1]:3", "h4:4"]\n',
        tmp_path / "c.yaml", env={},
    )
    assert cfg.clusters["a"].bootstrap == ["h1:1", "h2:2"]
    assert cfg.clusters["b"].bootstrap == ["[::1]:3", "h4:4"]
    assert cfg.links == []


def test_mode_resolution() -> None:
    link = LinkConfig(name="l", source="a", target="b", topics=[".*"])
    assert link.resolved_mode(True) == "preserve-offsets"
    assert link.resolved_mode(False) == "translate"
    fixed = LinkConfig(name="l", source="a", target="b", topics=[".*"], mode="translate")
    assert fixed.resolved_mode(True) == "translate"


def test_env_references_expand_and_default(tmp_path: Path) -> None:
    text = TWO_CLUSTERS.replace(
        'west: {bootstrap: "127.0.0.1:2"}',
        'west:\n    bootstrap: "${env:WEST}"\n    client: {sasl_password: "${env:PW}", security_protocol: SASL_SSL,'
        ' sasl_mechanism: PLAIN, sasl_username: "${env:USER:-mirror}", request_timeout_s: "${env:T}",'
        ' client_id: "${env:CID:-dr}", connect_timeout_s: 2.5, metadata_max_age_s: 9}',
    )
    cfg = parse_config(text, tmp_path / "c.yaml", env={"WEST": "10.0.0.2:9092", "PW": "s3cret", "T": "7"})
    west = cfg.clusters["west"]
    assert west.bootstrap == ["10.0.0.2:9092"]
    assert west.client.sasl_password == "s3cret" and west.client.sasl_username == "mirror"
    assert west.client.request_timeout_s == 7.0 and west.client.client_id == "dr"
    assert west.client.connect_timeout_s == 2.5 and west.client.metadata_max_age_s == 9.0
    assert cfg.clusters["east"].client.client_id is None
    assert "s3cret" not in repr(west)


def test_extension_keys_hold_anchors(tmp_path: Path) -> None:
    text = "x-common: &c {topics: ['a'], rename: prefix}\n" + TWO_CLUSTERS + (
        "links:\n  - {name: l, source: east, target: west, <<: *c}\n"
    )
    cfg = parse_config(text, tmp_path / "c.yaml", env={})
    assert cfg.links[0].topics == ["a"] and cfg.links[0].rename == "prefix"


# -- every error class -------------------------------------------------------------------


def test_unknown_key_suggests(tmp_path: Path) -> None:
    err = error_of(tmp_path, CONTRACT.replace("    topics:", "    topcis:"))
    assert_located(err, 14, "links[0].topcis", "unknown key 'topcis'", "did you mean 'topics'")


def test_missing_key(tmp_path: Path) -> None:
    err = error_of(tmp_path, CONTRACT.replace("    source: east\n", ""))
    assert_located(err, 11, "links[0].source", "missing required key 'source'")


def test_missing_bootstrap(tmp_path: Path) -> None:
    err = error_of(tmp_path, CONTRACT.replace("    bootstrap: 127.0.0.1:29092\n", ""))
    assert_located(err, 7, "clusters.west.bootstrap", "missing required key 'bootstrap'")


def test_wrong_type(tmp_path: Path) -> None:
    err = error_of(tmp_path, CONTRACT.replace('groups: [".*"]', "groups: 3"))
    assert_located(err, 16, "links[0].groups", "expected a list of regular expressions, got an integer")
    err = error_of(tmp_path, CONTRACT + "    sync_interval_s: soon\n")
    assert_located(err, 18, "links[0].sync_interval_s", "expected a number, got a string")
    err = error_of(tmp_path, CONTRACT + "    propagate_deletes: 1\n")
    assert_located(err, 18, "links[0].propagate_deletes", "expected true or false")
    err = error_of(tmp_path, CONTRACT + "    topic_watch_interval_s: -1\n")
    assert_located(err, 18, "links[0].topic_watch_interval_s", "must be at least 0")
    err = error_of(tmp_path, CONTRACT + "    checkpoint_interval_s: 0\n")
    assert_located(err, 18, "links[0].checkpoint_interval_s", "must be at least")


def test_bad_choice(tmp_path: Path) -> None:
    err = error_of(tmp_path, CONTRACT.replace("rename: identity", "rename: prefx"))
    assert_located(err, 17, "links[0].rename", "'prefx' is not one of identity, prefix", "did you mean 'prefix'")


def test_unknown_cluster_alias(tmp_path: Path) -> None:
    err = error_of(tmp_path, CONTRACT.replace("target: west", "target: wset"))
    assert_located(err, 13, "links[0].target", "unknown cluster 'wset'", "did you mean 'west'")
    err = error_of(tmp_path, CONTRACT.replace("target: west", "target: moon"))
    assert_located(err, 13, "links[0].target", "known clusters: east, west")


def test_bad_regex(tmp_path: Path) -> None:
    err = error_of(tmp_path, CONTRACT.replace('"payments"', '"pay(ments"'))
    assert_located(err, 14, "links[0].topics[1]", "'pay(ments' is not a valid regular expression", "missing )")


def test_duplicate_link_names(tmp_path: Path) -> None:
    text = CONTRACT + "  - {name: east-to-west, source: west, target: east, topics: [x], rename: prefix}\n"
    err = error_of(tmp_path, text)
    assert_located(err, 18, "links[1].name", "'east-to-west' is already used by links[0] on line 11")


def test_source_equals_target(tmp_path: Path) -> None:
    err = error_of(tmp_path, CONTRACT.replace("target: west", "target: east"))
    assert_located(err, 13, "links[0].target", "source and target are both 'east'")


def test_bootstrap_not_host_port(tmp_path: Path) -> None:
    err = error_of(tmp_path, CONTRACT.replace("127.0.0.1:29092", "localhost"))
    assert_located(err, 7, "clusters.west.bootstrap", "'localhost' is not host:port")
    err = error_of(tmp_path, CONTRACT.replace("127.0.0.1:29092", "h:70000"))
    assert_located(err, 7, "clusters.west.bootstrap", "not between 1 and 65535")
    err = error_of(tmp_path, CONTRACT.replace("127.0.0.1:29092", '["h:1", "h2"]'))
    assert_located(err, 7, "clusters.west.bootstrap[1]", "'h2' is not host:port")
    err = error_of(tmp_path, CONTRACT.replace("127.0.0.1:29092", "[]"))
    assert_located(err, 7, "clusters.west.bootstrap", "needs at least one")


def test_local_cluster_needs_single_bootstrap(tmp_path: Path) -> None:
    err = error_of(tmp_path, CONTRACT.replace("127.0.0.1:29092", '"h:1,h:2"'))
    assert_located(err, 7, "clusters.west.bootstrap", "exactly one host:port")


def test_duplicate_keys(tmp_path: Path) -> None:
    err = error_of(tmp_path, CONTRACT.replace("    rename: identity\n", "    rename: identity\n    source: west\n"))
    assert_located(err, 18, "links[0].source", "duplicate key 'source'", "first given on line 12")


def test_identity_cycle_is_refused(tmp_path: Path) -> None:
    text = CONTRACT + "  - {name: west-to-east, source: west, target: east, topics: ['orders\\.eu']}\n"
    err = error_of(tmp_path, text)
    assert_located(err, 18, "links[1]", "east -> west -> east", "bounce", "rename: prefix")
    assert "'orders.*'" in str(err) and "'orders\\.eu'" in str(err)


def test_identity_cycle_of_three_is_refused(tmp_path: Path) -> None:
    text = TWO_CLUSTERS + '  south: {bootstrap: "127.0.0.1:3"}\nlinks:\n' + "".join(
        f"  - {{name: {a}-{b}, source: {a}, target: {b}, topics: ['.*']}}\n"
        for a, b in [("east", "west"), ("west", "south"), ("south", "east")]
    )
    err = error_of(tmp_path, text)
    assert "east -> west -> south -> east" in str(err)


def test_disjoint_identity_links_and_prefix_links_are_fine(tmp_path: Path) -> None:
    disjoint = TWO_CLUSTERS + (
        "links:\n"
        "  - {name: ew, source: east, target: west, topics: ['east\\..*']}\n"
        "  - {name: we, source: west, target: east, topics: ['west\\..*', payments]}\n"
    )
    assert len(load_config(write(tmp_path, disjoint), env={}).links) == 2
    excluded = TWO_CLUSTERS + (
        "links:\n"
        "  - {name: ew, source: east, target: west, topics: [orders, payments], exclude: [payments]}\n"
        "  - {name: we, source: west, target: east, topics: [payments]}\n"
    )
    assert len(load_config(write(tmp_path, excluded), env={}).links) == 2
    prefix = TWO_CLUSTERS + (
        "links:\n"
        "  - {name: ew, source: east, target: west, topics: ['.*'], rename: prefix}\n"
        "  - {name: we, source: west, target: east, topics: ['.*'], rename: prefix}\n"
    )
    assert len(load_config(write(tmp_path, prefix), env={}).links) == 2


def test_two_links_writing_the_same_topics(tmp_path: Path) -> None:
    text = TWO_CLUSTERS + '  dr: {bootstrap: "127.0.0.1:3"}\n' + (
        "links:\n"
        "  - {name: a, source: east, target: dr, topics: ['orders']}\n"
        "  - {name: b, source: west, target: dr, topics: ['ord.*']}\n"
    )
    err = error_of(tmp_path, text)
    assert_located(err, 7, "links[1].topics", "would both write to the same topics on 'dr'")


def test_unset_env_var(tmp_path: Path) -> None:
    err = error_of(tmp_path, CONTRACT.replace("127.0.0.1:29092", '"${env:WEST_BOOTSTRAP}"'))
    assert_located(err, 7, "clusters.west.bootstrap", "environment variable WEST_BOOTSTRAP is not set")


def test_sasl_needs_credentials(tmp_path: Path) -> None:
    text = CONTRACT.replace("    local:\n      data_dir: ./data/west\n", "    client: {security_protocol: SASL_SSL}\n")
    err = error_of(tmp_path, text)
    assert_located(err, 8, "clusters.west.client.sasl_mechanism", "missing required key")


def test_secrets_from_env_and_file(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "pw").write_text("fr0m-a-file\n")
    text = TWO_CLUSTERS.replace(
        'west: {bootstrap: "127.0.0.1:2"}',
        'west:\n    bootstrap: 127.0.0.1:2\n    client: {security_protocol: SASL_PLAINTEXT, sasl_mechanism: SCRAM-SHA-512,'
        ' sasl_username: "${env:U}", sasl_password: "${file:secrets/pw}"}',
    )
    cfg = parse_config(text, tmp_path / "c.yaml", env={"U": "mirror"})
    west = cfg.clusters["west"].client
    assert west.sasl_password == "fr0m-a-file" and west.sasl_username == "mirror"
    assert "fr0m-a-file" not in repr(cfg)
    missing = text.replace("secrets/pw", "secrets/nope")
    with pytest.raises(ConfigError) as info:
        parse_config(missing, tmp_path / "c.yaml", env={"U": "mirror"})
    assert "cannot read" in str(info.value) and "secrets/nope" in str(info.value)
    assert info.value.key_path == "clusters.west.client.sasl_password" and info.value.line == 5


@pytest.mark.parametrize(
    ("client", "key", "words"),
    [
        ("{sasl_username: u}", "sasl_username", "security_protocol is PLAINTEXT, so it would be ignored"),
        ("{security_protocol: SSL, sasl_mechanism: PLAIN}", "sasl_mechanism", "use SASL_SSL"),
        ("{security_protocol: SASL_PLAINTEXT, sasl_mechanism: PLAIN, sasl_username: u, sasl_password: p,"
         " ssl_cafile: ca.pem}", "ssl_cafile", "use SSL or SASL_SSL"),
        ("{ssl_check_hostname: false}", "ssl_check_hostname", "would be ignored"),
        ("{security_protocol: SSL, ssl_cafile: nowhere.pem}", "ssl_cafile", "is not a readable file"),
        ("{security_protocol: SSL, ssl_cafile: bad.pem}", "ssl_cafile", "cannot load the CA file"),
        ("{security_protocol: SSL, ssl_keyfile: bad.pem}", "ssl_keyfile", "needs ssl_certfile"),
        ("{security_protocol: SSL, ssl_certfile: bad.pem}", "ssl_certfile", "cannot load the client certificate"),
        ("{security_protocol: SASL_SSL, sasl_mechanism: GSSAPI, sasl_username: u, sasl_password: p}",
         "sasl_mechanism", "is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
    ],
)
def test_client_security_mistakes_are_located(tmp_path: Path, client: str, key: str, words: str) -> None:
    (tmp_path / "bad.pem").write_text("not a certificate\n")
    text = CONTRACT.replace("    local:\n      data_dir: ./data/west\n", f"    client: {client}\n")
    err = error_of(tmp_path, text)
    assert_located(err, 8, f"clusters.west.client.{key}", words)


def test_tls_settings_load(tmp_path: Path) -> None:
    from peers.certs import make_pki

    pki = make_pki(tmp_path / "pki")
    text = CONTRACT.replace("    local:\n      data_dir: ./data/west\n",
                            "    client:\n      security_protocol: SSL\n      ssl_cafile: pki/ca.pem\n"
                            "      ssl_certfile: pki/client.pem\n      ssl_keyfile: pki/client.key\n"
                            "      ssl_check_hostname: false\n")
    west = load_config(write(tmp_path, text)).clusters["west"].client
    assert west.ssl_cafile == pki.ca and west.ssl_keyfile == pki.client_key
    assert west.ssl_check_hostname is False
    assert load_config(write(tmp_path, CONTRACT)).clusters["west"].client.ssl_check_hostname is True


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("", 1, ["the file is empty"]),
        ("# only a comment\n", 1, ["the file is empty"]),
        ("- just\n- a list\n", 1, ["expected a mapping, got a list"]),
        ("clusters:\n  east: [\n", 3, ["YAML error"]),
        ("clusters:\n  east:\n    bootstrap: 'a:1\n", 4, ["YAML error"]),
        ("clusters:\n  east:\n    bootstrap: !!python/name:os.system x\n", 3, ["YAML error", "constructor"]),
        ("clusters:\n  east:\n    bootstrap: \x07\n", 3, ["character #x0007"]),
        ("clusters: {}\n", 1, ["needs at least one cluster"]),
        ("clusters:\n  e.ast: {bootstrap: 'h:1'}\n", 2, ["may only use letters"]),
    ],
)
def test_document_level_errors(tmp_path: Path, text: str, line: int, words: list[str]) -> None:
    err = error_of(tmp_path, text)
    assert f"mirror.yaml:{line}:" in str(err)
    for word in words:
        assert word in str(err)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.yaml")
    assert "missing.yaml" in str(info.value) and "cannot read" in str(info.value)


# -- robustness: whatever users type, the answer is a located ConfigError or a config ----

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_LINES = CONTRACT.splitlines()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.integers(0, len(_LINES) - 1),
    st.sampled_from(["delete", "replace", "insert"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30),
)
def test_mutated_configs_fail_only_with_config_errors(tmp_path: Path, index: int, how: str, junk: str) -> None:
    lines = list(_LINES)
    if how == "delete":
        del lines[index]
    elif how == "replace":
        indent = len(lines[index]) - len(lines[index].lstrip())
        lines[index] = " " * indent + junk
    else:
        lines.insert(index, junk)
    try:
        parse_config("\n".join(lines) + "\n", tmp_path / "fuzz.yaml", env={})
    except ConfigError as err:
        text = str(err)
        assert text.startswith(str(tmp_path / "fuzz.yaml"))
        assert err.line is not None and err.line >= 1


def test_local_cluster_options_and_metrics(tmp_path: Path) -> None:
    text = CONTRACT.replace(
        "      data_dir: ./data/west\n",
        "      data_dir: /srv/west\n      host: 0.0.0.0\n      fsync: always\n      node_id: 3\n"
        "      allow_unauthenticated: true\n"
        "      topic_defaults: {retention.ms: 1000, cleanup.policy: delete}\n",
    ) + "metrics:\n  listen: 127.0.0.1:9500\n"
    cfg = parse_config(text, tmp_path / "c.yaml", env={})
    west = cfg.clusters["west"].local
    assert west is not None
    assert west.data_dir == Path("/srv/west")
    assert (west.host, west.advertised_host, west.port) == ("0.0.0.0", "127.0.0.1", 29092)
    assert west.fsync == "always" and west.node_id == 3
    assert dict(west.default_topic_configs) == {"retention.ms": "1000", "cleanup.policy": "delete"}
    assert cfg.metrics is not None and (cfg.metrics.host, cfg.metrics.port) == ("127.0.0.1", 9500)
    err = error_of(tmp_path, CONTRACT + "metrics:\n  listen: nowhere\n")
    assert_located(err, 19, "metrics.listen", "'nowhere' is not host:port")
    err = error_of(tmp_path, CONTRACT.replace("data_dir: ./data/west", "data_dir: ./w\n      fsync: sometimes"))
    assert_located(err, 10, "clusters.west.local.fsync", "'sometimes' is not one of always, interval, never")


def test_local_cluster_connection_settings(tmp_path: Path) -> None:
    from dcmirror_cli import broker_config

    text = CONTRACT.replace(
        "      data_dir: ./data/west\n",
        "      data_dir: ./w\n      connections_max_idle_ms: 5000\n      max_connections_per_ip: 3\n"
        "      queued_max_request_bytes: -1\n",
    )
    west = parse_config(text, tmp_path / "c.yaml", env={}).clusters["west"].local
    assert west is not None
    cfg = broker_config("west", west)
    assert (cfg.connections_max_idle_ms, cfg.max_connections_per_ip) == (5000, 3)
    assert cfg.queued_max_request_bytes == -1
    assert (cfg.request_read_timeout_ms, cfg.max_connections) == (30_000, 2**31 - 1)  # defaults
    err = error_of(tmp_path, CONTRACT.replace("data_dir: ./data/west", "data_dir: ./w\n      max_connections: -1"))
    assert_located(err, 10, "clusters.west.local.max_connections", "at least 0")
    err = error_of(tmp_path, CONTRACT.replace("data_dir: ./data/west",
                                              "data_dir: ./w\n      queued_max_request_bytes: 0"))
    assert_located(err, 10, "clusters.west.local.queued_max_request_bytes", "-1 for unlimited")


def test_local_cluster_fetch_max_bytes(tmp_path: Path) -> None:
    from dcmirror_cli import broker_config

    cfg = parse_config(CONTRACT.replace("      data_dir: ./data/west\n",
                                        "      data_dir: ./w\n      fetch_max_bytes: 1048576\n"),
                       tmp_path / "c.yaml", env={})
    assert broker_config("west", cfg.clusters["west"].local).fetch_max_bytes == 1048576
    assert broker_config("east", cfg.clusters["east"].local).fetch_max_bytes == 57671680
    err = error_of(tmp_path, CONTRACT.replace("data_dir: ./data/west", "data_dir: ./w\n      fetch_max_bytes: 100"))
    assert_located(err, 10, "clusters.west.local.fetch_max_bytes", "1024")


def test_local_cluster_max_partitions(tmp_path: Path) -> None:
    from dcmirror_cli import broker_config

    text = CONTRACT.replace("      data_dir: ./data/west\n", "      data_dir: ./w\n      max_partitions: 500\n")
    west = parse_config(text, tmp_path / "c.yaml", env={}).clusters["west"].local
    assert west is not None and west.max_partitions == 500
    assert broker_config("west", west).max_partitions == 500
    plain = parse_config(CONTRACT, tmp_path / "c.yaml", env={}).clusters["west"].local
    assert plain is not None and broker_config("west", plain).max_partitions == 100_000
    err = error_of(tmp_path, CONTRACT.replace("data_dir: ./data/west", "data_dir: ./w\n      max_partitions: 0"))
    assert err.line == 10 and "max_partitions" in str(err)


def test_local_cluster_batch_limits(tmp_path: Path) -> None:
    from dcmirror_cli import broker_config

    cfg = parse_config(CONTRACT.replace("      data_dir: ./data/west\n",
                                        "      data_dir: ./w\n      max_batch_records: 1000\n"
                                        "      max_batch_inflate_bytes: 2097152\n"),
                       tmp_path / "c.yaml", env={})
    west = broker_config("west", cfg.clusters["west"].local)
    assert (west.max_batch_records, west.max_batch_inflate_bytes) == (1000, 2 << 20)
    assert west.batch_limits().max_records == 1000
    east = broker_config("east", cfg.clusters["east"].local)
    assert (east.max_batch_records, east.max_batch_inflate_bytes) == (262_144, 64 << 20)
    err = error_of(tmp_path, CONTRACT.replace("data_dir: ./data/west",
                                              "data_dir: ./w\n      max_batch_inflate_bytes: 999999999"))
    assert_located(err, 10, "clusters.west.local.max_batch_inflate_bytes", "at most 67108864")
    err = error_of(tmp_path, CONTRACT.replace("data_dir: ./data/west", "data_dir: ./w\n      max_batch_records: 0"))
    assert_located(err, 10, "clusters.west.local.max_batch_records", "at least 1")


def test_local_brokers_is_refused_until_up_runs_multi_broker_clusters(tmp_path: Path) -> None:
    err = error_of(tmp_path, CONTRACT.replace("      data_dir: ./data/east ",
                                              "      brokers: 3\n      data_dir: ./data/east "))
    assert_located(err, 5, "clusters.east.local.brokers", "not supported by `dcmirror up` yet",
                   "cluster start --brokers N")
