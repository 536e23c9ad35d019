"""The units of work that cross between the pipeline and its workers, and what comes back.

A transfer has one or more roots (a source path mapped to a destination path). Work on a root
is cut into jobs: a directory to scan, compare and apply, or a batch of files to copy. Every
record here is small and picklable."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import NamedTuple

from blit_core.models import FileEntry, FileFailure, ItemEvent, TransferStats


@dataclass(frozen=True)
class TransferRoot:
    """One source mapped to its destination, after rsync's trailing-slash rules.

    `prefix` is the root's own name relative to the transfer root ("" for `SRC/`, "SRC" for
    `SRC`, the file name for a file): the start of every displayed and filtered path. A file
    root's paths are its `src` and `dst` whatever `rel` is asked for."""

    src: str
    dst: str
    prefix: str
    is_dir: bool

    def src_path(self, rel: str) -> str:
        return f"{self.src}/{rel}" if rel and self.is_dir else self.src

    def dst_path(self, rel: str) -> str:
        return f"{self.dst}/{rel}" if rel and self.is_dir else self.dst

    def dest_rel(self, rel: str) -> str:
        """The entry's path relative to the destination directory (where --backup-dir keeps
        its backup): a file root copied under a new name is known by that name."""
        return self.display(rel) if self.is_dir else os.path.basename(self.dst)

    def display(self, rel: str) -> str:
        """The path relative to the transfer root, as shown and as matched by filters."""
        if not self.is_dir or not self.prefix:
            return self.prefix or rel
        return f"{self.prefix}/{rel}" if rel else self.prefix


class DirJob(NamedTuple):
    """Scan one source directory, compare it with its destination, apply the differences."""

    root: int
    rel: str
    dst_exists: bool


class CopyItem(NamedTuple):
    entry: FileEntry
    dst_mode: int | None  # what the destination holds now (st_mode), None if nothing
    code: str  # itemize code of the change
    dst_size: int = 0  # the size of the file the destination holds now (a delta's basis)


class CopyJob(NamedTuple):
    """Copy a batch of planned files of one directory (a large directory is split into many)."""

    root: int
    rel_dir: str
    items: list[CopyItem]


class RootJob(NamedTuple):
    """Start a root: create its destination directory, or transfer it if it is a file."""

    root: int


class HardLinkMember(NamedTuple):
    """A multiply-linked source file, held back so the pipeline can link its group (-H)."""

    root: int
    rel: str
    entry: FileEntry


class HardLinkJob(NamedTuple):
    """Transfer the first member of a group of hard links, then link the others to it."""

    members: list[HardLinkMember]


Job = DirJob | CopyJob | RootJob | HardLinkJob


class DirAttrs(NamedTuple):
    """A directory whose owner, mode and mtime are set once its contents are done."""

    root: int
    rel: str
    entry: FileEntry


class Deletion(NamedTuple):
    """An extraneous destination entry that mirror deletes after every commit."""

    root: int
    rel: str
    is_dir: bool


@dataclass
class JobResult:
    """What a worker reports for (part of) a job. Long jobs report in several parts; the
    part with `final` set ends the job."""

    stats: TransferStats = field(default_factory=TransferStats)
    subdirs: list[DirJob] = field(default_factory=list)
    copy_jobs: list[CopyJob] = field(default_factory=list)
    dir_attrs: list[DirAttrs] = field(default_factory=list)
    deletions: list[Deletion] = field(default_factory=list)
    hardlinks: list[HardLinkMember] = field(default_factory=list)
    events: list[ItemEvent] = field(default_factory=list)
    failures: list[FileFailure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # move with a remote SOURCE: (root, rel, size, mtime_ns) of copies committed and verified
    confirmed: list[tuple[int, str, int, int]] = field(default_factory=list)
    scan_incomplete: bool = False
    fatal: str | None = None
    final: bool = False

    def size(self) -> int:
        """How many records it holds: a large part is sent early to bound memory."""
        return (
            len(self.subdirs) + len(self.copy_jobs) + len(self.dir_attrs) + len(self.deletions)
            + len(self.hardlinks) + len(self.events) + len(self.failures) + len(self.warnings)
            + len(self.confirmed)
        )


class Progress(NamedTuple):
    """Bytes and files completed since the previous progress message of the same worker."""

    num_bytes: int
    files: int
