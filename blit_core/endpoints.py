"""Resolving sources and a destination into transfer roots, with rsync's trailing-slash rules,
applied once here:

- `SRC/` (a directory with a trailing slash) means its contents: they land in DST.
- `SRC` (a directory) lands as DST/SRC, DST being created as a directory if needed.
- A single file goes to DST itself (a copy under a new name), or into DST when DST is an
  existing directory or ends in '/'. Several sources always go into the directory DST."""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Callable
from typing import NamedTuple

from blit_core.errors import SelectionError, UsageError
from blit_core.options import TransferOptions
from blit_core.transfer.jobs import TransferRoot


class Probe(NamedTuple):
    """What resolution needs to know about the two sides (local: the filesystem; remote: what
    the daemon reported). `source_mode(path, follow)` raises SelectionError when missing."""

    source_mode: Callable[[str, bool], int]
    dest_state: Callable[[str], tuple[bool, bool]]  # (exists, is a directory)
    dest_parent_exists: Callable[[str], bool]


def _local_source_mode(source: str, follow: bool) -> int:
    return _stat_source(source, follow=follow).st_mode


LOCAL_PROBE = Probe(
    _local_source_mode,
    lambda path: (os.path.lexists(path), os.path.isdir(path)),
    lambda parent: os.path.isdir(parent),
)


def resolve_local(
    sources: list[str], destination: str, *, copy_links: bool = False,
    probe: Probe = LOCAL_PROBE,
) -> tuple[list[TransferRoot], str | None]:
    """Map sources onto a destination (both local unless `probe` says otherwise).

    Returns the roots and the directory that must exist for them (DST itself when the
    sources go into it), or None when DST names a single file's new path."""
    if not sources:
        raise UsageError("nothing to transfer: give at least one SRC and a DST")
    if not destination:
        raise UsageError("the destination path is empty")
    dst_exists, dst_is_dir = probe.dest_state(destination)
    if not dst_is_dir and dst_exists and (
        len(sources) > 1 or destination.endswith("/")
    ):
        raise UsageError(f"destination {destination!r} exists and is not a directory")
    roots: list[TransferRoot] = []
    for source in sources:
        contents_only = source.endswith("/") or os.path.basename(source) in (".", "..")
        mode = probe.source_mode(source, copy_links or contents_only)
        name = os.path.basename(os.path.normpath(source))
        if stat.S_ISDIR(mode):
            if contents_only:
                roots.append(TransferRoot(source.rstrip("/") or "/", destination, "", True))
            else:
                roots.append(TransferRoot(source, os.path.join(destination, name), name, True))
            continue
        if contents_only:
            raise SelectionError(f"source {source!r} has a trailing slash but is not a directory")
        single_file_target = len(sources) == 1 and not dst_is_dir and not destination.endswith("/")
        target = destination if single_file_target else os.path.join(destination, name)
        roots.append(TransferRoot(source, target, name, False))
    needs_dir = not (len(roots) == 1 and not roots[0].is_dir and roots[0].dst == destination)
    if needs_dir and dst_exists and not dst_is_dir:
        raise UsageError(f"destination {destination!r} exists and is not a directory")
    if needs_dir and not dst_is_dir:
        _check_creatable(destination, probe)
        return roots, destination
    if not needs_dir:
        _check_creatable(destination, probe)
    return roots, destination if needs_dir else None


def anchor_backup_dir(options: TransferOptions, into_dir: str | None,
                      destination: str) -> TransferOptions:
    """--backup-dir is relative to DST, as in rsync (normalised, for comparisons)."""
    if not options.backup_dir:
        return options
    base = into_dir or os.path.dirname(destination) or "."
    return dataclasses.replace(
        options, backup_dir=os.path.normpath(os.path.join(base, options.backup_dir)))


def check_not_overlapping(root: TransferRoot, excluded: Callable[[str], bool]) -> None:
    """Refuse a destination that is its own source (a move would delete what it keeps) or
    lies inside a source directory (the copy would copy itself), unless a filter excludes
    the destination's place in the source, as in rsync's `--exclude=/bk ./ bk/`.
    `excluded(path)` says whether a directory path, relative to the transfer root, is."""
    src = os.path.realpath(root.src)
    dst = os.path.realpath(root.dst)
    if src == dst:
        raise UsageError(f"source {root.src!r} and destination {root.dst!r} are the same")
    if not root.is_dir or os.path.commonpath([src, dst]) != src:
        return
    parts = os.path.relpath(dst, src).split("/")
    if any(excluded(root.display("/".join(parts[: i + 1]))) for i in range(len(parts))):
        return
    raise UsageError(
        f"destination {root.dst!r} is inside the source {root.src!r}; choose a destination "
        "outside it, or exclude it"
    )


def _stat_source(source: str, *, follow: bool) -> os.stat_result:
    try:
        return os.stat(source) if follow else os.lstat(source)
    except FileNotFoundError:
        raise SelectionError(f"source {source!r} does not exist") from None
    except OSError as exc:
        raise SelectionError(f"cannot read source {source!r}: {exc.strerror}") from None


def _check_creatable(path: str, probe: Probe) -> None:
    parent = os.path.dirname(os.path.normpath(path)) or "."
    if not probe.dest_parent_exists(parent):
        raise SelectionError(
            f"destination parent {parent!r} does not exist; create it first (blit creates "
            "only the last level of DST)"
        )
