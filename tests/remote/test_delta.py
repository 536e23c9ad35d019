"""Delta transfers against a real blit-daemon on 127.0.0.1: a changed file travels as its
changes (push and pull), -W sends it whole, and a basis that changes underneath falls back to
a whole-file transfer that still ends byte-identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.daemon import Daemon, run, sides, transfer
from helpers.treecheck import assert_same_tree, find_temp_files

EDIT = 4096
SIZE = 8 << 20


def edited(data: bytes) -> bytes:
    """Three 4 KiB overwrites and a 1,000-byte insertion that shifts everything after it."""
    out = bytearray(data)
    for offset in (10_000, 3_000_000, 7_000_000):
        out[offset:offset + EDIT] = os.urandom(EDIT)
    return bytes(out[:5_000_000]) + os.urandom(1000) + bytes(out[5_000_000:])


def summary(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def first_copy(direction: str, daemon: Daemon, tmp_path: Path) -> tuple[Path, Path]:
    src, dst = sides(direction, daemon, tmp_path)
    src.mkdir()
    (src / "image.bin").write_bytes(os.urandom(SIZE))
    (src / "small").write_bytes(b"small files always go whole")
    summary(transfer(direction, daemon, "mirror", src, dst, "--json"))
    return src, dst


@pytest.mark.parametrize(("direction", "flags"), [
    ("push", ()), ("pull", ()), ("push", ("--force-grpc",))])
def test_a_changed_file_travels_as_its_changes(direction: str, flags: tuple[str, ...],
                                               daemon: Daemon, tmp_path: Path) -> None:
    src, dst = first_copy(direction, daemon, tmp_path)
    image = src / "image.bin"
    image.write_bytes(edited(image.read_bytes()))
    os.utime(image, ns=(1_700_000_000_000_000_000, 1_700_000_000_123_456_789))
    image.chmod(0o640)
    report = summary(transfer(direction, daemon, "mirror", src, dst, "--json", *flags))
    assert_same_tree(src, dst)
    assert find_temp_files(dst) == []
    delta = report["delta"]
    assert delta["files"] == 1
    changed = 3 * EDIT + 1000
    block = 3544  # for 8 MiB: sqrt(1.5 x size), to a multiple of 8
    assert changed <= delta["literal_bytes"] <= changed + 8 * block
    assert delta["literal_bytes"] + delta["matched_bytes"] == image.stat().st_size
    # a 4-byte weak sum per whole block, a 4-byte strong hash per block (the tail's included)
    assert delta["signature_bytes"] == 4 * (SIZE // block) + 4 * -(-SIZE // block)
    wire = report["wire_bytes_sent"] + report["wire_bytes_received"]
    assert wire < delta["literal_bytes"] + delta["signature_bytes"] + 64 * 1024
    # unchanged now: nothing to send, no signature
    again = summary(transfer(direction, daemon, "mirror", src, dst, "--json"))
    assert again["files"]["transferred"] == 0 and again["delta"]["signature_bytes"] == 0


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_whole_file_flag_sends_the_file_whole(direction: str, daemon: Daemon,
                                              tmp_path: Path) -> None:
    src, dst = first_copy(direction, daemon, tmp_path)
    image = src / "image.bin"
    image.write_bytes(edited(image.read_bytes()))
    report = summary(transfer(direction, daemon, "mirror", src, dst, "--json", "-W"))
    assert_same_tree(src, dst)
    assert report["delta"] == {"files": 0, "literal_bytes": 0, "matched_bytes": 0,
                               "signature_bytes": 0}
    assert report["wire_bytes_sent"] + report["wire_bytes_received"] > SIZE


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_a_file_with_only_new_times_and_mode_keeps_its_place(direction: str, daemon: Daemon,
                                                             tmp_path: Path) -> None:
    """Same bytes, another mtime: the delta is all copies, so the file already there is
    checked against the SOURCE's checksum and takes the new metadata; nothing is written."""
    src, dst = first_copy(direction, daemon, tmp_path)
    image = src / "image.bin"
    os.utime(image, ns=(1_700_000_000_000_000_000, 1_700_000_000_123_456_789))
    image.chmod(0o600)
    before = (dst / "image.bin").stat()
    report = summary(transfer(direction, daemon, "mirror", src, dst, "--json"))
    assert_same_tree(src, dst)
    assert find_temp_files(dst) == []
    after = (dst / "image.bin").stat()
    assert after.st_ino == before.st_ino
    assert after.st_mtime_ns == 1_700_000_000_123_456_789 and after.st_mode & 0o777 == 0o600
    assert report["files"]["transferred"] == 1
    assert report["delta"]["literal_bytes"] == 0 and report["delta"]["matched_bytes"] == SIZE
    assert report["wire_bytes_sent"] + report["wire_bytes_received"] < SIZE // 100


