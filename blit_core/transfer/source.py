"""The SOURCE role of a remote transfer: the local engine's scan, writing a manifest.

The same Worker that runs local transfers walks the source tree (filters, --files-from,
--copy-links and scan failures behave exactly as locally), but each directory's listing is
written into manifest batches instead of being compared with a destination. Each batch
travels with the regular files it names, by id, so the session can look up what the
DESTINATION asks for and forget the rest once it has answered.

After a move, `remove_confirmed` deletes each source file the DESTINATION confirmed, if it has
not changed since it was scanned, and then the directories left empty."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

from blit_core import hashing, pathsafe
from blit_core.models import FileEntry, FileFailure, new_tuple
from blit_core.options import CompareMode, TransferOptions, Verb
from blit_core.transfer.jobs import DirJob, JobResult, Progress, RootJob, TransferRoot
from blit_core.transfer.worker import Worker
from blit_core.wire.manifest import ManifestWriter

BATCH_BYTES = 256 << 10  # a manifest batch: well under gRPC's 4 MiB message limit


class SourceFile(NamedTuple):
    """A regular file the manifest named: where it is and what it was when scanned."""

    root: int
    rel: str
    entry: FileEntry


class Batch(NamedTuple):
    number: int
    records: bytes
    files: dict[int, SourceFile]
    scanned: int  # entries listed so far, this batch's included


class ManifestOutput:
    """Receives the Worker's listings and cuts them into batches for `deliver`."""

    def __init__(
        self, roots: Sequence[TransferRoot], options: TransferOptions,
        deliver: Callable[[Batch], None], open_file: Callable[[str], int],
    ) -> None:
        """`open_file`: how a file is opened to compute its digest (under --checksum)."""
        self.roots = roots
        self.open_file = open_file
        self.deliver = deliver
        self.writer = ManifestWriter()
        self.files: dict[int, SourceFile] = {}
        self.next_id = 0
        self.batches = 0
        self.checksum = options.compare is CompareMode.CHECKSUM
        self.worker: Worker | None = None

    def root(self, root_index: int, entry: FileEntry) -> None:
        entry_id = self._remember(root_index, "", entry)
        self.writer.root(root_index, entry_id, entry, self._digest(root_index, "", entry))
        self._maybe_flush()

    def open_dir(self, root_index: int, rel: str) -> _ManifestPass:
        self.writer.dir_start(root_index, rel)
        assert self.worker is not None
        return _ManifestPass(self, self.worker, root_index, rel)

    def _remember(self, root_index: int, rel: str, entry: FileEntry) -> int:
        entry_id = self.next_id
        self.next_id = entry_id + 1
        if stat.S_ISREG(entry.mode):
            self.files[entry_id] = new_tuple(SourceFile, (root_index, rel, entry))
        return entry_id

    def _digest(self, root_index: int, rel: str, entry: FileEntry) -> bytes:
        if not self.checksum or not stat.S_ISREG(entry.mode):
            return b""
        try:
            fd = self.open_file(self.roots[root_index].src_path(rel))
        except OSError:
            return b""  # it vanished or is unreadable: reported when it is sent
        try:
            return hashing.fd_digest(fd)
        except OSError:
            return b""
        finally:
            os.close(fd)

    def _maybe_flush(self) -> None:
        if len(self.writer) >= BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not len(self.writer):
            return
        batch = Batch(self.batches, self.writer.take(), self.files, self.next_id)
        self.batches += 1
        self.files = {}
        self.deliver(batch)


class _ManifestPass:
    """The directory pass of a SOURCE: every entry that survives the filters is written."""

    dst_listing: dict[str, os.DirEntry] = {}  # noqa: RUF012 - never written: no fast path

    def __init__(self, output: ManifestOutput, worker: Worker, root_index: int, rel: str) -> None:
        self.output = output
        self.worker = worker
        self.root_index = root_index
        self.rel_prefix = rel + "/" if rel else ""

    def keep(self, name: str) -> None:
        return

    def names_to_keep(self) -> None:
        return None

    def add_unchanged(self, files: int, num_bytes: int) -> None:
        return  # a SOURCE has no destination listing: nothing is ever found unchanged

    def handle(self, entry: FileEntry, dst_dirent: os.DirEntry | None) -> None:
        output = self.output
        rel = self.rel_prefix + entry.name
        entry_id = output._remember(self.root_index, rel, entry)
        output.writer.entry(entry_id, entry, output._digest(self.root_index, rel, entry))
        if stat.S_ISDIR(entry.mode):
            self.worker.result.subdirs.append(DirJob(self.root_index, rel, True))
        output._maybe_flush()

    def finish(self, incomplete: bool = False) -> None:
        self.output.writer.dir_end(self.worker.result.scan_incomplete)
        self.output._maybe_flush()


