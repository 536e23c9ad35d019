"""Fixtures for the remote tests: `daemon` is a blit-daemon exporting a fresh module
(tmp_path/module) as `default`, stopped on teardown; `reaper` is a list of the processes a
test started, killed at teardown if still running."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.daemon import Daemon


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    module = tmp_path / "module"
    module.mkdir()
    running = Daemon(module)
    yield running
    running.stop()


@pytest.fixture
def reaper() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started; any still running at teardown are killed."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
