"""The broker's ACLs on disk: one JSON file under the meta dir, rewritten atomically.

Why a whole-file rewrite and not a journal: ACLs change at administrator speed (a
`kafka-acls --add` now and then), while every request reads them, so the file is read
once at start into an `Authorizer` and rewritten (temporary file, fsync, rename,
directory fsync) on each change. A change is acknowledged only after it is durable; if
the write fails, the in-memory set is put back, so what the broker enforces is always
what is on disk. A file that cannot be read stops the broker from starting with one
sentence: starting without its ACLs would silently change who may do what.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterable

from cluster.auth.acl import AclBinding, AclFilter, Authorizer
from cluster.log.files import atomic_write

log = logging.getLogger(__name__)

FILE_NAME = "acls.json"
FORMAT = 1


class AclFileError(Exception):
    """The ACL file exists but cannot be used; the message is one sentence."""


class AclStore:
    """An `Authorizer` whose changes are written to `meta_dir/acls.json` before they apply."""

    def __init__(self, meta_dir: Path, super_users: Iterable[str] = ()) -> None:
        self.path = Path(meta_dir) / FILE_NAME
        self.authorizer = Authorizer(self._load(), super_users)

    def _load(self) -> list[AclBinding]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise AclFileError(f"cannot read the ACL file {self.path}: {exc.strerror or exc}") from None
        try:
            data = json.loads(raw)
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r} is not {FORMAT}")
            return [AclBinding.from_json(row) for row in data["acls"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AclFileError(f"the ACL file {self.path} is damaged ({exc}); restore it from a "
                               "backup or remove it to start with no ACLs") from None

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"format": FORMAT, "acls": [b.to_json() for b in self.authorizer]}
        atomic_write(self.path, json.dumps(data, indent=0).encode())

    def create(self, bindings: list[AclBinding]) -> list[AclBinding]:
        """Add ACLs durably; returns those that were new. Raises OSError (nothing kept)."""
        added = self.authorizer.add(bindings)
        if added:
            try:
                self._save()
            except OSError:
                for b in added:
                    self.authorizer.remove(_exact(b))
                raise
            for b in added:
                log.info("ACL added: %s", b)
        return added

    def delete(self, filters: list[AclFilter]) -> list[list[AclBinding]]:
        """Remove what each filter matches, durably; per filter, what it removed (an ACL
        two filters match is reported under the first). Raises OSError (nothing removed)."""
        removed = [self.authorizer.remove(f) for f in filters]
        if any(removed):
            try:
                self._save()
            except OSError:
                self.authorizer.add(b for group in removed for b in group)
                raise
            for group in removed:
                for b in group:
                    log.info("ACL removed: %s", b)
        return removed


def _exact(b: AclBinding) -> AclFilter:
    return AclFilter(b.resource_type, b.name, b.pattern_type, b.principal, b.host, b.operation, b.permission)
