"""One broker per data directory: an exclusive lock taken before anything in it is read.

Two brokers on one data dir would each append to the same segments and indexes and each
believe its own catalogue: silent corruption. So `Broker.start` first takes an exclusive,
non-blocking `fcntl.flock` on `<data dir>/meta/data-dir.lock` and holds it until `stop`; the
kernel drops it when the process dies (kill -9 included), so a crash never leaves a stale
lock to clean up. The holder's pid is written in the file only to name it in the refusal.
(`meta/broker.lock` is a different lock: the shared one `dcmirror cluster users` checks.)
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

LOCK_NAME = "meta/data-dir.lock"  # under meta/, with the broker's other bookkeeping


class DataDirInUse(Exception):
    """Another broker holds the data directory; the message is one sentence for the user."""


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Take the data dir's exclusive lock; the returned file holds it until closed."""
    (data_dir / LOCK_NAME).parent.mkdir(parents=True, exist_ok=True)
    f = open(data_dir / LOCK_NAME, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip()
        f.close()
        raise DataDirInUse(f"data directory {data_dir} is in use by another broker"
                           + (f" (pid {holder})" if holder else "")
                           + ": stop it first, or give this one its own --data-dir") from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f
