"""FsSink: commits entries into a destination tree safely.

Every regular file is written to a hidden temp file in its destination directory, receives its
data, owner, mode and mtime, and is renamed over the target, so no reader ever sees a torn file
and a failure leaves the old file intact. On any failure, including a signal, the temp file is
removed; with --partial it is kept instead as the file's partial (hidden beside it, or in
--partial-dir), which the next transfer of that file rebuilds from and then removes. Replaced or
deleted entries are kept first when backups are on, as rsync's -b does. A source file that
changes while it is copied is copied once more as it is then, and reported if it changes again.

Every destination operation names its place as (directory descriptor, name): the descriptors
come from blit_core.pathsafe, so no write ever follows a symlink inside the destination."""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from blit_core import pathsafe
from blit_core.delta.files import BASIS_FLAGS, DeltaCounts, DeltaMismatch, delta_copy, wants_delta
from blit_core.fastcopy import OnBytes, copy_file
from blit_core.models import FileEntry, entry_from_stat
from blit_core.options import TransferOptions
from blit_core.scan import still_as_scanned

TEMP_SUFFIX = ".blit-tmp"
PARTIAL_SUFFIX = ".blit-partial"
# What temp_name makes, exactly: ".NAME.PID.N.blit-tmp" (PID and N without leading zeros).
_TEMP_NAME = re.compile(r"\..+\.([1-9][0-9]*)\.(?:0|[1-9][0-9]*)" + re.escape(TEMP_SUFFIX),
                        re.DOTALL)
_DEAD_STATES = (b"Z", b"X")  # /proc/PID/stat: a zombie, or dead and being reaped
_MAX_NAME_BYTES = 255
DELTA_STRATEGY = "delta"
COPY_ATTEMPTS = 2  # a file that changed while it was copied is copied once more, as it is then
SOURCE_CHANGED = "changed during the transfer"
_PERM_BITS = 0o7777
# Read and write: a file rebuilt from a delta is read back to check it.
_TEMP_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# Opening an existing entry to set its attributes: never through a symlink, never blocking on
# a FIFO, and without needing read permission where the kernel allows.
_ATTR_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class Incoming(NamedTuple):
    """A file being received: the descriptor its bytes go to and the name it has meanwhile."""

    fd: int
    name: str
    dst_mode: int | None
    inplace: bool


class DestDir(NamedTuple):
    """What the sink needs to know about a destination directory: its filesystem (the key of
    the fast-copy capability cache) and whether new files inherit its group (setgid)."""

    dev: int
    setgid: bool

    @classmethod
    def of(cls, dir_fd: int) -> DestDir:
        st = os.fstat(dir_fd)
        return cls(st.st_dev, bool(st.st_mode & stat.S_ISGID))


