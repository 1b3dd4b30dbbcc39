"""Codec tests: round-trips, the framings peers actually write, and corrupt-input errors."""

from __future__ import annotations

import gzip
import os
import struct

import cramjam
import pytest
from aiokafka import codec as aio_codec
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.wire.compression import (
    XERIAL_HEADER,
    CompressionError,
    CorruptCompressedData,
    UnsupportedCodec,
    codec_name,
    compress,
    decompress,
    parse_codec,
    snappy_decompress,
)
from cluster.wire.record_batch import InvalidBatch

CODECS = [0, 1, 2, 3, 4]
COMPRESSED = [1, 2, 3, 4]
PAYLOADS = {
    "empty": b"",
    "one-byte": b"x",
    "random-100k": os.urandom(100_000),
    "repetitive-200k": b"kafka record " * 16_000,
}

AIO_ENCODE = {
    1: aio_codec.gzip_encode,
    2: aio_codec.snappy_encode,
    3: aio_codec.lz4_encode,
    4: aio_codec.zstd_encode,
}
AIO_DECODE = {
    1: aio_codec.gzip_decode,
    2: aio_codec.snappy_decode,
    3: aio_codec.lz4_decode,
    4: aio_codec.zstd_decode,
}


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("name", list(PAYLOADS))
def test_round_trip(codec: int, name: str) -> None:
    data = PAYLOADS[name]
    packed = compress(codec, data)
    assert decompress(codec, packed) == data
    assert decompress(codec, memoryview(bytearray(packed))) == data


def test_compression_actually_compresses() -> None:
    data = PAYLOADS["repetitive-200k"]
    for codec in COMPRESSED:
        assert len(compress(codec, data)) < len(data) // 10, codec_name(codec)


@pytest.mark.parametrize("codec", COMPRESSED)
def test_aiokafka_reads_ours_and_we_read_aiokafkas(codec: int) -> None:
    data = PAYLOADS["repetitive-200k"] + PAYLOADS["random-100k"]
    assert AIO_DECODE[codec](compress(codec, data)) == data
    assert decompress(codec, AIO_ENCODE[codec](data)) == data


def test_snappy_writes_xerial_framing_in_32k_blocks() -> None:
    data = os.urandom(100_000)
    packed = compress(2, data)
    assert packed.startswith(b"\x82SNAPPY\x00") and packed[8:16] == struct.pack(">ii", 1, 1)
    pos, blocks, out = 16, 0, b""
    while pos < len(packed):
        (length,) = struct.unpack_from(">i", packed, pos)
        out += cramjam.snappy.decompress_raw(packed[pos + 4 : pos + 4 + length]).read()
        pos += 4 + length
        blocks += 1
    assert blocks == 4  # ceil(100_000 / 32_768)
    assert out == data


def test_snappy_reads_raw_blocks_as_librdkafka_writes_them() -> None:
    data = b"librdkafka " * 5000
    raw = bytes(cramjam.snappy.compress_raw(data))
    assert not raw.startswith(XERIAL_HEADER[:8])
    assert decompress(2, raw) == data
    assert decompress(2, aio_codec.snappy_encode(data, xerial_compatible=False)) == data


def test_snappy_reads_concatenated_xerial_streams() -> None:
    assert decompress(2, compress(2, b"first ") + compress(2, b"second")) == b"first second"


def test_snappy_ignores_xerial_version_fields_like_kafka_python() -> None:
    """Redpanda once wrote version/compat little-endian; readers ignore them."""
    packed = bytearray(compress(2, b"payload" * 10))
    packed[8:16] = struct.pack("<ii", 1, 1)
    assert snappy_decompress(packed) == b"payload" * 10


@pytest.mark.parametrize(
    "bad",
    [
        XERIAL_HEADER + b"\x00\x00",  # truncated block length
        XERIAL_HEADER + struct.pack(">i", 100) + b"abc",  # block longer than the data
        XERIAL_HEADER + struct.pack(">i", -5) + b"abc",  # negative block length
        XERIAL_HEADER + struct.pack(">i", 3) + b"\xff\xff\xff",  # block not snappy
    ],
)
def test_snappy_corrupt_xerial_is_reported(bad: bytes) -> None:
    with pytest.raises(CorruptCompressedData):
        decompress(2, bad)


