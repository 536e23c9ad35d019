"""Copy one open file to another by the fastest mechanism the filesystems allow.

The chain is: reflink clone (FICLONE), `copy_file_range`, `sendfile`, then a read/write loop
that always works. Each mechanism either copies or raises `Unavailable`; the answer is cached
per (source device, destination device) so each pair of filesystems is probed once per process.
Sparse copies walk the source's data segments with SEEK_DATA/SEEK_HOLE instead.

Every mechanism takes an optional `on_bytes` callback. Without one, a file is copied in as
few system calls as possible; with one, in REPORT_CHUNK pieces, reporting each, so that a
progress bar moves during a huge file."""

from __future__ import annotations

from collections.abc import Callable

from blit_core.fastcopy import clone, copyrange, readwrite, sendfile, sparse
from blit_core.fastcopy.errors import Unavailable

OnBytes = Callable[[int], None] | None
Strategy = Callable[[int, int, int, OnBytes], None]

CHAIN: tuple[tuple[str, Strategy], ...] = (
    ("clone", clone.copy),
    ("copy_file_range", copyrange.copy),
    ("sendfile", sendfile.copy),
    ("read_write", readwrite.copy),
)

# Per (source device, destination device): the index in CHAIN of the first strategy not yet
# known to be unavailable there.
_first_candidate: dict[tuple[int, int], int] = {}

__all__ = ["CHAIN", "OnBytes", "Unavailable", "copy_file"]


def copy_file(
    src_fd: int,
    dst_fd: int,
    size: int,
    *,
    devices: tuple[int, int],
    keep_sparse: bool = False,
    on_bytes: OnBytes = None,
) -> str:
    """Copy `size` bytes from the start of src_fd into an empty dst_fd; return the strategy used.

    `devices` is (source st_dev, destination st_dev), the key of the capability cache."""
    if keep_sparse:
        sparse.copy(src_fd, dst_fd, size, on_bytes)
        return "sparse"
    index = _first_candidate.get(devices, 0)
    while True:
        name, strategy = CHAIN[index]
        try:
            strategy(src_fd, dst_fd, size, on_bytes)
        except Unavailable:
            index += 1  # read_write, the last, never raises Unavailable
            _first_candidate[devices] = index
            continue
        return name
