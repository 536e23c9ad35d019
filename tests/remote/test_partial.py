"""--partial and --partial-dir against a real blit-daemon on 127.0.0.1: a transfer killed in
the middle of a 256 MiB file keeps what arrived (hidden), and the next run rebuilds the file
from it, moving only the rest; without --partial nothing is left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.daemon import Daemon, sides, transfer
from helpers.procs import wait_for
from helpers.treecheck import assert_same_tree, find_temp_files

SIZE = 256 << 20
RATE = "64M"  # bytes per second: the file takes about 4 s


def written_bytes(directory: Path) -> int:
    """How far the temp files in `directory` reach (one stream writes its file in order)."""
    return sum(p.stat().st_size for p in directory.iterdir() if p.name.startswith("."))


def start(direction: str, daemon: Daemon, src: Path, dst: Path,
          *flags: str) -> subprocess.Popen[str]:
    ends = ([f"{src}/", daemon.endpoint(dst.name) + "/"] if direction == "push"
            else [daemon.endpoint(src.name) + "/", f"{dst}/"])
    return subprocess.Popen([sys.executable, "-m", "blit_cli", "copy", "--streams", "1",
                             "--bwlimit", RATE, *flags, *ends],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def interrupt_halfway(client: subprocess.Popen[str], dst: Path, how: signal.Signals) -> int:
    """Wait until half the file is in the destination's temp file, then signal the client;
    returns the bytes that had arrived by then."""
    deadline = time.monotonic() + 60
    while (arrived := written_bytes(dst)) < SIZE // 2:
        assert client.poll() is None, client.communicate()
        assert time.monotonic() < deadline, "the transfer did not get halfway"
        time.sleep(0.02)
    client.send_signal(how)
    client.communicate(timeout=60)
    return arrived


def partial_of(dst: Path, partial_dir: str | None) -> Path:
    return dst / partial_dir / "big.bin" if partial_dir else dst / ".big.bin.blit-partial"


@pytest.mark.parametrize(("direction", "how", "partial_dir"), [
    ("push", signal.SIGKILL, None),  # the daemon sees its SOURCE vanish
    ("pull", signal.SIGINT, None),  # the client itself is interrupted
    ("push", signal.SIGKILL, "incoming"),
])
def test_an_interrupted_file_resumes_from_its_partial(
        direction: str, how: signal.Signals, partial_dir: str | None, daemon: Daemon,
        tmp_path: Path) -> None:
    src, dst = sides(direction, daemon, tmp_path)
    src.mkdir()
    dst.mkdir()
    (src / "big.bin").write_bytes(os.urandom(SIZE))
    flags = ["--partial-dir", partial_dir] if partial_dir else ["--partial"]
    arrived = interrupt_halfway(start(direction, daemon, src, dst, *flags), dst, how)
    partial = partial_of(dst, partial_dir)
    wait_for(partial.exists, 30, "the partial file (kept once the peer is gone)")
    assert not (dst / "big.bin").exists()
    assert find_temp_files(dst) == []
    kept = partial.read_bytes()
    assert kept[:arrived] == (src / "big.bin").read_bytes()[:arrived]

    result = transfer(direction, daemon, "copy", src, dst, "--json", *flags)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert_same_tree(src, dst)
    assert not partial.exists()
    if partial_dir:
        assert not (dst / partial_dir).exists()  # emptied, so removed
    delta = report["delta"]
    assert delta["files"] == 1 and delta["matched_bytes"] >= arrived - (1 << 20)
    wire = report["wire_bytes_sent"] + report["wire_bytes_received"]
    assert wire < (SIZE - arrived) + delta["signature_bytes"] + (1 << 20)


def test_without_partial_an_interrupted_file_leaves_nothing(daemon: Daemon,
                                                            tmp_path: Path) -> None:
    src, dst = sides("push", daemon, tmp_path)
    src.mkdir()
    dst.mkdir()
    (src / "big.bin").write_bytes(os.urandom(SIZE))
    interrupt_halfway(start("push", daemon, src, dst), dst, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while list(dst.iterdir()):
        assert time.monotonic() < deadline, f"left behind: {list(dst.iterdir())}"
        time.sleep(0.05)


def test_partials_are_neither_sent_nor_deleted_by_mirror(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "incoming").mkdir(parents=True)
    (src / "incoming" / "other").write_bytes(b"in the source's own partial dir")
    (src / ".a.blit-partial").write_bytes(b"a partial in the source")
    (src / "a").write_bytes(b"a")
    (dst / "incoming").mkdir(parents=True)
    (dst / "incoming" / "b").write_bytes(b"the destination's partial of b")
    (dst / ".c.blit-partial").write_bytes(b"the destination's partial of c")
    for flags in (["--partial-dir", "incoming"], ["--partial"]):
        result = subprocess.run([sys.executable, "-m", "blit_cli", "mirror", *flags,
                                 f"{src}/", f"{dst}/"], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        assert (dst / "a").read_bytes() == b"a"
        assert not (dst / ".a.blit-partial").exists()
        assert (dst / ".c.blit-partial").exists()
        if flags[0] == "--partial-dir":  # the directory is left alone
            assert (dst / "incoming" / "b").exists()
            assert not (dst / "incoming" / "other").exists()


def test_partial_dir_must_be_one_name(tmp_path: Path) -> None:
    for bad in ("a/b", "..", "/abs"):
        result = subprocess.run([sys.executable, "-m", "blit_cli", "copy", "--partial-dir", bad,
                                 f"{tmp_path}/", f"{tmp_path}/x/"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1, bad
        assert "--partial-dir must be a directory name" in result.stderr


def test_a_local_copy_rebuilds_from_a_partial_with_no_whole_file(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    data = os.urandom(8 << 20)
    (src / "big.bin").write_bytes(data)
    (dst / ".big.bin.blit-partial").write_bytes(data[: 5 << 20])  # an earlier run's
    result = subprocess.run([sys.executable, "-m", "blit_cli", "copy", "--json", "--partial",
                             "--no-whole-file", f"{src}/", f"{dst}/"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert_same_tree(src, dst)
    assert not (dst / ".big.bin.blit-partial").exists()
    assert report["strategies"]["delta"]["files"] == 1
    assert (3 << 20) <= report["delta"]["literal_bytes"] < (3 << 20) + (64 << 10)
