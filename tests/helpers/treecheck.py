"""Tree comparison helpers for blit's tests.

These helpers describe a directory tree as plain data so tests can assert that a copy made
by blit is faithful to its source (types, permission bits, mtimes in nanoseconds, ownership,
file contents, symlink targets), and check a few properties of the result: hard-link
structure, sparseness and leftover temp files.

All paths handed out are ``str`` relative to the tree root, joined with ``/``.  They come
straight from ``os.scandir`` on a ``str`` root, so names that are not valid UTF-8 are
represented with ``surrogateescape`` exactly as ``os`` does, and names may contain newlines.
Nothing here follows symlinks.

Typical use::

    from helpers.treecheck import assert_same_tree, hardlink_groups

    assert_same_tree(src, dst, check_root_meta=False)
    assert hardlink_groups(src) == hardlink_groups(dst)
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import xxhash

__all__ = [
    "TEMP_SUFFIX",
    "Entry",
    "assert_same_tree",
    "diff_snapshots",
    "file_digest",
    "find_temp_files",
    "hardlink_groups",
    "is_sparse",
    "snapshot",
]

CHUNK_SIZE = 1024 * 1024
TEMP_SUFFIX = ".blit-tmp"
MAX_REPORTED_DIFFERENCES = 20


class Entry(NamedTuple):
    """What ``snapshot`` records for one path (a plain tuple, with field names for messages).

    ``size`` and ``digest`` are only set for regular files, ``target`` only for symlinks;
    they are ``None`` otherwise.
    """

    kind: str  # 'f', 'd', 'l' or 'other'
    mode: int  # stat.S_IMODE of lstat
    mtime_ns: int
    uid: int
    gid: int
    size: int | None = None
    digest: str | None = None
    target: str | None = None


_ZEROS = bytes(CHUNK_SIZE)


def _hash_range(fd: int, hasher: xxhash.xxh3_128, view: memoryview, start: int, end: int) -> None:
    """Feed bytes [start, end) of ``fd`` to ``hasher``, reading in 1 MiB chunks."""
    os.lseek(fd, start, os.SEEK_SET)
    remaining = end - start
    while remaining > 0:
        n = os.readv(fd, [view[: min(remaining, CHUNK_SIZE)]])
        if n == 0:
            break
        hasher.update(view[:n])
        remaining -= n


def file_digest(path: str | os.PathLike[str]) -> str:
    """Return the xxh3-128 hex digest of a file's content, read in 1 MiB chunks.

    Holes (found with SEEK_DATA/SEEK_HOLE) are hashed as zeros without reading them, so
    big sparse files are cheap; the digest is the same as hashing every byte.
    """
    hasher = xxhash.xxh3_128()
    view = memoryview(bytearray(CHUNK_SIZE))
    with open(path, "rb", buffering=0) as fh:
        fd = fh.fileno()
        size = os.fstat(fd).st_size
        pos = 0
        while pos < size:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # SEEK_DATA unsupported: read everything
                    _hash_range(fd, hasher, view, pos, size)
                    break
                data = size  # only a hole is left
            data = min(data, size)
            while pos < data:
                n = min(data - pos, CHUNK_SIZE)
                hasher.update(_ZEROS[:n] if n < CHUNK_SIZE else _ZEROS)
                pos += n
            if pos >= size:
                break
            hole = min(os.lseek(fd, pos, os.SEEK_HOLE), size)
            _hash_range(fd, hasher, view, pos, hole)
            pos = hole
    return hasher.hexdigest()


def _kind(st: os.stat_result) -> str:
    if stat.S_ISREG(st.st_mode):
        return "f"
    if stat.S_ISDIR(st.st_mode):
        return "d"
    if stat.S_ISLNK(st.st_mode):
        return "l"
    return "other"


def _entry(path: str, st: os.stat_result) -> Entry:
    kind = _kind(st)
    size = digest = target = None
    if kind == "f":
        size = st.st_size
        digest = file_digest(path)
    elif kind == "l":
        target = os.readlink(path)
    return Entry(
        kind=kind,
        mode=stat.S_IMODE(st.st_mode),
        mtime_ns=st.st_mtime_ns,
        uid=st.st_uid,
        gid=st.st_gid,
        size=size,
        digest=digest,
        target=target,
    )


def _walk(root: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Yield ``(relative_path, DirEntry)`` for everything below ``root``, never following
    symlinks; directories are yielded before their contents."""
    stack: list[tuple[str, str]] = [(root, "")]
    while stack:
        abs_dir, rel_dir = stack.pop()
        with os.scandir(abs_dir) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            yield rel, entry
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, rel))