def scan_to_manifest(
    roots: Sequence[TransferRoot], options: TransferOptions, verb: Verb,
    deliver: Callable[[Batch], None], access: SourceAccess,
) -> JobResult:
    """Walk every root depth-first, handing manifest batches to `deliver` as they fill (it
    may block: that is the back-pressure). Returns the scan's failures and warnings. Files
    are read (for --checksum digests) through `access`; in its jail (a daemon's module)
    every directory is listed through a descriptor reached from the jail without following
    any symlink, even one swapped in during the scan."""
    merged = JobResult()
    stack: list[DirJob] = []

    def collect(part: JobResult | Progress) -> None:
        if isinstance(part, Progress):
            return
        merged.failures.extend(part.failures)
        merged.warnings.extend(part.warnings)
        merged.scan_incomplete |= part.scan_incomplete
        if part.fatal and not merged.fatal:
            merged.fatal = part.fatal
        stack.extend(reversed(part.subdirs))

    output = ManifestOutput(roots, options, deliver, access.open)
    worker = Worker(roots, options, verb, collect, jail=access.jail, manifest=output)
    output.worker = worker
    worker.run([RootJob(index) for index in range(len(roots))])
    while stack and not merged.fatal:
        worker.run([stack.pop()])
    output.flush()
    return merged


class SourceAccess:
    """How a SOURCE reaches its files after the scan: by path (a symlink named last is
    followed only with -L), or, in a daemon's module (`jail`), beneath it without following
    any symlink at all, even one swapped in after the scan (with -L, only those that stay
    inside the module). Files open non-blocking and must
    still be regular (a FIFO swapped in would block a reader forever)."""

    def __init__(self, options: TransferOptions, jail: str | None) -> None:
        self.flags = os.O_RDONLY | os.O_NONBLOCK | (0 if options.copy_links else os.O_NOFOLLOW)
        self.open_beneath = (pathsafe.open_following_beneath if options.copy_links
                             else pathsafe.open_file_beneath)
        self.follow = options.copy_links
        self.jail = jail
        self.root_fd = None if jail is None else pathsafe.open_root(jail)
        self.prefix = "" if jail is None else jail.rstrip("/") + "/"

    def open(self, path: str) -> int:
        if self.root_fd is None:
            fd = os.open(path, self.flags)
        else:
            fd = self.open_beneath(self.root_fd, self._rel(path), os.O_RDONLY | os.O_NONBLOCK)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(errno.EINVAL, "no longer a regular file", path)
        return fd

    def lstat(self, root: TransferRoot, rel: str) -> os.stat_result:
        with self._place(root, rel) as (dir_fd, name):
            return os.lstat(name, dir_fd=dir_fd)

    def unlink(self, root: TransferRoot, rel: str) -> None:
        with self._place(root, rel) as (dir_fd, name):
            os.unlink(name, dir_fd=dir_fd)

    def rmdir(self, root: TransferRoot, rel: str) -> None:
        with self._place(root, rel) as (dir_fd, name):
            os.rmdir(name, dir_fd=dir_fd)

    def close(self) -> None:
        """Once nothing uses it any more."""
        if self.root_fd is not None:
            os.close(self.root_fd)

    def _rel(self, path: str) -> str:
        if not path.startswith(self.prefix):
            raise OSError(errno.EXDEV, "outside the module", path)
        return path[len(self.prefix):]

    @contextlib.contextmanager
    def _place(self, root: TransferRoot, rel: str) -> Iterator[tuple[int | None, str]]:
        """(directory descriptor or None, name) for the path `rel` of a root (a path the
        DESTINATION confirmed): beneath the jail when there is one, else beneath the root
        (without -L, no symlink on the way is followed: nothing outside the tree is reached)."""
        path = root.src_path(rel)
        if self.root_fd is not None:
            head, _, name = self._rel(path).rpartition("/")
            base_fd = self.root_fd
        elif self.follow or not root.is_dir or "/" not in rel:
            yield None, path
            return
        else:
            head, _, name = rel.rpartition("/")
            base_fd = pathsafe.open_root(root.src)
        try:
            dir_fd = pathsafe.open_beneath(base_fd, head)
        finally:
            if base_fd != self.root_fd:
                os.close(base_fd)
        try:
            yield dir_fd, name
        finally:
            os.close(dir_fd)


def remove_confirmed(
    roots: Sequence[TransferRoot], confirmed: Sequence[tuple[int, str, int, int]],
    result: JobResult, access: SourceAccess,
) -> None:
    """Move, after the DESTINATION's summary: delete each confirmed source file that is
    still what was sent (same size and mtime); then the directories left empty (the root of
    `SRC/` stays, as locally)."""
    dirs: set[tuple[int, str]] = set()
    for root_index, rel, size, mtime_ns in confirmed:
        root = roots[root_index]
        shown = root.display(rel)
        try:
            now = access.lstat(root, rel)
            if (now.st_size, now.st_mtime_ns) != (size, mtime_ns):
                result.warnings.append(f"not removing {shown!r}: it changed during the move")
                continue
            access.unlink(root, rel)
        except OSError as exc:
            result.failures.append(FileFailure(shown, exc.strerror or str(exc)))
            continue
        result.stats.sources_removed += 1
        while root.is_dir and rel:
            rel = os.path.dirname(rel)
            dirs.add((root_index, rel))
    for root_index, rel in sorted(dirs, key=_deepest_first):
        root = roots[root_index]
        if not rel and not root.prefix:
            continue
        try:
            access.rmdir(root, rel)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                result.warnings.append(f"could not remove {root.display(rel)!r}: {exc.strerror}")


def _deepest_first(place: tuple[int, str]) -> tuple[int, str]:
    rel = place[1]
    return (-(rel.count("/") + 1) if rel else 0, rel)
