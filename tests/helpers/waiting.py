"""Bounded waits for the tests that act in the middle of a transfer: poll a condition, and
fail (never hang) when it does not hold in time or the process it concerns ends first."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.treecheck import find_temp_files


def wait_for(condition: Callable[[], bool], timeout: float, what: str,
             proc: subprocess.Popen[str] | None = None) -> None:
    """Poll until condition() holds; fail after `timeout`, or if `proc` ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the transfer ended (exit {proc.returncode}) before {what}\n"
                        f"stdout: {out[-2000:]}\nstderr: {err[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def bytes_arrived(dst: Path) -> bool:
    """A temp file at the destination already holds data: the transfer is under way."""
    if not dst.is_dir():
        return False
    try:
        return any((dst / rel).stat().st_size > 0 for rel in find_temp_files(dst))
    except FileNotFoundError:  # committed or removed meanwhile
        return False