def current_umask() -> int:
    """The process umask, read without leaving it changed."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


class FsSink:
    """Writes entries into a local destination; one per process."""

    def __init__(self, options: TransferOptions, *, replace_directories: bool,
                 jail: str | None = None) -> None:
        """`replace_directories`: a non-empty directory that stands where a file must go is
        removed (mirror); otherwise only an empty one is, as rsync does without --delete.
        `jail`: the daemon module that holds the destination and the --backup-dir."""
        self.options = options
        self.jail = jail
        self.replace_directories = replace_directories
        self.on_bytes: OnBytes = None  # set to hear about bytes as they are copied
        self.is_root = os.geteuid() == 0
        self._create_mask = 0o777 & ~current_umask()  # what os.open's mode keeps
        self._src_flags = os.O_RDONLY if options.copy_links else os.O_RDONLY | os.O_NOFOLLOW
        self._counter = itertools.count()
        self._pid = os.getpid()
        self._owner = (os.geteuid(), os.getegid())  # who owns the files this process creates
        self.last_delta: DeltaCounts | None = None  # of the last file copied as a delta

    # -- names ---------------------------------------------------------------------------

    def temp_name(self, name: str) -> str:
        """A hidden temp name beside `name` that still fits in NAME_MAX. It holds this
        process's id and a counter, so it is unique to this call: cleaning up after a failure
        may always remove it."""
        return _hidden_name(name, f".{self._pid}.{next(self._counter)}{TEMP_SUFFIX}")

    # -- partial files (--partial, --partial-dir) --------------------------------------

    @contextlib.contextmanager
    def _partial_place(self, dir_fd: int, name: str, create: bool) -> Iterator[tuple[int, str]]:
        """(directory descriptor, name) of `name`'s partial file: hidden beside it, or under
        --partial-dir (relative to its directory, reached without following symlinks)."""
        partial_dir = self.options.partial_dir
        if not partial_dir:
            yield dir_fd, _hidden_name(name, PARTIAL_SUFFIX)
            return
        fd = pathsafe.open_beneath(dir_fd, partial_dir, create=create)
        try:
            yield fd, name
        finally:
            os.close(fd)

    def keep_partial(self, dir_fd: int, temp: str, name: str) -> None:
        """--partial: an unfinished temp file becomes `name`'s partial (replacing a smaller
        older one); an empty one, or one smaller than the partial there, is just removed.
        Never raises: at worst the temp file goes."""
        try:
            size = os.stat(temp, dir_fd=dir_fd, follow_symlinks=False).st_size
            if size and size >= (self.partial_size(dir_fd, name) or 0):
                with self._partial_place(dir_fd, name, create=True) as (place_fd, partial):
                    os.rename(temp, partial, src_dir_fd=dir_fd, dst_dir_fd=place_fd)
                    return
        except OSError:
            pass
        with contextlib.suppress(OSError):
            _unlink_quietly(dir_fd, temp)

    def partial_size(self, dir_fd: int, name: str) -> int | None:
        """The size of `name`'s partial file, None if it has none (or it is not a regular
        file)."""
        try:
            with self._partial_place(dir_fd, name, create=False) as (place_fd, partial):
                st = os.stat(partial, dir_fd=place_fd, follow_symlinks=False)
        except OSError:
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def open_basis(self, dir_fd: int, name: str, partial: bool) -> int:
        """What `name` is rebuilt from, opened to read: its partial file, or the file itself;
        OSError if it cannot be."""
        if not partial:
            return os.open(name, BASIS_FLAGS, dir_fd=dir_fd)
        with self._partial_place(dir_fd, name, create=False) as (place_fd, partial_name):
            return os.open(partial_name, BASIS_FLAGS, dir_fd=place_fd)

    def drop_partial(self, dir_fd: int, name: str) -> None:
        """`name` is committed: its partial file goes, and an emptied --partial-dir too."""
        with contextlib.suppress(OSError):
            with self._partial_place(dir_fd, name, create=False) as (place_fd, partial):
                _unlink_quietly(place_fd, partial)
            if self.options.partial_dir:
                os.rmdir(self.options.partial_dir, dir_fd=dir_fd)

    # -- regular files -------------------------------------------------------------------

    def commit_file(
        self,
        src_path: str,
        dir_fd: int,
        name: str,
        entry: FileEntry,
        dst_mode: int | None,
        rel: str,
        dest: DestDir,
    ) -> str:
        """Copy src_path over `name` in dir_fd atomically; return the fast-copy strategy used.

        `dst_mode` is the st_mode of what the destination holds now, or None if nothing. A
        source that no longer has the size and mtime of `entry` once copied changed meanwhile:
        it is copied once more as it is then, and if it changes again, OSError (the file is
        reported as changed during the transfer). This is the per-file hot path of every
        transfer, so it is written flat."""
        src_fd = os.open(src_path, self._src_flags)
        try:
            if dst_mode is not None:
                if self.options.inplace and stat.S_ISREG(dst_mode):
                    return self._write_inplace(src_fd, dir_fd, name, entry, rel, dest)
                dst_mode = self._clear_directory(dir_fd, name, dst_mode, rel)
            perms = entry.mode & _PERM_BITS
            temp = self.temp_name(name)
            out = -1
            partial = self.options.partial and self.partial_size(dir_fd, name) is not None
            try:  # opened inside: a signal may arrive just after the file is created
                out = os.open(temp, _TEMP_FLAGS, perms & 0o777, dir_fd=dir_fd)
                from_basis = self.options.force_delta and (partial or (
                    dst_mode is not None and stat.S_ISREG(dst_mode)))
                for attempt in range(COPY_ATTEMPTS):
                    try:
                        if from_basis:
                            strategy = self._fill_from_basis(src_fd, out, dir_fd, name, entry,
                                                             dest, partial)
                        else:
                            strategy = self._fill(src_fd, out, entry, dest)
                    except OSError:
                        if still_as_scanned(src_fd, entry):
                            raise
                    else:
                        if still_as_scanned(src_fd, entry):
                            break
                    if attempt == COPY_ATTEMPTS - 1:
                        raise OSError(SOURCE_CHANGED)
                    entry = entry_from_stat(entry.name, os.fstat(src_fd))  # as it is now
                    os.ftruncate(out, 0)
                written, out = out, -1
                self._finish_new(written, dir_fd, temp, name, entry, dst_mode, rel, dest)
            except BaseException:
                if out >= 0:
                    os.close(out)
                self.abandon_temp(dir_fd, temp, name)
                raise
            if partial:
                self.drop_partial(dir_fd, name)
            return strategy
        finally:
            os.close(src_fd)

    def _finish_new(
        self, out: int, dir_fd: int, temp: str, name: str, entry: FileEntry,
        dst_mode: int | None, rel: str, dest: DestDir,
    ) -> None:
        """A new file's data is written: metadata, close (whatever happens), back up the old
        one, rename. The caller removes the temp file if this raises."""
        perms = entry.mode & _PERM_BITS
        try:
            self._finish_fd(
                out, entry, fchmod_needed=perms != perms & self._create_mask,
                chown_needed=dest.setgid or (entry.uid, entry.gid) != self._owner,
            )
        finally:
            os.close(out)
        if dst_mode is not None and self.options.backup:
            self.backup(dir_fd, name, rel)
        os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)

    def open_incoming(
        self, dir_fd: int, name: str, entry: FileEntry, dst_mode: int | None, rel: str,
        *, back_up: bool = True,
    ) -> Incoming:
        """Start receiving a file whose bytes arrive from elsewhere (a remote SOURCE): its temp
        file (or, with --inplace, the existing file) opened for writing at any offset.
        `back_up`: False when the file was backed up already (by an attempt that was sent
        again: it has written over part of the file since)."""
        if dst_mode is not None and self.options.inplace and stat.S_ISREG(dst_mode):
            if self.options.backup and back_up:
                self._copy_to_backup(dir_fd, name, rel)
            fd = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            return Incoming(fd, name, dst_mode, inplace=True)
        dst_mode = self._clear_directory(dir_fd, name, dst_mode, rel)
        temp = self.temp_name(name)
        try:
            fd = os.open(temp, _TEMP_FLAGS, entry.mode & 0o777, dir_fd=dir_fd)
        except BaseException:
            _unlink_quietly(dir_fd, temp)
            raise
        return Incoming(fd, temp, dst_mode, inplace=False)

    def commit_incoming(
        self, incoming: Incoming, dir_fd: int, name: str, entry: FileEntry, rel: str,
        dest: DestDir,
    ) -> None:
        """All of a received file's bytes are written: give it its metadata and name. Its
        descriptor is closed whatever happens; on failure the temp file is removed."""
        if incoming.inplace:
            try:
                os.ftruncate(incoming.fd, entry.size)
                self._finish_fd(incoming.fd, entry, fchmod_needed=True, chown_needed=True)
            finally:
                os.close(incoming.fd)
            return
        try:
            self._finish_new(incoming.fd, dir_fd, incoming.name, name, entry,
                             incoming.dst_mode, rel, dest)
        except BaseException:
            _unlink_quietly(dir_fd, incoming.name)
            raise

    def discard_incoming(self, incoming: Incoming, dir_fd: int, name: str,
                         interrupted: bool) -> None:
        """Give up on a received file before committing it: close it; its temp file goes, or
        with --partial, when the transfer was `interrupted`, stays as its partial (an
        --inplace file stays as it is)."""
        os.close(incoming.fd)
        if incoming.inplace:
            return
        if interrupted:
            self.abandon_temp(dir_fd, incoming.name, name)
        else:
            _unlink_quietly(dir_fd, incoming.name)

    def abandon_temp(self, dir_fd: int, temp: str, name: str) -> None:
        """An interrupted file's temp file: kept as its partial with --partial, else removed."""
        if self.options.partial:
            self.keep_partial(dir_fd, temp, name)
        else:
            _unlink_quietly(dir_fd, temp)

    def _write_inplace(
        self, src_fd: int, dir_fd: int, name: str, entry: FileEntry, rel: str, dest: DestDir
    ) -> str:
        if self.options.backup:  # a copy: a hard link would share the bytes about to change
            self._copy_to_backup(dir_fd, name, rel)
        out = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            strategy = self._fill(src_fd, out, entry, dest)
            os.ftruncate(out, entry.size)
            self._finish_fd(out, entry, fchmod_needed=True, chown_needed=True)
        finally:
            os.close(out)
        return strategy

    def _fill(self, src_fd: int, out: int, entry: FileEntry, dest: DestDir) -> str:
        if entry.size == 0:
            return "empty"
        return copy_file(
            src_fd, out, entry.size, devices=(entry.dev, dest.dev),
            keep_sparse=self.options.sparse, on_bytes=self.on_bytes,
        )

    def _fill_from_basis(self, src_fd: int, out: int, dir_fd: int, name: str,
                         entry: FileEntry, dest: DestDir, partial: bool) -> str:
        """--no-whole-file: rebuild from the file being replaced (or from its partial), as a
        remote delta would; whole when the basis is small or unreadable, or the result does
        not check out."""
        self.last_delta = None
        try:
            basis = self.open_basis(dir_fd, name, partial)
        except OSError:
            return self._fill(src_fd, out, entry, dest)
        try:
            st = os.fstat(basis)
            if stat.S_ISREG(st.st_mode) and wants_delta(st.st_size):
                try:
                    self.last_delta = delta_copy(src_fd, basis, out, secrets.randbits(64))
                    return DELTA_STRATEGY
                except (DeltaMismatch, ValueError):  # ValueError: the basis changed size
                    os.ftruncate(out, 0)
        finally:
            os.close(basis)
        return self._fill(src_fd, out, entry, dest)

    def keep_as_is(self, fd: int, entry: FileEntry) -> None:
        """A file found to hold a received file's bytes already keeps its place: it takes
        the entry's owner, mode and times through `fd` (open to read)."""
        self._finish_fd(fd, entry, fchmod_needed=True, chown_needed=True)

    def _finish_fd(
        self, fd: int, entry: FileEntry, *, fchmod_needed: bool, chown_needed: bool
    ) -> None:
        """Owner, mode and times on an open file, before it takes its final name.
        `chown_needed` is False when a new file is already owned as the entry is."""
        if self.is_root and chown_needed:
            os.fchown(fd, entry.uid, entry.gid)
            fchmod_needed = fchmod_needed or bool(entry.mode & (stat.S_ISUID | stat.S_ISGID))
        if fchmod_needed:
            os.fchmod(fd, entry.mode & _PERM_BITS)
        os.utime(fd, ns=(entry.atime_ns, entry.mtime_ns))
        if self.options.fsync:
            os.fsync(fd)

    # -- other entry types ---------------------------------------------------------------

    def commit_symlink(
        self, dir_fd: int, name: str, entry: FileEntry, dst_mode: int | None, rel: str
    ) -> None:
        target = entry.target
        assert target is not None
        self._place(dir_fd, name, dst_mode, rel,
                    lambda temp: os.symlink(target, temp, dir_fd=dir_fd), entry)

    def commit_hardlink(
        self,
        existing: tuple[int, str],
        dir_fd: int,
        name: str,
        dst_mode: int | None,
        rel: str,
    ) -> None:
        """Link `name` to the destination entry `existing` (its directory fd and name)."""
        existing_fd, existing_name = existing
        self._place(
            dir_fd, name, dst_mode, rel,
            lambda temp: os.link(existing_name, temp, src_dir_fd=existing_fd,
                                 dst_dir_fd=dir_fd, follow_symlinks=False),
            None,
        )

    def commit_special(
        self, dir_fd: int, name: str, entry: FileEntry, dst_mode: int | None, rel: str
    ) -> None:
        self._place(dir_fd, name, dst_mode, rel,
                    lambda temp: os.mknod(temp, entry.mode, entry.rdev, dir_fd=dir_fd), entry)

    def _place(
        self,
        dir_fd: int,
        name: str,
        dst_mode: int | None,
        rel: str,
        create: Callable[[str], None],
        entry: FileEntry | None,
    ) -> None:
        """Create a non-regular entry under a temp name, give it metadata, rename it into place."""
        dst_mode = self._clear_directory(dir_fd, name, dst_mode, rel)
        temp = self.temp_name(name)
        try:  # created inside: a signal may arrive just after it exists
            create(temp)
            if entry is not None:
                self.set_attrs(dir_fd, temp, entry)
            if dst_mode is not None and self.options.backup:
                self.backup(dir_fd, name, rel)
            os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            _unlink_quietly(dir_fd, temp)
            raise

    def _clear_directory(
        self, dir_fd: int, name: str, dst_mode: int | None, rel: str
    ) -> int | None:
        """A directory where a non-directory must go is removed (or backed up) first."""
        if dst_mode is not None and stat.S_ISDIR(dst_mode):
            if self.replace_directories:
                self.remove(dir_fd, name, rel, is_dir=True)
            else:
                try:
                    os.rmdir(name, dir_fd=dir_fd)
                except OSError as exc:
                    if exc.errno != errno.ENOTEMPTY:
                        raise
                    raise OSError(
                        exc.errno, "a non-empty directory stands in the way (mirror replaces it)",
                        rel,
                    ) from None
            return None
        return dst_mode

    def make_dir(self, dir_fd: int, name: str, dst_mode: int | None, rel: str) -> None:
        """Create a directory (owner-writable until its final mode is set at the end),
        replacing a non-directory that stands in its way."""
        if dst_mode is not None:
            self.remove(dir_fd, name, rel, is_dir=False)
        os.mkdir(name, 0o700, dir_fd=dir_fd)

    def set_attrs(self, dir_fd: int, name: str, entry: FileEntry) -> None:
        """Owner, mode and times on an existing entry, never through a symlink."""
        if stat.S_ISLNK(entry.mode):
            if self.is_root:
                os.chown(name, entry.uid, entry.gid, dir_fd=dir_fd, follow_symlinks=False)
            os.utime(name, ns=(entry.atime_ns, entry.mtime_ns), dir_fd=dir_fd,
                     follow_symlinks=False)
            return
        if not (stat.S_ISREG(entry.mode) or stat.S_ISDIR(entry.mode)):
            # A device or FIFO is never opened; it was just created under its temp name here.
            if self.is_root:
                os.chown(name, entry.uid, entry.gid, dir_fd=dir_fd, follow_symlinks=False)
            os.chmod(name, entry.mode & _PERM_BITS, dir_fd=dir_fd)
            os.utime(name, ns=(entry.atime_ns, entry.mtime_ns), dir_fd=dir_fd,
                     follow_symlinks=False)
            return
        fd = os.open(name, _ATTR_FLAGS, dir_fd=dir_fd)
        try:
            if self.is_root:
                os.fchown(fd, entry.uid, entry.gid)
            os.fchmod(fd, entry.mode & _PERM_BITS)
            os.utime(fd, ns=(entry.atime_ns, entry.mtime_ns))
        finally:
            os.close(fd)

    # -- removal and backups ------------------------------------------------------------

    def remove(self, dir_fd: int, name: str, rel: str, *, is_dir: bool) -> None:
        """Delete an entry (a whole tree for a directory), moving it to its backup when asked."""
        if self.options.backup:
            with self._backup_target(dir_fd, name, rel) as (target_fd, target):
                try:
                    os.rename(name, target, src_dir_fd=dir_fd, dst_dir_fd=target_fd)
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        raise
                    # a backup dir on another device
                    shutil.move(_fd_path(dir_fd, name), _fd_path(target_fd, target))
        elif is_dir:
            shutil.rmtree(name, dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)

    def backup(self, dir_fd: int, name: str, rel: str) -> None:
        """Keep the current version of a file that is about to be replaced (rsync's -b).

        It is hard-linked to its backup name where possible, so the original stays in place
        until the caller's rename replaces it atomically."""
        with self._backup_target(dir_fd, name, rel) as (target_fd, target):
            try:
                os.link(name, target, src_dir_fd=dir_fd, dst_dir_fd=target_fd,
                        follow_symlinks=False)
            except OSError:
                shutil.copy2(_fd_path(dir_fd, name), _fd_path(target_fd, target),
                             follow_symlinks=False)

    def _copy_to_backup(self, dir_fd: int, name: str, rel: str) -> None:
        with self._backup_target(dir_fd, name, rel) as (target_fd, target):
            shutil.copy2(_fd_path(dir_fd, name), _fd_path(target_fd, target),
                         follow_symlinks=False)

    @contextlib.contextmanager
    def _backup_target(self, dir_fd: int, name: str, rel: str) -> Iterator[tuple[int, str]]:
        """Where the backup of `name` goes, as (directory descriptor, name): NAME+suffix
        beside it, or the same relative path under --backup-dir, whose directories are made
        as needed and reached without following symlinks (from the jail, in a daemon's
        module). An older backup there is removed first."""
        target = name + self.options.effective_backup_suffix
        if not self.options.backup_dir:
            _clear(dir_fd, target)
            yield dir_fd, target
            return
        head, _, target = (rel + self.options.effective_backup_suffix).rpartition("/")
        if self.jail is None:
            os.makedirs(self.options.backup_dir, exist_ok=True)
            base_fd = pathsafe.open_root(self.options.backup_dir)
        else:
            base_fd = pathsafe.open_root(self.jail)
            below = os.path.relpath(self.options.backup_dir, self.jail)
            head = below if not head else f"{below}/{head}"
        try:
            target_fd = pathsafe.open_beneath(base_fd, head, create=True)
        finally:
            os.close(base_fd)
        try:
            _clear(target_fd, target)
            yield target_fd, target
        finally:
            os.close(target_fd)


