"""The DESTINATION role of a remote transfer: the local engine's compare-and-apply, fed by a
manifest, with file bytes arriving from the data plane.

Each manifest batch is compared with the disk at once, by the same Worker and pipeline that
run local transfers: directories, symlinks, attribute updates and mirror's deletion list are
decided exactly as locally. The files that need content become needs (ids the SOURCE
resolves); their bytes arrive as ranges or tar shards, from several data-plane threads, and
each file is committed through the FsSink (temp file, metadata, rename) when its last byte is
written. Deletions and directory attributes run only after every file is committed.

With -H, the first member of each hard-link group to arrive is planned like any file, and the
others are linked to it once every file is in (the local engine waits for the whole scan
instead; a SOURCE forgets a batch's files once the batch is answered).

All Worker and report state is guarded by one lock: the control plane plans batches while
data-plane threads commit files."""

from __future__ import annotations

import dataclasses
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from blit_core.delta.files import (
    DeltaMismatch,
    Rebuilder,
    file_signature,
    wants_delta,
)
from blit_core.delta.ops import Copy
from blit_core.errors import FileIOError, ProtocolError, UnsafePathError
from blit_core.fastcopy.readwrite import pwrite_all
from blit_core.models import FileFailure, TransferReport
from blit_core.options import TransferOptions, Verb
from blit_core.progress import TransferObserver
from blit_core.transfer.jobs import CopyItem, HardLinkMember, JobResult, Progress, TransferRoot
from blit_core.transfer.pipeline import LocalPipeline
from blit_core.transfer.sink import Incoming
from blit_core.transfer.worker import EntryPath, FatalTransferError, Worker
from blit_core.wire import tarshard
from blit_core.wire.manifest import DirEnd, DirStart, EntryRecord, RootRecord, read_records

if TYPE_CHECKING:
    from blit_core.delta.signature import Signature

PLAN_CHUNK = 512
MAX_OPEN_DIRS = 256
REPORT_EVERY_COMMITS = 256  # the worker's result is emitted in parts, not per file
STRATEGY = "network"


@dataclass
class _Basis:
    """The file a delta need is rebuilt from: as it was when its signature was made."""

    identity: tuple[int, int, int, int, int]  # dev, ino, size, mtime_ns, ctime_ns
    block_size: int
    digest: bytes | None  # its xxh3-128 if it may stand for the file (see _keep_basis)
    rebuild: Rebuilder | None = None  # while its delta arrives; None once it failed


@dataclass
class _Need:
    """A file whose content is on its way (as a delta against `basis`, if it has one)."""

    where: EntryPath
    item: CopyItem
    incoming: Incoming | None = None
    received: int = 0
    basis: _Basis | None = None
    partial: bool = False  # --partial: an earlier run's data for it, its basis if any
    backed_up: bool = False  # --inplace --backup: the file it overwrites is in the backup


@dataclass
class _LinkGroup:
    """-H: the files of one source inode. The leader is planned like any file; `leads` once
    its destination is there or on its way, else the next member to arrive leads instead."""

    leader: HardLinkMember
    leader_id: int  # its need's id, if its content was asked for
    leads: bool
    followers: list[HardLinkMember]


