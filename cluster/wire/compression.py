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
import struct

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


def decompress(codec: int, data: Buffer) -> bytes:
    """Decompress a records section. Raises CorruptCompressedData / UnsupportedCodec."""
    if codec == CODEC_NONE:
        return bytes(data)
    if codec == CODEC_SNAPPY:
        return snappy_decompress(data)
    if codec == CODEC_GZIP:
        module = cramjam.gzip
    elif codec == CODEC_LZ4:
        module = cramjam.lz4
    elif codec == CODEC_ZSTD:
        module = cramjam.zstd
    else:
        raise UnsupportedCodec(codec)
    if len(data) == 0:
        raise CorruptCompressedData(f"empty {CODEC_NAMES[codec]} payload")
    try:
        return bytes(module.decompress(data))
    except (cramjam.DecompressionError, ValueError, OverflowError, MemoryError) as exc:
        raise CorruptCompressedData(f"{CODEC_NAMES[codec]}: {exc}") from exc


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
    mv = memoryview(data)
    if len(mv) >= len(XERIAL_HEADER) and mv[: len(XERIAL_MAGIC)] == XERIAL_MAGIC:
        return _xerial_decompress(mv)
    if len(mv) == 0:
        raise CorruptCompressedData("empty snappy payload")
    try:
        return bytes(cramjam.snappy.decompress_raw(mv))
    except (cramjam.DecompressionError, ValueError, OverflowError, MemoryError) as exc:
        raise CorruptCompressedData(f"snappy: {exc}") from exc


def _xerial_decompress(mv: memoryview) -> bytes:
    # Version/compat fields are ignored like kafka-python does: some producers (Redpanda)
    # wrote them little-endian, and there has only ever been one xerial block format.
    out: list[bytes] = []
    pos = len(XERIAL_HEADER)
    end = len(mv)
    while pos < end:
        if end - pos < 4:
            raise CorruptCompressedData("snappy: truncated xerial block length")
        (length,) = _I32.unpack_from(mv, pos)
        if length == _XERIAL_HEAD_INT and mv[pos : pos + len(XERIAL_MAGIC)] == XERIAL_MAGIC:
            pos += len(XERIAL_HEADER)  # concatenated stream: skip its header
            continue
        pos += 4
        if length < 0 or pos + length > end:
            raise CorruptCompressedData(f"snappy: bad xerial block length {length}")
        try:
            out.append(bytes(cramjam.snappy.decompress_raw(mv[pos : pos + length])))
        except (cramjam.DecompressionError, ValueError, OverflowError, MemoryError) as exc:
            raise CorruptCompressedData(f"snappy (xerial block): {exc}") from exc
        pos += length
    return b"".join(out)
