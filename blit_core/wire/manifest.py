"""The manifest's record format: what the SOURCE says about its tree, batch by batch, and what
the DESTINATION confirms back for a move. Pure: bytes in, records out.

A batch is a run of records, each a kind byte and big-endian fields:

- ROOT     root u32, id u64, entry       the entry a transfer root stands for
- DIR      root u32, rel                 the listing of directory `rel` of `root` starts
- ENTRY    id u64, entry                 one entry of the current listing, sorted by name
- DIR_END  flags u8                      the listing is complete (bit 0: the SOURCE could not
                                         read all of it, so mirror must delete nothing)
- CONFIRM  root u32, rel, size u64, mtime_ns i64   move: committed and verified

An entry is its stat fields, its name, its symlink target and, with --checksum, its digest.
Names and paths are bytes on the wire (os.fsencode), so names that are not UTF-8 survive.
Every name and path is checked as it is decoded: a batch from a hostile peer cannot name
anything outside the root it is applied to."""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Iterator
from typing import NamedTuple

from blit_core.errors import ProtocolError, UnsafePathError
from blit_core.models import FileEntry, new_tuple
from blit_core.pathsafe import validate_wire_path
from blit_core.wire.frames import FIRST_REDO_ID

K_ROOT, K_DIR, K_ENTRY, K_DIR_END, K_CONFIRM = range(1, 6)
_STAT_NAME = "IQqqIIIQQQH"  # an entry's stat fields and its name's length
_ENTRY_HEAD = struct.Struct(">BQ" + _STAT_NAME)  # an ENTRY record up to its name: kind, id
_ROOT_HEAD = struct.Struct(">BIQ" + _STAT_NAME)  # a ROOT record up to its name: kind, root, id
_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_CONFIRM_TAIL = struct.Struct(">Qq")
_NO_TARGET = 0xFFFF
_PLAIN_TAIL = _U16.pack(_NO_TARGET) + _U8.pack(0)  # no symlink target, no digest: most entries
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096
MAX_TARGET_BYTES = 4095
MAX_DIGEST_BYTES = 64
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


class RootRecord(NamedTuple):
    root: int
    id: int
    entry: FileEntry
    digest: bytes


class DirStart(NamedTuple):
    root: int
    rel: str


class EntryRecord(NamedTuple):
    id: int
    entry: FileEntry
    digest: bytes


class DirEnd(NamedTuple):
    incomplete: bool


class Confirm(NamedTuple):
    root: int
    rel: str
    size: int
    mtime_ns: int


Record = RootRecord | DirStart | EntryRecord | DirEnd | Confirm


