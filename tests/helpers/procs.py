"""Running the blit CLI as a process a test may interrupt: started with the signal handling
a user's terminal gives it, waited for with a bound (a hang fails the test), and conditions
polled with a deadline."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.treecheck import find_temp_files


def _default_sigint() -> None:
    # A CLI started from a non-interactive shell may inherit SIGINT ignored; a user's Ctrl-C
    # reaches a process whose SIGINT is at its default, which Python turns into
    # KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_blit(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "blit_cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)


def finish(proc: subprocess.Popen[str], timeout: float, what: str) -> tuple[int, str, str]:
    """Wait (bounded) for a CLI process; a hang is killed and fails the test."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"{what}: still running {timeout:g}s later (hang)\n"
                    f"stdout: {out[-2000:]}\nstderr: {err[-2000:]}")
    return proc.returncode, out, err


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
