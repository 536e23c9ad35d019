"""Reaching destination directories without following symlinks.

Every write into a destination happens relative to a directory file descriptor. Those
descriptors are opened one path component at a time with O_NOFOLLOW, starting from the
destination root, so a symlink that appears inside the destination (even one swapped in while a
transfer runs) can never redirect a write outside it. The root itself is opened as the user
named it, and may be a symlink to a directory."""

from __future__ import annotations

import errno
import os

_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


def open_root(path: str) -> int:
    """An O_PATH descriptor for a destination root (following a symlink the user named)."""
    return os.open(path, _DIR_FLAGS)


def open_beneath(root_fd: int, rel: str) -> int:
    """An O_PATH descriptor for the directory `rel` below root_fd, refusing any component that
    is a symlink, '.', '..' or empty. The caller closes it."""
    fd = os.dup(root_fd)
    if not rel:
        return fd
    try:
        for part in rel.split("/"):
            if part in ("", ".", ".."):
                raise OSError(errno.EINVAL, f"unsafe path component {part!r} in {rel!r}")
            try:
                child = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except NotADirectoryError:
                raise OSError(
                    errno.ENOTDIR,
                    "not a directory (symlinks inside the destination are never followed)",
                    rel,
                ) from None
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd
