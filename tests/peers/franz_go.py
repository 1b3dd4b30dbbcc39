"""Running franz-go's own `pkg/kgo` integration suite against a Kafka-protocol cluster.

franz-go (the Go client) ships integration tests that run against whatever cluster
`KGO_SEEDS` names; the version is pinned by tests/peers/franz/go.mod and its modules come
from the Go module proxy (`go mod download`, done by test.sh). `go test -json` reports
every test and subtest; this module runs it and folds the events into outcomes.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

MODULE_DIR = Path(__file__).with_name("franz")
PACKAGE = "github.com/twmb/franz-go/pkg/kgo"
GO_CANDIDATES = ("go", "/usr/local/go/bin/go")


def go_binary() -> str | None:
    for candidate in GO_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


@dataclass
class SuiteRun:
    outcomes: dict[str, str] = field(default_factory=dict)  # test or test/subtest -> pass|fail|skip
    skip_reasons: dict[str, str] = field(default_factory=dict)
    output: dict[str, list[str]] = field(default_factory=dict)
    elapsed: dict[str, float] = field(default_factory=dict)
    returncode: int = 0

    def named(self, outcome: str) -> list[str]:
        return sorted(t for t, o in self.outcomes.items() if o == outcome)


def run_suite(seeds: str, run: str, *, env: dict[str, str] | None = None, timeout_s: float = 1800,
              go_timeout: str = "25m") -> SuiteRun:
    """`go test -json -run RUN pkg/kgo` with KGO_SEEDS=seeds; outcomes of every test and subtest."""
    go = go_binary()
    if go is None:
        raise FileNotFoundError("go is not installed (expected on PATH or at /usr/local/go/bin/go)")
    full_env = {**os.environ, "KGO_SEEDS": seeds, **(env or {})}
    full_env.setdefault("HOME", str(Path.home()))  # go's module and build caches live under it
    proc = subprocess.run([go, "test", "-count=1", "-json", f"-timeout={go_timeout}", "-run", run, PACKAGE],
                          cwd=MODULE_DIR, env=full_env, capture_output=True, text=True, timeout=timeout_s)
    result = SuiteRun(returncode=proc.returncode)
    for line in proc.stdout.splitlines():
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            continue
        test = ev.get("Test")
        if not test:
            continue
        action = ev.get("Action")
        if action == "output":
            text = ev.get("Output", "")
            result.output.setdefault(test, []).append(text)
        elif action in ("pass", "fail", "skip"):
            result.outcomes[test] = action
            result.elapsed[test] = float(ev.get("Elapsed", 0.0))
            if action == "skip":
                lines = [t.strip() for t in result.output.get(test, []) if t.strip() and "--- SKIP" not in t]
                result.skip_reasons[test] = lines[-1] if lines else ""
    if not result.outcomes:
        result.output["<build>"] = [proc.stdout[-4000:], proc.stderr[-4000:]]
    return result