class ManifestWriter:
    """Appends records to a batch; `take()` hands the batch over and starts a new one."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.records = 0

    def __len__(self) -> int:
        return len(self._buf)

    def root(self, root: int, entry_id: int, entry: FileEntry, digest: bytes = b"") -> None:
        self._entry(_ROOT_HEAD, (K_ROOT, root, entry_id), entry, digest)

    def dir_start(self, root: int, rel: str) -> None:
        self._buf += _U8.pack(K_DIR) + _U32.pack(root)
        self._bytes16(os.fsencode(rel))

    def entry(self, entry_id: int, entry: FileEntry, digest: bytes = b"") -> None:
        self._entry(_ENTRY_HEAD, (K_ENTRY, entry_id), entry, digest)

    def dir_end(self, incomplete: bool) -> None:
        self._buf += _U8.pack(K_DIR_END) + _U8.pack(1 if incomplete else 0)
        self.records += 1

    def confirm(self, root: int, rel: str, size: int, mtime_ns: int) -> None:
        self._buf += _U8.pack(K_CONFIRM) + _U32.pack(root)
        self._bytes16(os.fsencode(rel))
        self._buf += _CONFIRM_TAIL.pack(size, mtime_ns)

    def take(self) -> bytes:
        data = bytes(self._buf)
        self._buf.clear()
        self.records = 0
        return data

    def _entry(self, head: struct.Struct, record: tuple[int, ...], entry: FileEntry,
               digest: bytes) -> None:
        """A ROOT or ENTRY record: its kind and ids (`record`), then the entry's stat fields
        and name length in the same pack (this runs once per entry of a tree), its name, its
        symlink target and its digest."""
        name = entry.name.encode(_FS_ENCODING, _FS_ERRORS)
        buf = self._buf
        buf += head.pack(
            *record, entry.mode, entry.size, entry.mtime_ns, entry.atime_ns, entry.uid,
            entry.gid, entry.nlink, entry.ino, entry.dev, entry.rdev, len(name))
        buf += name
        if entry.target is None and not digest:
            buf += _PLAIN_TAIL
        else:
            if entry.target is None:
                buf += _U16.pack(_NO_TARGET)
            else:
                self._bytes16(os.fsencode(entry.target))
            buf += _U8.pack(len(digest)) + digest
        self.records += 1

    def _bytes16(self, data: bytes) -> None:
        self._buf += _U16.pack(len(data)) + data


def read_records(data: bytes) -> Iterator[Record]:
    """Decode a batch, validating every field; raises ProtocolError on anything malformed.
    ENTRY records, nearly all of a batch, are decoded inline (one unpack each): this runs
    once per entry of a tree, on the DESTINATION's critical path."""
    data = bytes(data)
    reader = _Reader(data)
    end = len(data)
    unpack_head, head_size = _ENTRY_HEAD.unpack_from, _ENTRY_HEAD.size
    while reader.pos < end:
        pos = reader.pos
        kind = data[pos]
        if kind == K_ENTRY:
            if pos + head_size > end:
                raise ProtocolError("manifest record truncated")
            head = unpack_head(data, pos)
            reader.pos = pos + head_size
            entry, digest = reader.entry(head[2:12], head[12], is_root=False)
            yield new_tuple(EntryRecord, (_checked_id(head[1]), entry, digest))
            continue
        reader.pos = pos + 1
        if kind == K_DIR:
            root = reader.u32()
            yield DirStart(root, reader.path())
        elif kind == K_DIR_END:
            yield DirEnd(bool(reader.u8() & 1))
        elif kind == K_ROOT:
            reader.pos = pos
            head = reader.unpack(_ROOT_HEAD)
            entry, digest = reader.entry(head[3:13], head[13], is_root=True)
            yield RootRecord(head[1], _checked_id(head[2]), entry, digest)
        elif kind == K_CONFIRM:
            root = reader.u32()
            rel = reader.path()
            size, mtime_ns = reader.unpack(_CONFIRM_TAIL)
            yield Confirm(root, rel, size, mtime_ns)
        else:
            raise ProtocolError(f"unknown manifest record kind {kind:#04x}")


def _checked_id(entry_id: int) -> int:
    """An entry's id: below the ids a data-plane REDO gives files sent again."""
    if entry_id >= FIRST_REDO_ID:
        raise ProtocolError(f"manifest entry id {entry_id} is not below {FIRST_REDO_ID}")
    return entry_id


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def unpack(self, fmt: struct.Struct) -> tuple:
        end = self.pos + fmt.size
        if end > len(self.data):
            raise ProtocolError("manifest record truncated")
        values = fmt.unpack_from(self.data, self.pos)
        self.pos = end
        return values

    def u8(self) -> int:
        return self.unpack(_U8)[0]

    def u32(self) -> int:
        return self.unpack(_U32)[0]

    def raw(self, length: int, limit: int, what: str) -> bytes:
        if length > limit:
            raise ProtocolError(f"manifest {what} of {length} bytes exceeds {limit}")
        end = self.pos + length
        if end > len(self.data):
            raise ProtocolError("manifest record truncated")
        data = self.data[self.pos:end]
        self.pos = end
        return data

    def path(self) -> str:
        rel = os.fsdecode(self.raw(self.unpack(_U16)[0], MAX_PATH_BYTES, "path"))
        return validate_wire_path(rel)

    def entry(self, stat_fields: tuple, name_len: int, *,
              is_root: bool) -> tuple[FileEntry, bytes]:
        """An entry after its stat fields (mode .. rdev) and its name's length; a root's may
        have an empty name (the contents of SRC/)."""
        name = self.raw(name_len, MAX_NAME_BYTES, "name").decode(_FS_ENCODING, _FS_ERRORS)
        if (not name and not is_root) or name in (".", "..") or "/" in name or "\0" in name:
            raise UnsafePathError(f"unsafe entry name {name!r} in the manifest")
        if self.data.startswith(_PLAIN_TAIL, self.pos):
            self.pos += len(_PLAIN_TAIL)
            return new_tuple(FileEntry, (name, *stat_fields, None)), b""
        target_len = self.unpack(_U16)[0]
        target = (
            None if target_len == _NO_TARGET
            else os.fsdecode(self.raw(target_len, MAX_TARGET_BYTES, "symlink target"))
        )
        digest = self.raw(self.u8(), MAX_DIGEST_BYTES, "digest")
        return new_tuple(FileEntry, (name, *stat_fields, target)), digest