def test_lz4_writes_independent_blocks_without_content_checksum() -> None:
    """Java's KafkaLZ4BlockInputStream refuses linked blocks (KIP-57)."""
    packed = compress(3, b"lz4 " * 50_000)
    assert packed[:4] == b"\x04\x22\x4d\x18"  # LZ4 frame magic
    flg = packed[4]
    assert flg >> 6 == 1  # frame version 01
    assert flg & 0x20  # block independence
    assert not flg & 0x04  # no content checksum


def test_lz4_reads_any_valid_frame() -> None:
    data = b"linked blocks with checksums " * 10_000
    assert decompress(3, bytes(cramjam.lz4.compress(data))) == data  # linked + checksum


def test_zstd_reads_streamed_frames_and_concatenated_frames() -> None:
    """Java's ZstdOutputStream writes frames without a content size."""
    c = cramjam.zstd.Compressor()
    c.compress(b"streamed " * 1000)
    streamed = bytes(c.finish())
    assert decompress(4, streamed) == b"streamed " * 1000
    assert decompress(4, compress(4, b"a") + compress(4, b"b")) == b"ab"


def test_gzip_interoperates_with_the_standard_library() -> None:
    data = b"gzip " * 1000
    assert gzip.decompress(compress(1, data)) == data
    assert decompress(1, gzip.compress(data)) == data
    assert decompress(1, gzip.compress(b"one ") + gzip.compress(b"two")) == b"one two"


@pytest.mark.parametrize("codec", COMPRESSED)
@pytest.mark.parametrize("bad", [b"", b"\x01", b"not compressed at all, just text"])
def test_garbage_raises_corrupt_compressed_data(codec: int, bad: bytes) -> None:
    with pytest.raises(CorruptCompressedData) as info:
        decompress(codec, bad)
    assert isinstance(info.value, InvalidBatch)


@pytest.mark.parametrize("codec", COMPRESSED)
def test_truncated_stream_raises_corrupt_compressed_data(codec: int) -> None:
    packed = compress(codec, os.urandom(10_000))
    with pytest.raises(CorruptCompressedData):
        decompress(codec, packed[: len(packed) // 2])


def test_zstd_frame_claiming_4gib_is_refused_not_allocated() -> None:
    packed = bytearray(compress(4, b"\0" * 100_000))
    assert packed[4] & 0xC0 == 0x80  # 4-byte frame content size follows the descriptor
    packed[5:9] = struct.pack("<I", 0xFFFFFFF0)
    with pytest.raises(CorruptCompressedData):
        decompress(4, packed)


@pytest.mark.parametrize("codec", [5, 6, 7, -1])
def test_unsupported_codec(codec: int) -> None:
    with pytest.raises(UnsupportedCodec):
        decompress(codec, b"abc")
    with pytest.raises(UnsupportedCodec):
        compress(codec, b"abc")
    with pytest.raises(UnsupportedCodec):
        codec_name(codec)


def test_codec_names() -> None:
    assert [codec_name(c) for c in CODECS] == ["none", "gzip", "snappy", "lz4", "zstd"]
    assert parse_codec("ZSTD") == 4 and parse_codec(" snappy ") == 2 and parse_codec(3) == 3
    with pytest.raises(ValueError):
        parse_codec("brotli")
    with pytest.raises(UnsupportedCodec):
        parse_codec(9)


@settings(max_examples=150, deadline=None)
@given(codec=st.sampled_from(COMPRESSED), data=st.binary(max_size=300))
def test_random_bytes_either_decode_or_raise_compression_error(codec: int, data: bytes) -> None:
    try:
        out = decompress(codec, data)
    except CompressionError:
        return
    assert isinstance(out, bytes)


@settings(max_examples=150, deadline=None)
@given(
    codec=st.sampled_from(COMPRESSED),
    data=st.binary(min_size=1, max_size=2000),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4),
    cut=st.none() | st.integers(0, 10_000),
)
def test_mutated_streams_either_decode_or_raise_compression_error(
    codec: int, data: bytes, flips: list[tuple[int, int]], cut: int | None
) -> None:
    packed = bytearray(compress(codec, data))
    for pos, xor in flips:
        packed[pos % len(packed)] ^= xor
    if cut is not None:
        del packed[cut % (len(packed) + 1) :]
    try:
        out = decompress(codec, packed)
    except CompressionError:
        return
    assert isinstance(out, bytes)
