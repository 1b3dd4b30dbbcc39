#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian machine, then run all of it.
# Installs: kcat, etcd-server and prometheus (promtool) (apt), Java 17 + Maven if missing (apt), OpenSSH's server (apt; the deploy
# tests run real sshd instances as "hosts"), dcmirror with its test extras (pip,
# import-linter among them),
# Apache Kafka 4.3.1 jars for the interop tests (Maven Central, cached outside the repo),
# franz-go's modules for its test suite (Go module proxy).
# Extra arguments go to pytest, e.g. ./test.sh tests/cluster -x
set -euo pipefail
cd "$(dirname "$0")"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
need_apt=()
command -v kcat >/dev/null || need_apt+=(kcat)
command -v javac >/dev/null || need_apt+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || need_apt+=(maven)
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v etcd >/dev/null || need_apt+=(etcd-server)  # the metadata store tests run a real etcd
command -v promtool >/dev/null || need_apt+=(prometheus)  # promtool checks deploy/monitoring's alert rules
if [ ${#need_apt[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
python3 -m peers.fetch
# franz-go's pkg/kgo suite (tests/peers/test_franz_go.py): its modules from the Go module
# proxy, at the version tests/peers/franz/go.mod pins (Go itself is /usr/local/go here).
GO="$(command -v go || echo /usr/local/go/bin/go)"
if [ -x "$GO" ]; then
  : "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"  # go keeps its module cache under it
  export HOME
  (cd tests/peers/franz && "$GO" mod download)
fi
# The layering contracts ([tool.importlinter] in pyproject.toml) before any test. Run through
# python3 (not the lint-imports script, which a --user install may leave off PATH).
python3 -c 'import sys; from importlinter.cli import lint_imports_command; sys.argv[0] = "lint-imports"; lint_imports_command()'
export DCMIRROR_REQUIRE_C_WALKER=1  # the C record walker must have built (tests/cluster/wire/test_record_walk.py)
exec python3 -m pytest -q -p no:cacheprovider "$@"
