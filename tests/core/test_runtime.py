"""blit's processes load numpy without OpenBLAS's threads (each would spin ~0.1 s of CPU in
every client that loads numpy; the delta uses no BLAS), and only its entry points ask for
that: importing blit_core leaves the environment alone."""

from __future__ import annotations

import os
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
