"""Kafka record-batch codecs (1 gzip, 2 snappy, 3 lz4, 4 zstd) on top of cramjam.

A v2 batch compresses its records section as a whole; the codec number sits in the low
three bits of the batch attributes. The broker never recompresses (it stores batches as
bytes), so this module serves the client, tools, tests and record decoding only.

The codecs are standard except for two wire conventions that peers disagree on:

* **snappy** — the Java client (snappy-java's ``SnappyOutputStream``) writes *xerial
  framing*: a 16-byte header ``\\x82SNAPPY\\x00`` + version 1 + compat 1 (both int32 BE),
  then blocks of ``int32 BE length + raw snappy`` over 32 KiB chunks of input. librdkafka
  writes one *raw* snappy block. Java, kafka-python, aiokafka and librdkafka all detect the
  xerial magic on read and fall back to raw otherwise, so we do the same; we write the
  xerial framing because it is what the reference client emits and every reader accepts it.
  snappy-java also accepts a second xerial header in place of a block length (concatenated
  streams), so we do too.
* **lz4** — Kafka uses the LZ4 *frame* format (KIP-57) but Java's reader rejects frames
  with linked blocks, so we write independent blocks and no content checksum (what
  aiokafka writes); any valid frame is accepted on read.

Corrupt input of any kind raises `CorruptCompressedData`, a subclass of
`record_batch.InvalidBatch`, so the batch decoder has a single failure type.
"""

from __future__ import annotations

import logging
import mmap
import struct
import threading

import cramjam

from .record_batch import (
    CODEC_GZIP,
    CODEC_LZ4,
    CODEC_NONE,
    CODEC_SNAPPY,
    CODEC_ZSTD,
    InvalidBatch,
)

logger = logging.getLogger(__name__)

CODEC_NAMES: dict[int, str] = {
    CODEC_NONE: "none",
    CODEC_GZIP: "gzip",
    CODEC_SNAPPY: "snappy",
    CODEC_LZ4: "lz4",
    CODEC_ZSTD: "zstd",
}
CODECS_BY_NAME: dict[str, int] = {name: codec for codec, name in CODEC_NAMES.items()}

XERIAL_MAGIC = b"\x82SNAPPY\x00"
XERIAL_HEADER = XERIAL_MAGIC + struct.pack(">ii", 1, 1)
XERIAL_BLOCK_SIZE = 32 * 1024  # snappy-java's default block size, which Kafka keeps
_XERIAL_HEAD_INT = struct.unpack(">i", XERIAL_MAGIC[:4])[0]  # a 2nd header in a stream
_I32 = struct.Struct(">i")

# Levels: Kafka's defaults (KIP-390) for gzip/zstd; lz4 level 9 matches the broker's.
GZIP_LEVEL = 6
LZ4_LEVEL = 9
ZSTD_LEVEL = 3

Buffer = bytes | bytearray | memoryview


class CompressionError(InvalidBatch):
    """Base class for codec failures while reading a batch."""


class UnsupportedCodec(CompressionError):
    """Codec number outside 0..4 (Kafka's answer would be UNSUPPORTED_COMPRESSION_TYPE)."""

    def __init__(self, codec: int) -> None:
        super().__init__(f"unsupported compression codec {codec}")
        self.codec = codec


class CorruptCompressedData(CompressionError):
    """The compressed bytes do not decode under the codec named in the attributes."""


class DecompressionLimit(CompressionError):
    """The records would inflate past the allowed size: refused, never fully attempted."""

    def __init__(self, codec: int, limit: int) -> None:
        super().__init__(
            f"{CODEC_NAMES.get(codec, codec)} records inflate to more than {limit} bytes"
        )
        self.limit = limit


# Every decompression writes into a per-thread anonymous mapping of this size: the codec
# stops when the mapping is full, so a bomb costs at most this much work and memory, and
# pages stay unmapped (out of RSS) until a batch really fills them.
DECOMPRESS_CEILING = 64 << 20
_RELEASE_ABOVE = 8 << 20  # give pages back after an output this large
_scratch = threading.local()
_FULL = ("failed to write whole buffer", "smaller than required")


def codec_name(codec: int) -> str:
    """Human name of a codec number, for logs and CLI output."""
    try:
        return CODEC_NAMES[codec]
    except KeyError:
        raise UnsupportedCodec(codec) from None


