"""glibc malloc thresholds for the broker process: large request buffers reuse heap memory
instead of fresh pages.

Why: every Produce request makes a few buffers of about its size (the frame, the records
the decoder slices out, the joined batches written to the log), 0.25-1 MiB each for
librdkafka's requests. glibc serves those from mmap or trims them off the heap top when
they are freed (its dynamic thresholds settle at 1-2 MiB), so the next request touches
fresh pages: 210,000 page faults per GB produced over plaintext, 340,000-460,000 over
TLS, 15-20% of the broker's CPU in produce runs (README "Cost of TLS"). With allocations
up to 4 MiB from the heap and up to 32 MiB of free heap top kept, faults drop to about 0
per GB; the price is that much more resident memory after a burst.

Only on glibc, and not when the operator set glibc's own `MALLOC_MMAP_THRESHOLD_` /
`MALLOC_TRIM_THRESHOLD_` environment variables (those win, as glibc documents).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 32 * 1024 * 1024
ENV_KEYS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def tune_malloc() -> bool:
    """Set the thresholds; False (and nothing changed) off glibc or when the env sets them."""
    if platform.libc_ver()[0] != "glibc" or any(k in os.environ for k in ENV_KEYS):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    ok = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1 and ok
    log.debug("glibc malloc: mmap threshold %d, trim threshold %d bytes (%s)",
              MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES, "set" if ok else "refused")
    return ok
