"""FsSink: commits entries into a destination tree safely.

Every regular file is written to a hidden temp file in its destination directory, receives its
data, owner, mode and mtime, and is renamed over the target, so no reader ever sees a torn file
and a failure leaves the old file intact. On any failure, including a signal, the temp file is
removed. Replaced or deleted entries are kept first when backups are on, as rsync's -b does."""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import shutil
import stat
from collections.abc import Callable

from blit_core.fastcopy import OnBytes, copy_file
from blit_core.models import FileEntry
from blit_core.options import TransferOptions
from blit_core.transfer.jobs import DestDir

TEMP_SUFFIX = ".blit-tmp"
_MAX_NAME_BYTES = 255
_PERM_BITS = 0o7777
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def current_umask() -> int:
    """The process umask, read without leaving it changed."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


class FsSink:
    """Writes entries into a local destination; one per process."""

    def __init__(self, options: TransferOptions, *, replace_directories: bool) -> None:
        """`replace_directories`: a non-empty directory that stands where a file must go is
        removed (mirror); otherwise only an empty one is, as rsync does without --delete."""
        self.options = options
        self.replace_directories = replace_directories
        self.on_bytes: OnBytes = None  # set to hear about bytes as they are copied
        self.is_root = os.geteuid() == 0
        self._create_mask = 0o777 & ~current_umask()  # what os.open's mode keeps
        self._src_flags = os.O_RDONLY if options.copy_links else os.O_RDONLY | os.O_NOFOLLOW
        self._counter = itertools.count()
        self._pid = os.getpid()
        self._owner = (os.geteuid(), os.getegid())  # who owns the files this process creates

    # -- names ---------------------------------------------------------------------------

    def temp_path(self, dst_path: str) -> str:
        """A hidden temp name beside dst_path that still fits in NAME_MAX. It holds this
        process's id and a counter, so it is unique to this call: cleaning up after a failure
        may always remove it."""
        head, _, name = dst_path.rpartition("/")
        tag = f".{self._pid}.{next(self._counter)}{TEMP_SUFFIX}"
        room = _MAX_NAME_BYTES - 1 - len(tag)
        if len(name) * 4 > room:  # a character is at most 4 bytes: only long names need this
            encoded = os.fsencode(name)
            if len(encoded) > room:
                name = os.fsdecode(encoded[:room])
        return f"{head}/.{name}{tag}" if head or dst_path.startswith("/") else f".{name}{tag}"

    # -- regular files -------------------------------------------------------------------

    def commit_file(
        self,
        src_path: str,
        dst_path: str,
        entry: FileEntry,
        dst_mode: int | None,
        rel: str,
        dest: DestDir,
    ) -> str:
        """Copy src_path over dst_path atomically; return the fast-copy strategy used.

        `dst_mode` is the st_mode of what the destination holds now, or None if nothing.
        This is the per-file hot path of every transfer, so it is written flat."""
        src_fd = os.open(src_path, self._src_flags)
        try:
            if dst_mode is not None:
                if self.options.inplace and stat.S_ISREG(dst_mode):
                    return self._write_inplace(src_fd, dst_path, entry, rel, dest)
                dst_mode = self._clear_directory(dst_path, dst_mode, rel)
            perms = entry.mode & _PERM_BITS
            temp = self.temp_path(dst_path)
            out = -1
            try:  # opened inside: a signal may arrive just after the file is created
                out = os.open(temp, _TEMP_FLAGS, perms & 0o777)
                strategy = self._fill(src_fd, out, entry, dest)
                self._finish_fd(
                    out, entry, fchmod_needed=perms != perms & self._create_mask,
                    chown_needed=dest.setgid or (entry.uid, entry.gid) != self._owner,
                )
                os.close(out)
                out = -1
                if dst_mode is not None and self.options.backup:
                    self.backup(dst_path, rel)
                os.rename(temp, dst_path)
            except BaseException:
                if out >= 0:
                    os.close(out)
                _unlink_quietly(temp)
                raise
            return strategy
        finally:
            os.close(src_fd)

    def _write_inplace(
        self, src_fd: int, dst_path: str, entry: FileEntry, rel: str, dest: DestDir
    ) -> str:
        if self.options.backup:  # a copy: a hard link would share the bytes about to change
            shutil.copy2(dst_path, self._prepare_backup_target(dst_path, rel),
                         follow_symlinks=False)
        out = os.open(dst_path, os.O_WRONLY | os.O_NOFOLLOW)
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
        self, dst_path: str, entry: FileEntry, dst_mode: int | None, rel: str
    ) -> None:
        target = entry.target
        assert target is not None
        self._place(dst_path, dst_mode, rel, lambda temp: os.symlink(target, temp), entry)

    def commit_hardlink(
        self, existing_path: str, dst_path: str, dst_mode: int | None, rel: str
    ) -> None:
        self._place(dst_path, dst_mode, rel, lambda temp: os.link(existing_path, temp), None)

    def commit_special(
        self, dst_path: str, entry: FileEntry, dst_mode: int | None, rel: str
    ) -> None:
        self._place(
            dst_path, dst_mode, rel, lambda temp: os.mknod(temp, entry.mode, entry.rdev), entry
        )

    def _place(
        self,
        dst_path: str,
        dst_mode: int | None,
        rel: str,
        create: Callable[[str], None],
        entry: FileEntry | None,
    ) -> None:
        """Create a non-regular entry under a temp name, give it metadata, rename it into place."""
        dst_mode = self._clear_directory(dst_path, dst_mode, rel)
        temp = self.temp_path(dst_path)
        try:  # created inside: a signal may arrive just after it exists
            create(temp)
            if entry is not None:
                self.set_attrs(temp, entry)
            if dst_mode is not None and self.options.backup:
                self.backup(dst_path, rel)
            os.rename(temp, dst_path)
        except BaseException:
            _unlink_quietly(temp)
            raise

    def _clear_directory(self, dst_path: str, dst_mode: int | None, rel: str) -> int | None:
        """A directory where a non-directory must go is removed (or backed up) first."""
        if dst_mode is not None and stat.S_ISDIR(dst_mode):
            if self.replace_directories:
                self.remove(dst_path, rel, is_dir=True)
            else:
                try:
                    os.rmdir(dst_path)
                except OSError as exc:
                    if exc.errno != errno.ENOTEMPTY:
                        raise
                    raise OSError(
                        exc.errno, "a non-empty directory stands in the way (mirror replaces it)",
                        dst_path,
                    ) from None
            return None
        return dst_mode

    def make_dir(self, dst_path: str, dst_mode: int | None, rel: str) -> None:
        """Create a directory (owner-writable until its final mode is set at the end),
        replacing a non-directory that stands in its way."""
        if dst_mode is not None:
            self.remove(dst_path, rel, is_dir=False)
        os.mkdir(dst_path, 0o700)

    def set_attrs(self, path: str, entry: FileEntry) -> None:
        """Owner, mode and times on an existing path, never following a final symlink."""
        is_link = stat.S_ISLNK(entry.mode)
        if self.is_root:
            os.lchown(path, entry.uid, entry.gid)
        if not is_link:
            os.chmod(path, entry.mode & _PERM_BITS)
        os.utime(path, ns=(entry.atime_ns, entry.mtime_ns), follow_symlinks=False)

    # -- removal and backups ------------------------------------------------------------

    def remove(self, path: str, rel: str, *, is_dir: bool) -> None:
        """Delete an entry (a whole tree for a directory), moving it to its backup when asked."""
        if self.options.backup:
            shutil.move(path, self._prepare_backup_target(path, rel))
        elif is_dir:
            shutil.rmtree(path)
        else:
            os.unlink(path)

    def backup(self, path: str, rel: str) -> None:
        """Keep the current version of a file that is about to be replaced (rsync's -b).

        It is hard-linked to its backup name where possible, so the original stays in place
        until the caller's rename replaces it atomically."""
        target = self._prepare_backup_target(path, rel)
        try:
            os.link(path, target, follow_symlinks=False)
        except OSError:
            shutil.copy2(path, target, follow_symlinks=False)

    def _prepare_backup_target(self, path: str, rel: str) -> str:
        """The backup name for path (--suffix, or the same relative path under --backup-dir),
        with its parent created and any older backup removed."""
        suffix = self.options.effective_backup_suffix
        if self.options.backup_dir:
            target = os.path.join(self.options.backup_dir, rel + suffix)
            os.makedirs(os.path.dirname(target), exist_ok=True)
        else:
            target = path + suffix
        if os.path.isdir(target) and not os.path.islink(target):
            shutil.rmtree(target)
        elif os.path.lexists(target):
            os.unlink(target)
        return target


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
