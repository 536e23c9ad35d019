"""File-to-file os.sendfile: a kernel copy that works where copy_file_range refuses (EXDEV)."""

from __future__ import annotations

import os
from collections.abc import Callable

from blit_core.fastcopy.errors import REPORT_CHUNK, Unavailable, reraise_unless_unsupported

CHUNK = 1 << 30


def copy(src_fd: int, dst_fd: int, size: int, on_bytes: Callable[[int], None] | None) -> None:
    chunk = CHUNK if on_bytes is None else REPORT_CHUNK
    done = 0
    while done < size:
        try:
            sent = os.sendfile(dst_fd, src_fd, done, min(chunk, size - done))
        except OSError as exc:
            if done:
                raise
            reraise_unless_unsupported(exc)
        if sent == 0:
            if done == 0:
                raise Unavailable("sendfile returned 0 bytes")
            raise OSError(f"source shrank during copy (got {done} of {size} bytes)")
        done += sent
        if on_bytes is not None:
            on_bytes(sent)
