"""Sparse copy (-S): copy only the source's data segments, found with SEEK_DATA/SEEK_HOLE, and
leave holes in the destination by sizing it with ftruncate."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

from blit_core.fastcopy import copyrange
from blit_core.fastcopy.errors import UNSUPPORTED_ERRNOS, Unavailable
from blit_core.fastcopy.readwrite import pwrite_all


def data_segments(fd: int, size: int) -> list[tuple[int, int]]:
    """(offset, length) of each data region of an open file, in order."""
    segments = []
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole remains
                break
            raise
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        segments.append((start, end - start))
        offset = end
    return segments


def copy(src_fd: int, dst_fd: int, size: int, on_bytes: Callable[[int], None] | None) -> None:
    os.ftruncate(dst_fd, size)
    in_kernel = True
    for offset, length in data_segments(src_fd, size):
        if in_kernel:
            try:
                copyrange.copy_range(src_fd, dst_fd, offset, length, on_bytes)
                continue
            except Unavailable:
                in_kernel = False
            except OSError as exc:  # e.g. EXDEV at a later offset: copy by hand from here on
                if exc.errno not in UNSUPPORTED_ERRNOS:
                    raise
                in_kernel = False
        _copy_range_by_pread(src_fd, dst_fd, offset, length)
        if on_bytes is not None:
            on_bytes(length)


def _copy_range_by_pread(src_fd: int, dst_fd: int, offset: int, length: int) -> None:
    chunk = 1 << 20
    end = offset + length
    while offset < end:
        data = os.pread(src_fd, min(chunk, end - offset), offset)
        if not data:
            raise OSError("source shrank during copy")
        pwrite_all(dst_fd, data, offset)
        offset += len(data)
