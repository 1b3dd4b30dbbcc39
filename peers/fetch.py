"""Fetch Apache Kafka jars from Maven Central into the peers cache (`python -m peers.fetch`).

Runs `mvn dependency:copy-dependencies` on peers/kafka/pom.xml into
$DCMIRROR_PEERS_DIR/kafka-<version>/libs. Idempotent (a marker file records success) and
safe to run from several processes at once (an flock on a lock file beside the folder),
so pytest-xdist workers or parallel CI steps can all call `ensure_kafka()`.
"""
from __future__ import annotations

import argparse
import fcntl
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

from peers.common import PACKAGE_DIR, PeerUnavailable, peers_dir

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.3.1"
POM = PACKAGE_DIR / "kafka" / "pom.xml"
MARKER = ".fetched"


def kafka_home(version: str = KAFKA_VERSION) -> Path:
    return peers_dir() / f"kafka-{version}"


def kafka_libs(version: str = KAFKA_VERSION) -> Path:
    return kafka_home(version) / "libs"


def kafka_fetched(version: str = KAFKA_VERSION) -> bool:
    return (kafka_home(version) / MARKER).exists()


def java_path() -> str:
    java = shutil.which("java")
    if not java:
        raise PeerUnavailable("java not on PATH (apt-get install -y openjdk-17-jre-headless)")
    return java


def ensure_kafka(version: str = KAFKA_VERSION, timeout: float = 900.0) -> Path:
    """Return the libs folder, fetching it first if needed. Raises PeerUnavailable."""
    home = kafka_home(version)
    if (home / MARKER).exists():
        return home / "libs"
    mvn = shutil.which("mvn")
    if not mvn:
        raise PeerUnavailable("mvn not on PATH (apt-get install -y maven) and "
                              f"{home} is not fetched")
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(home.parent / f".kafka-{version}.lock", "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)  # released when the file closes
        if (home / MARKER).exists():  # another process finished while we waited
            return home / "libs"
        libs = home / "libs"
        if libs.exists():
            shutil.rmtree(libs)  # a half-done earlier attempt
        started = time.monotonic()
        log.info("fetching Apache Kafka %s jars into %s", version, libs)
        cmd = [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
               f"-Dkafka.version={version}", "-DincludeScope=runtime",
               f"-DoutputDirectory={libs}"]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise PeerUnavailable(f"maven fetch failed (rc={res.returncode}):\n"
                                  f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
        jars = sorted(p.name for p in libs.glob("*.jar"))
        if not any(j.startswith("kafka_2.13-") for j in jars):
            raise PeerUnavailable(f"maven fetch produced no kafka jar in {libs}")
        (home / MARKER).write_text(f"{len(jars)} jars in {time.monotonic() - started:.1f}s\n")
        log.info("fetched %d jars in %.1fs", len(jars), time.monotonic() - started)
        return libs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m peers.fetch", description=__doc__)
    ap.add_argument("--version", default=KAFKA_VERSION)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        libs = ensure_kafka(args.version)
    except PeerUnavailable as e:
        log.error("%s", e)
        return 1
    sys.stdout.write(f"{libs}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
