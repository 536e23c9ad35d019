"""Reaching destination directories without following symlinks.

Every write into a destination happens relative to a directory file descriptor. Those
descriptors are opened one path component at a time with O_NOFOLLOW, starting from the
destination root, so a symlink that appears inside the destination (even one swapped in while a
transfer runs) can never redirect a write outside it. The root itself is opened as the user
named it, and may be a symlink to a directory.

Paths that arrive over the wire are checked first by `validate_wire_path`: only plain relative
POSIX paths pass, so no peer can name anything outside the module it was given. A daemon that
sends files opens each with `open_file_beneath`: no symlink on the way is followed, even one
swapped in after the scan."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os

from blit_core.errors import UnsafePathError

_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


def open_root(path: str) -> int:
    """An O_PATH descriptor for a destination root (following a symlink the user named)."""
    return os.open(path, _DIR_FLAGS)


def open_beneath(root_fd: int, rel: str, *, create: bool = False) -> int:
    """An O_PATH descriptor for the directory `rel` below root_fd, refusing any component that
    is a symlink, '.', '..' or empty; with `create`, missing directories are made on the way.
    The caller closes it."""
    fd = os.dup(root_fd)
    if not rel:
        return fd
    try:
        for part in rel.split("/"):
            if part in ("", ".", ".."):
                raise OSError(errno.EINVAL, f"unsafe path component {part!r} in {rel!r}")
            try:
                child = _open_dir(fd, part, create)
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


def open_listable(path_fd: int) -> int:
    """A readable descriptor (one os.scandir can list) of the directory that the O_PATH
    descriptor `path_fd` stands for; no path is resolved again. The caller closes both."""
    return os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=path_fd)


def _open_dir(dir_fd: int, name: str, create: bool) -> int:
    try:
        return os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)
    except FileNotFoundError:
        if not create:
            raise
    with contextlib.suppress(FileExistsError):  # made meanwhile by another process
        os.mkdir(name, dir_fd=dir_fd)
    return os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dir_fd)


class _OpenHow(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64))


_SYS_OPENAT2 = 437  # the same number on every Linux architecture (since 5.6)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_BENEATH = _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS


def _openat2(dir_fd: int, rel: str, flags: int, resolve: int = _BENEATH) -> int:
    how = _OpenHow(flags | os.O_CLOEXEC, 0, resolve)
    fd = _libc.syscall(_SYS_OPENAT2, dir_fd, os.fsencode(rel), ctypes.byref(how),
                       ctypes.sizeof(how))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), rel)
    return fd


def _probe_openat2() -> bool:
    """Whether openat2 works here (an old kernel says ENOSYS; a seccomp filter, EPERM)."""
    root = os.open("/", _DIR_FLAGS)
    try:
        os.close(_openat2(root, ".", os.O_PATH | os.O_DIRECTORY))
    except OSError:
        return False
    finally:
        os.close(root)
    return True


_have_openat2: bool | None = None  # probed on first use


def can_follow_beneath() -> bool:
    """Whether open_following_beneath works here (it needs openat2)."""
    global _have_openat2
    if _have_openat2 is None:
        _have_openat2 = _probe_openat2()
    return _have_openat2


def open_following_beneath(root_fd: int, rel: str, flags: int) -> int:
    """A descriptor for `rel` below root_fd, following symlinks only while they stay below it
    (openat2 RESOLVE_BENEATH). A link that leads out, or is absolute, fails with EXDEV, named
    as such. Only where can_follow_beneath()."""
    try:
        return _openat2(root_fd, rel, flags, _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        raise OSError(errno.EXDEV, "a symlink on the way leads out of the module (or is "
                      "absolute): -L follows only links that stay inside it", rel) from None


def open_following_in(root: str, rel: str, flags: int) -> int:
    """open_following_beneath from the directory at `root` (a daemon's module)."""
    root_fd = open_root(root)
    try:
        return open_following_beneath(root_fd, rel, flags)
    finally:
        os.close(root_fd)


def open_file_beneath(root_fd: int, rel: str, flags: int) -> int:
    """A descriptor for the file `rel` below root_fd, opened without following any symlink
    (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS: one system call; else a component walk)."""
    if can_follow_beneath():
        return _openat2(root_fd, rel, flags)
    head, _, name = rel.rpartition("/")
    dir_fd = open_beneath(root_fd, head)
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


MAX_WIRE_PATH_BYTES = 4096
MAX_WIRE_NAME_BYTES = 255


def validate_wire_path(path: str) -> str:
    """`path` unchanged if it is a safe module-relative path from a peer, else UnsafePathError.

    "" is the module root; anything else is names joined by single '/', none empty, '.' or
    '..', with no NUL, at most 4096 bytes in all and 255 per name (names may be non-UTF-8:
    they are measured as os.fsencode encodes them). A backslash or "C:" is an ordinary POSIX
    name."""
    if path:
        problem = _wire_path_problem(path)
        if problem:
            raise UnsafePathError(f"unsafe path {path!r} from the peer: {problem}")
    return path


def _wire_path_problem(path: str) -> str | None:
    """Why `path` (not empty) is unsafe, or None when it is safe."""
    if "\x00" in path:
        return "it contains NUL"
    if path.startswith("/"):
        return "it is absolute"
    try:
        size = len(os.fsencode(path))
    except UnicodeEncodeError:
        return "it cannot be encoded as a file name"
    if size > MAX_WIRE_PATH_BYTES:
        return f"it is longer than {MAX_WIRE_PATH_BYTES} bytes"
    names = path.split("/")
    for name in names:
        if not name:
            return "it has an empty name (a doubled or trailing '/')"
        if name in (".", ".."):
            return f"it has a {name!r} component"
        if len(os.fsencode(name)) > MAX_WIRE_NAME_BYTES:
            return f"a name in it is longer than {MAX_WIRE_NAME_BYTES} bytes"
    return None
