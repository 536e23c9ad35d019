"""In-kernel copy with os.copy_file_range: no bytes cross into Python. Fails with EXDEV across
filesystems on some kernels, which sends the chain on to sendfile."""

from __future__ import annotations

import os
from collections.abc import Callable

from blit_core.fastcopy.errors import REPORT_CHUNK, Unavailable, reraise_unless_unsupported

CHUNK = 1 << 30


def copy(src_fd: int, dst_fd: int, size: int, on_bytes: Callable[[int], None] | None) -> None:
    if on_bytes is not None:
        copy_range(src_fd, dst_fd, 0, size, on_bytes)
        return
    try:
        copied = os.copy_file_range(src_fd, dst_fd, min(CHUNK, size), 0, 0)
    except OSError as exc:
        reraise_unless_unsupported(exc)
    if copied == size:  # the common case: one call
        return
    if copied == 0:
        raise Unavailable("copy_file_range returned 0 bytes")
    copy_range(src_fd, dst_fd, copied, size - copied)


def copy_range(
    src_fd: int,
    dst_fd: int,
    offset: int,
    length: int,
    on_bytes: Callable[[int], None] | None = None,
) -> None:
    """Copy [offset, offset+length) of src_fd to the same offsets of dst_fd. Only a failure
    on the very first byte of a file means "unavailable"; later ones are real errors."""
    chunk = CHUNK if on_bytes is None else REPORT_CHUNK
    done = 0
    while done < length:
        try:
            copied = os.copy_file_range(
                src_fd, dst_fd, min(chunk, length - done), offset + done, offset + done
            )
        except OSError as exc:
            if done or offset:
                raise
            reraise_unless_unsupported(exc)
        if copied == 0:
            if done == 0 and offset == 0:
                raise Unavailable("copy_file_range returned 0 bytes")
            raise OSError(
                f"source shrank during copy (got {offset + done} of {offset + length} bytes)"
            )
        done += copied
        if on_bytes is not None:
            on_bytes(copied)
