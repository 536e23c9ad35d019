"""A source file that changes or vanishes while a push or a pull is sending it, with real
processes: the test rewrites, grows or shrinks a large file while it streams (under
--bwlimit, on one stream), or removes a small file queued behind it.

What must hold: a change is detected (size or mtime against the scan) and the file is reported
(exit 23, "changed during the transfer"), never committed torn: the destination keeps its
older version; a file that vanished is reported as such (exit 24); every other file lands
whole; no temp file is left."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers.daemon import Daemon, sides, transfer_args
from helpers.procs import finish, start_blit, wait_for
from helpers.treecheck import assert_same_tree, find_temp_files

MIB = 1024 * 1024
BIG = "big.bin"
BIG_SIZE = 20 * MIB  # paced in pieces of 8 MiB: the first lands a second before the last
RATE = "8M"
DOOMED = "doomed.txt"
START_TIMEOUT_S = 40.0
EXIT_TIMEOUT_S = 60.0
OLD_BYTES = b"the destination's older version"
EXIT_PARTIAL = 23
EXIT_VANISHED = 24


def make_source(src: Path) -> None:
    src.mkdir(parents=True)
    (src / BIG).write_bytes(os.urandom(BIG_SIZE))
    for i in range(10):
        (src / f"small{i}.txt").write_bytes(os.urandom(1000 + i))
    (src / DOOMED).write_bytes(b"about to vanish")


def change(src: Path, how: str) -> None:
    """What happens to the source while the large file streams."""
    big = src / BIG
    if how == "rewritten":  # same size, other bytes: only the mtime tells
        with open(big, "r+b") as out:
            out.seek(BIG_SIZE - MIB)
            out.write(os.urandom(4096))
    elif how == "grown":
        with open(big, "ab") as out:
            out.write(os.urandom(4096))
    elif how == "shrunk":
        os.truncate(big, BIG_SIZE - MIB)
    else:
        (src / DOOMED).unlink()


def streaming(dst: Path) -> bool:
    """The large file's temp file at the destination holds data."""
    try:
        return any((dst / rel).stat().st_size > 0 for rel in find_temp_files(dst)
                   if BIG in rel)
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("how", ["rewritten", "grown", "shrunk", "vanished"])
@pytest.mark.parametrize("direction", ["push", "pull"])
def test_a_source_file_changing_or_vanishing_mid_transfer_is_reported_not_torn(
    direction: str, how: str, daemon: Daemon, tmp_path: Path,
    reaper: list[subprocess.Popen[str]],
) -> None:
    src, dst = sides(direction, daemon, tmp_path)
    make_source(src)
    dst.mkdir()
    (dst / BIG).write_bytes(OLD_BYTES)
    os.utime(dst / BIG, ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))

    client = start_blit(*transfer_args(direction, daemon, "copy", src, dst,
                                       "--bwlimit", RATE, "--streams", "1"))
    reaper.append(client)
    wait_for(lambda: streaming(dst), START_TIMEOUT_S, "the large file streaming", client)
    change(src, how)
    code, _, err = finish(client, EXIT_TIMEOUT_S, f"the {direction} after the change")

    assert "Traceback" not in err
    assert find_temp_files(dst) == []
    if how == "vanished":
        assert code == EXIT_VANISHED, err
        assert f"{DOOMED}: vanished during the transfer" in err, err
        assert_same_tree(src, dst, check_root_meta=False)
        return
    assert code == EXIT_PARTIAL, err
    assert f"{BIG}: changed during the transfer" in err, err
    assert (dst / BIG).read_bytes() == OLD_BYTES
    assert_same_tree(src, dst, check_root_meta=False, ignore=lambda rel: rel == BIG)
