"""The framing of blit's raw-TCP data plane: constants, limits, decoder events and encoders.

A data connection starts with a preface (MAGIC, DATA_VERSION, a TOKEN_BYTES session token),
sent once by the dialling side. Then come records, each led by a one-byte type; all integers
are big-endian:

    RANGE  0x01  need_id u64, offset u64, length u64, then `length` payload bytes
    SHARD  0x02  length u64, then `length` bytes of a tar stream of small files
    ABORT  0x03  need_id u64, reason_len u16, reason (utf-8); the receiver discards that file
    END    0x04  no fields; nothing may follow it on the connection
    DELTA  0x05  need_id u64: a delta of that file follows, on this connection
    COPY   0x06  block u64, count u64: the next bytes are that run of the basis's blocks
    LIT    0x07  length u64, then `length` literal bytes
    DEND   0x08  size u64, xxh3-128 (16 bytes): the delta's end, with the whole new file's
                 size and checksum
    ZREC   0x09  raw_length u32, compressed_length u32, then a zstd frame (declaring its
                 content size) of exactly one whole RANGE, SHARD or LIT record of raw_length
                 bytes; never another ZREC
    REDO   0x0A  need_id u64, new_id u64, size u64, mtime_ns i64: the file `need_id` changed
                 while it was sent. The receiver drops what it has of it (and ignores what
                 still comes under `need_id`); it comes again, whole, as RANGE records of
                 `new_id` on this connection, with this size and mtime. A manifest's ids are
                 below FIRST_REDO_ID, and a REDO's new ids at or above it: a file is sent
                 again at most once

The decoder (`blit_core.wire.codec.Decoder`) turns bytes into the events defined here."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from blit_core.errors import ProtocolError

MAGIC = b"BLIT"
DATA_VERSION = 1
TOKEN_BYTES = 32
PREFACE = struct.Struct(">4sB32s")
PREFACE_SIZE = PREFACE.size  # 37

RANGE = 0x01
SHARD = 0x02
ABORT = 0x03
END = 0x04
DELTA = 0x05
COPY = 0x06
LITERAL = 0x07
DELTA_END = 0x08
COMPRESSED = 0x09
REDO = 0x0A

RANGE_HEADER = struct.Struct(">BQQQ")  # type, need_id, offset, length
SHARD_HEADER = struct.Struct(">BQ")  # type, length
ABORT_HEADER = struct.Struct(">BQH")  # type, need_id, reason_len
DELTA_HEADER = struct.Struct(">BQ")  # type, need_id
COPY_RECORD = struct.Struct(">BQQ")  # type, block, count
LITERAL_HEADER = struct.Struct(">BQ")  # type, length
DELTA_END_RECORD = struct.Struct(">BQ16s")  # type, size, digest
COMPRESSED_HEADER = struct.Struct(">BII")  # type, raw_length, compressed_length
REDO_RECORD = struct.Struct(">BQQQq")  # type, need_id, new_id, size, mtime_ns

MAX_REASON_BYTES = 4096
# A range must end at an offset the receiver can pwrite to (off_t is signed 64-bit).
MAX_FILE_END = (1 << 63) - 1
FIRST_REDO_ID = 1 << 62


@dataclass(frozen=True, slots=True)
class Limits:
    """The largest values a peer may declare; each is checked before anything is allocated."""

    max_range_length: int = 1 << 40
    max_shard_length: int = 1 << 30
    max_reason_bytes: int = MAX_REASON_BYTES
    max_need_id: int = (1 << 63) - 1
    max_literal_length: int = 1 << 24
    max_blocks: int = 1 << 40
    max_inflated_length: int = (16 << 20) + 64  # a ZREC's record, decompressed


DEFAULT_LIMITS = Limits()


def over_limit(field: str, value: int, limit: int) -> str:
    """The message for a field whose value is out of its allowed range [0, limit]."""
    return f"{field} {value} is outside the allowed range 0..{limit}"


@dataclass(frozen=True, slots=True)
class RangeStart:
    need_id: int
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class ShardStart:
    length: int


@dataclass(frozen=True, slots=True)
class Data:
    """A non-empty piece of the current RANGE or SHARD payload."""

    chunk: bytes

    def __repr__(self) -> str:
        return f"Data(<{len(self.chunk)} bytes>)"


@dataclass(frozen=True, slots=True)
class PayloadEnd:
    """The current payload is complete (emitted even for a zero-length payload)."""


@dataclass(frozen=True, slots=True)
class Abort:
    need_id: int
    reason: str


@dataclass(frozen=True, slots=True)
class DeltaStart:
    need_id: int


@dataclass(frozen=True, slots=True)
class CopyBlocks:
    block: int
    count: int


@dataclass(frozen=True, slots=True)
class LiteralStart:
    """Literal bytes of the current delta follow as Data, then PayloadEnd."""

    length: int


@dataclass(frozen=True, slots=True)
class DeltaEnd:
    size: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class Redo:
    """The file `need_id` comes again, whole, as `new_id`, with this size and mtime."""

    need_id: int
    new_id: int
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class End:
    """The sender has nothing more for this connection."""


class NeedData(enum.Enum):
    """The decoder needs more bytes before it can produce another event."""

    NEED_DATA = "NEED_DATA"


NEED_DATA = NeedData.NEED_DATA

Event = (RangeStart | ShardStart | Data | PayloadEnd | Abort | End | DeltaStart | CopyBlocks
         | LiteralStart | DeltaEnd | Redo)


def encode_preface(token: bytes) -> bytes:
    """The preface a dialling side sends first on a data connection."""
    if len(token) != TOKEN_BYTES:
        raise ValueError(f"token must be {TOKEN_BYTES} bytes, not {len(token)}")
    return PREFACE.pack(MAGIC, DATA_VERSION, bytes(token))


def parse_preface(data: bytes) -> bytes:
    """Check a received preface and return its token (the caller compares it in constant
    time)."""
    if len(data) != PREFACE_SIZE:
        raise ProtocolError(f"preface must be {PREFACE_SIZE} bytes, not {len(data)}")
    magic, version, token = PREFACE.unpack(data)
    if magic != MAGIC:
        raise ProtocolError(f"bad preface magic {bytes(magic)!r}, expected {MAGIC!r}")
    if version != DATA_VERSION:
        raise ProtocolError(f"unsupported data version {version}, expected {DATA_VERSION}")
    return token


def _check(field: str, value: int, limit: int) -> None:
    if not 0 <= value <= limit:
        raise ValueError(over_limit(field, value, limit))


def encode_range_header(need_id: int, offset: int, length: int) -> bytes:
    """The header of a RANGE record; the caller sends exactly `length` payload bytes after."""
    _check("need_id", need_id, DEFAULT_LIMITS.max_need_id)
    _check("range length", length, DEFAULT_LIMITS.max_range_length)
    _check("range offset", offset, MAX_FILE_END)
    _check("range end", offset + length, MAX_FILE_END)
    return RANGE_HEADER.pack(RANGE, need_id, offset, length)


def encode_shard_header(length: int) -> bytes:
    """The header of a SHARD record; the caller sends `length` bytes of tar stream after."""
    _check("shard length", length, DEFAULT_LIMITS.max_shard_length)
    return SHARD_HEADER.pack(SHARD, length)


def encode_abort(need_id: int, reason: str) -> bytes:
    """A whole ABORT record. The reason is cut to MAX_REASON_BYTES on a utf-8 character
    boundary; characters utf-8 cannot encode (lone surrogates) become '?'."""
    _check("need_id", need_id, DEFAULT_LIMITS.max_need_id)
    raw = reason.encode("utf-8", "replace")
    if len(raw) > MAX_REASON_BYTES:
        raw = raw[:MAX_REASON_BYTES].decode("utf-8", "ignore").encode("utf-8")
    return ABORT_HEADER.pack(ABORT, need_id, len(raw)) + raw


def encode_delta_start(need_id: int) -> bytes:
    _check("need_id", need_id, DEFAULT_LIMITS.max_need_id)
    return DELTA_HEADER.pack(DELTA, need_id)


def encode_copy(block: int, count: int) -> bytes:
    _check("copy block", block, DEFAULT_LIMITS.max_blocks)
    _check("copy count", count, DEFAULT_LIMITS.max_blocks)
    return COPY_RECORD.pack(COPY, block, count)


def encode_literal_header(length: int) -> bytes:
    """The header of a LIT record; the caller sends exactly `length` bytes after."""
    _check("literal length", length, DEFAULT_LIMITS.max_literal_length)
    return LITERAL_HEADER.pack(LITERAL, length)


def encode_delta_end(size: int, digest: bytes) -> bytes:
    _check("delta size", size, MAX_FILE_END)
    return DELTA_END_RECORD.pack(DELTA_END, size, digest)


def encode_redo(need_id: int, new_id: int, size: int, mtime_ns: int) -> bytes:
    """A whole REDO record: `need_id` is sent again as `new_id`, with this size and mtime."""
    _check("need_id", need_id, FIRST_REDO_ID - 1)
    if not FIRST_REDO_ID <= new_id <= DEFAULT_LIMITS.max_need_id:
        raise ValueError(f"a new id must be in {FIRST_REDO_ID}..{DEFAULT_LIMITS.max_need_id}")
    _check("redo size", size, MAX_FILE_END)
    return REDO_RECORD.pack(REDO, need_id, new_id, size, mtime_ns)


def encode_compressed_header(raw_length: int, compressed_length: int) -> bytes:
    """The header of a ZREC record; `compressed_length` bytes of zstd frame follow."""
    _check("inflated length", raw_length, DEFAULT_LIMITS.max_inflated_length)
    _check("compressed length", compressed_length, DEFAULT_LIMITS.max_inflated_length)
    return COMPRESSED_HEADER.pack(COMPRESSED, raw_length, compressed_length)


def encode_end() -> bytes:
    """The END record."""
    return bytes([END])
