"""How every `dcmirror` command logs: level from -v/-q, text or JSON lines, stderr or a file.

The default is quiet enough to read: INFO for what an operator acts on (a cluster ready, a
link resuming, a state change), but the chatty internals — group coordinator joins and
rebalances, log cleaner passes — only from `-v`. `-vv` is DEBUG everywhere, `-q` warnings and errors only. `--log-format json` writes
one JSON object per line (ts, level, logger, message, and exc when there is one) for log
shippers; `--log-file` keeps a live view on the terminal clean.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

#: Loggers whose INFO lines are internals: shown from -v on.
#: (Authentication, refused connections and transactions aborted or recovered stay at INFO:
#: an operator audits those, and a timed-out transaction explains a stuck read_committed LSO.)
CHATTY = ("cluster.groups", "cluster.log.cleaner", "cluster.log.segment")

FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object per record; keys are stable (ts is UTC ISO 8601 with milliseconds)."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
               + f".{int(record.msecs):03d}Z",
               "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def level_for(verbose: int, quiet: bool) -> int:
    if quiet:
        return logging.WARNING
    return logging.DEBUG if verbose > 1 else logging.INFO


def configure(verbose: int = 0, quiet: bool = False, fmt: str = "text", log_file: Path | None = None) -> None:
    """Set up the root logger once per process (a second call replaces the first)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; known: {', '.join(FORMATS)}")
    handler: logging.Handler = (logging.FileHandler(log_file, encoding="utf-8") if log_file is not None
                                else logging.StreamHandler(sys.stderr))
    handler.setFormatter(JsonFormatter() if fmt == "json"
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    level = level_for(verbose, quiet)
    root.setLevel(level)
    for name in CHATTY:
        logging.getLogger(name).setLevel(max(level, logging.WARNING) if verbose == 0 else logging.NOTSET)