def stale_temp_names(names: Iterable[str]) -> list[str]:
    """Those of `names` that are temp files left by a writer that died without removing
    them (killed with SIGKILL, or its machine crashed): named exactly as temp_name names
    them, with the id of no live process on this machine. A writer that is alive, or whose
    id a new process has taken since, keeps its files."""
    return [name for name in names if name.endswith(TEMP_SUFFIX)
            and (match := _TEMP_NAME.fullmatch(name)) is not None
            and not _process_alive(int(match.group(1)))]


def remove_stale_temps(dir_fd: int, names: Iterable[str]) -> None:
    """Remove temp files (named by stale_temp_names) from a destination directory."""
    for name in names:
        with contextlib.suppress(OSError):
            _unlink_quietly(dir_fd, name)


def _process_alive(pid: int) -> bool:
    """Whether a process `pid` runs here; when that cannot be told for sure, it does."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # not ours to signal, but there
        return True
    try:  # a zombie (its parent has not reaped it yet) writes nothing any more
        with open(f"/proc/{pid}/stat", "rb") as status:
            state = status.read().rpartition(b")")[2].split(maxsplit=1)[:1]
    except OSError:
        return True
    return not state or state[0] not in _DEAD_STATES


def _clear(dir_fd: int, name: str) -> None:
    """Remove whatever is at `name` (a whole tree for a directory)."""
    try:
        old = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(old.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def _fd_path(dir_fd: int, name: str) -> str:
    """A path naming (dir_fd, name), for the few library calls that only take paths."""
    return f"/proc/self/fd/{dir_fd}/{name}"


def partial_excludes(partial_dir: str | None) -> list[tuple[str, str]]:
    """Exclude rules that go after the user's, as rsync adds for its --partial-dir: partial
    files (and a --partial-dir) are never sent as files of their own, and mirror keeps them
    (unless --delete-excluded)."""
    rules = [("-", f".*{PARTIAL_SUFFIX}")]
    if partial_dir:
        rules.append(("-", f"{partial_dir}/"))
    return rules


def _hidden_name(name: str, tag: str) -> str:
    """`.name` + `tag`, with `name` cut so that the whole fits in NAME_MAX."""
    room = _MAX_NAME_BYTES - 1 - len(tag)
    if len(name) * 4 > room:  # a character is at most 4 bytes: only long names need this
        encoded = os.fsencode(name)
        if len(encoded) > room:
            name = os.fsdecode(encoded[:room])
    return f".{name}{tag}"


def _unlink_quietly(dir_fd: int, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=dir_fd)