def test_with_backup_a_file_with_only_a_new_mtime_is_replaced_and_backed_up(
        daemon: Daemon, tmp_path: Path) -> None:
    src, dst = first_copy("push", daemon, tmp_path)
    image = src / "image.bin"
    os.utime(image, ns=(1_700_000_000_000_000_000, 1_700_000_000_123_456_789))
    before = (dst / "image.bin").stat()
    report = summary(transfer("push", daemon, "copy", src, dst, "--json", "--backup"))
    assert (dst / "image.bin").read_bytes() == image.read_bytes()
    assert (dst / "image.bin").stat().st_mtime_ns == 1_700_000_000_123_456_789
    backup = (dst / "image.bin~").stat()
    assert backup.st_ino == before.st_ino and backup.st_mtime_ns == before.st_mtime_ns
    assert report["delta"]["literal_bytes"] == 0 and report["delta"]["files"] == 1


def test_a_file_with_another_name_is_rebuilt_not_changed_in_place(daemon: Daemon,
                                                                  tmp_path: Path) -> None:
    """A destination file with a second hard link is replaced, as rsync replaces it: the
    other name keeps the old inode and metadata."""
    src, dst = first_copy("push", daemon, tmp_path)
    image = src / "image.bin"
    os.utime(image, ns=(1_700_000_000_000_000_000, 1_700_000_000_123_456_789))
    other = daemon.root / "other-name"
    os.link(dst / "image.bin", other)
    before = other.stat()
    report = summary(transfer("push", daemon, "copy", src, dst, "--json"))
    assert_same_tree(src, dst)
    assert (dst / "image.bin").stat().st_ino != before.st_ino
    assert other.stat().st_mtime_ns == before.st_mtime_ns
    assert other.read_bytes() == image.read_bytes()
    assert report["delta"]["literal_bytes"] == 0 and report["delta"]["files"] == 1


@pytest.mark.parametrize("change", ["edited", "new mtime only"])
def test_a_basis_that_changes_underneath_falls_back_to_the_whole_file(
        daemon: Daemon, tmp_path: Path, change: str) -> None:
    """A push on one stream capped at 1 MB/s: the daemon signs the old file at once, then
    the file ahead of it takes ~6 s to arrive; meanwhile the old file is rewritten in place
    with its size and mtime kept, so only the checksum of the rebuilt file (or, when the
    SOURCE's file is the old one with a new mtime, of the old file itself) can tell."""
    src, dst = first_copy("push", daemon, tmp_path)
    (src / "a_first.bin").write_bytes(os.urandom(6 << 20))
    image = src / "image.bin"
    if change == "edited":
        image.write_bytes(edited(image.read_bytes()))
    else:
        os.utime(image, ns=(1_700_000_000_000_000_000, 1_700_000_000_123_456_789))
    basis = dst / "image.bin"
    kept = basis.stat()
    with subprocess.Popen(
            [sys.executable, "-m", "blit_cli", "mirror", "--json", "--streams", "1",
             "--bwlimit", "1M", f"{src}/", daemon.endpoint("dst") + "/"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as client:
        time.sleep(2.0)
        with open(basis, "r+b") as f:
            f.seek(SIZE // 2)
            f.write(os.urandom(EDIT))
        os.utime(basis, ns=(kept.st_atime_ns, kept.st_mtime_ns))
        out, err = client.communicate(timeout=60)
    assert client.returncode == 0, err
    report = json.loads(out)
    assert_same_tree(src, dst)
    assert report["delta"]["files"] == 0 and report["delta"]["signature_bytes"] > 0
    assert report["wire_bytes_sent"] > (6 << 20) + SIZE  # sent whole after the delta


def test_local_copies_use_a_delta_only_with_no_whole_file(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "image.bin").write_bytes(os.urandom(SIZE))
    summary(run("mirror", "--json", f"{src}/", f"{dst}/"))
    image = src / "image.bin"
    image.write_bytes(edited(image.read_bytes()))
    whole = summary(run("mirror", "--json", f"{src}/", f"{dst}/"))
    assert whole["delta"]["files"] == 0 and "delta" not in whole["strategies"]
    assert_same_tree(src, dst)
    image.write_bytes(edited(image.read_bytes()))
    report = summary(run("mirror", "--json", "--no-whole-file", f"{src}/", f"{dst}/"))
    assert_same_tree(src, dst)
    assert find_temp_files(dst) == []
    assert report["strategies"]["delta"]["files"] == 1
    assert 3 * EDIT + 1000 <= report["delta"]["literal_bytes"] <= 3 * EDIT + 1000 + 8 * 3544


def test_whole_file_and_no_whole_file_together_are_refused(tmp_path: Path) -> None:
    result = run("copy", "-W", "--no-whole-file", f"{tmp_path}/", f"{tmp_path}/x/")
    assert result.returncode == 1
    assert "cannot be combined" in result.stderr
