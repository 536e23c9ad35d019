"""Importing the delta modules starts no OpenBLAS threads: they would spin on a core for
~0.1 s in every client that loads numpy, and the delta uses no BLAS."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

COUNT_THREADS = "import os, blit_core.delta.match; print(len(os.listdir('/proc/self/task')))"


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenBLAS starts no extra thread on one core")
def test_importing_the_delta_starts_no_blas_threads() -> None:
    env = {key: value for key, value in os.environ.items() if not key.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", COUNT_THREADS], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert int(out) == 1
