"""Worker pools for the local pipeline: forked processes, or inline in the caller's process.

Python threads share one interpreter lock, so per-file work on small files only scales across
processes. Workers are forked once per transfer (before any thread exists) and inherit the
roots and options; only jobs and results cross their pipes. A worker holds at most one job, so
the pipeline only ever writes to a worker that is waiting to read, and cannot deadlock against
one that is writing results. The pipeline's own loop provides the back-pressure: it hands out
work only when a worker is idle. Work goes out as a list of jobs, so that many small
directories cost one round trip."""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from types import FrameType

from blit_core.errors import WorkerLost
from blit_core.transfer.jobs import Job, JobResult, Progress
from blit_core.transfer.worker import Worker

WorkerFactory = Callable[[Callable[[JobResult | Progress], None]], Worker]
Message = JobResult | Progress


class InlinePool:
    """Runs each job at once in this process (-j 1)."""

    size = 1

    def __init__(self, make_worker: WorkerFactory) -> None:
        self._messages: list[Message] = []
        self._worker = make_worker(self._collect)
        self._busy = False

    def _collect(self, message: Message) -> None:
        self._messages.append(message)

    def has_idle_worker(self) -> bool:
        return not self._busy

    def busy(self) -> bool:
        return self._busy or bool(self._messages)

    def submit(self, jobs: list[Job]) -> None:
        self._busy = True
        self._worker.run(jobs)

    def receive(self) -> Iterator[Message]:
        messages, self._messages = self._messages, []
        self._busy = False
        yield from messages

    def close(self) -> None:
        return

    def terminate(self) -> None:
        return


class ProcessPool:
    """N forked workers, each fed one job at a time over its own pipe."""

    def __init__(self, size: int, make_worker: WorkerFactory) -> None:
        self.size = size
        context = multiprocessing.get_context("fork")
        self._conns: list[Connection] = []
        self._procs: list[multiprocessing.process.BaseProcess] = []
        self._idle: list[Connection] = []
        for _ in range(size):
            parent_end, child_end = context.Pipe(duplex=True)
            inherited = [parent_end, *self._conns]  # the child must not keep these open
            proc = context.Process(
                target=_serve, args=(child_end, inherited, make_worker, os.getpid()), daemon=True
            )
            proc.start()
            child_end.close()
            self._conns.append(parent_end)
            self._procs.append(proc)
            self._idle.append(parent_end)

    def has_idle_worker(self) -> bool:
        return bool(self._idle)

    def busy(self) -> bool:
        return len(self._idle) < len(self._conns)

    def submit(self, jobs: list[Job]) -> None:
        conn = self._idle.pop()
        conn.send(jobs)

    def receive(self) -> Iterator[Message]:
        """Wait until some worker reports, and yield everything that is ready."""
        busy = [conn for conn in self._conns if conn not in self._idle]
        for conn in multiprocessing.connection.wait(busy):
            assert isinstance(conn, Connection)
            while True:
                try:
                    message = conn.recv()
                except EOFError as exc:
                    raise WorkerLost("a worker process exited unexpectedly") from exc
                yield message
                if isinstance(message, JobResult) and message.final:
                    self._idle.append(conn)
                    break
                if not conn.poll():
                    break

    def close(self) -> None:
        """Stop idle workers and wait for them."""
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.send(None)
        for proc in self._procs:
            proc.join()
        for conn in self._conns:
            conn.close()

    def terminate(self) -> None:
        """Stop workers mid-job: SIGTERM makes each remove its temp file and exit."""
        for proc in self._procs:
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)
        for proc in self._procs:
            proc.join()
        for conn in self._conns:
            conn.close()


def _serve(
    conn: Connection, inherited: list[Connection], make_worker: WorkerFactory, parent: int
) -> None:
    """A worker process's loop: run jobs until told to stop, or until the pipeline dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the pipeline decides how to stop
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)
    for other in inherited:  # so that a dead pipeline reads as end-of-file here
        other.close()
    _die_with_parent()
    if os.getppid() != parent:
        return
    worker = make_worker(conn.send)
    while True:
        try:
            jobs = conn.recv()
        except EOFError:
            return
        if jobs is None:
            return
        worker.run(jobs)


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the pipeline's process dies (PR_SET_PDEATHSIG), so an
    orphaned worker removes its temp file and stops instead of writing on."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        return


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
