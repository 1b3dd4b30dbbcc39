"""What gets shipped: a wheel of this dcmirror tree and a wheelhouse of its dependencies.

A release is named ``<version>-<hash>``: the hash is over the files that go into the wheel
(the packages, ``dcmirror_cli.py``, ``pyproject.toml``, ``README.md``), not over the wheel
itself, because wheels carry build timestamps and would make every build look new. Same
tree, same name: a second deploy of an unchanged tree finds the release already on each
host and changes nothing. The wheel is built from a copy of those files so the tree is
never written to (setuptools leaves ``build/`` behind), and cached by release name.

The wheelhouse holds the dependencies as wheels so hosts install with ``pip --no-index``
and need no package index; it is built once per dependency list and interpreter.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from deploy.ssh import DeployError

log = logging.getLogger(__name__)

_PACKAGES = ("cluster", "mirror", "deploy")
_TOP_FILES = ("pyproject.toml", "README.md", "dcmirror_cli.py")


@dataclass(frozen=True)
class Release:
    name: str  # <version>-<hash>, the directory name under releases/ on each host
    version: str
    wheel: Path
    wheelhouse: Path
    python_tag: str  # e.g. "3.11 x86_64": what the wheels were built for


def default_source() -> Path:
    """The tree this dcmirror runs from."""
    return Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    return Path(os.environ.get("DCMIRROR_CACHE", Path.home() / ".cache" / "dcmirror")) / "deploy"


def interpreter_tag() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]} {sysconfig.get_platform().split('-')[-1]}"


def source_files(source: Path) -> list[Path]:
    """The files that make up the wheel, relative to ``source``, sorted."""
    if not (source / "pyproject.toml").is_file():
        raise DeployError(f"{source} is not a dcmirror source tree (no pyproject.toml)")
    files = [Path(name) for name in _TOP_FILES if (source / name).is_file()]
    for pkg in _PACKAGES:
        for path in (source / pkg).rglob("*"):
            rel = path.relative_to(source)
            if path.is_file() and "__pycache__" not in rel.parts and path.suffix not in (".so", ".pyc"):
                files.append(rel)
    return sorted(files)


def tree_hash(source: Path) -> str:
    h = hashlib.sha256()
    for rel in source_files(source):
        h.update(str(rel).encode() + b"\0")
        h.update((source / rel).read_bytes() + b"\0")
    return h.hexdigest()


def project(source: Path) -> dict:
    return tomllib.loads((source / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _pip(args: list[str], what: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        tail = " | ".join((res.stderr or res.stdout).strip().splitlines()[-3:])
        raise DeployError(f"cannot build {what}: pip exited {res.returncode}: {tail}")


def build_wheel(source: Path) -> tuple[str, str, Path]:
    """(release name, version, wheel path), building the wheel unless cached."""
    version = project(source)["version"]
    name = f"{version}-{tree_hash(source)[:12]}"
    out = cache_dir() / "wheels" / name
    wheels = sorted(out.glob("dcmirror-*.whl")) if out.is_dir() else []
    if wheels:
        return name, version, wheels[0]
    with tempfile.TemporaryDirectory(prefix="dcmirror-build-") as tmp:
        copy = Path(tmp) / "src"
        for rel in source_files(source):
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / rel, copy / rel)
        built = Path(tmp) / "out"
        log.info("building the dcmirror wheel of %s (release %s)", source, name)
        _pip(["wheel", "--no-deps", str(copy), "-w", str(built)], "the dcmirror wheel")
        (wheel,) = built.glob("dcmirror-*.whl")
        out.mkdir(parents=True, exist_ok=True)
        shutil.move(str(wheel), out / wheel.name)
    return name, version, out / wheel.name


def build_wheelhouse(source: Path) -> Path:
    """A directory of wheels for every dependency of the tree, for this interpreter."""
    deps = sorted(project(source).get("dependencies", []))
    key = hashlib.sha256(("\n".join(deps) + "\n" + interpreter_tag()).encode()).hexdigest()[:12]
    out = cache_dir() / "wheelhouse" / key
    if (out / ".complete").is_file():
        return out
    part = out.with_name(out.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    log.info("building the dependency wheelhouse (%d requirements)", len(deps))
    _pip(["wheel", "-w", str(part), *deps], "the dependency wheelhouse")
    (part / ".complete").write_text("\n".join(deps) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    part.rename(out)
    return out


def prepare(source: Path, wheelhouse: Path | None = None) -> Release:
    name, version, wheel = build_wheel(source)
    house = wheelhouse if wheelhouse is not None else build_wheelhouse(source)
    if not any(house.glob("*.whl")):
        raise DeployError(f"the wheelhouse {house} holds no wheels")
    return Release(name=name, version=version, wheel=wheel, wheelhouse=house, python_tag=interpreter_tag())
