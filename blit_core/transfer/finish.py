"""The phases that run once every file is committed: mirror deletions (deepest first, within
--max-delete), directory owner/mode/mtime (children before parents, so later writes do not
disturb them), and, for move, removal of the emptied source directories."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from blit_core.models import FileFailure, ItemEvent
from blit_core.options import TransferOptions
from blit_core.transfer.jobs import Deletion, DirAttrs, TransferRoot
from blit_core.transfer.sink import FsSink

DELETING = "*deleting"


@dataclass
class DeletionOutcome:
    deleted: int = 0
    skipped: int = 0
    failures: list[FileFailure] = field(default_factory=list)


def apply_deletions(
    deletions: Iterable[Deletion],
    roots: Sequence[TransferRoot],
    sink: FsSink,
    options: TransferOptions,
    on_event: Callable[[ItemEvent], None],
) -> DeletionOutcome:
    """Delete extraneous entries, each directory's contents before the directory itself.
    Once --max-delete would be exceeded, nothing more is deleted; the rest is counted."""
    outcome = DeletionOutcome()
    budget = options.max_delete
    for deletion in sorted(deletions, key=lambda d: (d.root, d.rel)):
        root = roots[deletion.root]
        path = root.dst_path(deletion.rel)
        shown = root.display(deletion.rel)
        if len(roots) > 1 and _kept_by_another_root(os.path.normpath(path), deletion.root, roots):
            continue
        try:
            is_dir = stat.S_ISDIR(os.lstat(path).st_mode)  # as it is now, never through a link
        except FileNotFoundError:
            continue
        victims = list(_bottom_up(path, shown)) if is_dir else [(path, shown, False)]
        if outcome.skipped or (budget is not None and outcome.deleted + len(victims) > budget):
            outcome.skipped += len(victims)
            continue
        for _, victim_shown, _ in victims:
            on_event(ItemEvent(DELETING, victim_shown))
        if options.dry_run:
            outcome.deleted += len(victims)
            continue
        try:
            if options.backup:
                sink.remove(path, shown, is_dir=is_dir)
            else:
                for victim_path, _, victim_is_dir in victims:
                    if victim_is_dir:
                        os.rmdir(victim_path)
                    else:
                        os.unlink(victim_path)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            outcome.failures.append(FileFailure(shown, f"cannot delete: {reason}"))
            continue
        outcome.deleted += len(victims)
    return outcome


def _kept_by_another_root(path: str, owner: int, roots: Sequence[TransferRoot]) -> bool:
    """With several sources in one destination, an entry one source lacks may belong to
    another: it is extraneous only if no source maps anything onto it."""
    for index, root in enumerate(roots):
        if index == owner:
            continue
        root_dst = os.path.normpath(root.dst)
        if path == root_dst:
            return True
        inside = root.is_dir and path.startswith(root_dst + "/")
        if inside and os.path.lexists(root.src_path(path[len(root_dst) + 1 :])):
            return True
    return False


def _bottom_up(path: str, shown: str) -> Iterable[tuple[str, str, bool]]:
    """(path, displayed path, is_dir) for a directory tree, contents before directories."""
    for dirpath, dirnames, filenames in os.walk(path, topdown=False):
        rel = os.path.relpath(dirpath, path)
        base = shown if rel == "." else f"{shown}/{rel}"
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            yield os.path.join(dirpath, name), f"{base}/{name}", False
        yield dirpath, base + "/", True


def apply_dir_attrs(
    dir_attrs: Sequence[DirAttrs], roots: Sequence[TransferRoot], sink: FsSink
) -> list[FileFailure]:
    """Set each directory's owner, mode and mtime, deepest first (the list is in discovery
    order, parents before children, so it is walked backwards)."""
    failures = []
    for attrs in reversed(dir_attrs):
        root = roots[attrs.root]
        path = root.dst_path(attrs.rel)
        entry = attrs.entry
        try:
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode):
                continue
            if (
                st.st_mtime_ns != entry.mtime_ns
                or stat.S_IMODE(st.st_mode) != entry.perms
                or (sink.is_root and (st.st_uid, st.st_gid) != (entry.uid, entry.gid))
            ):
                sink.set_attrs(path, entry)
        except FileNotFoundError:
            continue
        except OSError as exc:
            failures.append(FileFailure(root.display(attrs.rel) + "/", exc.strerror or str(exc)))
    return failures


def remove_emptied_sources(
    dir_attrs: Sequence[DirAttrs], roots: Sequence[TransferRoot]
) -> None:
    """After a move, remove source directories that are now empty, deepest first. The root of
    `SRC/` stays, as the user named its contents; the root of `SRC` goes."""
    for attrs in reversed(dir_attrs):
        root = roots[attrs.root]
        if not attrs.rel and not root.prefix:
            continue
        try:
            os.rmdir(root.src_path(attrs.rel))
        except OSError:
            continue
