"""The admin verbs (ls, find, du, df, rm, path completion) as data, over the files of a module.

Each operation starts from a *target*: a directory descriptor and a name in it, as the daemon
opens them beneath a module root without following symlinks ("" names the descriptor's own
directory, the module root). From there everything is relative to descriptors: directories are
opened one name at a time with O_NOFOLLOW, so no symlink is ever followed and nothing outside
the module is read or removed, even if a symlink is swapped in while the work runs. A symlink is
reported (and removed) as the link itself.

Trees are walked depth-first in sorted name order, holding one listing per open directory:
memory grows with the depth of the tree, not its size. Results are generators, so the caller
streams them. A walk takes an optional `stop` event, checked at every entry, so that work whose
caller has gone away ends promptly. No grpc, no printing."""

from __future__ import annotations

import enum
import fnmatch
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction

MAX_COMPLETIONS = 1000
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Interrupted(Exception):
    """A walk's stop event was set before the walk ended."""


class EntryKind(enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    OTHER = "other"


@dataclass(frozen=True)
class Entry:
    """One file, directory or link, as lstat sees it."""

    path: str  # relative to the requested path; "" is the requested path itself
    kind: EntryKind
    size: int
    mode: int  # st_mode, type bits included
    mtime_ns: int
    target: str = ""  # a symlink's target, as stored


@dataclass(frozen=True)
class FindCriteria:
    """What `find` keeps; every given criterion must hold."""

    name: str = ""  # a glob on the base name; "" matches every name
    kind: EntryKind | None = None
    min_size: int | None = None
    max_size: int | None = None
    newer_s: float | None = None  # modified within this many seconds before now
    limit: int = 0  # stop after this many matches; 0: no limit


@dataclass(frozen=True)
class Usage:
    """The non-directories beneath a directory (or one file): their count and sizes."""

    path: str  # relative to the requested path; "" is the requested path itself
    bytes: int  # apparent sizes (st_size; a symlink counts its own length)
    files: int


@dataclass(frozen=True)
class Space:
    """A filesystem's size, in bytes."""

    total: int
    used: int
    free: int  # available to unprivileged users


@dataclass(frozen=True)
class Removal:
    """What went (or, in a dry run, would go) for one requested path."""

    path: str
    files: int = 0  # non-directories
    dirs: int = 0
    bytes: int = 0
    error: str = ""  # non-empty: the path was not (wholly) removed


@dataclass(frozen=True)
class ModuleInfo:
    name: str
    comment: str
    read_only: bool


@dataclass(frozen=True)
class ModuleListing:
    modules: tuple[ModuleInfo, ...]
    motd: str
    server_version: str


def list_path(parent_fd: int, name: str, *, show_hidden: bool) -> Iterator[Entry]:
    """The entries of a directory target, sorted by name (names starting with '.' only with
    show_hidden); for any other target (a symlink included), the target itself, as path ""."""
    st = _lstat(parent_fd, name)
    if not stat.S_ISDIR(st.st_mode):
        yield _entry("", st, parent_fd, name)
        return
    fd = _open_dir(parent_fd, name)
    try:
        for child in sorted(os.listdir(fd)):
            if not show_hidden and child.startswith("."):
                continue
            try:
                yield _entry(child, os.lstat(child, dir_fd=fd), fd, child)
            except FileNotFoundError:  # removed since the listing
                continue
    finally:
        os.close(fd)


def find(parent_fd: int, name: str, criteria: FindCriteria,
         stop: threading.Event | None = None) -> Iterator[Entry]:
    """Every entry at and beneath the target that meets `criteria`, in walk order. The age
    cut-off is taken from this machine's clock when the walk starts; unreadable directories
    are passed over. Raises Interrupted once `stop` is set."""
    cutoff_ns = None
    if criteria.newer_s is not None:
        cutoff_ns = time.time_ns() - int(Fraction(criteria.newer_s) * 10**9)  # any age
    found = 0
    for visit in _walk(parent_fd, name, stop=stop):
        if visit.leaving or not _matches(visit, criteria, cutoff_ns):
            continue
        yield _entry(visit.path, visit.st, visit.parent_fd, visit.name)
        found += 1
        if found == criteria.limit:
            return


def disk_usage(parent_fd: int, name: str, max_depth: int | None = None,
               stop: threading.Event | None = None) -> Iterator[Usage]:
    """The usage of each directory at and beneath the target, each as soon as everything
    beneath it has been counted (post-order, as du); directories deeper than max_depth are
    counted in their parents but not reported. A target that is not a directory is reported
    alone. Raises Interrupted once `stop` is set."""
    open_totals: list[list[int]] = []  # [bytes, files] of each directory being walked
    for visit in _walk(parent_fd, name, stop=stop):
        if not stat.S_ISDIR(visit.st.st_mode):
            if not open_totals:
                yield Usage(visit.path, visit.st.st_size, 1)
                continue
            open_totals[-1][0] += visit.st.st_size
            open_totals[-1][1] += 1
        elif not visit.leaving:
            open_totals.append([0, 0])
        else:
            size, files = open_totals.pop()
            if open_totals:
                open_totals[-1][0] += size
                open_totals[-1][1] += files
            depth = visit.path.count("/") + 1 if visit.path else 0
            if max_depth is None or depth <= max_depth:
                yield Usage(visit.path, size, files)


def disk_free(parent_fd: int, name: str) -> Space:
    """The size of the filesystem holding the target (statvfs)."""
    if not stat.S_ISDIR(_lstat(parent_fd, name).st_mode):
        fs = os.statvfs(parent_fd)
    else:
        fd = _open_dir(parent_fd, name)
        try:
            fs = os.statvfs(fd)
        finally:
            os.close(fd)
    return Space(total=fs.f_blocks * fs.f_frsize, used=(fs.f_blocks - fs.f_bfree) * fs.f_frsize,
                 free=fs.f_bavail * fs.f_frsize)


def remove(path: str, parent_fd: int, name: str, *, recursive: bool, dry_run: bool,
           stop: threading.Event | None = None) -> Removal:
    """Remove the target (`path` is how the result names it): a directory only when
    recursive, with everything beneath it, deepest first; a symlink as the link. Carries on
    past failures and reports the first. Once `stop` is set it removes nothing more and
    reports what went as interrupted. A dry run counts what would go and removes nothing."""
    try:
        st = _lstat(parent_fd, name)
    except OSError as exc:
        return Removal(path, error=_reason(exc))
    if stat.S_ISDIR(st.st_mode) and not recursive:
        return Removal(path, error="is a directory (pass -r to remove it and what it holds)")
    counts = {"files": 0, "dirs": 0, "bytes": 0}
    errors: list[str] = []

    def note(where: str, exc: OSError) -> None:
        if not errors:
            errors.append(f"{where!r}: {_reason(exc)}" if where else _reason(exc))

    try:
        for visit in _walk(parent_fd, name, on_error=note, stop=stop, top_st=st):
            is_dir = stat.S_ISDIR(visit.st.st_mode)
            if is_dir and not visit.leaving:
                continue
            if not dry_run:
                try:
                    (os.rmdir if is_dir else os.unlink)(visit.name, dir_fd=visit.parent_fd)
                except OSError as exc:
                    note(visit.path, exc)
                    continue
            if is_dir:
                counts["dirs"] += 1
            else:
                counts["files"] += 1
                counts["bytes"] += visit.st.st_size
    except Interrupted:
        errors.insert(0, "interrupted before everything was removed")
    return Removal(path, **counts, error=errors[0] if errors else "")


def completions(parent_fd: int, name: str, prefix: str,
                limit: int = MAX_COMPLETIONS) -> list[tuple[str, bool]]:
    """(name, is a directory) for the names in the target directory that start with `prefix`,
    sorted, at most `limit`; names starting with '.' only when the prefix does. A symlink is
    never a directory here."""
    fd = _open_dir(parent_fd, name)
    try:
        hidden = prefix.startswith(".")
        names = sorted(child for child in os.listdir(fd)
                       if child.startswith(prefix) and (hidden or not child.startswith(".")))
        found = []
        for child in names[:limit]:
            try:
                found.append((child, stat.S_ISDIR(os.lstat(child, dir_fd=fd).st_mode)))
            except FileNotFoundError:
                continue
        return found
    finally:
        os.close(fd)


@dataclass(frozen=True)
class _Visit:
    """One step of a walk. A directory is visited twice: on the way in, and (leaving) after
    everything beneath it."""

    path: str  # relative to the top of the walk; "" is the top
    st: os.stat_result  # lstat
    parent_fd: int  # the directory holding it (open for as long as the visit is current)
    name: str  # its name in parent_fd; "" when parent_fd is the top itself
    leaving: bool = False


def _walk(parent_fd: int, name: str,
          on_error: Callable[[str, OSError], None] | None = None,
          stop: threading.Event | None = None,
          top_st: os.stat_result | None = None) -> Iterator[_Visit]:
    """Depth-first over the target and everything beneath it, sorted by name, never following
    a symlink. A directory that cannot be opened or listed is reported to on_error (with its
    path) and walked as if empty. `top_st` is the target's lstat when the caller has taken
    it (and decided on it). Raises Interrupted at the next step once `stop` is set."""
    top = _Visit("", top_st or _lstat(parent_fd, name), parent_fd, name)
    yield top
    if not stat.S_ISDIR(top.st.st_mode):
        return
    stack: list[tuple[_Visit, int | None, Iterator[str]]] = []  # (dir, its fd, names left)

    def enter(visit: _Visit) -> None:
        fd = None
        try:
            fd = _open_dir(visit.parent_fd, visit.name)
            names = iter(sorted(os.listdir(fd)))
        except OSError as exc:
            if fd is not None:
                os.close(fd)
                fd = None
            names = iter(())
            if on_error is not None:
                on_error(visit.path, exc)
        stack.append((visit, fd, names))

    enter(top)
    try:
        while stack:
            if stop is not None and stop.is_set():
                raise Interrupted
            visit, fd, names = stack[-1]
            child = next(names, None)
            if child is None:
                stack.pop()
                if fd is not None:
                    os.close(fd)
                yield replace(visit, leaving=True)
                continue
            assert fd is not None  # a directory that could not be listed has no names
            try:
                st = os.lstat(child, dir_fd=fd)
            except OSError as exc:
                if not isinstance(exc, FileNotFoundError) and on_error is not None:
                    on_error(_join(visit.path, child), exc)
                continue
            found = _Visit(_join(visit.path, child), st, fd, child)
            yield found
            if stat.S_ISDIR(st.st_mode):
                enter(found)
    finally:
        for _, fd, _ in stack:
            if fd is not None:
                os.close(fd)


def _matches(visit: _Visit, criteria: FindCriteria, cutoff_ns: int | None) -> bool:
    st = visit.st
    if criteria.kind is not None and _kind(st.st_mode) is not criteria.kind:
        return False
    if criteria.min_size is not None and st.st_size < criteria.min_size:
        return False
    if criteria.max_size is not None and st.st_size > criteria.max_size:
        return False
    if cutoff_ns is not None and st.st_mtime_ns < cutoff_ns:
        return False
    return not criteria.name or fnmatch.fnmatchcase(visit.name, criteria.name)


def _entry(path: str, st: os.stat_result, parent_fd: int, name: str) -> Entry:
    kind = _kind(st.st_mode)
    target = os.readlink(name, dir_fd=parent_fd) if kind is EntryKind.SYMLINK else ""
    return Entry(path, kind, st.st_size, st.st_mode, st.st_mtime_ns, target)


def _kind(mode: int) -> EntryKind:
    if stat.S_ISREG(mode):
        return EntryKind.FILE
    if stat.S_ISDIR(mode):
        return EntryKind.DIR
    if stat.S_ISLNK(mode):
        return EntryKind.SYMLINK
    return EntryKind.OTHER


def _lstat(parent_fd: int, name: str) -> os.stat_result:
    return os.lstat(name, dir_fd=parent_fd) if name else os.fstat(parent_fd)


def _open_dir(parent_fd: int, name: str) -> int:
    """A readable descriptor of the directory `name` in parent_fd ("" : parent_fd's own),
    refusing a symlink."""
    return os.open(name or ".", _DIR_FLAGS, dir_fd=parent_fd)


def _join(head: str, name: str) -> str:
    return f"{head}/{name}" if head else name


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