def snapshot(root: Path, *, include_root: bool = True) -> dict[str, tuple]:
    """Describe every path under ``root`` (symlinks are not followed).

    Keys are paths relative to ``root`` (``""`` is the root itself, present when
    ``include_root``).  Values are :class:`Entry` tuples:
    ``(kind, mode, mtime_ns, uid, gid, size, digest, target)``.
    """
    root_str = os.fspath(root)
    snap: dict[str, tuple] = {}
    if include_root:
        snap[""] = _entry(root_str, os.lstat(root_str))
    for rel, entry in _walk(root_str):
        snap[rel] = _entry(entry.path, entry.stat(follow_symlinks=False))
    return snap


def hardlink_groups(root: Path) -> set[frozenset[str]]:
    """Groups of relative paths (non-directories) under ``root`` that share an inode.

    Only groups with more than one member inside the tree are returned.
    """
    by_inode: dict[tuple[int, int], set[str]] = {}
    for rel, entry in _walk(os.fspath(root)):
        if entry.is_dir(follow_symlinks=False):
            continue
        st = entry.stat(follow_symlinks=False)
        if st.st_nlink > 1:
            by_inode.setdefault((st.st_dev, st.st_ino), set()).add(rel)
    return {frozenset(group) for group in by_inode.values() if len(group) > 1}


def is_sparse(path: str | os.PathLike[str]) -> bool:
    """True if the file occupies fewer bytes on disk than its apparent size."""
    st = os.stat(path)
    return st.st_blocks * 512 < st.st_size


def find_temp_files(root: Path) -> list[str]:
    """Relative paths of leftover blit temp files (``.{name}.{suffix}.blit-tmp``) under root.

    Any hidden entry whose name ends with ``.blit-tmp`` counts, whatever its type.
    """
    return sorted(
        rel
        for rel, entry in _walk(os.fspath(root))
        if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX)
    )


def _fmt(field: str, value: object) -> str:
    if field == "mode" and isinstance(value, int):
        return oct(value)
    return repr(value)


def diff_snapshots(
    a: dict[str, tuple],
    b: dict[str, tuple],
    *,
    check_root_meta: bool = True,
    ignore: Callable[[str], bool] | None = None,
) -> list[str]:
    """Human-readable differences between two snapshots (empty list if equal)."""
    diffs: list[str] = []
    keys_a = {k for k in a if ignore is None or not ignore(k)}
    keys_b = {k for k in b if ignore is None or not ignore(k)}
    for key in sorted(keys_a - keys_b):
        diffs.append(f"missing in b: {key!r} ({a[key][0]})")
    for key in sorted(keys_b - keys_a):
        diffs.append(f"extra in b:   {key!r} ({b[key][0]})")
    for key in sorted(keys_a & keys_b):
        ea, eb = a[key], b[key]
        if ea == eb:
            continue
        fields = getattr(ea, "_fields", None) or tuple(f"[{i}]" for i in range(len(ea)))
        skip = {"mode", "mtime_ns"} if key == "" and not check_root_meta else set()
        for field, va, vb in zip(fields, ea, eb, strict=True):
            if field in skip or va == vb:
                continue
            diffs.append(f"{key!r}: {field} differs: a={_fmt(field, va)} b={_fmt(field, vb)}")
    return diffs


def assert_same_tree(
    a: Path,
    b: Path,
    *,
    check_root_meta: bool = True,
    ignore: Callable[[str], bool] | None = None,
) -> None:
    """Assert that trees ``a`` and ``b`` are identical as described by :func:`snapshot`.

    ``check_root_meta=False`` ignores the mode and mtime of the root directories
    themselves.  ``ignore(rel_path)`` returning True drops that path from the comparison
    (it is called for every path, including descendants of ignored directories, so
    match prefixes yourself if you want to skip a whole subtree).  Hard-link structure is
    not compared here; use :func:`hardlink_groups` for that.
    """
    diffs = diff_snapshots(
        snapshot(a), snapshot(b), check_root_meta=check_root_meta, ignore=ignore
    )
    if diffs:
        shown = diffs[:MAX_REPORTED_DIFFERENCES]
        more = len(diffs) - len(shown)
        lines = [f"trees differ: a={os.fspath(a)!r} b={os.fspath(b)!r}", *shown]
        if more:
            lines.append(f"... and {more} more difference(s)")
        raise AssertionError("\n".join(lines))
