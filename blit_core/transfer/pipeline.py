"""The local transfer pipeline: roots -> per-directory jobs on a worker pool -> finishing phases.

It keeps the frontier of directories still to visit (a stack, so memory follows the tree's
depth, not its size) and a queue of copy batches split off large directories (served first and
in order, since they hold records in memory), hands jobs to idle workers, merges their
results into one report, and feeds the observer. Deletions, directory attributes and move
cleanup run only after every file has been committed."""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Sequence

from blit_core.errors import FileIOError, TransferInterrupted
from blit_core.models import FileFailure, TransferReport, TransferStats
from blit_core.options import TransferOptions, Verb
from blit_core.progress import TransferObserver
from blit_core.transfer import finish
from blit_core.transfer.jobs import (
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
from blit_core.transfer.pool import InlinePool, ProcessPool
from blit_core.transfer.worker import Worker

MAX_FAILURES_KEPT = 1000
MAX_WARNINGS_KEPT = 100
MAX_DIRS_PER_MESSAGE = 16


def default_jobs() -> int:
    """One worker per CPU this process may run on."""
    return max(1, len(os.sched_getaffinity(0)))


class LocalPipeline:
    def __init__(
        self,
        roots: Sequence[TransferRoot],
        verb: Verb,
        options: TransferOptions,
        observer: TransferObserver,
        local_worker: Worker | None = None,
    ) -> None:
        """`local_worker`: the worker of this process, when a remote role needs its own."""
        self.roots = roots
        self.verb = verb
        self.options = options
        self.observer = observer
        self.stats = TransferStats()
        self.failures: list[FileFailure] = []
        self.failures_omitted = 0
        self.warnings: list[str] = []
        self.dir_attrs: list[DirAttrs] = []
        self.deletions: list[Deletion] = []
        self.hardlinks: dict[tuple[int, int], list[HardLinkMember]] = {}
        self.frontier: list[DirJob | HardLinkJob] = []
        self.copy_queue: deque[CopyJob] = deque()
        self.scan_incomplete = False
        self.fatal: str | None = None
        self.local = local_worker or Worker(roots, options, verb, self._handle)

    def run(self) -> TransferReport:
        started = time.monotonic()
        self.local.run([RootJob(index) for index in range(len(self.roots))])
        try:
            self._drain()
            if self.hardlinks and not self.fatal:
                groups = self.hardlinks.values()
                self.frontier.extend(HardLinkJob(sorted(members, key=_scan_order))
                                     for members in groups)
                self.hardlinks = {}
                self._drain()
        except KeyboardInterrupt:
            kept = "kept as partials" if self.options.partial else "removed"
            raise TransferInterrupted(f"interrupted; temp files {kept}") from None
        if self.fatal:
            raise FileIOError(self.fatal)
        return self._report(started)

    def _report(self, started: float) -> TransferReport:
        """Run the finishing phases, then the one merged report."""
        deletions_skipped, suppressed_reason = self._finish()
        return TransferReport(
            verb=self.verb.value,
            dry_run=self.options.dry_run,
            stats=self.stats,
            failures=self.failures,
            failures_omitted=self.failures_omitted,
            warnings=self.warnings,
            duration_s=time.monotonic() - started,
            deletions_skipped=deletions_skipped,
            deletions_suppressed_reason=suppressed_reason,
        )

    # -- the dispatch loop ---------------------------------------------------------------

    def _make_pool(self) -> InlinePool | ProcessPool:
        jobs = self.options.jobs or default_jobs()
        def make_worker(emit: Callable[[JobResult | Progress], None]) -> Worker:
            return Worker(self.roots, self.options, self.verb, emit)

        if jobs == 1:
            return InlinePool(make_worker)
        return ProcessPool(jobs, make_worker)

    def _drain(self) -> None:
        """Run every job on the frontier (and every job they spawn) to completion."""
        if not self._has_work():
            return
        pool = self._make_pool()
        try:
            while self._has_work() or pool.busy():
                while self._has_work() and pool.has_idle_worker() and not self.fatal:
                    pool.submit(self._next_jobs(pool.size))
                if self.fatal and not pool.busy():
                    break
                for message in pool.receive():
                    self._handle(message)
        except BaseException:
            pool.terminate()
            raise
        pool.close()

    def _has_work(self) -> bool:
        return bool(self.frontier or self.copy_queue)

    def _next_jobs(self, workers: int) -> list[Job]:
        """The next piece of work: a copy batch, or one or more directories (several at once
        while the frontier is long enough that batching leaves the other workers plenty)."""
        if self.copy_queue:
            return [self.copy_queue.popleft()]
        jobs: list[Job] = [self.frontier.pop()]
        limit = min(MAX_DIRS_PER_MESSAGE, len(self.frontier) // (4 * workers))
        while len(jobs) <= limit and isinstance(self.frontier[-1], DirJob):
            jobs.append(self.frontier.pop())
        return jobs

    def _handle(self, message: JobResult | Progress) -> None:
        if isinstance(message, Progress):
            self.observer.on_progress(message.num_bytes, message.files)
            return
        self.stats.merge(message.stats)
        if message.stats.files_seen or message.stats.bytes_total:
            self.observer.on_planned(message.stats.files_seen, message.stats.bytes_total)
        for event in message.events:
            self.observer.on_item(event)
        for warning in message.warnings:
            self.observer.on_warning(warning)
            if len(self.warnings) < MAX_WARNINGS_KEPT:
                self.warnings.append(warning)
        self._add_failures(message.failures)
        self.dir_attrs.extend(message.dir_attrs)
        self.deletions.extend(message.deletions)
        for member in message.hardlinks:
            self.hardlinks.setdefault((member.entry.dev, member.entry.ino), []).append(member)
        self.copy_queue.extend(message.copy_jobs)
        self.frontier.extend(reversed(message.subdirs))
        self.scan_incomplete |= message.scan_incomplete
        if message.fatal and not self.fatal:
            self.fatal = message.fatal

    def _add_failures(self, failures: list[FileFailure]) -> None:
        for failure in failures:
            self.observer.on_failure(failure)
            if len(self.failures) < MAX_FAILURES_KEPT:
                self.failures.append(failure)
            else:
                self.failures_omitted += 1

    # -- after every commit --------------------------------------------------------------

    def _finish(self) -> tuple[int, str | None]:
        """Deletions, directory attributes and move cleanup. Returns how many deletions
        --max-delete held back, and why deletions were suppressed altogether, if they were."""
        sink = self.local.sink
        skipped, suppressed_reason = 0, None
        if self.deletions and self.scan_incomplete:
            suppressed_reason = "some source directories could not be read, so nothing was deleted"
            self.observer.on_warning(suppressed_reason)
        elif self.deletions:
            outcome = finish.apply_deletions(
                self.deletions, self.roots, sink, self.local, self.options, self.observer.on_item
            )
            self.stats.deleted += outcome.deleted
            skipped = outcome.skipped
            self._add_failures(outcome.failures)
        if not self.options.dry_run:
            self._add_failures(
                finish.apply_dir_attrs(self.dir_attrs, self.roots, sink, self.local)
            )
            if self.verb is Verb.MOVE:
                finish.remove_emptied_sources(self.dir_attrs, self.roots)
        return skipped, suppressed_reason


def _scan_order(member: HardLinkMember) -> tuple[int, list[str], str]:
    """Where a hard-link member comes in a one-process scan (a directory's entries by name,
    then its subdirectories the same way): the group's leader is its first member in that
    order, whichever worker found it first, as in a remote transfer."""
    head, _, name = member.rel.rpartition("/")
    return member.root, head.split("/") if head else [], name
