"""Streaming enumeration of one directory with os.scandir.

A directory is listed once (sorted as rsync sorts its file list); the caller stats its entries
one at a time and keeps full records only for what it must act on, so a huge directory needs
little more than its listing in memory."""

from __future__ import annotations

import os
import stat

from blit_core.models import FileEntry, entry_from_stat


def list_dir(path: str) -> list[os.DirEntry]:
    """All entries of a directory, sorted by name. Raises OSError if it cannot be read."""
    with os.scandir(path) as it:
        entries = list(it)
    entries.sort(key=_name)
    return entries


def list_dir_by_name(path: str) -> dict[str, os.DirEntry]:
    """A destination directory's entries by name, for comparison against a source listing."""
    with os.scandir(path) as it:
        return {entry.name: entry for entry in it}


def read_entry(dirent: os.DirEntry, lstat: os.stat_result, *, follow_links: bool) -> FileEntry:
    """The compact record for one entry, given its lstat. With follow_links, symlinks are
    resolved (FileNotFoundError when dangling). Raises OSError when the entry vanished."""
    if not stat.S_ISLNK(lstat.st_mode):
        return entry_from_stat(dirent.name, lstat)
    if follow_links:
        return entry_from_stat(dirent.name, os.stat(dirent.path))
    return entry_from_stat(dirent.name, lstat, os.readlink(dirent.path))


def read_path(path: str, name: str, *, follow_links: bool) -> FileEntry:
    """The compact record for a single path (a transfer root)."""
    st = os.stat(path) if follow_links else os.lstat(path)
    target = os.readlink(path) if not follow_links and os.path.islink(path) else None
    return entry_from_stat(name, st, target)


def _name(dirent: os.DirEntry) -> str:
    return dirent.name
