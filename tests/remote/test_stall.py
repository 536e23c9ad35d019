"""A stalled peer ends a remote session with exit 30 (--timeout), both sides clean up their
temp files, and a slow but live transfer whose data streams sit idle longer than the timeout
still completes (the control plane's keepalives carry it). A daemon that accepts the
connection and never answers is given up on after --contimeout (exit 35), else --timeout."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.daemon import Daemon, run
from helpers.procs import wait_for
from helpers.treecheck import file_digest, find_temp_files

MIB = 1 << 20


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_a_stalled_daemon_ends_the_session_with_exit_30(direction: str, daemon: Daemon,
                                                        tmp_path: Path) -> None:
    local = tmp_path / "local"
    local.mkdir()
    source_dir = daemon.root if direction == "pull" else local
    (source_dir / "big").write_bytes(os.urandom(40 * MIB))
    if direction == "push":
        src, dst, dst_dir = str(local / "big"), daemon.endpoint("big"), daemon.root
    else:
        src, dst, dst_dir = daemon.endpoint("big"), str(local / "copy"), local
    client = subprocess.Popen(
        [sys.executable, "-m", "blit_cli", "copy", "--timeout", "3", "--bwlimit", "4M", src, dst],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: find_temp_files(dst_dir), 20, "the transfer to start")
    os.kill(daemon.proc.pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        _, stderr = client.communicate(timeout=30)
        waited = time.monotonic() - stopped
    finally:
        os.kill(daemon.proc.pid, signal.SIGCONT)
    assert client.returncode == 30, stderr
    assert "the daemon sent nothing for 3 s" in stderr
    assert "Traceback" not in stderr
    assert 1.5 <= waited < 15  # 3 s after the last frame, which keepalives send each second
    # the daemon wakes up, notices the client is gone, and cleans up too
    wait_for(lambda: not find_temp_files(daemon.root), 20, "the daemon to remove its temp files")
    assert not find_temp_files(local)
    assert not (dst_dir / ("big" if direction == "push" else "copy")).exists()
    assert daemon.proc.poll() is None
    result = run("copy", str(source_dir / "big"), daemon.endpoint("again") if direction == "push"
                 else str(local / "again"))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_idle_data_streams_outlive_the_timeout(direction: str, daemon: Daemon,
                                               tmp_path: Path) -> None:
    """One 3 MiB file at 512 KiB/s keeps one stream busy for ~6 s and the other three idle,
    three times the 2 s timeout: keepalives must carry the session to its end."""
    local = tmp_path / "local"
    local.mkdir()
    source = (daemon.root if direction == "pull" else local) / "slow"
    source.write_bytes(os.urandom(3 * MIB))
    if direction == "push":
        args, landed = [str(source), daemon.endpoint("landed")], daemon.root / "landed"
    else:
        args, landed = [daemon.endpoint("slow"), str(local / "landed")], local / "landed"
    started = time.monotonic()
    result = run("copy", "--timeout", "2", "--bwlimit", "512K", "--streams", "4", *args)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started > 4  # the limit really kept it slower than the timeout
    assert file_digest(landed) == file_digest(source)


def test_timeout_must_be_sensible(daemon: Daemon, tmp_path: Path) -> None:
    result = run("copy", "--timeout", "0.5", str(tmp_path), daemon.endpoint("x"))
    assert result.returncode == 1
    assert "--timeout must be at least 2 seconds" in result.stderr


def test_a_stall_while_the_manifest_is_still_scanning_ends_promptly(daemon: Daemon,
                                                                   tmp_path: Path) -> None:
    """60,000 entries: more than the manifest window holds, so the client's scan is blocked
    handing over a batch when the daemon stops; the client must still exit 30, not hang."""
    src = tmp_path / "src"
    for d in range(60):
        (src / f"d{d:02}").mkdir(parents=True)
        for f in range(1000):
            (src / f"d{d:02}" / f"f{f:04}").touch()
    client = subprocess.Popen(
        [sys.executable, "-m", "blit_cli", "copy", "--timeout", "3", f"{src}/",
         daemon.endpoint("dst") + "/"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (daemon.root / "dst").is_dir(), 20, "the push to start")
    os.kill(daemon.proc.pid, signal.SIGSTOP)
    try:
        _, stderr = client.communicate(timeout=30)
    finally:
        os.kill(daemon.proc.pid, signal.SIGCONT)
    assert client.returncode == 30, stderr
    assert "Traceback" not in stderr and "never retrieved" not in stderr


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port on 127.0.0.1 whose connections the kernel accepts and nothing ever answers, as
    a hung daemon (or a host dropping packets behind a NAT) looks to a client."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@pytest.mark.parametrize(("flags", "code", "message"), [
    (("--contimeout", "2"), 35, "did not answer within 2 s (--contimeout)"),
    (("--timeout", "3"), 30, "did not answer within 3 s (--timeout)"),
])
def test_a_daemon_that_never_answers_is_given_up_on(silent_listener: int, tmp_path: Path,
                                                    flags: tuple[str, ...], code: int,
                                                    message: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    started = time.monotonic()
    result = run("copy", *flags, f"{src}/", f"127.0.0.1:{silent_listener}:/default/x/")
    elapsed = time.monotonic() - started
    assert result.returncode == code, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert elapsed < float(flags[1]) + 10, f"gave up only after {elapsed:.1f}s"


def test_contimeout_must_be_positive(tmp_path: Path) -> None:
    result = run("copy", "--contimeout", "0", f"{tmp_path}/", "127.0.0.1:1:/default/x/")
    assert result.returncode == 1
    assert "--contimeout must be more than 0 seconds" in result.stderr
