"""Never losing data, through the real `blit` command: a full destination, an interruption by
SIGINT, unreadable sources, and equivalence with rsync on a tree of awkward entries."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.treecheck import (
    assert_same_tree,
    file_digest,
    find_temp_files,
    hardlink_groups,
    is_sparse,
)

RSYNC = shutil.which("rsync")
SETPRIV = shutil.which("setpriv")
# Root reads everything; dropping these capabilities makes permission bits bind again.
DROP_DAC = [
    "--inh-caps=-dac_override,-dac_read_search",
    "--bounding-set=-dac_override,-dac_read_search",
]


def blit_without_dac_override(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    if os.geteuid() != 0 or SETPRIV is None:
        pytest.skip("needs root and setpriv to make a file unreadable to blit")
    return subprocess.run(
        [SETPRIV, *DROP_DAC, sys.executable, "-m", "blit_cli", *map(os.fspath, args)],
        capture_output=True, text=True, check=False,
    )


def make_files(root: Path, count: int, size: int, per_dir: int = 100) -> None:
    block = os.urandom(size)
    for index in range(count):
        directory = root / f"d{index // per_dir:04d}"
        if index % per_dir == 0:
            directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{index:06d}").write_bytes(block[index % 7 :] + block[: index % 7])


@pytest.mark.skipif(RSYNC is None, reason="rsync is not installed")
def test_mirror_of_nasty_tree_equals_rsync(nasty_tree, tmp_path, run_blit):
    ours, theirs = tmp_path / "blit", tmp_path / "rsync"
    result = run_blit("mirror", "-H", f"{nasty_tree.root}/", f"{ours}/")
    assert result.returncode == 0, result.stderr
    subprocess.run([RSYNC, "-aH", "--delete", f"{nasty_tree.root}/", f"{theirs}/"], check=True)
    assert_same_tree(ours, theirs)
    assert_same_tree(nasty_tree.root, ours)
    assert hardlink_groups(ours) == hardlink_groups(theirs) != set()
    assert find_temp_files(ours) == []

    # Change both copies the same way and mirror again: deletions and updates agree too.
    for copy in (ours, theirs):
        (copy / "stray-file").write_bytes(b"stray")
        (copy / "stray-dir" / "inner").mkdir(parents=True)
        os.utime(copy / nasty_tree.mode_files[0o644], ns=(1, 1))
    assert run_blit("mirror", "-H", f"{nasty_tree.root}/", f"{ours}/").returncode == 0
    subprocess.run([RSYNC, "-aH", "--delete", f"{nasty_tree.root}/", f"{theirs}/"], check=True)
    assert_same_tree(ours, theirs)


def test_sparse_file_of_nasty_tree_stays_sparse_with_S(nasty_tree, tmp_path, run_blit):
    result = run_blit("copy", "-S", nasty_tree.root / nasty_tree.sparse_file, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert is_sparse(tmp_path / "out")
    assert file_digest(tmp_path / "out") == file_digest(nasty_tree.root / nasty_tree.sparse_file)


def test_full_destination_is_a_clean_io_error(tmpfs, tmp_path, run_blit):
    small = tmpfs("3M")
    src = tmp_path / "src"
    make_files(src, count=12, size=512 * 1024, per_dir=4)
    result = run_blit("move", f"{src}/", small)
    assert result.returncode == 11, result.stderr
    assert "no space left on device" in result.stderr
    assert "Traceback" not in result.stderr
    assert find_temp_files(small) == []
    committed = [p for p in small.rglob("*") if p.is_file()]
    for copy in committed:  # every file that landed is whole
        original = tmp_path / "reference" / copy.relative_to(small)
        assert copy.stat().st_size == 512 * 1024
        assert not original.exists()
    for source in src.rglob("*"):  # nothing was lost: each file is in one place or the other
        if source.is_file():
            assert source.stat().st_size == 512 * 1024
    landed = {p.relative_to(small) for p in committed}
    kept = {p.relative_to(src) for p in src.rglob("*") if p.is_file()}
    assert len(landed | kept) == 12


def test_sigint_stops_cleanly_with_exit_20_and_no_temp_files(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_files(src, count=30_000, size=8192)
    proc = subprocess.Popen(
        [sys.executable, "-m", "blit_cli", "copy", f"{src}/", dst],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if dst.is_dir() and len(os.listdir(dst)) > 3:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 20, stderr
    assert "interrupted" in stderr
    assert "Traceback" not in stderr
    assert find_temp_files(dst) == []
    for copy in dst.rglob("f*"):  # whatever landed is complete
        if copy.is_file():
            assert copy.stat().st_size == 8192


def test_unreadable_source_file_fails_alone_with_exit_23(small_tree, tmp_path):
    (small_tree / "secret").chmod(0o000)
    result = blit_without_dac_override("copy", f"{small_tree}/", tmp_path / "dst")
    assert result.returncode == 23, result.stderr
    assert "secret" in result.stderr and "Permission denied" in result.stderr
    assert not (tmp_path / "dst" / "secret").exists()
    assert_same_tree(small_tree, tmp_path / "dst", check_root_meta=False,
                     ignore=lambda path: path == "secret")
    assert find_temp_files(tmp_path / "dst") == []


def test_mirror_deletes_nothing_when_a_source_directory_is_unreadable(small_tree, tmp_path):
    dst = tmp_path / "dst"
    shutil.copytree(small_tree, dst, symlinks=True)
    (dst / "extraneous").write_bytes(b"must survive")
    (small_tree / "sub2").chmod(0o000)
    try:
        result = blit_without_dac_override("mirror", f"{small_tree}/", dst)
    finally:
        (small_tree / "sub2").chmod(0o750)
    assert result.returncode == 23, result.stderr
    assert "nothing was deleted" in result.stderr
    assert (dst / "extraneous").read_bytes() == b"must survive"


def test_vanished_source_files_exit_24_and_the_rest_lands(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_files(src, count=20_000, size=1024, per_dir=20_000)
    names = sorted(p.name for p in (src / "d0000").iterdir())
    doomed = names[-200:]
    proc = subprocess.Popen(
        [sys.executable, "-m", "blit_cli", "copy", "-j", "1", f"{src}/", dst],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    # The directory is listed and stat'ed before its first file lands; files are then copied
    # in name order, so the last ones can be removed after listing and before copying.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any((dst / "d0000").glob("f*")):
        time.sleep(0.002)
    for name in doomed:
        (src / "d0000" / name).unlink()
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 24, stderr
    assert "vanished" in stderr
    landed = {p.name for p in (dst / "d0000").iterdir()}
    assert landed == set(names) - set(doomed)
    assert find_temp_files(dst) == []


def test_a_failed_replacement_leaves_the_old_file_intact(tmpfs, tmp_path, run_blit):
    small = tmpfs("2M")
    (small / "big").write_bytes(b"old version")
    os.utime(small / "big", ns=(1, 1))
    src = tmp_path / "src"
    src.mkdir()
    (src / "big").write_bytes(os.urandom(3 << 20))
    result = run_blit("copy", f"{src}/", f"{small}/")
    assert result.returncode == 11, result.stderr
    assert (small / "big").read_bytes() == b"old version"
    assert find_temp_files(small) == []