class Destination(LocalPipeline):
    def __init__(
        self,
        roots: Sequence[TransferRoot],
        verb: Verb,
        options: TransferOptions,
        observer: TransferObserver,
        *,
        jail: str | None = None,
        module: str = "",
    ) -> None:
        # Progress is counted here, as bytes arrive from several streams at once.
        worker = Worker(roots, dataclasses.replace(options, want_progress=False), verb,
                        self._on_worker_message, remote_source=True, jail=jail,
                        module=module)
        super().__init__(roots, verb, options, observer, local_worker=worker)
        self.lock = threading.RLock()
        self.started = time.monotonic()
        self.pending_dirs: dict[tuple[int, str], bool] = {}
        self.needs: dict[int, _Need] = {}
        self.by_path: dict[str, int] = {}
        self.given_up: set[int] = set()
        self.redone: set[int] = set()  # ids sent again under a new one (REDO)
        self.confirmed: list[tuple[int, str, int, int]] = []
        self._new_needs: list[int] = []
        self._ids: dict[tuple[int, str], int] = {}
        self._link_members: list[tuple[HardLinkMember, int]] = []  # (member, its id)
        self.link_groups: dict[tuple[int, int], _LinkGroup] = {}
        self._dir_pass = None
        self._listing: list[EntryRecord] = []
        self.scanned = 0  # manifest entries received
        self._commits_unreported = 0  # commits recorded in the worker's result, not yet emitted
        self._delta_candidates: list[int] = []
        # A delta need ended (False) or must be sent whole (True); set by the session.
        self.on_delta_end: Callable[[int, bool], None] = lambda need_id, whole: None

    # -- planning ------------------------------------------------------------------------

    def plan_batch(self, records: bytes) -> list[int]:
        """Compare one manifest batch with the disk; return the ids of the files to send."""
        worker = self.local
        with self.lock:
            try:
                for record in read_records(records):
                    if isinstance(record, EntryRecord):
                        self.scanned += 1
                        self._listing.append(record)
                        if len(self._listing) >= PLAN_CHUNK:
                            self._plan_listing()
                    elif isinstance(record, DirStart):
                        self._start_dir(record)
                    elif isinstance(record, DirEnd):
                        self._plan_listing()
                        if self._dir_pass is not None:
                            self._dir_pass.finish(record.incomplete)
                        worker.result.scan_incomplete |= record.incomplete
                        self._dir_pass = None
                        worker.flush_result()
                    elif isinstance(record, RootRecord):
                        self.scanned += 1
                        self._check_root(record.root)
                        self._check_jail_root(record)
                        self._ids[(record.root, "")] = record.id
                        worker.start_root(record.root, record.entry, record.digest)
                        worker.flush_result()
                    else:
                        raise ProtocolError("a confirmation record inside a manifest")
                self._plan_listing()
                if self._dir_pass is not None:
                    self._dir_pass.planner.hand_back()
                worker.flush_result()
                self._plan_link_members()
            except FatalTransferError as exc:
                raise FileIOError(str(exc)) from None
            if len(worker._dir_fds) > MAX_OPEN_DIRS:
                worker.release_places()
            needs, self._new_needs = self._new_needs, []
            return needs

    def _check_root(self, root: int) -> None:
        if root >= len(self.roots):
            raise ProtocolError(f"manifest names root {root}, of {len(self.roots)}")

    def _check_jail_root(self, record: RootRecord) -> None:
        """A daemon's module root is only ever a directory: a SOURCE saying that the root it
        maps onto the module root is a file or a link (which would take the module's place)
        is refused."""
        jail = self.local.jail
        if jail is not None and self.roots[record.root].dst == jail and not (
                stat.S_ISDIR(record.entry.mode)):
            raise UnsafePathError("only a directory can be copied onto the root of a module, "
                                  "never a file or a link in its place")

    def _start_dir(self, record: DirStart) -> None:
        if self._dir_pass is not None or self._listing:
            raise ProtocolError("a listing started inside another")
        self._check_root(record.root)
        exists = self.pending_dirs.pop((record.root, record.rel), None)
        # A listing nobody planned (an excluded, skipped or failed directory) is ignored.
        self._dir_pass = None if exists is None else self.local.open_dir_pass(
            record.root, record.rel, exists)

    def _plan_listing(self) -> None:
        if self._listing and self._dir_pass is not None:
            self.local.plan_listing(self._dir_pass, self._listing, self._ids)
        self._listing = []

    def _plan_link_members(self) -> None:
        """-H: lead each new group with its first member (a need if its content differs), or
        keep a member to link to its group's leader in finish()."""
        members, self._link_members = self._link_members, []
        for member, entry_id in members:
            key = (member.entry.dev, member.entry.ino)
            group = self.link_groups.get(key)
            if group is not None and group.leads:
                group.followers.append(member)
                continue
            self._ids[(member.root, member.rel)] = entry_id
            self.local.plan_member(member)
            self.local.flush_result()  # its need, if any, is taken from _ids
            self._ids.pop((member.root, member.rel), None)
            leads = entry_id in self.needs or self.options.dry_run or self.local.dst_lstat_quietly(
                EntryPath(member.root, member.rel, "")) is not None
            self.link_groups[key] = _LinkGroup(member, entry_id, leads, [])

    def _on_worker_message(self, message: JobResult | Progress) -> None:
        self._handle(message)
        if isinstance(message, JobResult):
            self.confirmed.extend(message.confirmed)
            for member in message.hardlinks:
                self._link_members.append((member, self._ids.pop((member.root, member.rel))))
            self.hardlinks.clear()
        for job in self.frontier:
            self.pending_dirs[(job.root, job.rel)] = job.dst_exists
        self.frontier.clear()
        while self.copy_queue:
            job = self.copy_queue.popleft()
            root = self.roots[job.root]
            prefix = job.rel_dir + "/" if job.rel_dir else ""
            for item in job.items:
                rel = prefix + item.entry.name if root.is_dir else ""
                need_id = self._ids.pop((job.root, rel))
                where = EntryPath(job.root, rel, root.display(rel))
                if self.options.dry_run:  # reported as it would be, with no data asked for
                    self.local.record_copy(where, item, None)
                    continue
                need = self.needs[need_id] = _Need(where, item)
                self.by_path[where.shown] = need_id
                self._new_needs.append(need_id)
                partial_size = self._partial_size(where) if self.options.partial else None
                need.partial = partial_size is not None
                if self._wants_delta(item, partial_size):
                    self._delta_candidates.append(need_id)
        if not self._dir_pass:
            self._ids.clear()

    # -- deltas --------------------------------------------------------------------------

    def _partial_size(self, where: EntryPath) -> int | None:
        try:
            return self.local.sink.partial_size(*self.local._place_of(where))
        except OSError:
            return None

    def _wants_delta(self, item: CopyItem, partial_size: int | None) -> bool:
        """Whether to sign a basis for this need: its partial if it has one, else the file
        it replaces."""
        options = self.options
        if options.whole_file or options.inplace or options.sparse:
            return False
        if partial_size is not None:
            return wants_delta(partial_size)
        return (item.dst_mode is not None and stat.S_ISREG(item.dst_mode)
                and wants_delta(item.dst_size))

    def _open_basis(self, need: _Need) -> int:
        """The need's basis opened to read (lock held); OSError if it cannot be."""
        return self.local.sink.open_basis(*self.local._place_of(need.where), need.partial)

    def take_delta_candidates(self) -> list[int]:
        """The needs planned since the last call that have a basis worth signing."""
        candidates, self._delta_candidates = self._delta_candidates, []
        return candidates

    def sign(self, candidates: list[int], seed: int) -> Iterator[tuple[int, Signature | None]]:
        """Each candidate need with the signature of its basis, or None when the basis cannot
        be read (its file comes whole)."""
        for need_id in candidates:
            yield need_id, self._signature(need_id, seed)

    def _signature(self, need_id: int, seed: int) -> Signature | None:
        with self.lock:
            need = self.needs.get(need_id)
            if need is None:
                return None
            try:
                fd = self._open_basis(need)
            except OSError:
                return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return None
            sig = file_signature(fd, st.st_size, seed,
                                 with_digest=self._may_stay(need, st))
        except (OSError, ValueError):
            return None
        finally:
            os.close(fd)
        with self.lock:
            if self.needs.get(need_id) is not need:  # dropped meanwhile
                return None
            need.basis = _Basis(_identity(st), sig.block_size, sig.digest)
            self.local.result.stats.signature_bytes += sig.wire_bytes
        return sig

    def _may_stay(self, need: _Need, st: os.stat_result) -> bool:
        """Whether this basis may stand for its file, should the file turn out to be the same
        bytes: it is the file's own (not a partial), sole name, the same size, and ours to
        change (its mode and times); and no --backup wants the old version kept apart."""
        return (not (need.partial or self.options.backup) and st.st_nlink == 1
                and st.st_size == need.item.entry.size
                and (self.local.sink.is_root or st.st_uid == os.geteuid()))

    def delta_start(self, need_id: int) -> None:
        """A delta for this need begins: open its temp file, and its basis again (which must
        still be the file the signature was made from)."""
        need = self._need(need_id)
        if need is None:
            return
        if not self._open(need_id, need):
            return
        with self.lock:
            basis = need.basis
            if basis is None or basis.rebuild is not None or need.incoming is None:
                raise ProtocolError(f"a delta for {need.where.shown!r}, which has no "
                                    "signature or has one under way")
            try:
                fd = self._open_basis(need)
            except OSError:
                return  # the basis is gone: the check at the end sends the file whole
            try:
                st = os.fstat(fd)
            except OSError:
                os.close(fd)
                return
            if _identity(st) != basis.identity:
                os.close(fd)
                return
            basis.rebuild = Rebuilder(fd, need.incoming.fd, basis.block_size, st.st_size,
                                      need.item.entry.size,
                                      basis_digest=basis.digest)

    def delta_copy(self, need_id: int, block: int, count: int) -> None:
        self._rebuild_step(need_id, lambda rebuild: rebuild.copy(Copy(block, count)))

    def delta_literal(self, need_id: int, data: bytes | memoryview) -> None:
        self._rebuild_step(need_id, lambda rebuild: rebuild.literal(data))
        with self.lock:
            self._count_progress(data)

    def _rebuild_step(self, need_id: int, step: Callable[[Rebuilder], None]) -> None:
        need = self._need(need_id)
        if need is None or need.basis is None or need.basis.rebuild is None:
            return
        try:
            step(need.basis.rebuild)
        except DeltaMismatch:
            self._close_basis(need.basis)
        except OSError as exc:
            self._give_up(need_id, exc)

    def delta_end(self, need_id: int, size: int, digest: bytes) -> None:
        """The delta is complete: commit the rebuilt file if it checks out, else ask for the
        file whole (once: a need sent whole has no basis any more)."""
        need = self._need(need_id)
        if need is None:
            return
        basis = need.basis
        if basis is None:
            raise ProtocolError(f"a delta end for {need.where.shown!r}, which has no signature")
        if size != need.item.entry.size:
            self.abort(need_id, "changed during the transfer")
            return
        rebuild = basis.rebuild
        try:
            if rebuild is None:
                raise DeltaMismatch("the basis changed")
            if rebuild.check(size, digest):  # the basis is the file, as it was signed
                if self._keep_basis(need_id, need, basis, rebuild):
                    return
                rebuild.write_held_back()  # it cannot stay: the file is written after all
                rebuild.check(size, digest)
        except DeltaMismatch:
            self._send_whole(need_id, need)
            return
        except OSError as exc:
            self._give_up(need_id, exc)
            return
        self._count_delta(need, rebuild)
        self._commit(need_id)

    def _count_delta(self, need: _Need, rebuild: Rebuilder) -> None:
        with self.lock:
            stats = self.local.result.stats
            stats.delta_files += 1
            stats.literal_bytes += rebuild.literal_bytes
            stats.matched_bytes += rebuild.matched_bytes
            need.received = rebuild.offset

    def _keep_basis(self, need_id: int, need: _Need, basis: _Basis, rebuild: Rebuilder) -> bool:
        """The file is its basis as signed, byte for byte (only its times, mode or owner
        differ): if the basis is still that file, untouched since (same size, mtime and
        ctime), under the need's name, its only name, it stays and takes the entry's metadata
        through the descriptor it was checked through; the unwritten temp file goes. Nothing
        is copied. False, with nothing done, if it cannot stay."""
        with self.lock:
            if self.needs.get(need_id) is not need:  # dropped meanwhile
                return True
            try:
                st = os.fstat(rebuild.basis_fd)
                dir_fd, name = self.local._place_of(need.where)
                named = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError:
                return False
            if (_identity(st) != basis.identity or st.st_nlink != 1
                    or (named.st_dev, named.st_ino) != (st.st_dev, st.st_ino)):
                return False
            self._count_delta(need, rebuild)
            try:
                self.local.sink.keep_as_is(rebuild.basis_fd, need.item.entry)
            except OSError as exc:
                self._give_up(need_id, exc)
                return True
            self._committed(need_id, need)
        return True

    def _send_whole(self, need_id: int, need: _Need) -> None:
        with self.lock:
            basis, need.basis = need.basis, None
            assert basis is not None
            self._close_basis(basis)
            if need.incoming is not None:
                self._discard(need)
            need.received = 0
            self.on_delta_end(need_id, True)

    @staticmethod
    def _close_basis(basis: _Basis) -> None:
        if basis.rebuild is not None:
            os.close(basis.rebuild.basis_fd)
            basis.rebuild = None

    # -- data ----------------------------------------------------------------------------

    def write_range(self, need_id: int, offset: int, data: bytes | memoryview) -> None:
        """Write part of a file's content; commit the file when its last byte is in."""
        need = self._need(need_id)
        if need is None:
            return
        size = need.item.entry.size
        if offset < 0 or offset + len(data) > size:
            raise ProtocolError(f"range of {need.where.shown!r} beyond its size")
        with self.lock:  # another stream may drop the need (ABORT, REDO) meanwhile
            if self.needs.get(need_id) is not need:
                return
            if need.incoming is None and not self._open(need_id, need):
                return
            assert need.incoming is not None
            fd = None
            if need.incoming.inplace:  # the file itself: written under the lock, so that no
                # write of this try lands after the next try's (REDO) at the same offset
                written = self._write_at(need_id, need.incoming.fd, offset, data)
            else:
                fd = os.dup(need.incoming.fd)  # this temp file's, even if the need's closes
        if fd is not None:
            try:
                written = self._write_at(need_id, fd, offset, data)
            finally:
                os.close(fd)
        if not written:
            return
        with self.lock:
            need.received += len(data)
            complete = need.received >= size
            self._count_progress(data)
        if complete:
            self._commit(need_id)

    def _write_at(self, need_id: int, fd: int, offset: int, data: bytes | memoryview) -> bool:
        """Write into a need's file (`fd`); False if that failed (the file is given up)."""
        if data:
            try:
                if self.options.sparse:
                    _write_sparse(fd, data, offset)
                else:
                    pwrite_all(fd, data, offset)
            except OSError as exc:
                self._give_up(need_id, exc)
                return False
        return True

    def _count_progress(self, data: bytes | memoryview) -> None:
        if self.options.want_progress and data:
            self.observer.on_progress(len(data), 0)

    def write_shard(self, shard: bytes | memoryview) -> None:
        """Commit the small files of a tar shard. The lock is held for the whole shard: one
        thread applies it, instead of taking turns per file (and per system call) with the
        other streams' threads for the lock and the GIL."""
        with self.lock:
            for path, data in tarshard.read_members(shard):
                need_id = self.by_path.get(path)
                if need_id is None:
                    raise ProtocolError(f"tar shard member {path!r} was not asked for")
                need = self.needs[need_id]
                if len(data) != need.item.entry.size:
                    raise ProtocolError(f"tar shard member {path!r} has the wrong size")
                self._write_whole(need_id, need, data)

    def _write_whole(self, need_id: int, need: _Need, data: memoryview) -> None:
        """A small file's whole content, in one piece: open, write, commit (lock held)."""
        if self._open(need_id, need) and self._write_at(need_id, need.incoming.fd, 0, data):
            need.received = len(data)
            self._count_progress(data)
            self._commit(need_id)

    def abort(self, need_id: int, reason: str) -> None:
        """The SOURCE could not send a file: it is a failure (vanished, if it said so)."""
        need = self._need(need_id)
        if need is None:
            return
        with self.lock:
            self._drop(need_id, need)
            self.given_up.add(need_id)
            vanished = reason.startswith("vanished")
            self._add_failures([FileFailure(need.where.shown, reason, vanished)])

    def redo(self, need_id: int, new_id: int, size: int, mtime_ns: int) -> None:
        """The file changed while the SOURCE sent it: what arrived of it is dropped (and what
        still comes under `need_id` ignored), and it comes again, whole, as `new_id`, with the
        size and mtime it has now. Once per file: the codec keeps new ids at or above
        FIRST_REDO_ID, and manifest ids below it."""
        with self.lock:
            if new_id in self.needs or new_id in self.given_up:
                raise ProtocolError(f"file id {new_id} was given twice")
            if need_id in self.redone:
                raise ProtocolError(f"file id {need_id} was sent again twice")
            self.redone.add(need_id)
            need = self._need(need_id)
            if need is None:  # given up already: so is its second sending
                self.given_up.add(new_id)
                return
            self._drop(need_id, need)  # closes a delta's basis: that delta has ended
            self.given_up.add(need_id)
            if self.local.move:
                self.local.sent_again.add((need.where.root, need.where.rel))
            entry = need.item.entry._replace(size=size, mtime_ns=mtime_ns)
            self.needs[new_id] = _Need(need.where, need.item._replace(entry=entry),
                                       partial=need.partial, backed_up=need.backed_up)
            for group in self.link_groups.values():
                if group.leader_id == need_id:
                    group.leader_id = new_id

    def _need(self, need_id: int) -> _Need | None:
        """The need an id names; None for one given up on already (its data is ignored)."""
        need = self.needs.get(need_id)
        if need is None:
            if need_id in self.given_up:
                return None
            raise ProtocolError(f"data for file id {need_id}, which was not asked for")
        return need

    def _open(self, need_id: int, need: _Need) -> bool:
        with self.lock:
            if need.incoming is not None:
                return True
            try:
                dir_fd, name = self.local._place_of(need.where)
                need.incoming = self.local.sink.open_incoming(
                    dir_fd, name, need.item.entry, need.item.dst_mode,
                    self.roots[need.where.root].dest_rel(need.where.rel),
                    back_up=not need.backed_up)
                need.backed_up = True
            except OSError as exc:
                self._give_up(need_id, exc)
                return False
        return True

    def _commit(self, need_id: int) -> None:
        with self.lock:
            need = self.needs.get(need_id)
            if need is None:
                return
            if need.incoming is None and not self._open(need_id, need):
                return
            assert need.incoming is not None
            try:
                if self.options.sparse:  # a hole at the end still counts in the size
                    os.ftruncate(need.incoming.fd, need.item.entry.size)
                dir_fd, name = self.local._place_of(need.where)
                self.local.sink.commit_incoming(
                    need.incoming, dir_fd, name, need.item.entry,
                    self.roots[need.where.root].dest_rel(need.where.rel),
                    self.local.dest_dir(dir_fd))
            except OSError as exc:
                need.incoming = None  # closed (and removed) by commit_incoming
                self._give_up(need_id, exc)
                return
            need.incoming = None
            if need.partial:
                self.local.sink.drop_partial(dir_fd, name)
            self._committed(need_id, need)

    def _committed(self, need_id: int, need: _Need) -> None:
        """The need's file is in place (lock held): forget the need, count and report it."""
        self._drop(need_id, need)
        self.local.record_copy(need.where, need.item, STRATEGY)
        if self.options.want_progress:
            self.observer.on_progress(0, 1)
        self._commits_unreported += 1
        if self._commits_unreported >= REPORT_EVERY_COMMITS:
            self._commits_unreported = 0
            self.local.flush_result()

    def _give_up(self, need_id: int, exc: OSError) -> None:
        with self.lock:
            need = self.needs.get(need_id)
            if need is None:  # dropped meanwhile by another stream
                return
            self._drop(need_id, need)
            self.given_up.add(need_id)
            try:
                self.local._fail(need.where.shown, exc)
            except FatalTransferError as fatal:
                self.fatal = self.fatal or str(fatal)
            self.local.flush_result()

    def _drop(self, need_id: int, need: _Need, interrupted: bool = False) -> None:
        if need.incoming is not None:
            self._discard(need, interrupted)
        if need.basis is not None:
            self._close_basis(need.basis)
            self.on_delta_end(need_id, False)
        del self.needs[need_id]
        self.by_path.pop(need.where.shown, None)

    def _discard(self, need: _Need, interrupted: bool = False) -> None:
        """Close a need's temp file and remove it (or keep it as the file's partial, with
        --partial, when the transfer was `interrupted`)."""
        assert need.incoming is not None
        incoming, need.incoming = need.incoming, None
        try:
            dir_fd, name = self.local._place_of(need.where)
        except OSError:  # its directory is gone: the temp file went with it
            os.close(incoming.fd)
        else:
            self.local.sink.discard_incoming(incoming, dir_fd, name, interrupted)

    # -- the end -------------------------------------------------------------------------

    def discard_all(self) -> None:
        """The session failed: remove every temp file still open (--partial keeps them)."""
        with self.lock:
            for need_id, need in list(self.needs.items()):
                self._drop(need_id, need, interrupted=True)
            self.local.release_places()

    def finish(self) -> TransferReport:
        """Every byte is in: deletions, directory attributes, the merged report."""
        with self.lock:
            if self.fatal:
                self.discard_all()
                raise FileIOError(self.fatal)
            if self.needs:
                missing = ", ".join(repr(n.where.shown) for n in list(self.needs.values())[:3])
                raise ProtocolError(f"the SOURCE ended without sending {missing}")
            for group in self.link_groups.values():
                if group.followers:
                    self.local.link_followers(group.leader, group.followers,
                                              leader_failed=group.leader_id in self.given_up)
            self.local.flush_result()
            try:
                return self._report(self.started)
            finally:
                self.local.release_places()


def _identity(st: os.stat_result) -> tuple[int, int, int, int, int]:
    """What says a basis is still the file its signature was made from (any write to it
    moves its ctime on, even one that puts its mtime back)."""
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


SPARSE_BLOCK = 4096
_ZEROS = bytes(SPARSE_BLOCK)


def _write_sparse(fd: int, data: bytes | memoryview, offset: int) -> None:
    """-S: write only the runs of blocks that hold a non-zero byte, wherever the chunks the
    network delivered happen to start; the rest stays a hole (the commit sets the size)."""
    view = memoryview(data)
    run_start = None
    for start in range(0, len(view), SPARSE_BLOCK):
        zero = _ZEROS.startswith(view[start:start + SPARSE_BLOCK])
        if zero and run_start is not None:
            pwrite_all(fd, view[run_start:start], offset + run_start)
            run_start = None
        elif not zero and run_start is None:
            run_start = start
    if run_start is not None:
        pwrite_all(fd, view[run_start:], offset + run_start)
