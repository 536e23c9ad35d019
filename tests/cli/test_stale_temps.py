"""Temp files left by writers that were killed (SIGKILL, a crash): the next run that compares
their directory removes them, and only them. Real processes give the ids: one that has exited,
one that is a zombie nobody reaped yet, and live ones (this test's own)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.treecheck import assert_same_tree

from blit_core.transfer.sink import stale_temp_names

ZOMBIE_TIMEOUT_S = 10.0


def exited_pid() -> int:
    """The id of a process that has ended and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
def zombie_pid() -> Iterator[int]:
    """The id of a process that has ended but that its parent (this test) has not reaped."""
    proc = subprocess.Popen(["true"])
    deadline = time.monotonic() + ZOMBIE_TIMEOUT_S
    while not Path(f"/proc/{proc.pid}/stat").read_text().rpartition(")")[2].startswith(" Z"):
        assert time.monotonic() < deadline, "the child never ended"
        time.sleep(0.01)
    yield proc.pid
    proc.wait()


def test_only_blits_exact_temp_names_of_dead_writers_are_stale(zombie_pid: int) -> None:
    dead, live = exited_pid(), os.getpid()
    stale = [f".data.bin.{dead}.0.blit-tmp", f".x.{zombie_pid}.17.blit-tmp",
             f".a.b.{dead}.3.blit-tmp", f".new\nline.{dead}.0.blit-tmp"]
    kept = [
        f".data.bin.{live}.0.blit-tmp",  # a writer at work
        f".data.bin.{os.getppid()}.2.blit-tmp",
        f"data.bin.{dead}.0.blit-tmp",  # not hidden
        f".data.bin.0{dead}.0.blit-tmp",  # a leading zero: never made by blit
        f".data.bin.{dead}.01.blit-tmp",
        f".data.bin.{dead}.blit-tmp",  # no counter
        f"..{dead}.0.blit-tmp",  # no name
        f".data.bin.{dead}.0.blit-tmp~",
        ".data.bin.blit-partial",  # --partial's data
        f".data.bin.{dead}.0.blit-partial",
        "data.bin",
    ]
    assert stale_temp_names(stale + kept) == stale


def test_a_copy_removes_dead_writers_temp_files_and_keeps_the_rest(
    small_tree: Path, tmp_path: Path, run_blit, zombie_pid: int,
) -> None:
    dst = tmp_path / "dst"
    (dst / "sub2").mkdir(parents=True)
    dead = exited_pid()
    left = [dst / f".f1.{dead}.0.blit-tmp", dst / "sub2" / f".g.{zombie_pid}.4.blit-tmp"]
    live = dst / "sub2" / f".g.{os.getpid()}.0.blit-tmp"
    look_alike = dst / f".f1.{dead}.blit-tmp"
    for path in [*left, live, look_alike]:
        path.write_bytes(b"half a file")

    result = run_blit("copy", f"{small_tree}/", f"{dst}/")
    assert result.returncode == 0, result.stderr
    assert not any(path.exists() for path in left)
    assert live.read_bytes() == look_alike.read_bytes() == b"half a file"

    # dry runs change nothing; mirror deletes a live writer's file as any extraneous one
    stale = dst / f".f1.{exited_pid()}.1.blit-tmp"
    stale.write_bytes(b"")
    assert run_blit("mirror", "-n", f"{small_tree}/", f"{dst}/").returncode == 0
    assert stale.exists()
    result = run_blit("mirror", f"{small_tree}/", f"{dst}/")
    assert result.returncode == 0, result.stderr
    assert_same_tree(small_tree, dst)
