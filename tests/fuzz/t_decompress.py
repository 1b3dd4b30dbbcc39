"""Fuzz target `decompress`: `compression.decompress` for gzip, snappy (raw and xerial), lz4, zstd.

Input layout: byte 0 picks the codec (1-4), byte 1 the output limit (from 0 bytes to
1 MiB), the rest is the compressed data. Allowed: the inflated bytes, never longer than the
limit, or a CompressionError subclass. Seeds are real compressed record sections of every
codec (small, repetitive and incompressible inputs, xerial with several blocks), plus
bombs a few times larger than the limits.
"""

from __future__ import annotations

from functools import cache

from cluster.wire.compression import (
    CompressionError,
    compress,
    decompress,
    decompressed,
    snappy_xerial_compress,
)

from .engine import Target

LIMITS = (0, 1, 7, 100, 4096, 65536, 1 << 20, 8 << 20)


class LimitExceeded(AssertionError):
    """decompress returned more bytes than the limit it was given."""


@cache
def seeds() -> list[bytes]:
    plain = [b"", b"x", b"hello kafka " * 40, bytes(range(256)) * 3, b"\0" * 5000]
    out = []
    for codec in (1, 2, 3, 4):
        for i, data in enumerate(plain):
            if not data:
                continue
            out.append(bytes([codec, 4 + i % 3]) + compress(codec, data))
        out.append(bytes([codec, 1]) + compress(codec, b"\0" * 200_000))  # a small bomb
    out.append(bytes([2, 5]) + snappy_xerial_compress(b"ab" * 40_000, block_size=1024))
    return out


def check(data: bytes) -> None:
    if len(data) < 2:
        return
    codec = 1 + data[0] % 4
    limit = LIMITS[data[1] % len(LIMITS)]
    payload = data[2:]
    try:
        out = decompress(codec, payload, limit)
    except CompressionError:
        out = None
    if out is not None and len(out) > limit:
        raise LimitExceeded(f"codec {codec}: {len(out)} bytes out for a limit of {limit}")
    try:  # the zero-copy path the validator uses must agree
        with decompressed(codec, payload, limit) as view:
            same = out is not None and bytes(view) == out
    except CompressionError:
        same = out is None
    if not same:
        raise AssertionError(f"codec {codec}: decompress and decompressed disagree")


TARGET = Target("decompress", seeds, check, __doc__ or "")
