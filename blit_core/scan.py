"""Streaming enumeration of one directory with os.scandir.

A directory is listed once (sorted as rsync sorts its file list); the caller stats its entries
one at a time and keeps full records only for what it must act on, so a huge directory needs
little more than its listing in memory."""

from __future__ import annotations

import os
import stat

from blit_core.models import FileEntry, entry_from_stat


def list_dir(dir_fd: int) -> list[os.DirEntry]:
    """All entries of the directory open as `dir_fd`, sorted by name. Entries are named
    relative to it (stat'ed by name in it, not by their whole paths again), and it must stay
    open while they are used. Raises OSError if it cannot be read."""
    with os.scandir(dir_fd) as it:
        entries = list(it)
    entries.sort(key=_name)
    return entries


def list_dir_by_name(dir_fd: int) -> dict[str, os.DirEntry]:
    """A destination directory's entries by name, for comparison against a source listing
    (the directory open as `dir_fd`; see list_dir)."""
    with os.scandir(dir_fd) as it:
        return {entry.name: entry for entry in it}


def read_entry(dirent: os.DirEntry, lstat: os.stat_result, *, follow_links: bool,
               dir_fd: int) -> FileEntry:
    """The compact record for one entry of a list_dir listing (`dir_fd` as given there),
    given its lstat. With follow_links, symlinks are resolved (FileNotFoundError when
    dangling). Raises OSError when the entry vanished."""
    if not stat.S_ISLNK(lstat.st_mode):
        return entry_from_stat(dirent.name, lstat)
    if follow_links:
        return entry_from_stat(dirent.name, os.stat(dirent.path, dir_fd=dir_fd))
    return entry_from_stat(dirent.name, lstat, os.readlink(dirent.path, dir_fd=dir_fd))


def read_path(path: str, name: str, *, follow_links: bool,
              dir_fd: int | None = None) -> FileEntry:
    """The compact record for a single path (a transfer root), relative to `dir_fd` if
    given."""
    st = os.stat(path, dir_fd=dir_fd, follow_symlinks=follow_links)
    target = os.readlink(path, dir_fd=dir_fd) if stat.S_ISLNK(st.st_mode) else None
    return entry_from_stat(name, st, target)


def still_as_scanned(fd: int, entry: FileEntry) -> bool:
    """Whether an open source file still has the size and mtime its scan recorded (a file
    that changed since, even while it was being read, has not)."""
    st = os.fstat(fd)
    return st.st_size == entry.size and st.st_mtime_ns == entry.mtime_ns


def _name(dirent: os.DirEntry) -> str:
    return dirent.name
