"""The per-directory worker: scan a source directory, compare it with the destination, apply
what differs through the FsSink, and report.

The same `Worker` runs in pool processes and, for small transfers and the final phases, in the
pipeline's own process. It never decides what runs next: it returns subdirectories, surplus
copy batches, deletions and held-back hard links to the pipeline."""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from collections.abc import Callable, Sequence
from stat import S_ISREG
from typing import TYPE_CHECKING, NamedTuple

from blit_core import hashing, pathsafe
from blit_core.models import FileEntry, FileFailure, ItemEvent, entry_from_stat
from blit_core.options import CompareMode, TransferOptions, Verb
from blit_core.plan.compare import (
    NEW_ATTRS,
    Decision,
    attrs_differ,
    decide_file,
    needs_attr_update,
    policy_skip,
)
from blit_core.scan import list_dir, list_dir_by_name, read_entry, read_path
from blit_core.transfer.jobs import (
    CopyItem,
    CopyJob,
    Deletion,
    DirAttrs,
    DirJob,
    HardLinkJob,
    HardLinkMember,
    Job,
    JobResult,
    Progress,
    RootJob,
    TransferRoot,
)
from blit_core.transfer.sink import (
    DELTA_STRATEGY,
    DestDir,
    FsSink,
    remove_stale_temps,
    stale_temp_names,
)

if TYPE_CHECKING:
    from blit_core.transfer.source import ManifestOutput
    from blit_core.wire.manifest import EntryRecord

BATCH_FILES = 512
BATCH_BYTES = 64 << 20
PART_RECORDS = 2048
PROGRESS_INTERVAL_S = 0.2
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
NEW_FILE_CODE = ">f" + NEW_ATTRS
_READ_NOFOLLOW = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a --checksum read

logger = logging.getLogger(__name__)


class FatalTransferError(Exception):
    """An error that makes going on pointless (a full destination)."""


