"""Faults during remote transfers, with real processes on 127.0.0.1: the daemon or the client is
killed (or signalled) mid-transfer. (Many clients sharing one daemon: test_load.py.)

What must hold:
- the daemon dies mid-transfer: the client exits non-zero (10, "the connection broke") promptly
  with a one-line error and no traceback; no destination file under its final name holds
  partial content; a re-run against a fresh daemon converges and leaves no temp files;
- the client is SIGKILLed mid-push: the daemon removes its temp files, stays up and serves the
  next transfers; SIGTERM/SIGINT end the client promptly with exit 20 ("interrupted by a
  signal (temp files are removed)"), on whichever side holds the temp files.

Transfers that must be caught mid-flight run with --bwlimit, so the kill lands while bytes
are still flowing however loaded the machine is; every wait is bounded, so a hang fails."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
from pathlib import Path

import pytest
from helpers.daemon import Daemon, sides, transfer
from helpers.procs import bytes_arrived, finish, start_blit, wait_for
from helpers.treecheck import assert_same_tree, file_digest, find_temp_files

MIB = 1024 * 1024
BIG_SIZES = (4 * MIB + 7, 24 * MIB + 12345, 20 * MIB)  # b0 lands early, then b1 and b2
SLOW = "8M"  # --bwlimit for the transfers that get interrupted: ~6 s for the big tree
START_TIMEOUT_S = 40.0  # for the transfer to be visibly under way (generous: shared cores)
EXIT_TIMEOUT_S = 20.0  # for the client to exit after a fault; a hang fails the test
CLEANUP_TIMEOUT_S = 20.0  # for the daemon to remove its temp files after the client died
EXIT_CONNECTION_LOST = 10
EXIT_INTERRUPTED = 20


# -- trees ---------------------------------------------------------------------------------


def make_big_tree(root: Path, seed: int) -> None:
    """Large incompressible files (big/b0.bin is smaller: with --bwlimit it lands first) and
    small ones in two directories."""
    rng = random.Random(seed)
    (root / "big").mkdir(parents=True)
    (root / "small" / "nested").mkdir(parents=True)
    for i, size in enumerate(BIG_SIZES):
        (root / "big" / f"b{i}.bin").write_bytes(os.urandom(size))
    for i in range(40):
        where = root / "small" / ("nested" if i % 3 else "") / f"s{i:02d}.dat"
        where.write_bytes(rng.randbytes(rng.randint(0, 8192)))
    (root / "small" / "link").symlink_to("s00.dat")


def make_mixed_tree(root: Path, seed: int) -> None:
    """Small files (shards) and a few medium ones (ranges) in nested directories."""
    rng = random.Random(seed)
    for d in ("a", "a/b", "c"):
        (root / d).mkdir(parents=True)
    for i in range(120):
        folder = ("a", "a/b", "c", "")[i % 4]
        (root / folder / f"f{seed}_{i:03d}").write_bytes(rng.randbytes(rng.randint(0, 6000)))
    for i in range(3):
        (root / "c" / f"medium{i}.bin").write_bytes(rng.randbytes(rng.randint(MIB, 3 * MIB)))
    (root / "a" / "link").symlink_to("../c/medium0.bin")
    os.utime(root / "a" / "b", ns=(1_600_000_000_000_000_001 + seed, 1_600_000_000_000_000_001))


# -- processes -----------------------------------------------------------------------------


def endpoint_args(direction: str, daemon: Daemon, src: Path, dst: Path) -> list[str]:
    """SRC/ and DST/ for a push or a pull (the module side written as a daemon endpoint)."""
    if direction == "push":
        return [f"{src}/", daemon.endpoint(dst.name) + "/"]
    return [daemon.endpoint(src.name) + "/", f"{dst}/"]


def landed_and_under_way(dst: Path, before: set[Path]) -> bool:
    """A new file has landed under its final name and another is arriving."""
    return bytes_arrived(dst) and bool(set(final_named_files(dst)) - before)


def assert_one_line_error(stderr: str) -> str:
    """No traceback, and the last line is blit's one-line error; returns that line."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "the client failed without a message"
    assert lines[-1].startswith("blit: error: "), stderr
    assert sum(line.startswith("blit: error: ") for line in lines) == 1, stderr
    return lines[-1]


def final_named_files(root: Path) -> list[Path]:
    temps = set(find_temp_files(root))
    return [path for path in sorted(root.rglob("*"))
            if path.is_file() and not path.is_symlink()
            and path.relative_to(root).as_posix() not in temps]


