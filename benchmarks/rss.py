"""Run a command and measure its wall time and the peak RSS of its whole process tree.

blit forks worker processes, so the RSS of the top-level process alone understates its memory
use. :func:`run_measured` starts the command, and while it runs a background thread polls the
process tree (the child and all of its descendants) every few milliseconds, summing ``VmRSS``
over all live processes of the tree; the maximum of those sums is the reported peak.

Descendants are found through ``/proc/<pid>/task/<tid>/children`` when the kernel provides it
(CONFIG_PROC_CHILDREN); otherwise by scanning ``/proc/*/stat`` for parent pids (new pids only,
with a cache, so a poll stays cheap). A process once seen in the tree stays counted until it
exits, even if it is re-parented.

The child is reaped with :func:`os.wait4`, which also yields the kernel's ``ru_maxrss``: the
high-water RSS of the largest *single* process among the child and its reaped descendants.
Sampling can miss short spikes between polls; ``ru_maxrss`` cannot, but it does not sum.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_HAVE_CHILDREN_FILE = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


@dataclass(frozen=True)
class RunResult:
    """Outcome of one measured command run."""

    argv: list[str]
    returncode: int
    seconds: float
    peak_rss_bytes: int  # max over samples of sum(VmRSS) over the process tree
    ru_maxrss_bytes: int  # from wait4: largest single process (child + reaped descendants)
    peak_procs: int  # most processes seen alive in the tree at one sample
    samples: int
    started: float  # time.perf_counter() just before the fork
    timed_out: bool  # killed (SIGKILL) after the timeout


def read_rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (0 if it is gone or a zombie)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            fields = f.read().split()
    except OSError:
        return 0
    return int(fields[1]) * PAGE_SIZE if len(fields) > 1 else 0


def _read_ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # Format: "pid (comm) state ppid ..."; comm may contain spaces and parentheses.
    rest = data[data.rindex(b")") + 2 :].split()
    return int(rest[1])


def _read_children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                kids.extend(int(x) for x in f.read().split())
        except OSError:
            continue
    return kids


class ProcessTreeSampler(threading.Thread):
    """Background thread summing VmRSS over a process tree until :meth:`stop` is called."""

    def __init__(self, root_pid: int, interval: float = 0.015) -> None:
        super().__init__(name=f"rss-sampler-{root_pid}", daemon=True)
        self.root_pid = root_pid
        self.interval = interval
        self.peak_rss_bytes = 0
        self.peak_procs = 0
        self.samples = 0
        self._stop_event = threading.Event()
        self._tree: set[int] = {root_pid}  # sticky: stays until the pid disappears
        self._ppid_cache: dict[int, int] = {}

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        while True:
            self.sample()
            if self._stop_event.wait(self.interval):
                return

    def _discover(self) -> None:
        if _HAVE_CHILDREN_FILE:
            todo = list(self._tree)
            seen = set(todo)
            while todo:
                for kid in _read_children(todo.pop()):
                    if kid not in seen:
                        seen.add(kid)
                        todo.append(kid)
            self._tree |= seen
            return
        live = {int(p) for p in os.listdir("/proc") if p.isdigit()}
        for gone in self._ppid_cache.keys() - live:
            del self._ppid_cache[gone]
        for pid in live - self._ppid_cache.keys():
            ppid = _read_ppid(pid)
            if ppid is not None:
                self._ppid_cache[pid] = ppid
        self._tree &= live | {self.root_pid}
        changed = True
        while changed:
            changed = False
            for pid, ppid in self._ppid_cache.items():
                if ppid in self._tree and pid not in self._tree:
                    self._tree.add(pid)
                    changed = True

    def sample(self) -> None:
        """Take one sample now (also called from :meth:`run`)."""
        self._discover()
        total = 0
        alive = 0
        for pid in list(self._tree):
            rss = read_rss(pid)
            if rss:
                total += rss
                alive += 1
            elif pid != self.root_pid and not os.path.exists(f"/proc/{pid}"):
                self._tree.discard(pid)
        self.samples += 1
        self.peak_rss_bytes = max(self.peak_rss_bytes, total)
        self.peak_procs = max(self.peak_procs, alive)


def run_measured(
    argv: Sequence[str],
    *,
    stdout: IO[bytes] | int | None = subprocess.DEVNULL,
    stderr: IO[bytes] | int | None = subprocess.DEVNULL,
    interval: float = 0.015,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
) -> RunResult:
    """Run ``argv`` to completion; return exit code, wall seconds and peak tree RSS.

    Wall time is measured with :func:`time.perf_counter` from just before the fork to just
    after the child is reaped (the same span ``subprocess.run`` would cover). After
    ``timeout`` seconds the child is SIGKILLed.
    """
    argv = [str(a) for a in argv]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, cwd=cwd)
    sampler = ProcessTreeSampler(proc.pid, interval)
    sampler.start()
    expired = threading.Event()

    def kill() -> None:
        expired.set()
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout or 0, kill)
    if timeout:
        timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        t1 = time.perf_counter()
        timer.cancel()
        sampler.stop()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return RunResult(
        argv=argv,
        returncode=proc.returncode,
        seconds=t1 - t0,
        peak_rss_bytes=sampler.peak_rss_bytes,
        ru_maxrss_bytes=usage.ru_maxrss * 1024,  # Linux reports KiB
        peak_procs=sampler.peak_procs,
        samples=sampler.samples,
        started=t0,
        timed_out=expired.is_set(),
    )


@contextlib.contextmanager
def sampling(pid: int, interval: float = 0.015) -> Iterator[ProcessTreeSampler]:
    """Sample the RSS of the running process tree rooted at ``pid`` (e.g. a daemon) while in
    the block; ``peak_rss_bytes`` is final when the block is left."""
    sampler = ProcessTreeSampler(pid, interval)
    sampler.start()
    try:
        yield sampler
    finally:
        sampler.stop()
        sampler.join()