def parse_codec(value: int | str) -> int:
    """Accept a codec as number or Kafka name ("gzip", "snappy"...); CLI/config helper."""
    if isinstance(value, int):
        codec_name(value)
        return value
    try:
        return CODECS_BY_NAME[value.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown compression type {value!r}") from None


def compress(codec: int, data: Buffer) -> bytes:
    """Compress a records section as the Java producer would for this codec."""
    if codec == CODEC_NONE:
        return bytes(data)
    if codec == CODEC_GZIP:
        return bytes(cramjam.gzip.compress(data, level=GZIP_LEVEL))
    if codec == CODEC_SNAPPY:
        return snappy_xerial_compress(data)
    if codec == CODEC_LZ4:
        c = cramjam.lz4.Compressor(level=LZ4_LEVEL, content_checksum=False, block_linked=False)
        c.compress(data)
        return bytes(c.finish())
    if codec == CODEC_ZSTD:
        return bytes(cramjam.zstd.compress(data, level=ZSTD_LEVEL))
    raise UnsupportedCodec(codec)


def decompress(codec: int, data: Buffer, limit: int = DECOMPRESS_CEILING) -> bytes:
    """Decompress a records section of at most `limit` bytes.

    Raises CorruptCompressedData, UnsupportedCodec or DecompressionLimit.
    """
    if codec == CODEC_NONE:
        return bytes(data)
    with decompressed(codec, data, limit) as view:
        return bytes(view)


class decompressed:
    """`with decompressed(codec, data, limit) as view:` the inflated bytes, zero-copy.

    The view points into this thread's scratch mapping and is valid only inside the
    block; the validator walks it there without copying.
    """

    def __init__(self, codec: int, data: Buffer, limit: int = DECOMPRESS_CEILING) -> None:
        if codec not in CODEC_NAMES:
            raise UnsupportedCodec(codec)
        self.codec = codec
        self.data = data
        self.limit = min(limit, DECOMPRESS_CEILING)
        self.view: memoryview | None = None

    def __enter__(self) -> memoryview:
        if self.codec == CODEC_NONE:
            return memoryview(self.data)
        mm = getattr(_scratch, "mm", None)
        if mm is None:
            mm = _scratch.mm = mmap.mmap(-1, DECOMPRESS_CEILING + 1)
        out = memoryview(mm)[: self.limit + 1]
        n = _inflate_into(self.codec, memoryview(self.data), out, self.limit)
        self.view = out[:n]
        return self.view

    def __exit__(self, *exc: object) -> None:
        if self.view is not None:
            if len(self.view) > _RELEASE_ABOVE:
                _scratch.mm.madvise(mmap.MADV_DONTNEED)
            self.view.release()
            self.view = None


def _inflate_into(codec: int, data: memoryview, out: memoryview, limit: int) -> int:
    name = CODEC_NAMES[codec]
    if len(data) == 0:
        raise CorruptCompressedData(f"empty {name} payload")
    try:
        if codec == CODEC_SNAPPY:
            if len(data) >= len(XERIAL_HEADER) and data[: len(XERIAL_MAGIC)] == XERIAL_MAGIC:
                n = _xerial_into(data, out)
            else:
                n = cramjam.snappy.decompress_raw_into(data, out)
        else:
            module = {CODEC_GZIP: cramjam.gzip, CODEC_LZ4: cramjam.lz4, CODEC_ZSTD: cramjam.zstd}[codec]
            n = module.decompress_into(data, out)
    except (cramjam.DecompressionError, ValueError, OverflowError, MemoryError) as exc:
        if any(marker in str(exc) for marker in _FULL):
            raise DecompressionLimit(codec, limit) from None
        raise CorruptCompressedData(f"{name}: {exc}") from exc
    if n > limit:
        raise DecompressionLimit(codec, limit)
    return n


def snappy_xerial_compress(data: Buffer, block_size: int = XERIAL_BLOCK_SIZE) -> bytes:
    """xerial-framed snappy, byte-compatible in layout with snappy-java's output stream."""
    mv = memoryview(data)
    parts = [XERIAL_HEADER]
    for start in range(0, len(mv), block_size):
        block = bytes(cramjam.snappy.compress_raw(mv[start : start + block_size]))
        parts.append(_I32.pack(len(block)))
        parts.append(block)
    return b"".join(parts)


def snappy_decompress(data: Buffer) -> bytes:
    """Raw snappy or xerial-framed snappy, told apart by the 8-byte xerial magic."""
    return decompress(CODEC_SNAPPY, data)


def _xerial_into(mv: memoryview, out: memoryview) -> int:
    """xerial blocks decompressed one after another into `out`.

    Version/compat fields are ignored like kafka-python does: some producers (Redpanda)
    wrote them little-endian, and there has only ever been one xerial block format.
    snappy-java accepts a second header in place of a block length (concatenated
    streams), so we do too.
    """
    pos = len(XERIAL_HEADER)
    end = len(mv)
    written = 0
    while pos < end:
        if end - pos < 4:
            raise CorruptCompressedData("snappy: truncated xerial block length")
        (length,) = _I32.unpack_from(mv, pos)
        if length == _XERIAL_HEAD_INT and mv[pos : pos + len(XERIAL_MAGIC)] == XERIAL_MAGIC:
            pos += len(XERIAL_HEADER)
            continue
        pos += 4
        if length < 0 or pos + length > end:
            raise CorruptCompressedData(f"snappy: bad xerial block length {length}")
        written += cramjam.snappy.decompress_raw_into(mv[pos : pos + length], out[written:])
        pos += length
    return written