# -- 1: the daemon dies mid-transfer -------------------------------------------------------


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_daemon_killed_mid_mirror_fails_cleanly_and_rerun_converges(
    direction: str, daemon: Daemon, tmp_path: Path, reaper: list[subprocess.Popen[str]],
) -> None:
    src, dst = sides(direction, daemon, tmp_path)
    make_big_tree(src, seed=1)
    # an older version of big/b1.bin is there: it stays whole while its replacement arrives
    (dst / "big").mkdir(parents=True)
    old = dst / "big" / "b1.bin"
    old.write_bytes(os.urandom(5 * MIB))
    os.utime(old, ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    old_digest = file_digest(old)

    before = set(final_named_files(dst))

    client = start_blit("mirror", "--bwlimit", SLOW,
                        *endpoint_args(direction, daemon, src, dst))
    reaper.append(client)
    wait_for(lambda: landed_and_under_way(dst, before), START_TIMEOUT_S,
             "a file landed and another one arriving", client)
    daemon.proc.kill()
    daemon.proc.wait(10)

    code, _, err = finish(client, EXIT_TIMEOUT_S, "the client after the daemon was killed")
    assert code == EXIT_CONNECTION_LOST, f"exit {code}; stderr: {err}"
    line = assert_one_line_error(err)
    assert re.search(r"connection|daemon|session|peer", line, re.IGNORECASE), line

    for path in final_named_files(dst):
        rel = path.relative_to(dst)
        digest = file_digest(path)
        if rel.as_posix() == "big/b1.bin" and digest == old_digest:
            continue  # the previous version, untouched
        assert (src / rel).is_file(), f"{rel} is not in the source"
        assert digest == file_digest(src / rel), f"{rel} holds partial or wrong content"
    if direction == "pull":  # the client was the DESTINATION: it removes its temp files
        assert find_temp_files(dst) == []

    fresh = Daemon(daemon.root)
    try:
        result = transfer(direction, fresh, "mirror", src, dst)
        assert result.returncode == 0, result.stderr
    finally:
        fresh.stop()
    assert_same_tree(src, dst)
    assert find_temp_files(dst) == []


# -- 2: the client dies or is interrupted mid-transfer -------------------------------------


def test_client_killed_mid_push_daemon_cleans_up_and_keeps_serving(
    daemon: Daemon, tmp_path: Path, reaper: list[subprocess.Popen[str]],
) -> None:
    src, dst = sides("push", daemon, tmp_path)
    make_big_tree(src, seed=2)
    client = start_blit("mirror", "--bwlimit", SLOW, *endpoint_args("push", daemon, src, dst))
    reaper.append(client)
    wait_for(lambda: bytes_arrived(dst), START_TIMEOUT_S, "file data at the daemon", client)
    client.kill()
    client.communicate(timeout=10)

    wait_for(lambda: find_temp_files(daemon.root) == [], CLEANUP_TIMEOUT_S,
             "the daemon to remove its temp files after the client was killed")
    assert daemon.proc.poll() is None, "the daemon died with its client"

    # it still serves: another push and a pull of a different tree, then the killed push
    other, back = tmp_path / "other", tmp_path / "back"
    make_mixed_tree(other, seed=3)
    result = transfer("push", daemon, "mirror", other, daemon.root / "other")
    assert result.returncode == 0, result.stderr
    result = transfer("pull", daemon, "mirror", daemon.root / "other", back)
    assert result.returncode == 0, result.stderr
    assert_same_tree(other, back)
    result = transfer("push", daemon, "mirror", src, dst)
    assert result.returncode == 0, result.stderr
    assert_same_tree(src, dst)
    assert find_temp_files(daemon.root) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("direction", ["push", "pull"])
def test_client_signal_mid_transfer_exits_20_promptly_without_temp_files(
    direction: str, signum: signal.Signals, daemon: Daemon, tmp_path: Path,
    reaper: list[subprocess.Popen[str]],
) -> None:
    src, dst = sides(direction, daemon, tmp_path)
    make_big_tree(src, seed=4)
    client = start_blit("copy", "--bwlimit", SLOW, *endpoint_args(direction, daemon, src, dst))
    reaper.append(client)
    wait_for(lambda: bytes_arrived(dst), START_TIMEOUT_S, "file data at the destination",
             client)
    client.send_signal(signum)

    code, _, err = finish(client, EXIT_TIMEOUT_S, f"the client after {signum.name}")
    assert code == EXIT_INTERRUPTED, f"exit {code}; stderr: {err}"
    assert "interrupted" in assert_one_line_error(err)
    if direction == "pull":  # the client's own temp files, gone by the time it exits
        assert find_temp_files(dst) == []
    else:  # the daemon's, once it has seen the client go
        wait_for(lambda: find_temp_files(daemon.root) == [], CLEANUP_TIMEOUT_S,
                 "the daemon to remove its temp files after the client was interrupted")
    assert daemon.proc.poll() is None
    for path in final_named_files(dst):
        rel = path.relative_to(dst)
        assert file_digest(path) == file_digest(src / rel), f"{rel} holds partial content"
