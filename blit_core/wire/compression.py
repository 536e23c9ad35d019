"""Adaptive zstd on the data plane (-z): the sender's choice of what to compress, and the
receiver's bounded inflation of a ZREC record. Pure: bytes in, bytes out.

A file is compressed only if its name does not end in a known compressed format and a sample
of its first bytes shrinks to at most WORTH of its size; a tar shard or a literal only if it
shrinks that much itself. Otherwise it goes as it is."""

from __future__ import annotations

import zstandard

from blit_core.errors import ProtocolError
from blit_core.wire import frames

SAMPLE_BYTES = 64 << 10
WORTH = 0.9  # compressed / raw, at most
CHUNK = 1 << 20  # a compressed file travels as RANGE records of this many bytes
MIN_RECORD = 512  # smaller records are never worth a frame
MAX_WINDOW = 1 << 24
COMPRESSED_SUFFIXES = frozenset({
    ".7z", ".aac", ".apk", ".avi", ".avif", ".br", ".bz2", ".cab", ".deb", ".docx", ".flac",
    ".gif", ".gz", ".heic", ".jar", ".jpeg", ".jpg", ".lz", ".lz4", ".lzma", ".m4a", ".m4v",
    ".mkv", ".mov", ".mp3", ".mp4", ".odt", ".ogg", ".opus", ".png", ".pptx", ".rar", ".rpm",
    ".tbz", ".tgz", ".txz", ".webm", ".webp", ".whl", ".xlsx", ".xz", ".zip", ".zst",
})


def known_compressed(name: str) -> bool:
    """Whether a file name says its content is compressed already."""
    dot = name.rfind(".")
    return dot >= 0 and name[dot:].lower() in COMPRESSED_SUFFIXES


class Compressor:
    """One sending thread's zstd compressor (a zstd context is not shared between threads)."""

    def __init__(self, level: int) -> None:
        self._zstd = zstandard.ZstdCompressor(level=level, write_content_size=True)

    def worth_it(self, name: str, sample: bytes) -> bool:
        """Whether a file called `name`, starting with `sample`, is worth compressing."""
        return (not known_compressed(name) and len(sample) >= MIN_RECORD
                and len(self._zstd.compress(sample)) <= WORTH * len(sample))

    def record(self, record: bytes | bytearray) -> bytes | None:
        """A whole RANGE, SHARD or LIT record as a ZREC record, or None if that would not
        shrink it to WORTH of its size (or it is too small or too large to be one)."""
        if not MIN_RECORD <= len(record) <= frames.DEFAULT_LIMITS.max_inflated_length:
            return None
        frame = self._zstd.compress(record)
        if len(frame) > WORTH * len(record):
            return None
        return frames.encode_compressed_header(len(record), len(frame)) + frame


def inflate(frame: bytes, raw_length: int) -> bytes:
    """The record a ZREC's zstd frame holds, which must declare and have `raw_length` bytes
    (already checked against the limit): nothing larger is ever allocated."""
    try:
        if zstandard.frame_content_size(frame) != raw_length:
            raise ProtocolError("a compressed record whose frame does not declare its length")
        record = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW).decompress(
            frame, max_output_size=raw_length, allow_extra_data=False)
    except zstandard.ZstdError as exc:
        raise ProtocolError(f"a compressed record that does not decompress: {exc}") from None
    if len(record) != raw_length:
        raise ProtocolError("a compressed record of the wrong length")
    return record
