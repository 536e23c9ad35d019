"""Settings for blit's own processes that move files (the CLI's transfers, the daemon), made
once at start: the garbage collector's, and numpy's BLAS threads.

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
points ask for one thread, so a program that embeds blit_core keeps its own BLAS settings."""

from __future__ import annotations

import gc
import os

YOUNG_THRESHOLD = 50_000


def tune_process() -> None:
    """Keep what exists now (modules, configuration) out of every later collection, run young
    collections less often, and have OpenBLAS start no threads (a user's own setting wins).
    Call once start-up is done, before numpy is loaded; forked workers inherit it."""
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 10, 10)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
