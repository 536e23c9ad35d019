"""blit's processes load numpy without OpenBLAS's threads (each would spin ~0.1 s of CPU in
every client that loads numpy; the delta uses no BLAS), and only its entry points ask for
that: importing blit_core leaves the environment alone. They also keep the MiB-sized buffers
they free, instead of faulting fresh pages in for the next ones."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

THREADS_AFTER_TUNING = """
import os, sys
import blit_cli.main, blit_daemon.server
assert "numpy" not in sys.modules, "an entry point loads numpy before it tunes the process"
assert "OPENBLAS_NUM_THREADS" not in os.environ, "importing blit changed the environment"
from blit_core.runtime import tune_process
tune_process()
import blit_core.delta.match
print(len(os.listdir("/proc/self/task")))
"""


@pytest.mark.skipif(sys.platform != "linux" or (os.cpu_count() or 1) < 2,
                    reason="counts threads in /proc; OpenBLAS starts no extra thread on one core")
def test_a_tuned_process_loads_numpy_without_blas_threads() -> None:
    env = {key: value for key, value in os.environ.items() if not key.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", THREADS_AFTER_TUNING], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert int(out) == 1


BUFFER_CHURN = """
import resource, sys
if sys.argv[1] == "tuned":
    from blit_core.runtime import tune_process
    tune_process()
for _ in range(3):  # warm up: the heap grows once
    held = [b"\\1" * (1 << 20) for _ in range(6)]
    del held
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(40):  # six MiB buffers in use at a time, as frames and chunks in flight are
    held = [b"\\1" * (1 << 20) for _ in range(6)]
    del held
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="tunes glibc's malloc")
def test_a_tuned_process_reuses_the_buffers_it_frees() -> None:
    """Six MiB-sized buffers allocated and freed 40 times: glibc's default gives much of the
    memory back each time, and the next buffers fault fresh pages in again; a tuned process
    keeps it (measured: ~6,900 page faults by default, none tuned)."""
    faults = {}
    for mode in ("default", "tuned"):
        out = subprocess.run([sys.executable, "-c", BUFFER_CHURN, mode], capture_output=True,
                             text=True, check=True).stdout
        faults[mode] = int(out)
    assert faults["default"] >= 1_000, faults
    assert faults["tuned"] * 10 < faults["default"], faults


FREE_AND_RELEASE = """
from blit_core.runtime import release_free_memory, tune_process
tune_process()
def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096
held = [b"\\1" * (1 << 20) for _ in range(24)]  # written: its pages are touched
del held
kept = rss()
release_free_memory()
print(kept - rss())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="tunes glibc's malloc")
def test_free_memory_a_tuned_process_kept_can_be_released() -> None:
    """What the tuned heap keeps after a burst (here 24 MiB freed, under the 32 MiB it may
    keep) goes back to the kernel on release, as a daemon does when its last session ends."""
    out = subprocess.run([sys.executable, "-c", FREE_AND_RELEASE], capture_output=True,
                         text=True, check=True).stdout
    assert int(out) >= 16 << 20, f"{int(out) >> 20} MiB released"
