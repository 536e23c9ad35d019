"""A source file that changes or vanishes while a push or a pull is sending it, with real
processes: the test rewrites, grows or shrinks a large file while it streams (under
--bwlimit, on one stream), keeps changing it, or removes a small file queued behind it.

What must hold: a change is detected (size or mtime against the scan) and the file is sent
again, once, as it is then: the transfer succeeds and the destination holds the new version
with its mtime. A file that changes again during that second sending is reported (exit 23,
"changed during the transfer"), never committed torn: the destination keeps its older
version. A file that vanished is reported as such (exit 24). Every other file lands whole; no
temp file is left. (tests/core/test_sender_changed_source.py covers each way a file travels,
shards and deltas included.)"""

from __future__ import annotations

import json
import os
import subprocess
import threading
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
CHANGE_EVERY_S = 0.2
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


def streaming(dst: Path, in_place: bool = False) -> bool:
    """The large file's temp file at the destination holds data (or, `in_place`, the file
    itself has grown past its older version)."""
    try:
        if in_place:
            return (dst / BIG).stat().st_size > len(OLD_BYTES)
        return any((dst / rel).stat().st_size > 0 for rel in find_temp_files(dst)
                   if BIG in rel)
    except FileNotFoundError:
        return False


def start(direction: str, daemon: Daemon, tmp_path: Path, reaper: list[subprocess.Popen[str]],
          *flags: str, verb: str = "copy") -> tuple[Path, Path, subprocess.Popen[str]]:
    """A copy (or `verb`, with `flags`) of a fresh source under way (its client in `reaper`),
    the large file's bytes arriving; the destination held OLD_BYTES as its older version."""
    src, dst = sides(direction, daemon, tmp_path)
    make_source(src)
    dst.mkdir()
    (dst / BIG).write_bytes(OLD_BYTES)
    os.utime(dst / BIG, ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    client = start_blit(*transfer_args(direction, daemon, verb, src, dst, *flags,
                                       "--bwlimit", RATE, "--streams", "1"))
    reaper.append(client)
    wait_for(lambda: streaming(dst, "--inplace" in flags), START_TIMEOUT_S,
             "the large file streaming", client)
    return src, dst, client


@pytest.mark.parametrize("how", ["rewritten", "grown", "shrunk"])
@pytest.mark.parametrize("direction", ["push", "pull"])
def test_a_source_file_that_changed_mid_transfer_is_sent_again_as_it_is_now(
    direction: str, how: str, daemon: Daemon, tmp_path: Path,
    reaper: list[subprocess.Popen[str]],
) -> None:
    src, dst, client = start(direction, daemon, tmp_path, reaper)
    change(src, how)
    code, _, err = finish(client, EXIT_TIMEOUT_S, f"the {direction} after the change")

    assert code == 0, err
    assert find_temp_files(dst) == []
    assert (dst / BIG).read_bytes() == (src / BIG).read_bytes()
    assert_same_tree(src, dst, check_root_meta=False)  # the large file's new mtime included


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_a_checksum_move_keeps_the_source_of_a_file_sent_again(
    direction: str, daemon: Daemon, tmp_path: Path, reaper: list[subprocess.Popen[str]],
) -> None:
    """move -c verifies each copy against the manifest's digest, which is of the content
    before the change: the file sent again cannot be verified, so its source stays, with a
    warning (as a local move keeps a source that changed), not a failure; the others go."""
    src, dst, client = start(direction, daemon, tmp_path, reaper, "-c", verb="move")
    change(src, "rewritten")
    expected = (src / BIG).read_bytes()
    code, _, err = finish(client, EXIT_TIMEOUT_S, f"the {direction} move after the change")

    assert code == 0, err
    assert f"not removing '{BIG}': it changed during the move" in err, err
    assert (dst / BIG).read_bytes() == expected == (src / BIG).read_bytes()
    assert sorted(p.name for p in src.iterdir()) == [BIG]
    assert find_temp_files(dst) == []


def test_in_place_the_backup_keeps_the_version_from_before_both_sendings(
    daemon: Daemon, tmp_path: Path, reaper: list[subprocess.Popen[str]],
) -> None:
    """--inplace --backup: the first sending wrote over part of the file before the change
    was seen; the second must not back up that half-written file over the true backup."""
    src, dst, client = start("push", daemon, tmp_path, reaper, "--inplace", "--backup")
    change(src, "rewritten")
    code, _, err = finish(client, EXIT_TIMEOUT_S, "the push after the change")

    assert code == 0, err
    assert (dst / BIG).read_bytes() == (src / BIG).read_bytes()
    assert (dst / f"{BIG}~").read_bytes() == OLD_BYTES


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_a_file_changing_while_sent_as_a_delta_is_sent_again_whole(
    direction: str, daemon: Daemon, tmp_path: Path, reaper: list[subprocess.Popen[str]],
) -> None:
    """The destination's older version shares the first half: the file goes as a delta
    (its literals paced), changes, and goes again whole."""
    src, dst = sides(direction, daemon, tmp_path)
    basis = tmp_path / "basis"
    basis.write_bytes(os.urandom(BIG_SIZE))
    src.mkdir(parents=True)
    shared = basis.read_bytes()[:BIG_SIZE // 2]
    (src / BIG).write_bytes(shared + os.urandom(BIG_SIZE // 2))
    dst.mkdir()
    (dst / BIG).write_bytes(basis.read_bytes())
    client = start_blit(*transfer_args(direction, daemon, "copy", src, dst, "--json",
                                       "--bwlimit", RATE, "--streams", "1"))
    reaper.append(client)
    wait_for(lambda: streaming(dst), START_TIMEOUT_S, "the delta's bytes arriving", client)
    change(src, "rewritten")
    code, out, err = finish(client, EXIT_TIMEOUT_S, f"the {direction} after the change")

    assert code == 0, err
    report = json.loads(out)
    # the delta's literals (half the file, all sent before the change was seen), then all of it
    assert report["wire_bytes_sent"] + report["wire_bytes_received"] > 1.4 * BIG_SIZE
    assert find_temp_files(dst) == []
    assert (dst / BIG).read_bytes() == (src / BIG).read_bytes()
    assert_same_tree(src, dst, check_root_meta=False)


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_a_source_file_that_keeps_changing_is_reported_and_never_torn(
    direction: str, daemon: Daemon, tmp_path: Path, reaper: list[subprocess.Popen[str]],
) -> None:
    src, dst, client = start(direction, daemon, tmp_path, reaper)
    done = threading.Event()

    def keep_growing() -> None:
        while not done.wait(CHANGE_EVERY_S):
            change(src, "grown")

    grower = threading.Thread(target=keep_growing)
    grower.start()
    try:
        code, _, err = finish(client, EXIT_TIMEOUT_S, f"the {direction} of a changing file")
    finally:
        done.set()
        grower.join()

    assert "Traceback" not in err
    assert code == EXIT_PARTIAL, err
    assert f"{BIG}: changed during the transfer" in err, err
    assert find_temp_files(dst) == []
    assert (dst / BIG).read_bytes() == OLD_BYTES
    assert_same_tree(src, dst, check_root_meta=False, ignore=lambda rel: rel == BIG)


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_a_source_file_that_vanished_mid_transfer_is_reported_as_vanished(
    direction: str, daemon: Daemon, tmp_path: Path, reaper: list[subprocess.Popen[str]],
) -> None:
    src, dst, client = start(direction, daemon, tmp_path, reaper)
    change(src, "vanished")
    code, _, err = finish(client, EXIT_TIMEOUT_S, f"the {direction} after the removal")

    assert "Traceback" not in err
    assert find_temp_files(dst) == []
    assert code == EXIT_VANISHED, err
    assert f"{DOOMED}: vanished during the transfer" in err, err
    assert_same_tree(src, dst, check_root_meta=False)
