"""Regression tests for data-safety and rsync-semantics defects found in review: each case
once lost or damaged data, or behaved unlike rsync."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers.treecheck import find_temp_files


def write(path, data: bytes, mtime_ns: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


T0 = 1_700_000_000_000_000_000


def test_move_never_deletes_the_destination_reached_through_a_symlinked_directory(
    tmp_path, run_blit
):
    write(tmp_path / "dst" / "sub" / "f", b"precious")
    (tmp_path / "src").mkdir()
    os.symlink("../dst/sub", tmp_path / "src" / "sub")
    result = run_blit("move", "-L", f"{tmp_path / 'src'}/", f"{tmp_path / 'dst'}/")
    assert result.returncode == 23, result.stderr
    assert "same file" in result.stderr
    assert (tmp_path / "dst" / "sub" / "f").read_bytes() == b"precious"


def test_mirror_of_several_sources_keeps_each_sources_files(tmp_path, run_blit):
    write(tmp_path / "a" / "from_a", b"a")
    write(tmp_path / "b" / "from_b", b"b")
    for _ in range(2):
        result = run_blit("mirror", f"{tmp_path / 'a'}/", f"{tmp_path / 'b'}/", tmp_path / "d")
        assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path / "d")) == ["from_a", "from_b"]
    write(tmp_path / "d" / "stray", b"x")
    result = run_blit("mirror", f"{tmp_path / 'a'}/", tmp_path / "b", tmp_path / "d")
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path / "d")) == ["b", "from_a"]


@pytest.mark.parametrize("suffix", ["", "x/y"])
def test_bad_backup_suffix_is_refused(tmp_path, run_blit, suffix):
    write(tmp_path / "s" / "f", b"new", T0 + 1)
    write(tmp_path / "d" / "f", b"old", T0)
    result = run_blit("copy", "-b", f"--suffix={suffix}", f"{tmp_path / 's'}/", tmp_path / "d")
    assert result.returncode == 1
    assert (tmp_path / "d" / "f").read_bytes() == b"old"


def test_copy_does_not_remove_a_non_empty_directory_in_the_way(tmp_path, run_blit):
    write(tmp_path / "s" / "x", b"file")
    write(tmp_path / "d" / "x" / "deep" / "keep", b"important")
    result = run_blit("copy", f"{tmp_path / 's'}/", tmp_path / "d")
    assert result.returncode == 23, result.stderr
    assert (tmp_path / "d" / "x" / "deep" / "keep").read_bytes() == b"important"
    result = run_blit("mirror", f"{tmp_path / 's'}/", tmp_path / "d")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "d" / "x").read_bytes() == b"file"


def test_inplace_backup_keeps_the_old_content(tmp_path, run_blit):
    write(tmp_path / "s" / "f", b"new content", T0 + 1)
    write(tmp_path / "d" / "f", b"old content", T0)
    result = run_blit("copy", "--inplace", "-b", f"{tmp_path / 's'}/", tmp_path / "d")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "d" / "f").read_bytes() == b"new content"
    assert (tmp_path / "d" / "f~").read_bytes() == b"old content"


@pytest.fixture
def linked_source(tmp_path):
    write(tmp_path / "s" / "a", b"linked content", T0)
    os.link(tmp_path / "s" / "a", tmp_path / "s" / "b")
    return tmp_path / "s"


def test_hard_links_respect_ignore_existing(linked_source, tmp_path, run_blit):
    write(tmp_path / "d" / "b", b"keep me")
    result = run_blit("copy", "-H", "--ignore-existing", f"{linked_source}/", tmp_path / "d")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "d" / "b").read_bytes() == b"keep me"
    assert (tmp_path / "d" / "a").read_bytes() == b"linked content"


def test_hard_links_respect_existing(linked_source, tmp_path, run_blit):
    write(tmp_path / "d" / "b", b"old")
    result = run_blit("copy", "-H", "--existing", f"{linked_source}/", tmp_path / "d")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "d" / "a").exists()
    assert (tmp_path / "d" / "b").read_bytes() == b"linked content"


def test_hard_links_respect_max_size(linked_source, tmp_path, run_blit):
    result = run_blit("copy", "-H", "--max-size", "1", f"{linked_source}/", tmp_path / "d")
    assert result.returncode == 0, result.stderr
    assert os.listdir(tmp_path / "d") == []


def test_contents_into_a_symlinked_destination_directory_follow_it(tmp_path, run_blit):
    write(tmp_path / "s" / "f", b"x")
    (tmp_path / "real").mkdir()
    os.symlink("real", tmp_path / "dl")
    result = run_blit("copy", f"{tmp_path / 's'}/", tmp_path / "dl")
    assert result.returncode == 0, result.stderr
    assert os.path.islink(tmp_path / "dl")
    assert (tmp_path / "real" / "f").read_bytes() == b"x"


def test_mirror_deletes_nothing_after_a_dangling_link_with_copy_links(tmp_path, run_blit):
    write(tmp_path / "s" / "f", b"x")
    os.symlink("missing", tmp_path / "s" / "l")
    write(tmp_path / "d" / "l", b"old copy")
    write(tmp_path / "d" / "stray", b"stray")
    result = run_blit("mirror", "-L", f"{tmp_path / 's'}/", tmp_path / "d")
    assert result.returncode == 23, result.stderr
    assert (tmp_path / "d" / "l").read_bytes() == b"old copy"
    assert (tmp_path / "d" / "stray").exists()


def test_mirror_keeps_a_nested_backup_dir_and_earlier_suffix_backups(tmp_path, run_blit):
    write(tmp_path / "s" / "f", b"v1", T0)
    for version in (b"v2", b"v3"):
        write(tmp_path / "s" / "f", version, T0 + len(version) + version[-1])
        result = run_blit("mirror", "--backup-dir", "bk/today", f"{tmp_path / 's'}/",
                          tmp_path / "d")
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "d" / "bk" / "today" / "f").exists()
    write(tmp_path / "s" / "g", b"g1", T0)
    run_blit("mirror", "-b", f"{tmp_path / 's'}/", tmp_path / "d2")
    write(tmp_path / "s" / "g", b"g2", T0 + 5)
    assert run_blit("mirror", "-b", f"{tmp_path / 's'}/", tmp_path / "d2").returncode == 0
    write(tmp_path / "s" / "g", b"g3", T0 + 9)
    assert run_blit("mirror", "-b", f"{tmp_path / 's'}/", tmp_path / "d2").returncode == 0
    assert (tmp_path / "d2" / "g~").read_bytes() == b"g2"


def test_files_from_uses_a_source_without_slash_as_its_base(tmp_path, run_blit):
    write(tmp_path / "s" / "a" / "f", b"x")
    write(tmp_path / "s" / "b", b"y")
    (tmp_path / "list").write_text("a/f\n")
    result = run_blit("copy", "--files-from", tmp_path / "list", tmp_path / "s", tmp_path / "d")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "d" / "a" / "f").read_bytes() == b"x"
    assert not (tmp_path / "d" / "b").exists()


def test_max_delete_stops_at_the_limit(tmp_path, run_blit):
    (tmp_path / "s").mkdir()
    write(tmp_path / "d" / "a_dir" / "one", b"1")
    write(tmp_path / "d" / "a_dir" / "two", b"2")
    write(tmp_path / "d" / "z_file", b"3")
    result = run_blit("mirror", "--max-delete", "2", f"{tmp_path / 's'}/", tmp_path / "d")
    assert result.returncode == 25
    assert (tmp_path / "d" / "z_file").exists()
    assert (tmp_path / "d" / "a_dir" / "one").exists()


def test_sparse_copy_across_filesystems(tmp_path, tmpfs, run_blit):
    other = tmpfs("64M")
    with open(tmp_path / "sparse", "wb") as handle:
        handle.truncate(16 << 20)
        handle.seek(8 << 20)
        handle.write(b"data after a hole")
    result = run_blit("copy", "-S", tmp_path / "sparse", other / "sparse")
    assert result.returncode == 0, result.stderr
    assert (other / "sparse").read_bytes() == (tmp_path / "sparse").read_bytes()


def test_json_stays_valid_with_names_that_are_not_utf8(tmp_path, run_blit):
    (tmp_path / "s").mkdir()
    os.symlink("missing", os.path.join(os.fsencode(tmp_path / "s"), b"bad-\xff"))
    result = run_blit("copy", "-L", "--json", f"{tmp_path / 's'}/", tmp_path / "d")
    assert result.returncode == 23
    report = json.loads(result.stdout)
    assert report["failures"][0]["path"] == os.fsdecode(b"bad-\xff")


def test_workers_stop_and_clean_up_when_the_pipeline_is_killed(tmp_path):
    src = tmp_path / "src"
    block = os.urandom(64 << 10)
    for index in range(2000):
        write(src / f"d{index // 100}" / f"f{index}", block)
    proc = subprocess.Popen([sys.executable, "-m", "blit_cli", "copy", f"{src}/",
                             tmp_path / "dst"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (tmp_path / "dst").exists():
        time.sleep(0.005)
    time.sleep(0.05)
    workers = [int(pid) for pid in subprocess.run(
        ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()]
    assert workers, "the transfer should still be running with its worker processes"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1.0)  # workers get SIGTERM from the kernel, remove their temp file and exit
    assert find_temp_files(tmp_path / "dst") == []
    assert [pid for pid in workers if _alive(pid)] == []


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for whoever inherited it."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return "\tZ" not in next(line for line in status if line.startswith("State:"))
    except FileNotFoundError:
        return False


def test_mirror_deletion_never_follows_symlinks_out_of_the_destination(tmp_path, run_blit):
    write(tmp_path / "outside" / "keep", b"not yours")
    (tmp_path / "s").mkdir()
    write(tmp_path / "d" / "extra" / "inner" / "f", b"x")
    os.symlink(tmp_path / "outside", tmp_path / "d" / "extra" / "inner" / "escape")
    os.symlink(tmp_path / "outside", tmp_path / "d" / "top-link")
    result = run_blit("mirror", "-i", f"{tmp_path / 's'}/", tmp_path / "d")
    assert result.returncode == 0, result.stderr
    assert os.listdir(tmp_path / "d") == []
    assert (tmp_path / "outside" / "keep").read_bytes() == b"not yours"
    assert "*deleting extra/inner/escape" in result.stdout


def test_destination_inside_the_source_is_allowed_when_excluded(tmp_path, run_blit):
    write(tmp_path / "data" / "f", b"x", T0)
    result = run_blit("copy", "--exclude", "/bk", f"{tmp_path / 'data'}/",
                      tmp_path / "data" / "bk")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "bk" / "f").read_bytes() == b"x"
    assert not (tmp_path / "data" / "bk" / "bk").exists()
    result = run_blit("copy", f"{tmp_path / 'data'}/", tmp_path / "data" / "bk")
    assert result.returncode == 1


def test_renamed_single_file_is_backed_up_under_its_destination_name(tmp_path, run_blit):
    write(tmp_path / "f", b"new", T0 + 1)
    write(tmp_path / "g", b"old", T0)
    result = run_blit("copy", "-b", "--backup-dir", tmp_path / "B", tmp_path / "f",
                      tmp_path / "g")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "B" / "g").read_bytes() == b"old"
    assert (tmp_path / "g").read_bytes() == b"new"
