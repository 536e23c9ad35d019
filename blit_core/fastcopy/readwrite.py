"""The portable fallback: a large-buffer readinto/write loop. It always works."""

from __future__ import annotations

import os
from collections.abc import Callable

BUFFER = 1 << 20


def copy(src_fd: int, dst_fd: int, size: int, on_bytes: Callable[[int], None] | None) -> None:
    if size <= BUFFER:
        data = os.pread(src_fd, size, 0)
        if len(data) != size:
            raise OSError(f"source shrank during copy (got {len(data)} of {size} bytes)")
        _write_all(dst_fd, memoryview(data))
        if on_bytes is not None:
            on_bytes(size)
        return
    buffer = bytearray(BUFFER)
    view = memoryview(buffer)
    done = 0
    while done < size:
        got = os.preadv(src_fd, [view[: min(BUFFER, size - done)]], done)
        if got == 0:
            raise OSError(f"source shrank during copy (got {done} of {size} bytes)")
        _write_all(dst_fd, view[:got])
        done += got
        if on_bytes is not None:
            on_bytes(got)


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """Write all of `data` at `offset`: a short write (a filesystem nearly full) goes on
    with the rest, whose write then fails with the reason."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        written = os.write(fd, data)
        data = data[written:]
