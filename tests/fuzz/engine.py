"""The fuzzing loop: feed a target bytes, count what it survives, keep what breaks it.

Two engines drive the same targets:

* ``builtin`` — no dependency, deterministic for a given ``--seed``: each input is either
  random bytes or a seed input put through a stack of byte-level and structure-aware
  mutations (bit flips, Kafka's "interesting" integers written big-endian at any offset,
  overlong varints, spliced seeds, truncation). The pytest smoke run uses it.
* ``atheris`` — coverage-guided (libFuzzer) when the ``atheris`` package is installed; the
  same seeds are its starting corpus. Better at reaching deep branches, 2-4x slower per exec
  because of the instrumentation.

A target's ``check`` returns normally for every input it handles correctly (including the
typed errors it is allowed to raise); any exception escaping it is a crash. An input taking
longer than ``SLOW_MS`` counts as a crash too (the issue's bound: no input over 50 ms).
Inputs are timed in CPU time of this process (``time.process_time``): on a shared machine
wall time mostly measures the scheduler.
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

logger = logging.getLogger("fuzz.engine")

SLOW_MS = 50.0
RETIME_MS = 0.5  # an input slower than this and than any before is timed twice more: min counts
MAX_LEN = 1 << 16
KEPT_CRASHES = 20

_INTERESTING = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
                0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, (1 << 63) - 1, 1 << 63, (1 << 64) - 1]


class SlowInput(Exception):
    """An input took longer than SLOW_MS."""


@dataclass
class Target:
    """A fuzz target: seed inputs and a check that raises on anything but correct handling."""

    name: str
    seeds: Callable[[], list[bytes]]
    check: Callable[[bytes], None]
    doc: str = ""


@dataclass
class Crash:
    data: bytes
    error: str
    trace: str


@dataclass
class Report:
    target: str
    engine: str
    execs: int = 0
    seconds: float = 0.0
    crashes: int = 0
    kept: list[Crash] = field(default_factory=list)
    slowest_ms: float = 0.0
    slowest_len: int = 0
    signatures: dict[str, int] = field(default_factory=dict)

    @property
    def execs_per_s(self) -> float:
        return self.execs / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        return (f"{self.target} [{self.engine}]: {self.execs} execs in {self.seconds:.1f} s "
                f"({self.execs_per_s:.0f}/s), {self.crashes} crashes "
                f"({len(self.signatures)} distinct), slowest input {self.slowest_ms:.2f} ms CPU "
                f"({self.slowest_len} bytes)")


class Mutator:
    """Byte-level mutations of seed inputs, deterministic for one random.Random."""

    def __init__(self, seeds: list[bytes], rng: random.Random) -> None:
        self.seeds = [s for s in seeds if s] or [b"\0"]
        self.rng = rng

    def next(self) -> bytes:
        r = self.rng
        if r.random() < 0.08:
            return r.randbytes(r.choice((0, 1, 4, 12, 20, 61, r.randrange(200))))
        buf = bytearray(r.choice(self.seeds))
        for _ in range(1 + int(r.expovariate(0.6))):
            self._mutate(buf)
        return bytes(buf[:MAX_LEN])

    def _mutate(self, buf: bytearray) -> None:
        r = self.rng
        n = len(buf)
        op = r.randrange(10)
        pos = r.randrange(n + 1)
        if op == 0 and n:
            buf[pos % n] ^= 1 << r.randrange(8)
        elif op == 1 and n:
            buf[pos % n] = r.randrange(256)
        elif op in (2, 3):  # an interesting integer, big-endian, where a field may be
            width = r.choice((1, 2, 4, 8))
            value = r.choice(_INTERESTING) + r.choice((0, 0, -1, 1))
            raw = (value % (1 << (8 * width))).to_bytes(width, "big")
            buf[pos : pos + width] = raw
        elif op == 4:  # overlong or huge varint
            buf[pos:pos] = bytes([0xFF] * r.randrange(1, 11)) + bytes([r.randrange(128)])
        elif op == 5 and n:
            end = min(n, pos + r.randrange(1, 64))
            del buf[pos:end]
        elif op == 6 and n:  # duplicate a chunk
            start = r.randrange(n)
            chunk = buf[start : start + r.randrange(1, 128)]
            buf[pos:pos] = chunk
        elif op == 7:  # splice another seed in
            other = r.choice(self.seeds)
            start = r.randrange(len(other))
            buf[pos:] = other[start:]
        elif op == 8 and n:
            del buf[r.randrange(n) :]
        else:
            buf[pos:pos] = r.randbytes(r.randrange(1, 16))


def _record(report: Report, data: bytes, exc: BaseException) -> None:
    report.crashes += 1
    tb = traceback.extract_tb(exc.__traceback__)
    where = f"{tb[-1].filename}:{tb[-1].lineno}" if tb else "?"
    sig = f"{type(exc).__name__} at {where}"
    report.signatures[sig] = report.signatures.get(sig, 0) + 1
    if report.signatures[sig] == 1:
        logger.error("%s: crash %s: %s (input %d bytes: %s)", report.target, sig, exc,
                     len(data), data[:80].hex())
    if len(report.kept) < KEPT_CRASHES:
        report.kept.append(Crash(data, f"{type(exc).__name__}: {exc}",
                                 "".join(traceback.format_exception(exc))))


def run_one(target: Target, report: Report, data: bytes) -> None:
    """One exec: time it, record a crash instead of raising."""
    t0 = time.process_time()
    try:
        target.check(data)
        failure: BaseException | None = None
    except Exception as exc:  # every escaping exception is a finding
        failure = exc
    ms = (time.process_time() - t0) * 1000
    report.execs += 1
    if failure is None and ms > RETIME_MS and ms > report.slowest_ms:
        ms = min(ms, _retime(target, data))  # page faults, GC: the input's own cost is the least
    if ms > report.slowest_ms:
        report.slowest_ms, report.slowest_len = ms, len(data)
    if failure is None and ms > SLOW_MS:
        failure = SlowInput(f"{ms:.1f} ms")
    if failure is not None:
        _record(report, data, failure)


def _retime(target: Target, data: bytes) -> float:
    best = float("inf")
    for _ in range(2):
        t0 = time.process_time()
        try:
            target.check(data)
        except Exception:  # already passed once; a flaky failure is not this function's to judge
            pass
        best = min(best, (time.process_time() - t0) * 1000)
    return best


def run_builtin(target: Target, execs: int, seed: int, seconds: float | None = None) -> Report:
    """Seeds first, then mutated inputs until `execs` inputs (or `seconds`) have run."""
    report = Report(target.name, "builtin")
    seeds = target.seeds()
    mutator = Mutator(seeds, random.Random(seed))
    start = time.perf_counter()
    for s in seeds:  # every seed must pass as it is; this also warms caches up
        run_one(target, report, s)
    report.slowest_ms = 0.0  # first-use costs (schemas loaded, buffers mapped) are not inputs
    deadline = None if seconds is None else start + seconds
    while report.execs < execs:
        run_one(target, report, mutator.next())
        if deadline is not None and report.execs % 256 == 0 and time.perf_counter() > deadline:
            break
    report.seconds = time.perf_counter() - start
    return report


def _instrument_project(atheris) -> int:  # type: ignore[no-untyped-def]
    """Coverage for the project's own code only (all loaded code takes minutes to patch)."""
    import inspect
    import sys

    done = 0
    for name, module in list(sys.modules.items()):
        if not name.startswith(("cluster.", "tests.fuzz.")) or module is None:
            continue
        for obj in list(vars(module).values()):
            funcs = [obj] if inspect.isfunction(obj) else []
            if inspect.isclass(obj) and obj.__module__ == name:
                funcs = [f for f in vars(obj).values() if inspect.isfunction(f)]
            for f in funcs:
                if f.__module__ == name:
                    atheris.instrument_func(f)
                    done += 1
    logger.info("atheris: instrumented %d functions", done)
    return done


def run_atheris(target: Target, execs: int, seed: int, on_done: Callable[[Report], None],
                seconds: float | None = None) -> None:
    """Coverage-guided run; never returns (libFuzzer owns the process), calls on_done."""
    import atheris  # optional: pip install atheris

    report = Report(target.name, "atheris")
    corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-{target.name}-"))
    seeds = target.seeds()
    for i, s in enumerate(seeds):
        (corpus / f"seed-{i:04d}").write_bytes(s)
    max_len = min(MAX_LEN, max(4096, 2 * max(map(len, seeds))))
    _instrument_project(atheris)
    start = time.perf_counter()
    deadline = float("inf") if seconds is None else start + seconds

    def one_input(data: bytes) -> None:
        run_one(target, report, data)
        if report.execs >= execs or (report.execs % 256 == 0 and time.perf_counter() > deadline):
            report.seconds = time.perf_counter() - start
            on_done(report)
            os._exit(1 if report.crashes else 0)

    atheris.Setup(["fuzz", f"-seed={seed or 1}", f"-max_len={max_len}", "-len_control=0", "-rss_limit_mb=4096",
                   "-print_final_stats=0", "-timeout=60", str(corpus)], one_input)
    atheris.Fuzz()
