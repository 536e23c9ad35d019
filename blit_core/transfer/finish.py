"""The phases that run once every file is committed: mirror deletions (deepest first, within
--max-delete), directory owner/mode/mtime (children before parents, so later writes do not
disturb them), and, for move, removal of the emptied source directories."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

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


class Places(Protocol):
    """Resolves destination entries to (directory descriptor, name) without following
    symlinks, and releases the descriptors it opened (the Worker provides this)."""

    def place(self, root_index: int, rel: str) -> tuple[int, str]: ...

    def release_places(self) -> None: ...


def apply_deletions(
    deletions: Iterable[Deletion],
    roots: Sequence[TransferRoot],
    sink: FsSink,
    places: Places,
    options: TransferOptions,
    on_event: Callable[[ItemEvent], None],
) -> DeletionOutcome:
    """Delete extraneous entries, each directory's contents before the directory itself.
    Once --max-delete would be exceeded, nothing more is deleted; the rest is counted."""
    outcome = DeletionOutcome()
    budget = options.max_delete
    for deletion in sorted(deletions, key=lambda d: (d.root, d.rel)):
        root = roots[deletion.root]
        shown = root.display(deletion.rel)
        path = os.path.normpath(root.dst_path(deletion.rel))
        if len(roots) > 1 and _kept_by_another_root(path, deletion.root, roots):
            continue
        try:
            dir_fd, name = places.place(deletion.root, deletion.rel)
            is_dir = stat.S_ISDIR(os.lstat(name, dir_fd=dir_fd).st_mode)  # as it is now
            victims = _bottom_up(dir_fd, name, shown) if is_dir else [shown]
            if outcome.skipped or (
                budget is not None and outcome.deleted + len(victims) > budget
            ):
                outcome.skipped += len(victims)
                continue
            for victim in victims:
                on_event(ItemEvent(DELETING, victim))
            if not options.dry_run:
                sink.remove(dir_fd, name, shown, is_dir=is_dir)
            outcome.deleted += len(victims)
        except FileNotFoundError:
            continue
        except OSError as exc:
            reason = exc.strerror or str(exc)
            outcome.failures.append(FileFailure(shown, f"cannot delete: {reason}"))
        finally:
            places.release_places()
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


def _bottom_up(dir_fd: int, name: str, shown: str) -> list[str]:
    """Displayed paths of a directory tree, contents before their directories (fwalk does
    not follow symlinks; a symlink to a directory is listed as an entry)."""
    victims = []
    for dirpath, dirnames, filenames, fd in os.fwalk(name, topdown=False, dir_fd=dir_fd):
        rel = dirpath[len(name) :].lstrip("/")
        base = f"{shown}/{rel}" if rel else shown
        links = [d for d in dirnames if stat.S_ISLNK(os.lstat(d, dir_fd=fd).st_mode)]
        victims.extend(f"{base}/{entry}" for entry in filenames + links)
        victims.append(base + "/")
    return victims


def apply_dir_attrs(
    dir_attrs: Sequence[DirAttrs], roots: Sequence[TransferRoot], sink: FsSink, places: Places
) -> list[FileFailure]:
    """Set each directory's owner, mode and mtime, deepest first (the list is in discovery
    order, parents before children, so it is walked backwards)."""
    failures = []
    for attrs in reversed(dir_attrs):
        entry = attrs.entry
        try:
            dir_fd, name = places.place(attrs.root, attrs.rel)
            st = os.lstat(name, dir_fd=dir_fd)
            if stat.S_ISDIR(st.st_mode) and (
                st.st_mtime_ns != entry.mtime_ns
                or stat.S_IMODE(st.st_mode) != entry.perms
                or (sink.is_root and (st.st_uid, st.st_gid) != (entry.uid, entry.gid))
            ):
                sink.set_attrs(dir_fd, name, entry)
        except FileNotFoundError:
            continue
        except OSError as exc:
            shown = roots[attrs.root].display(attrs.rel)
            failures.append(FileFailure(shown + "/", exc.strerror or str(exc)))
        finally:
            places.release_places()
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