class Worker:
    """Executes jobs for one transfer. `emit` receives JobResult parts and Progress records."""

    def __init__(
        self,
        roots: Sequence[TransferRoot],
        options: TransferOptions,
        verb: Verb,
        emit: Callable[[JobResult | Progress], None],
        *,
        remote_source: bool = False,
        jail: str | None = None,
        module: str = "",
        manifest: ManifestOutput | None = None,
    ) -> None:
        """`remote_source`: the source is on the other side of a session (this worker is a
        remote transfer's DESTINATION): listings arrive through plan_listing, file copies are
        handed back as CopyJobs (needs) instead of run, and a move's sources are confirmed
        in result.confirmed rather than removed. `jail`: every root on this side (the
        destination's, or with `manifest` the source's) lies beneath this directory (a daemon
        module, which clients call `module`) and is reached, listed and read without
        following any symlink.
        `manifest`: this worker is a remote transfer's SOURCE: listings (and roots) are
        written there instead of being compared with a destination."""
        self.roots = roots
        self.manifest = manifest
        self.remote_source = remote_source
        self.jail = jail
        self.module = module
        self._jailed_source = jail is not None and manifest is not None
        self.source_digests: dict[tuple[int, str], bytes] = {}
        # Files a remote SOURCE sent again after they changed (REDO): the manifest's digest
        # is of their older content, so a move with -c cannot verify them and keeps their
        # source, as a local move keeps a source that changed.
        self.sent_again: set[tuple[int, str]] = set()
        self.options = options
        self.verb = verb
        self.emit = emit
        self.sink = FsSink(options, replace_directories=verb is Verb.MIRROR, jail=jail)
        if options.want_progress:
            self.sink.on_bytes = self._count_bytes
        self.filters = options.filters
        self.files_from = options.files_from
        self.dry_run = options.dry_run
        self.mirror = verb is Verb.MIRROR
        self.move = verb is Verb.MOVE
        self.owner = self.sink.is_root
        self.want_events = options.want_events
        self._file_policies = options.has_file_policies
        self._backup_dir_real = (
            os.path.realpath(options.backup_dir) if options.backup_dir else None
        )
        self._fast_quick_check = (
            options.compare is CompareMode.QUICK
            and options.modify_window_ns == 0
            and not self.move
            and not self._file_policies
        )
        self.result = JobResult()
        self._progress_bytes = 0
        self._progress_files = 0
        self._file_bytes_reported = 0
        self._dir_fds: dict[tuple[int, str], int] = {}
        self._dest_dirs: dict[int, DestDir] = {}  # of the descriptors in _dir_fds
        self._progress_due = time.monotonic() + PROGRESS_INTERVAL_S

    # -- entry point ---------------------------------------------------------------------

    def run(self, jobs: Sequence[Job]) -> None:
        """Run jobs to completion, emitting their result parts; the last part is final."""
        try:
            for job in jobs:
                if isinstance(job, DirJob):
                    self._run_dir(job)
                elif isinstance(job, CopyJob):
                    self._copy_batch(job)
                elif isinstance(job, RootJob):
                    self._run_root(job)
                else:
                    self._link_group(job)
        except FatalTransferError as exc:
            self.result.fatal = str(exc)
        except Exception as exc:  # a bug: report it as fatal rather than lose the worker
            logger.debug("worker failed", exc_info=True)
            self.result.fatal = f"internal error in a worker: {exc!r} (run with --debug)"
        finally:
            self._close_dir_fds()
        self._flush_progress()
        self.result.final = True
        self.emit(self.result)
        self.result = JobResult()

    # -- destination directories ---------------------------------------------------------

    def _dir_fd(self, root_index: int, rel_dir: str) -> int:
        """A descriptor of a destination directory, reached from its root without following
        any symlink (see pathsafe), kept open until the current jobs end."""
        key = (root_index, rel_dir)
        fd = self._dir_fds.get(key)
        if fd is None:
            fd = self._dir_fds[key] = self._open_dst_dir(root_index, rel_dir)
        return fd

    def _open_dst_dir(self, root_index: int, rel_dir: str) -> int:
        """As _dir_fd, but not kept: the caller closes it, unless it is the root's (which
        is kept, as _dir_fd keeps it)."""
        root_fd = self._dir_fds.get((root_index, ""))
        if root_fd is None:
            root = self.roots[root_index]
            path = root.dst if root.is_dir else os.path.dirname(root.dst) or "."
            root_fd = self._dir_fds[(root_index, "")] = self._open_root(path)
        return root_fd if not rel_dir else pathsafe.open_beneath(root_fd, rel_dir)

    def _place_of(self, where: EntryPath) -> tuple[int, str]:
        """(directory descriptor, name) of an entry's destination. A root's own entry lives
        in the directory the user named around it."""
        root = self.roots[where.root]
        if where.rel and root.is_dir:
            head, _, name = where.rel.rpartition("/")
            return self._dir_fd(where.root, head), name
        key = (where.root, "..")
        fd = self._dir_fds.get(key)
        if fd is None:
            parent = os.path.dirname(root.dst.rstrip("/")) or "."
            fd = self._dir_fds[key] = self._open_root(parent)
        return fd, os.path.basename(root.dst.rstrip("/"))

    def _open_root(self, path: str) -> int:
        """A root's (or a jailed source directory's) descriptor: as named locally, or reached
        from the jail (a daemon module) one component at a time without following symlinks.
        The module root's own entry lives in the module's parent, a path from the daemon's
        config."""
        if self.jail is None or path == os.path.dirname(self.jail.rstrip("/")):
            return pathsafe.open_root(path)
        jail_fd = pathsafe.open_root(self.jail)
        try:
            rel = os.path.relpath(path, self.jail)
            return pathsafe.open_beneath(jail_fd, "" if rel == "." else rel)
        finally:
            os.close(jail_fd)

    def place(self, root_index: int, rel: str) -> tuple[int, str]:
        """(directory descriptor, name) of a destination entry, for the finishing phases."""
        return self._place_of(EntryPath(root_index, rel, ""))

    def release_places(self) -> None:
        """Close the descriptors opened by place() and the jobs run so far."""
        self._close_dir_fds()

    def _dest_rel(self, where: EntryPath) -> str:
        return self.roots[where.root].dest_rel(where.rel)

    def dest_dir(self, dir_fd: int) -> DestDir:
        """What the sink needs to know about a destination directory open in _dir_fds, read
        once while it stays open."""
        dest = self._dest_dirs.get(dir_fd)
        if dest is None:
            dest = self._dest_dirs[dir_fd] = DestDir.of(dir_fd)
        return dest

    def _close_dir_fds(self) -> None:
        for fd in self._dir_fds.values():
            os.close(fd)
        self._dir_fds.clear()
        self._dest_dirs.clear()

    # -- reporting -----------------------------------------------------------------------

    def _event(self, code: str, path: str) -> None:
        if self.want_events:
            self.result.events.append(ItemEvent(code, path))
            if len(self.result.events) >= PART_RECORDS:
                self._send_part()

    def flush_result(self) -> None:
        """Emit what has accumulated (for roles that call the worker outside run())."""
        self._flush_progress()
        self._send_part()

    def _send_part(self) -> None:
        # A fresh result first: the emit callback may record into the worker (a DESTINATION
        # records its dry-run copies there), and that must land in the next part.
        result, self.result = self.result, JobResult()
        self.emit(result)

    def _fail(self, path: str, exc: OSError, *, source_path: str | None = None) -> None:
        if exc.errno in NO_SPACE_ERRNOS:
            raise FatalTransferError(
                f"no space left on device in {self._destination_shown()} (writing {path})"
            ) from exc
        vanished = (
            exc.errno == errno.ENOENT and source_path is not None and exc.filename == source_path
        )
        reason = "vanished during the transfer" if vanished else _describe(exc)
        self.result.failures.append(FileFailure(path, reason, vanished))

    def _destination_shown(self) -> str:
        """The destination directory as the user named it (DST), or in a daemon's module as
        the client names it, "/MODULE/path/" (the daemon's own paths are not for clients)."""
        root = self.roots[0]
        path = root.dst if root.is_dir and not root.prefix else os.path.dirname(root.dst)
        if self.jail is None:
            return os.path.join(path or ".", "")
        rel = os.path.relpath(path, self.jail)
        return f"{os.path.join('/', self.module, '' if rel == '.' else rel, '')} on the daemon"

    def _count_bytes(self, num_bytes: int) -> None:
        """Bytes copied so far within the current file (large files report as they go)."""
        self._file_bytes_reported += num_bytes
        self._progress_bytes += num_bytes
        self._maybe_flush_progress()

    def _count_done(self, file_size: int) -> None:
        """A file is done: count it, and whatever of its bytes was not reported yet."""
        if not self.options.want_progress:
            return
        self._progress_bytes += max(0, file_size - self._file_bytes_reported)
        self._file_bytes_reported = 0
        self._progress_files += 1
        self._maybe_flush_progress()

    def _maybe_flush_progress(self) -> None:
        now = time.monotonic()
        if now >= self._progress_due:
            self._flush_progress()
            self._progress_due = now + PROGRESS_INTERVAL_S

    def _flush_progress(self) -> None:
        if self._progress_bytes or self._progress_files:
            self.emit(Progress(self._progress_bytes, self._progress_files))
            self._progress_bytes = self._progress_files = 0

    # -- directories ---------------------------------------------------------------------

    def _run_dir(self, job: DirJob) -> None:
        root = self.roots[job.root]
        path = root.src_path(job.rel)
        dir_fd = None
        try:
            if self._jailed_source:  # listed through a descriptor from the module's root
                path_fd = self._open_in_jail(path)
                try:
                    dir_fd = pathsafe.open_listable(path_fd)
                finally:
                    os.close(path_fd)
            else:  # its entries are stat'ed by name in it, not by their whole paths again
                dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            listing = list_dir(dir_fd)
        except OSError as exc:
            if dir_fd is not None:
                os.close(dir_fd)
            self.result.scan_incomplete = True
            self._fail(_dir_shown(root.display(job.rel)), exc)
            return
        try:
            self._compare_listing(job, path, listing, dir_fd)
        finally:
            os.close(dir_fd)

    def _compare_listing(self, job: DirJob, dir_path: str, listing: list[os.DirEntry],
                         dir_fd: int) -> None:
        root = self.roots[job.root]
        dir_pass = self.open_dir_pass(job.root, job.rel, job.dst_exists)
        if dir_pass is None:
            return
        dst_listing = dir_pass.dst_listing
        rel_prefix = dir_pass.rel_prefix
        filtering = bool(self.filters) or self.files_from is not None
        fast_check = self._fast_quick_check
        owner = self.owner
        hard_links = self.options.hard_links
        unchanged_names = dir_pass.names_to_keep()
        unchanged = unchanged_bytes = 0
        follow_in_jail = self._jailed_source and self.options.copy_links
        for dirent in listing:
            name = dirent.name
            if filtering and self._excluded(root.display(rel_prefix + name), dirent, dir_path):
                continue
            dst_dirent = dst_listing.get(name)
            try:
                src_st = dirent.stat(follow_symlinks=False)
                if fast_check and dst_dirent is not None:
                    # _looks_unchanged's rule, written inline on stat results: a call per
                    # entry costs ~5% of a no-op mirror. Counted here, in bulk.
                    dst_st = dst_dirent.stat(follow_symlinks=False)
                    if (
                        dst_st.st_mtime_ns == src_st.st_mtime_ns
                        and dst_st.st_size == src_st.st_size
                        and dst_st.st_mode == src_st.st_mode
                        and S_ISREG(src_st.st_mode)
                        and (src_st.st_nlink == 1 or not hard_links)
                        and (not owner or (dst_st.st_uid == src_st.st_uid
                                           and dst_st.st_gid == src_st.st_gid))
                    ):
                        unchanged += 1
                        unchanged_bytes += src_st.st_size
                        if unchanged_names is not None:
                            unchanged_names.add(name)
                        continue
                if follow_in_jail and stat.S_ISLNK(src_st.st_mode):
                    entry = self._followed_in_jail(name, f"{dir_path}/{name}")
                else:
                    entry = read_entry(dirent, src_st, follow_links=self.options.copy_links,
                                       dir_fd=dir_fd)
            except OSError as exc:
                self._scan_failure(root.display(rel_prefix + name), dirent, exc, dir_pass)
                continue
            dir_pass.handle(entry, dst_dirent)
        dir_pass.add_unchanged(unchanged, unchanged_bytes)
        dir_pass.finish()

    def open_dir_pass(self, root_index: int, rel: str, dst_exists: bool) -> _DirPass | None:
        """Start comparing one directory: list its destination (None, reported, if that
        fails). A remote transfer's SOURCE writes the listing into its manifest instead."""
        if self.manifest is not None:
            return self.manifest.open_dir(root_index, rel)
        dst_listing: dict[str, os.DirEntry] = {}
        if dst_exists:
            root = self.roots[root_index]
            try:
                dst_listing = self._list_dst_dir(root_index, rel)
            except OSError as exc:
                self._fail(_dir_shown(root.display(rel)), exc)
                return None
            self._drop_stale_temps(root_index, rel, dst_listing)
        return _DirPass(self, root_index, rel, dst_listing)

    def _drop_stale_temps(self, root_index: int, rel: str,
                          dst_listing: dict[str, os.DirEntry]) -> None:
        """Temp files that writers killed earlier left in a destination directory are
        removed as it is compared (so a re-run converges), and are never entries of it."""
        stale = stale_temp_names(dst_listing)
        if not stale:
            return
        for name in stale:
            del dst_listing[name]
        if not self.dry_run:
            try:
                remove_stale_temps(self._dir_fd(root_index, rel), stale)
            except OSError:
                return  # the directory cannot be reached: what follows reports why

    def _list_dst_dir(self, root_index: int, rel: str) -> dict[str, os.DirEntry]:
        """A destination directory, listed through its descriptor (see _dir_fd: in a daemon's
        module, no symlink is followed) and every entry lstat'ed at once, by name in it: the
        results stay cached in the entries, which outlive the listing's descriptor. Entries
        gone by then are left out. A directory no copy has written to yet is opened only for
        its listing: a DESTINATION that plans a whole batch of directories before it writes
        must not hold a descriptor for each."""
        kept = self._dir_fds.get((root_index, rel))
        path_fd = kept if kept is not None else self._open_dst_dir(root_index, rel)
        try:
            fd = pathsafe.open_listable(path_fd)
        finally:
            if kept is None and rel:
                os.close(path_fd)
        try:
            listing = list_dir_by_name(fd)
            for name, dirent in list(listing.items()):
                try:
                    dirent.stat(follow_symlinks=False)
                except FileNotFoundError:
                    del listing[name]
        finally:
            os.close(fd)
        return listing

    def plan_listing(self, dir_pass: _DirPass, records: Sequence[EntryRecord],
                     ids: dict[tuple[int, str], int]) -> None:
        """Compare entries of a listing that arrived from a remote SOURCE (already filtered
        there), with their digests under --checksum. Each regular file that is not found
        unchanged gets its manifest id in `ids`, by (root, rel), where its need is made."""
        fast_check = self._fast_quick_check
        dst_listing = dir_pass.dst_listing
        root_index, rel_prefix = dir_pass.root_index, dir_pass.rel_prefix
        unchanged_names = dir_pass.names_to_keep()
        unchanged = unchanged_bytes = 0
        for entry_id, entry, digest in records:
            name = entry.name
            dst_dirent = dst_listing.get(name)
            if fast_check and dst_dirent is not None:
                try:
                    dst_st = dst_dirent.stat(follow_symlinks=False)
                except FileNotFoundError:
                    dst_dirent = None
                else:
                    if self._looks_unchanged(entry.mode, entry.size, entry.mtime_ns, entry.nlink,
                                             entry.uid, entry.gid, dst_st):
                        unchanged += 1
                        unchanged_bytes += entry.size
                        if unchanged_names is not None:
                            unchanged_names.add(name)
                        continue
            key = (root_index, rel_prefix + name)
            if digest:
                self.source_digests[key] = digest
            if S_ISREG(entry.mode):
                ids[key] = entry_id
            dir_pass.handle(entry, dst_dirent)
        dir_pass.add_unchanged(unchanged, unchanged_bytes)

    def _looks_unchanged(
        self, mode: int, size: int, mtime_ns: int, nlink: int, uid: int, gid: int,
        dst_st: os.stat_result,
    ) -> bool:
        """The common case, decided without building records: under the default quick check
        (no policy options, not a move), a regular file whose size, mtime, mode with file type
        (and owner, as root) all match needs nothing."""
        return (
            dst_st.st_mtime_ns == mtime_ns
            and dst_st.st_size == size
            and dst_st.st_mode == mode
            and S_ISREG(mode)
            and (nlink == 1 or not self.options.hard_links)
            and (not self.owner or (dst_st.st_uid == uid and dst_st.st_gid == gid))
        )

    def _scan_failure(
        self, shown: str, dirent: os.DirEntry, exc: OSError, dir_pass: _DirPass | None
    ) -> None:
        """An entry that was listed but could not be read. If it vanished, it is simply gone;
        otherwise its destination copy must not be deleted as extraneous, and, as in rsync,
        mirror then deletes nothing at all."""
        dangling = (
            self.options.copy_links and exc.errno == errno.ENOENT and dirent.is_symlink()
        )
        if dangling or exc.errno != errno.ENOENT or exc.filename != dirent.path:
            self.result.scan_incomplete = True
            if dir_pass is not None:
                dir_pass.keep(dirent.name)
        if dangling:
            self.result.failures.append(FileFailure(shown, "symlink has no referent (-L)"))
            return
        self._fail(shown, exc, source_path=dirent.path)

    def _excluded(self, shown: str, dirent: os.DirEntry, dir_path: str) -> bool:
        """Whether a listed entry (of the source directory at `dir_path`) is left out; with
        -L, by what a symlink leads to (in a daemon's module, only inside it)."""
        try:
            if self._jailed_source and self.options.copy_links and dirent.is_symlink():
                target = self._followed_in_jail(dirent.name, f"{dir_path}/{dirent.name}")
                is_dir = stat.S_ISDIR(target.mode)
            else:
                is_dir = dirent.is_dir(follow_symlinks=self.options.copy_links)
        except OSError:
            is_dir = False
        return self._deselected(shown, is_dir)

    def _holds_backups(self, name: str, path: str, is_dir: bool) -> bool:
        """Backups this transfer keeps are never extraneous: the --backup-dir and the
        directories leading to it, or, without one, names ending in the backup suffix."""
        if not self.options.backup:
            return False
        if self._backup_dir_real is None:
            return name.endswith(self.options.effective_backup_suffix)
        if not is_dir:
            return False
        real = os.path.realpath(path)
        return real == self._backup_dir_real or self._backup_dir_real.startswith(real + "/")

    def _deselected(self, shown: str, is_dir: bool) -> bool:
        """Left out by --files-from or by the filter rules (which also protects it from
        mirror's deletions unless --delete-excluded)."""
        if self.files_from is not None and not self.files_from.selects(shown, is_dir):
            return True
        return bool(self.filters) and self.filters.excludes(shown, is_dir)

    def _handle_entry(
        self,
        where: EntryPath,
        entry: FileEntry,
        dst_st: os.stat_result | None,
        planner: _BatchPlanner,
    ) -> None:
        root_index, rel, _ = where
        mode = entry.mode
        if stat.S_ISREG(mode):
            if self.options.hard_links and entry.nlink > 1:
                self.result.hardlinks.append(HardLinkMember(root_index, rel, entry))
                return
            self._plan_file(where, entry, dst_st, planner)
        elif stat.S_ISDIR(mode):
            self._handle_dir(where, entry, dst_st)
        elif stat.S_ISLNK(mode):
            self._handle_symlink(where, entry, dst_st)
        else:
            self._handle_special(where, entry, dst_st)

    def _handle_dir(
        self,
        where: EntryPath,
        entry: FileEntry,
        dst_st: os.stat_result | None,
    ) -> None:
        root_index, rel, shown = where
        self.result.stats.dirs_seen += 1
        exists = dst_st is not None and stat.S_ISDIR(dst_st.st_mode)
        if not exists:
            if self.options.existing_only:
                return
            self._event("cd" + NEW_ATTRS, _dir_shown(shown))
            if not self.dry_run:
                try:
                    self.sink.make_dir(*self._place_of(where), dst_st.st_mode if dst_st else None,
                                       self._dest_rel(where))
                except OSError as exc:
                    self._fail(_dir_shown(shown), exc)
                    return
            self.result.stats.dirs_created += 1
        else:
            assert dst_st is not None
            attrs = attrs_differ(entry, dst_st, self.options, owner=self.owner)
            if needs_attr_update(attrs):
                self._event(".d" + attrs, _dir_shown(shown))
            if not self.dry_run and not self.owner and not dst_st.st_mode & stat.S_IWUSR:
                try:  # writable until its final mode is set, after its contents
                    dir_fd, name = self._place_of(where)
                    os.chmod(name, stat.S_IMODE(dst_st.st_mode) | 0o700, dir_fd=dir_fd)
                except OSError as exc:
                    self._fail(_dir_shown(shown), exc)
                    return
        self.result.dir_attrs.append(DirAttrs(root_index, rel, entry))
        self.result.subdirs.append(DirJob(root_index, rel, exists))

    def _handle_symlink(
        self,
        where: EntryPath,
        entry: FileEntry,
        dst_st: os.stat_result | None,
    ) -> None:
        root_index, rel, shown = where
        self.result.stats.files_seen += 1
        root = self.roots[root_index]
        dst_path = root.dst_path(rel)
        if self._skip_by_existence(dst_st):
            self.result.stats.files_skipped += 1
            return
        same_link = dst_st is not None and stat.S_ISLNK(dst_st.st_mode)
        if same_link and _readlink(dst_path) == entry.target:
            assert dst_st is not None
            self.result.stats.files_unchanged += 1
            if self._update_attrs(where, entry, dst_st):
                self._remove_source(where, entry)
            return
        code = "cL" + (NEW_ATTRS if dst_st is None else "c" + attrs_differ(
            entry, dst_st, self.options, owner=self.owner)[1:])
        self._event(code, f"{shown} -> {entry.target}")
        if self.dry_run:
            self.result.stats.symlinks_created += 1
            return
        try:
            self.sink.commit_symlink(*self._place_of(where), entry,
                                     dst_st.st_mode if dst_st else None, self._dest_rel(where))
        except OSError as exc:
            self._fail(shown, exc)
            return
        self.result.stats.symlinks_created += 1
        self._remove_source(where, entry)

    def _handle_special(
        self,
        where: EntryPath,
        entry: FileEntry,
        dst_st: os.stat_result | None,
    ) -> None:
        shown = where.shown
        is_device = stat.S_ISCHR(entry.mode) or stat.S_ISBLK(entry.mode)
        allowed = (self.options.devices if is_device else self.options.specials) and self.owner
        if not allowed:
            self.result.stats.specials_skipped += 1
            self.result.warnings.append(f"skipping non-regular file {shown!r}")
            return
        self.result.stats.files_seen += 1
        if self._skip_by_existence(dst_st):
            self.result.stats.files_skipped += 1
            return
        if dst_st is not None and (dst_st.st_mode, dst_st.st_rdev) == (entry.mode, entry.rdev):
            self.result.stats.files_unchanged += 1
            return
        self._event(("cD" if is_device else "cS") + NEW_ATTRS, shown)
        if not self.dry_run:
            try:
                dst_mode = dst_st.st_mode if dst_st else None
                self.sink.commit_special(*self._place_of(where), entry, dst_mode,
                                         self._dest_rel(where))
            except OSError as exc:
                self._fail(shown, exc)
                return
        self.result.stats.specials_created += 1

    def _update_attrs(
        self, where: EntryPath, entry: FileEntry, dst_st: os.stat_result
    ) -> bool:
        """An up-to-date file or symlink whose owner, mode or mtime differ gets them fixed in
        place (rsync's '.f...p.....'). False if that failed (and was reported)."""
        attrs = attrs_differ(entry, dst_st, self.options, owner=self.owner)
        if not needs_attr_update(attrs):
            return True
        kind = "f" if stat.S_ISREG(entry.mode) else "L"
        self._event("." + kind + attrs, where.shown)
        if not self.dry_run:
            try:
                self.sink.set_attrs(*self._place_of(where), entry)
            except OSError as exc:
                self._fail(where.shown, exc)
                return False
        self.result.stats.attrs_updated += 1
        return True

    def _skip_by_existence(self, dst: os.stat_result | None) -> bool:
        """--existing and --ignore-existing for entries that are not regular files."""
        if dst is None:
            return self.options.existing_only
        return self.options.ignore_existing

    def _find_extraneous(
        self,
        root_index: int,
        rel_dir: str,
        dst_listing: dict[str, os.DirEntry],
        included: set[str],
    ) -> None:
        root = self.roots[root_index]
        for name, dirent in dst_listing.items():
            if name in included:
                continue
            rel = os.path.join(rel_dir, name) if rel_dir else name
            is_dir = dirent.is_dir(follow_symlinks=False)
            if self._holds_backups(name, root.dst_path(rel), is_dir):
                continue
            protected = not self.options.delete_excluded and self._deselected(
                root.display(rel), is_dir
            )
            if not protected:
                self.result.deletions.append(Deletion(root_index, rel, is_dir))

    # -- regular files -------------------------------------------------------------------

    def _plan_file(
        self,
        where: EntryPath,
        entry: FileEntry,
        dst_st: os.stat_result | None,
        planner: _BatchPlanner,
    ) -> None:
        stats = self.result.stats
        stats.files_seen += 1
        stats.bytes_total += entry.size
        if dst_st is None and not self._file_policies:  # a new file: the common case
            planner.add(CopyItem(entry, None, NEW_FILE_CODE))
            return
        decision = decide_file(entry, dst_st, self.options, lambda: self._same_content(where))
        if decision is Decision.SKIP:
            stats.files_skipped += 1
            return
        if decision is Decision.UP_TO_DATE:
            assert dst_st is not None
            stats.files_unchanged += 1
            if self._update_attrs(where, entry, dst_st):
                self._remove_source(where, entry)
            return
        if dst_st is None:
            code = NEW_FILE_CODE
        else:
            attrs = attrs_differ(entry, dst_st, self.options, owner=self.owner)
            if self.options.compare is CompareMode.CHECKSUM and stat.S_ISREG(dst_st.st_mode):
                attrs = "c" + attrs[1:]
            code = ">f" + attrs
        planner.add(CopyItem(entry, dst_st.st_mode if dst_st else None, code,
                             dst_st.st_size if dst_st else 0))

    def _copy_batch(self, job: CopyJob) -> None:
        root = self.roots[job.root]
        rel_prefix = job.rel_dir + "/" if job.rel_dir else ""
        dest: DestDir | None = None
        for count, item in enumerate(job.items, 1):
            entry = item.entry
            rel = rel_prefix + entry.name
            shown = root.display(rel)
            src_path = root.src_path(rel)
            if not self.dry_run:
                self._file_bytes_reported = 0
                try:
                    dir_fd, name = self._place_of(EntryPath(job.root, rel, shown))
                    if dest is None:
                        dest = DestDir.of(dir_fd)
                    strategy = self.sink.commit_file(
                        src_path, dir_fd, name, entry, item.dst_mode, root.dest_rel(rel), dest
                    )
                except OSError as exc:
                    self._fail(shown, exc, source_path=src_path)
                    continue
            else:
                strategy = None
            if strategy == DELTA_STRATEGY:
                self._count_delta()
            self.record_copy(EntryPath(job.root, rel, shown), item, strategy)
            if count % 256 == 0 and self.result.size() >= PART_RECORDS:
                self._send_part()

    def _count_delta(self) -> None:
        counts = self.sink.last_delta
        assert counts is not None
        stats = self.result.stats
        stats.delta_files += 1
        stats.literal_bytes += counts.literal_bytes
        stats.matched_bytes += counts.matched_bytes
        stats.signature_bytes += counts.signature_bytes

    def record_copy(self, where: EntryPath, item: CopyItem, strategy: str | None) -> None:
        """A file's copy is committed (or would be, in a dry run): count and report it, and
        for move, remove or confirm its source."""
        entry = item.entry
        stats = self.result.stats
        if strategy is not None:
            stats.count_strategy(strategy, entry.size)
        self._event(item.code, where.shown)
        stats.files_transferred += 1
        if item.dst_mode is None:
            stats.files_created += 1
        else:
            stats.files_updated += 1
        stats.bytes_transferred += entry.size
        self._count_done(entry.size)
        if self.move:
            self._remove_source(where, entry)
        if self.remote_source:  # a new file's digest was never needed
            self.source_digests.pop((where.root, where.rel), None)

    def _run_root(self, job: RootJob) -> None:
        """Start a root. A file root's paths ignore `rel` (see TransferRoot)."""
        root = self.roots[job.root]
        follow = self.options.copy_links or root.is_dir
        try:
            if self._jailed_source:
                entry = self._read_jailed_root(root.src, root.prefix)
            else:
                entry = read_path(root.src, root.prefix, follow_links=follow)
        except OSError as exc:
            self.result.scan_incomplete = True
            self._fail(root.prefix or "./", exc, source_path=root.src)
            return
        if self.manifest is not None:
            self.manifest.root(job.root, entry)
            if root.is_dir:
                self.result.subdirs.append(DirJob(job.root, "", True))
            return
        self.start_root(job.root, entry)

    def _read_jailed_root(self, path: str, name: str) -> FileEntry:
        """A source root in a daemon's module, read without following any symlink (the
        session checked that none leads to it, and one swapped in since is sent as a link),
        or with -L following those that stay inside the module."""
        path = os.path.normpath(path)
        if path == os.path.normpath(self.jail):  # the module's root, a path from the config
            fd = pathsafe.open_root(path)
            try:
                return entry_from_stat(name, os.fstat(fd))
            finally:
                os.close(fd)
        if self.options.copy_links:
            return self._followed_in_jail(name, path)
        dir_fd = self._open_root(os.path.dirname(path))
        try:
            return read_path(os.path.basename(path), name, follow_links=False, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)

    def _open_in_jail(self, path: str) -> int:
        """An O_PATH descriptor of a source directory in the daemon's module, reached from the
        module's root: with -L following the symlinks that stay inside it, else none."""
        if not self.options.copy_links:
            return self._open_root(path)
        return pathsafe.open_following_in(self.jail, os.path.relpath(path, self.jail),
                                          os.O_PATH | os.O_DIRECTORY)

    def _followed_in_jail(self, name: str, path: str) -> FileEntry:
        """-L in a daemon's module: the record of what `path` leads to, following only
        symlinks that stay inside the module."""
        fd = pathsafe.open_following_in(self.jail, os.path.relpath(path, self.jail), os.O_PATH)
        try:
            return entry_from_stat(name, os.fstat(fd))
        finally:
            os.close(fd)

    def start_root(self, root_index: int, entry: FileEntry, digest: bytes = b"") -> None:
        """Compare a root's source entry with its destination and apply the difference."""
        root = self.roots[root_index]
        if digest:
            self.source_digests[(root_index, "")] = digest
        dst_st = _lstat_or_none(root.dst)
        where = EntryPath(root_index, "", root.prefix)
        if root.is_dir:
            if dst_st is not None and stat.S_ISLNK(dst_st.st_mode) and os.path.isdir(root.dst):
                dst_st = os.stat(root.dst)  # DST itself may be a symlink to a directory
            self._handle_dir(where, entry, dst_st)
            return
        planner = _BatchPlanner(self, root_index, "")
        self._handle_entry(where, entry, dst_st, planner)
        planner.finish()

    def _link_group(self, job: HardLinkJob) -> None:
        """-H: transfer a group's first member like any file, then hard-link the others to it
        at the destination (their own content is the same inode at the source)."""
        leader, *followers = job.members
        failures_before = len(self.result.failures)
        self.plan_member(leader)
        if len(self.result.failures) > failures_before:
            return
        if not self.dry_run and self.dst_lstat_quietly(self._member_where(leader)) is None:
            for member in followers:  # the leader was skipped by a policy option
                self._link_group(HardLinkJob([member]))
            return
        self.link_followers(leader, followers)

    def plan_member(self, member: HardLinkMember) -> None:
        """Plan a hard-link group's leader like any file (-H)."""
        planner = _BatchPlanner(self, member.root, os.path.dirname(member.rel))
        where = self._member_where(member)
        try:
            dst_st = self.dst_lstat(where)
        except OSError as exc:
            self._fail(where.shown, exc)
            return
        self._plan_file(where, member.entry, dst_st, planner)
        planner.finish()

    def link_followers(self, leader: HardLinkMember, followers: Sequence[HardLinkMember],
                       leader_failed: bool = False) -> None:
        """Hard-link each follower to the leader's committed destination (-H); one already
        linked to it is unchanged. If the leader failed or is not there, each follower is a
        failure."""
        leader_where = self._member_where(leader)
        leader_st = None
        if not self.dry_run and not leader_failed:
            leader_st = self.dst_lstat_quietly(leader_where)
        for member in followers:
            member_where = self._member_where(member)
            # A follower's content is its leader's: its digest serves only to verify a move.
            if self.remote_source and not self.move:
                self.source_digests.pop((member.root, member.rel), None)
            shown = member_where.shown
            try:
                dst_st = self.dst_lstat(member_where)
            except OSError as exc:
                self._fail(shown, exc)
                continue
            self.result.stats.files_seen += 1
            if policy_skip(member.entry, dst_st, self.options):
                self.result.stats.files_skipped += 1
                continue
            if not self.dry_run and leader_st is None:
                self.result.failures.append(FileFailure(
                    shown, f"not linked: its hard-link leader {leader_where.shown!r} failed"))
                continue
            if dst_st is not None and leader_st is not None and (
                    (dst_st.st_dev, dst_st.st_ino) == (leader_st.st_dev, leader_st.st_ino)):
                self.result.stats.files_unchanged += 1
                self._remove_source(member_where, member.entry)
                continue
            self._event("hf" + NEW_ATTRS, f"{shown} => {leader_where.shown}")
            if not self.dry_run:
                try:
                    self.sink.commit_hardlink(
                        self._place_of(leader_where), *self._place_of(member_where),
                        dst_st.st_mode if dst_st else None,
                        self.roots[member.root].dest_rel(member.rel),
                    )
                except OSError as exc:
                    self._fail(shown, exc)
                    continue
            self.result.stats.hardlinks_created += 1
            self._remove_source(member_where, member.entry)

    def _member_where(self, member: HardLinkMember) -> EntryPath:
        return EntryPath(member.root, member.rel, self.roots[member.root].display(member.rel))

    def dst_lstat(self, where: EntryPath) -> os.stat_result | None:
        """An entry's destination, reached from its root without following symlinks; None if
        it (or its directory) does not exist."""
        try:
            dir_fd, name = self._place_of(where)
            return os.lstat(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return None

    def dst_lstat_quietly(self, where: EntryPath) -> os.stat_result | None:
        """dst_lstat, with an entry that cannot be reached counted as absent."""
        try:
            return self.dst_lstat(where)
        except OSError:
            return None

    # -- move ----------------------------------------------------------------------------

    def _same_content(self, where: EntryPath) -> bool:
        """--checksum: the destination file has the source's content (a remote source sent
        its digest in the manifest)."""
        root = self.roots[where.root]
        dst_path = root.dst_path(where.rel)
        if self.remote_source:  # a move verifies again after the commit: kept until then
            key = (where.root, where.rel)
            digest = (self.source_digests.get if self.move else self.source_digests.pop)(key, None)
            return digest is not None and self._dst_digest(where) == digest
        return hashing.same_content(root.src_path(where.rel), dst_path)

    def _dst_digest(self, where: EntryPath) -> bytes | None:
        """The digest of a regular file at the destination, opened from its directory's
        descriptor without following a symlink or blocking on a FIFO; None if it is not
        one, or cannot be read."""
        try:
            dir_fd, name = self._place_of(where)
            fd = os.open(name, _READ_NOFOLLOW, dir_fd=dir_fd)
        except OSError:
            return None
        try:
            return hashing.fd_digest(fd) if S_ISREG(os.fstat(fd).st_mode) else None
        except OSError:
            return None
        finally:
            os.close(fd)

    def _remove_source(self, where: EntryPath, entry: FileEntry) -> None:
        """For move: delete the source once its destination is committed and verified (same
        size, or same content with -c), it is not the destination itself (reached through a
        symlinked directory, say), and it has not changed since it was read. A remote
        SOURCE is told instead, through result.confirmed, and removes it itself."""
        if not self.move or self.dry_run:
            return
        root = self.roots[where.root]
        shown = where.shown
        dst_path = root.dst_path(where.rel)
        try:
            if self.remote_source:
                key = (where.root, where.rel)
                if key in self.sent_again and self.options.compare is CompareMode.CHECKSUM:
                    self._keep_changed_source(shown)  # -c has no digest of what came again
                elif self._copy_verified(where, entry, os.lstat(dst_path)):
                    self.result.confirmed.append(
                        (where.root, where.rel, entry.size, entry.mtime_ns)
                    )
                self.source_digests.pop(key, None)
                self.sent_again.discard(key)
                return
            src_path = root.src_path(where.rel)
            src_now = os.lstat(src_path)
            dst_now = os.lstat(dst_path)
            if (src_now.st_dev, src_now.st_ino) == (dst_now.st_dev, dst_now.st_ino):
                self.result.failures.append(
                    FileFailure(shown, "source and destination are the same file; source kept")
                )
                return
            if (src_now.st_size, src_now.st_mtime_ns) != (entry.size, entry.mtime_ns):
                self._keep_changed_source(shown)
                return
            if not self._copy_verified(where, entry, dst_now):
                return
            os.unlink(src_path)
        except OSError as exc:
            self._fail(shown, exc)
            return
        self.result.stats.sources_removed += 1

    def _keep_changed_source(self, shown: str) -> None:
        self.result.warnings.append(f"not removing {shown!r}: it changed during the move")

    def _copy_verified(self, where: EntryPath, entry: FileEntry, dst_now: os.stat_result) -> bool:
        """A moved file's destination copy matches its source (size, and content with -c)."""
        if dst_now.st_size != entry.size or (
            self.options.compare is CompareMode.CHECKSUM
            and stat.S_ISREG(entry.mode)
            and not self._same_content(where)
        ):
            self.result.failures.append(
                FileFailure(where.shown, "destination copy does not match; source kept")
            )
            return False
        return True


class EntryPath(NamedTuple):
    """Where an entry is: its root, its path relative to the root, and its displayed path
    (relative to the transfer root, as filters and itemized output see it)."""

    root: int
    rel: str
    shown: str


class _BatchPlanner:
    """Groups a directory's planned copies into batches. The first full batch and the last
    partial one run in this worker; other full batches go back to the pipeline as CopyJobs, so
    idle workers share a large directory."""

    def __init__(self, worker: Worker, root: int, rel_dir: str) -> None:
        self.worker = worker
        self.root = root
        self.rel_dir = rel_dir
        self.batch: list[CopyItem] = []
        self.batch_bytes = 0
        self.kept: list[CopyItem] | None = None

    def add(self, item: CopyItem) -> None:
        self.batch.append(item)
        self.batch_bytes += item.entry.size
        if len(self.batch) >= BATCH_FILES or self.batch_bytes >= BATCH_BYTES:
            if self.kept is None and not self.worker.remote_source:
                self.kept = self.batch
            else:
                self.worker.result.copy_jobs.append(self._job(self.batch))
                self.worker._send_part()
            self.batch = []
            self.batch_bytes = 0

    def hand_back(self) -> None:
        """Remote DESTINATION: return the batch gathered so far as a CopyJob now, so every
        need is answered with the manifest batch that named it."""
        if self.batch:
            self.worker.result.copy_jobs.append(self._job(self.batch))
            self.batch = []
            self.batch_bytes = 0

    def finish(self) -> None:
        if self.worker.remote_source:  # the SOURCE sends these: they become needs
            self.hand_back()
            return
        if self.worker.options.want_progress and (self.kept or self.batch):
            self.worker._send_part()  # the planned totals first, so progress has an ETA
        for items in (self.kept, self.batch):
            if items:
                self.worker._copy_batch(self._job(items))

    def _job(self, items: list[CopyItem]) -> CopyJob:
        return CopyJob(self.root, self.rel_dir, items)


class _DirPass:
    """One directory being compared with its source listing: the destination's entries by
    name, the names the source provides (mirror's deletions spare them), unchanged-file
    counts and the copy batches. A remote listing feeds it in several parts."""

    def __init__(
        self, worker: Worker, root_index: int, rel: str, dst_listing: dict[str, os.DirEntry]
    ) -> None:
        self.worker = worker
        self.root_index = root_index
        self.rel = rel
        self.rel_prefix = rel + "/" if rel else ""
        self.dst_listing = dst_listing
        self.display = worker.roots[root_index].display
        self.track_names = worker.mirror and bool(dst_listing)
        self.included: set[str] = set()
        self.planner = _BatchPlanner(worker, root_index, rel)
        self.unchanged_files = 0
        self.unchanged_bytes = 0
        self.handled = 0

    def keep(self, name: str) -> None:
        """A name the source has, though it is not transferred: never extraneous."""
        if self.track_names:
            self.included.add(name)

    def names_to_keep(self) -> set[str] | None:
        """The set a caller may add kept names to directly, or None if none are tracked."""
        return self.included if self.track_names else None

    def add_unchanged(self, files: int, num_bytes: int) -> None:
        self.unchanged_files += files
        self.unchanged_bytes += num_bytes

    def handle(self, entry: FileEntry, dst_dirent: os.DirEntry | None) -> None:
        self.keep(entry.name)
        rel = self.rel_prefix + entry.name
        worker = self.worker
        worker._handle_entry(EntryPath(self.root_index, rel, self.display(rel)), entry,
                             _stat_of(dst_dirent), self.planner)
        self.handled += 1
        if self.handled & 1023 == 0 and worker.result.size() >= PART_RECORDS:
            worker._send_part()

    def finish(self, incomplete: bool = False) -> None:
        """The listing is complete: count, find what is extraneous, run (or hand back) the
        copies. `incomplete`: the source could not read all of it."""
        worker = self.worker
        stats = worker.result.stats
        stats.files_seen += self.unchanged_files
        stats.files_unchanged += self.unchanged_files
        stats.bytes_total += self.unchanged_bytes
        worker.result.scan_incomplete |= incomplete
        if self.track_names:
            worker._find_extraneous(self.root_index, self.rel, self.dst_listing, self.included)
        self.planner.finish()


def _stat_of(dirent: os.DirEntry | None) -> os.stat_result | None:
    if dirent is None:
        return None
    try:
        return dirent.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _dir_shown(shown: str) -> str:
    """How a directory is displayed: with a trailing slash, the transfer root as './'."""
    return shown + "/" if shown else "./"


def _lstat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _describe(exc: OSError) -> str:
    return exc.strerror or str(exc)
