"""`python -m tests.fuzz TARGET --execs N [--seconds T] [--seed S] [--engine builtin|atheris]`.

Prints one summary line per target (execs, execs/s, crashes, slowest input) and writes
each distinct crash's input to --crash-dir. Exit status 1 if anything crashed. A native
abort (a C or Rust library failing to allocate, say) ends the process with no summary:
the builtin engine cannot name the input then, atheris writes it to crash-* in the
working directory.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
from pathlib import Path

from . import targets
from .engine import Report, run_atheris, run_builtin


def _save(report: Report, crash_dir: Path | None, as_json: bool) -> None:
    print(report.summary(), flush=True)
    for sig, n in sorted(report.signatures.items(), key=lambda kv: -kv[1]):
        print(f"  {n} x {sig}", flush=True)
    if crash_dir is not None and report.kept:
        crash_dir.mkdir(parents=True, exist_ok=True)
        for i, c in enumerate(report.kept):
            (crash_dir / f"{report.target}-{i:02d}.bin").write_bytes(c.data)
            (crash_dir / f"{report.target}-{i:02d}.txt").write_text(c.trace)
        print(f"  inputs and tracebacks in {crash_dir}", flush=True)
    if as_json:
        print(json.dumps({"target": report.target, "engine": report.engine, "execs": report.execs,
                          "seconds": round(report.seconds, 1),
                          "execs_per_s": round(report.execs_per_s), "crashes": report.crashes,
                          "slowest_ms": round(report.slowest_ms, 2)}), flush=True)


def main(argv: list[str] | None = None) -> int:
    all_targets = targets()
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    p.add_argument("target", choices=[*all_targets, "all"])
    p.add_argument("--execs", type=int, default=100_000, help="inputs to run per target")
    p.add_argument("--seconds", type=float, default=None, help="stop each target after this long")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same inputs)")
    p.add_argument("--engine", choices=("builtin", "atheris"), default="builtin",
                   help="builtin mutator (default) or coverage-guided atheris if installed")
    p.add_argument("--crash-dir", type=Path, default=None, help="write crashing inputs here")
    p.add_argument("--max-memory-mb", type=int, default=4096,
                   help="address-space limit (RLIMIT_AS), so a native reserve of a claimed size "
                        "fails even on a large machine; 0 for none")
    p.add_argument("--json", action="store_true", help="also print a JSON summary line")
    args = p.parse_args(argv)
    if args.execs < 1:
        p.error("--execs must be at least 1")
    logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")
    logging.getLogger("cluster").setLevel(logging.CRITICAL)  # refusals and truncations log by design
    if args.max_memory_mb:
        limit = args.max_memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    chosen = list(all_targets.values()) if args.target == "all" else [all_targets[args.target]]
    if args.engine == "atheris":
        if len(chosen) != 1:
            p.error("--engine atheris runs one target per process")
        try:
            import atheris  # noqa: F401
        except ImportError:
            p.error("atheris is not installed (pip install atheris); use --engine builtin")
        run_atheris(chosen[0], args.execs, args.seed, lambda r: _save(r, args.crash_dir, args.json),
                    args.seconds)
    crashed = False
    for target in chosen:
        report = run_builtin(target, args.execs, args.seed, args.seconds)
        _save(report, args.crash_dir, args.json)
        crashed |= report.crashes > 0
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
