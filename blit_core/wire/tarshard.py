"""Tar shards: many small files in one real tar stream (readable by `tar -t`), pure.

The SOURCE packs the small files a DESTINATION needs into shards of a few MiB; each member is
named by the file's path relative to the transfer root. Only what a shard needs is written:
a ustar header (preceded by a pax header when the name does not fit ustar), the data and its
padding, and the two zero blocks that end an archive.

Reading is strict, since a shard comes from the network: every header must carry the ustar
magic, only regular members (and the pax headers naming them) are accepted, every name must be
a safe relative path, and no member may claim more bytes than the shard holds. The header
checksum is written for tar's sake but not verified: it guards tapes against corruption, not a
TCP stream, and a hostile peer computes it as easily as an honest one; every field the reader
uses is validated on its own (a hot path: verifying it took half of each member's time).
Owner, mode and times in the headers are informative only; the manifest carries the real
metadata."""

from __future__ import annotations

import os
from collections.abc import Iterator

from blit_core.errors import ProtocolError
from blit_core.pathsafe import validate_wire_path

BLOCK = 512
END_OF_ARCHIVE = bytes(2 * BLOCK)
_REGULAR = (b"0", b"\0")
_PAX = b"x"
_MAX_PAX_BYTES = 16384


def padding(size: int) -> bytes:
    """The zero bytes that round a member's data up to a whole block."""
    return bytes(-size % BLOCK)


def member_header(name: str, size: int, mode: int, mtime: int) -> bytes:
    """The header block(s) of one regular member."""
    raw = os.fsencode(name)
    if len(raw) <= 100 and raw.isascii():
        return _ustar(raw, size, mode, mtime, b"0")
    record = _pax_record(b"path", raw)
    pax = _ustar(b"././@PaxHeader", len(record), 0o644, mtime, _PAX)
    return pax + record + padding(len(record)) + _ustar(raw[-100:], size, mode, mtime, b"0")


def _pax_record(key: bytes, value: bytes) -> bytes:
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


_OWNER = b"0000000\0" * 2  # uid and gid: informative only
_MAX_OCTAL_11 = 8**11 - 1
_MAGIC = b"ustar\0"
_TAIL = b"\0" * 100 + _MAGIC + b"00" + b"\0" * 247  # linkname, magic and version, the rest
_SPACES_SUM = 8 * ord(" ")  # the checksum field counts as spaces
_TAIL_SUM = sum(_TAIL)


def _ustar(name: bytes, size: int, mode: int, mtime: int, typeflag: bytes) -> bytes:
    """One ustar header block, assembled from its fields (a hot path: one per small file)."""
    head = b"%s%07o\0%s%011o\0%011o\0" % (
        name.ljust(100, b"\0"), mode & 0o7777, _OWNER, size,
        min(max(0, mtime), _MAX_OCTAL_11))
    checksum = sum(head) + _SPACES_SUM + typeflag[0] + _TAIL_SUM
    return b"%s%06o\0 %s%s" % (head, checksum, typeflag, _TAIL)


def read_members(shard: bytes | memoryview) -> Iterator[tuple[str, memoryview]]:
    """Yield (path, data) for each member of a shard, refusing anything but safe regular
    files; raises ProtocolError on a malformed or hostile shard."""
    view = memoryview(shard)
    pos = 0
    pax_path: str | None = None
    while True:
        if pos + BLOCK > len(view):
            raise ProtocolError("tar shard truncated (no end-of-archive blocks)")
        header = view[pos:pos + BLOCK]
        if not any(header):
            return
        _check_header(header)
        size = _parse_octal(header[124:136])
        typeflag = bytes(header[156:157])
        data_start = pos + BLOCK
        data_end = data_start + size
        if data_end > len(view):
            raise ProtocolError("a tar shard member claims more bytes than the shard holds")
        pos = data_end + (-size % BLOCK)
        if typeflag == _PAX:
            if size > _MAX_PAX_BYTES:
                raise ProtocolError("tar shard pax header too large")
            pax_path = _parse_pax_path(bytes(view[data_start:data_end]))
            continue
        if typeflag not in _REGULAR:
            raise ProtocolError(f"tar shard member of type {typeflag!r} refused (regular only)")
        if pax_path is not None:
            name, pax_path = pax_path, None
        else:
            name = os.fsdecode(bytes(header[0:100]).rstrip(b"\0"))
            prefix = bytes(header[345:500]).rstrip(b"\0")
            if prefix:
                name = os.fsdecode(prefix) + "/" + name
        yield validate_wire_path(name), view[data_start:data_end]


def _check_header(header: memoryview) -> None:
    if header[257:263] != _MAGIC:
        raise ProtocolError("tar shard header without the ustar magic")


def _parse_octal(field: memoryview) -> int:
    text = bytes(field).strip(b"\0 ")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise ProtocolError(f"bad number {text!r} in a tar shard header") from None


def _parse_pax_path(data: bytes) -> str:
    path = None
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            raise ProtocolError("malformed pax record in a tar shard")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise ProtocolError("malformed pax record length in a tar shard") from None
        if length <= space - pos or pos + length > len(data):
            raise ProtocolError("malformed pax record length in a tar shard")
        key, sep, value = data[space + 1:pos + length - 1].partition(b"=")
        if not sep:
            raise ProtocolError("malformed pax record in a tar shard")
        if key == b"path":
            path = os.fsdecode(value)
        pos += length
    if path is None:
        raise ProtocolError("pax header without a path in a tar shard")
    return path
