"""Settings for blit's own processes that move files (the CLI's transfers, the daemon), made
once at start: the garbage collector's, numpy's BLAS threads, and how much freed memory the C
allocator keeps.

A transfer allocates millions of short-lived tuples (stat results, manifest records, plan
items) while it holds many long-lived objects (the files in flight, the loaded modules). With
CPython's default thresholds a young collection starts every 700 allocations and, every so
often, a full one walks every live object: on a 100,000-file plan that was 35-40% of the
time (measured: 1.0-1.1 s with the defaults, 0.62-0.70 s with these). Reference counting
frees those objects anyway; the collector only finds cycles, and finding them a little later
costs a little memory, not correctness.

numpy's OpenBLAS starts a thread per core when numpy is loaded, and each spins for ~0.1 s of
CPU before it sleeps (measured: `import numpy` took 0.21 s of CPU, 0.11 s with one thread).
The delta loads numpy in every client that sends or receives one, uses no BLAS (integer
arrays only), and on a small machine that spin competes with the transfer. Only blit's entry
points ask for one thread, so a program that embeds blit_core keeps its own BLAS settings.

glibc's malloc gives freed memory back to the kernel once more than twice the largest block
freed so far (about 2 MiB in a transfer) is free at the top of a heap. A transfer allocates
and frees buffers of about a MiB all the time (each frame gRPC receives, each chunk read from
a file), so it kept landing on fresh pages, which the kernel zeroes again: in a --force-grpc
push of 1 GiB, the daemon gave back and touched again 512 MiB, and zeroing pages was a fifth
of its CPU. Blocks up to MMAP_THRESHOLD now come from the heap, and up to TRIM_THRESHOLD of
free memory stays in each heap. Measured, alternating with the defaults: the daemon's CPU for
that push fell from 2.1 s to 1.6 s (already with blocks to 4 MiB and 16 MiB kept); the
client's CPU for a delta of 100 x 8 MiB files fell from 1.14 s to 0.77 s (not with 4 MiB:
its reads are 8 MiB). Each thread that allocates may get a heap of its own (glibc makes up to
8 per core), and each keeps up to TRIM_THRESHOLD: a daemon gives it all back whenever its last
session ends (`release_free_memory`)."""

from __future__ import annotations

import ctypes
import gc
import os
from collections.abc import Callable

YOUNG_THRESHOLD = 50_000
M_TRIM_THRESHOLD = -1  # mallopt's parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 16 << 20  # above a delta's 8 MiB reads
TRIM_THRESHOLD = 32 << 20


def tune_process() -> None:
    """Keep what exists now (modules, configuration) out of every later collection, run young
    collections less often, have OpenBLAS start no threads (a user's own setting wins), and
    have malloc keep the buffers it frees. Call once start-up is done, before numpy is loaded;
    forked workers inherit it."""
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 10, 10)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _keep_freed_buffers()


def _libc_function(name: str) -> Callable[..., int] | None:
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):  # not glibc: its own policy stands
        return None


def _keep_freed_buffers() -> None:
    mallopt = _libc_function("mallopt")
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)


def release_free_memory() -> None:
    """Give every heap's free memory back to the kernel: for a daemon gone idle, whose
    sessions' threads each kept up to TRIM_THRESHOLD in a heap of their own."""
    malloc_trim = _libc_function("malloc_trim")
    if malloc_trim is not None:
        malloc_trim(0)
