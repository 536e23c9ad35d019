"""Copy one open file to another by the fastest mechanism the filesystems allow.

The chain is: reflink clone (FICLONE), `copy_file_range`, `sendfile`, then a read/write loop
that always works. Each mechanism either copies or raises `Unavailable`; the answer is cached
per (source device, destination device) so each pair of filesystems is probed once per process.
Sparse copies walk the source's data segments with SEEK_DATA/SEEK_HOLE instead."""

from __future__ import annotations

from collections.abc import Callable

from blit_core.fastcopy import clone, copyrange, readwrite, sendfile, sparse
from blit_core.fastcopy.errors import Unavailable

Strategy = Callable[[int, int, int], None]

CHAIN: tuple[tuple[str, Strategy], ...] = (
    ("clone", clone.copy),
    ("copy_file_range", copyrange.copy),
    ("sendfile", sendfile.copy),
    ("read_write", readwrite.copy),
)

_unavailable: dict[tuple[int, int], set[str]] = {}

__all__ = ["Unavailable", "copy_file", "probe_strategy"]


def copy_file(
    src_fd: int, dst_fd: int, size: int, *, devices: tuple[int, int], keep_sparse: bool = False
) -> str:
    """Copy `size` bytes from the start of src_fd into an empty dst_fd; return the strategy used.

    `devices` is (source st_dev, destination st_dev), the key of the capability cache."""
    if keep_sparse:
        sparse.copy(src_fd, dst_fd, size)
        return "sparse"
    known_bad = _unavailable.setdefault(devices, set())
    for name, strategy in CHAIN:
        if name in known_bad:
            continue
        try:
            strategy(src_fd, dst_fd, size)
        except Unavailable:
            known_bad.add(name)
            continue
        return name
    raise AssertionError("read_write never reports Unavailable")


def probe_strategy(devices: tuple[int, int]) -> str:
    """The first strategy not yet known to be unavailable for this pair of filesystems."""
    known_bad = _unavailable.get(devices, set())
    return next(name for name, _ in CHAIN if name not in known_bad)
