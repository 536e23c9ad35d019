"""The per-entry decision, pure: is the destination up to date (rsync's quick check and its
variants), is the file skipped by policy (--existing, -u, size limits...), and the 11-character
itemize code that describes the change.

Content comparison (-c) needs I/O, so callers pass the answer in via `content_equal`."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from enum import Enum

from blit_core.models import FileEntry
from blit_core.options import CompareMode, TransferOptions


class Decision(Enum):
    TRANSFER = "transfer"  # write the file
    UP_TO_DATE = "up-to-date"  # content equal; maybe attributes to fix
    SKIP = "skip"  # left alone by policy, whatever its state


def policy_skip(
    entry: FileEntry, dst_st: os.stat_result | None, options: TransferOptions
) -> str | None:
    """Why a regular file is skipped regardless of content, or None."""
    if options.min_size is not None and entry.size < options.min_size:
        return "smaller than --min-size"
    if options.max_size is not None and entry.size > options.max_size:
        return "larger than --max-size"
    if dst_st is None:
        return "not at destination (--existing)" if options.existing_only else None
    if options.ignore_existing:
        return "exists at destination (--ignore-existing)"
    if (
        options.update_only_older
        and stat.S_ISREG(dst_st.st_mode)
        and dst_st.st_mtime_ns > entry.mtime_ns
    ):
        return "newer at destination (--update)"
    return None


def decide_file(
    entry: FileEntry,
    dst_st: os.stat_result | None,
    options: TransferOptions,
    content_equal: Callable[[], bool],
) -> Decision:
    """Whether a regular file must be written, given what is at the destination."""
    if policy_skip(entry, dst_st, options):
        return Decision.SKIP
    if dst_st is None or not stat.S_ISREG(dst_st.st_mode):
        return Decision.TRANSFER
    mode = options.compare
    if mode is CompareMode.IGNORE_TIMES or dst_st.st_size != entry.size:
        return Decision.TRANSFER
    if mode is CompareMode.SIZE_ONLY:
        return Decision.UP_TO_DATE
    if mode is CompareMode.CHECKSUM:
        return Decision.UP_TO_DATE if content_equal() else Decision.TRANSFER
    if mtimes_match(entry.mtime_ns, dst_st.st_mtime_ns, options.modify_window_ns):
        return Decision.UP_TO_DATE
    return Decision.TRANSFER


def mtimes_match(src_ns: int, dst_ns: int, window_ns: int) -> bool:
    return abs(src_ns - dst_ns) <= window_ns


def attrs_differ(
    entry: FileEntry, dst_st: os.stat_result, options: TransferOptions, *, owner: bool
) -> str:
    """The itemize attribute letters (positions 3-11, 'cstpoguax') that differ, as a
    9-character string with '.' for equal."""
    is_link = stat.S_ISLNK(entry.mode)
    size_differs = stat.S_ISREG(entry.mode) and dst_st.st_size != entry.size
    time_differs = not mtimes_match(entry.mtime_ns, dst_st.st_mtime_ns, options.modify_window_ns)
    perms_differ = not is_link and stat.S_IMODE(dst_st.st_mode) != entry.perms
    letters = [
        ".",
        "s" if size_differs else ".",
        "t" if time_differs else ".",
        "p" if perms_differ else ".",
        "o" if owner and dst_st.st_uid != entry.uid else ".",
        "g" if owner and dst_st.st_gid != entry.gid else ".",
        ".",
        ".",
        ".",
    ]
    return "".join(letters)


NEW_ATTRS = "+++++++++"


def needs_attr_update(attrs: str) -> bool:
    return attrs.strip(".") != ""
