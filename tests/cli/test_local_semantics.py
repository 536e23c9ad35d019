"""Local transfers through the real `blit` command: path resolution, what is copied, the
comparison flags, mirror and move, dry-run, itemized output, backups and exit codes."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.treecheck import assert_same_tree, find_temp_files, snapshot

RSYNC = shutil.which("rsync")
needs_rsync = pytest.mark.skipif(RSYNC is None, reason="rsync is not installed")


def write(path: Path, data: bytes, mtime_ns: int | None = None, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mode is not None:
        path.chmod(mode)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def report_of(result: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(result.stdout)


# -- resolution: rsync's trailing-slash rules, checked against rsync itself -----------------

RESOLUTION_CASES = [
    # (sources relative to the work dir, destination, destination prepared as)
    (["src/"], "dst", None),
    (["src/"], "dst", "dir"),
    (["src"], "dst", None),
    (["src"], "dst", "dir"),
    (["src"], "dst/", None),
    (["src/a.txt"], "dst", None),
    (["src/a.txt"], "dst/", None),
    (["src/a.txt"], "dst", "dir"),
    (["src/a.txt"], "dst", "file"),
    (["src/a.txt", "src/sub"], "dst", None),
    (["src/sub/", "src/a.txt"], "dst", "dir"),
]


@needs_rsync
@pytest.mark.parametrize(("sources", "dest", "prepared"), RESOLUTION_CASES)
def test_resolution_matches_rsync(tmp_path, run_blit, sources, dest, prepared):
    for tool in ("blit", "rsync"):
        work = tmp_path / tool
        write(work / "src" / "a.txt", b"alpha", 1_600_000_000_123_456_789)
        write(work / "src" / "sub" / "b.txt", b"beta", 1_600_000_000_000_000_001)
        for directory in (work / "src" / "sub", work / "src"):
            os.utime(directory, ns=(1_600_000_000_000_000_005, 1_600_000_000_000_000_005))
        if prepared == "dir":
            (work / "dst").mkdir()
        elif prepared == "file":
            write(work / "dst", b"old")
        if tool == "blit":
            ok(run_blit("copy", *sources, dest, cwd=work))
        else:
            subprocess.run([RSYNC, "-a", *sources, dest], cwd=work, check=True)
    # The work directories hold the source and the result; DST's own mtime is "now" for each
    # tool unless DST is the copy of a source root.
    root_is_a_copy = sources == ["src/"]
    assert_same_tree(
        tmp_path / "blit", tmp_path / "rsync", check_root_meta=False,
        ignore=None if root_is_a_copy else (lambda path: path == "dst"),
    )


def test_several_sources_need_a_directory_destination(tmp_path, run_blit):
    write(tmp_path / "a", b"1")
    write(tmp_path / "b", b"2")
    write(tmp_path / "dst", b"a file")
    result = run_blit("copy", tmp_path / "a", tmp_path / "b", tmp_path / "dst")
    assert result.returncode == 1
    assert "not a directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_source_is_a_selection_error(tmp_path, run_blit):
    result = run_blit("copy", tmp_path / "nope", tmp_path / "dst")
    assert result.returncode == 3
    assert result.stderr.startswith("blit: error: source")
    assert not (tmp_path / "dst").exists()


def test_usage_error_exits_1_with_a_pointer_to_help(run_blit):
    result = run_blit("copy", "--no-such-flag", "a", "b")
    assert result.returncode == 1
    assert "--help" in result.stderr


# -- what is copied -------------------------------------------------------------------------


def test_copy_keeps_content_modes_and_nanosecond_mtimes(small_tree, tmp_path, run_blit):
    ok(run_blit("copy", f"{small_tree}/", tmp_path / "dst"))
    assert_same_tree(small_tree, tmp_path / "dst")
    assert os.readlink(tmp_path / "dst" / "link_to_a") == "a.txt"


def test_symlinks_are_copied_as_links_and_followed_with_copy_links(tmp_path, run_blit):
    src = tmp_path / "src"
    write(src / "real.txt", b"real content")
    (src / "dir").mkdir()
    write(src / "dir" / "inner", b"inner")
    os.symlink("real.txt", src / "link")
    os.symlink("dir", src / "dirlink")
    os.symlink("missing", src / "dangling")
    ok(run_blit("copy", f"{src}/", tmp_path / "plain"))
    assert os.readlink(tmp_path / "plain" / "link") == "real.txt"
    assert os.readlink(tmp_path / "plain" / "dirlink") == "dir"
    assert os.readlink(tmp_path / "plain" / "dangling") == "missing"

    result = run_blit("copy", "-L", f"{src}/", tmp_path / "followed")
    assert result.returncode == 23  # the dangling link has no referent
    followed = tmp_path / "followed"
    assert not (followed / "link").is_symlink()
    assert (followed / "link").read_bytes() == b"real content"
    assert (followed / "dirlink" / "inner").read_bytes() == b"inner"
    assert "dangling" in result.stderr


def test_hard_links_are_kept_with_H(tmp_path, run_blit):
    src = tmp_path / "src"
    write(src / "one", b"shared")
    (src / "d").mkdir()
    os.link(src / "one", src / "two")
    os.link(src / "one", src / "d" / "three")
    ok(run_blit("copy", "-H", f"{src}/", tmp_path / "with"))
    inodes = {os.lstat(tmp_path / "with" / p).st_ino for p in ("one", "two", "d/three")}
    assert len(inodes) == 1
    ok(run_blit("copy", f"{src}/", tmp_path / "without"))
    inodes = {os.lstat(tmp_path / "without" / p).st_ino for p in ("one", "two", "d/three")}
    assert len(inodes) == 3


def test_sparse_files_stay_sparse_with_S(tmp_path, run_blit):
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as handle:
        handle.truncate(64 << 20)
        handle.seek(32 << 20)
        handle.write(b"middle")
    ok(run_blit("copy", "-S", f"{src}/", tmp_path / "dst"))
    copied = tmp_path / "dst" / "sparse"
    assert copied.stat().st_size == 64 << 20
    assert copied.stat().st_blocks * 512 < 1 << 20
    with open(copied, "rb") as handle:
        handle.seek(32 << 20)
        assert handle.read(6) == b"middle"


def test_fifo_is_skipped_with_a_warning_unless_specials(tmp_path, run_blit):
    src = tmp_path / "src"
    write(src / "file", b"x")
    os.mkfifo(src / "pipe")
    result = ok(run_blit("copy", f"{src}/", tmp_path / "dst"))
    assert "skipping non-regular file" in result.stderr
    assert not (tmp_path / "dst" / "pipe").exists()
    if os.geteuid() == 0:
        ok(run_blit("copy", "--specials", f"{src}/", tmp_path / "dst2"))
        assert stat.S_ISFIFO(os.lstat(tmp_path / "dst2" / "pipe").st_mode)


def test_read_only_source_directory_is_copied_with_its_mode(tmp_path, run_blit):
    src = tmp_path / "src"
    write(src / "ro" / "inside", b"data")
    (src / "ro").chmod(0o555)
    ok(run_blit("copy", f"{src}/", tmp_path / "dst"))
    assert stat.S_IMODE(os.stat(tmp_path / "dst" / "ro").st_mode) == 0o555
    assert (tmp_path / "dst" / "ro" / "inside").read_bytes() == b"data"


def test_destination_file_where_a_directory_is_expected_is_replaced(tmp_path, run_blit):
    src = tmp_path / "src"
    write(src / "thing" / "inner", b"inner")
    write(tmp_path / "dst" / "thing", b"i am a file")
    ok(run_blit("copy", f"{src}/", tmp_path / "dst"))
    assert (tmp_path / "dst" / "thing" / "inner").read_bytes() == b"inner"


# -- comparison flags -----------------------------------------------------------------------

T0 = 1_700_000_000_000_000_000


@pytest.fixture
def same_size_pair(tmp_path):
    """A source and destination file with the same size and mtime but different content."""
    write(tmp_path / "src" / "f", b"new content", T0)
    write(tmp_path / "dst" / "f", b"old content", T0)
    return tmp_path / "src", tmp_path / "dst"


def test_quick_check_skips_same_size_and_mtime(same_size_pair, run_blit):
    src, dst = same_size_pair
    ok(run_blit("copy", f"{src}/", dst))
    assert (dst / "f").read_bytes() == b"old content"


def test_checksum_compares_content(same_size_pair, run_blit):
    src, dst = same_size_pair
    result = ok(run_blit("copy", "-c", "-i", f"{src}/", dst))
    assert (dst / "f").read_bytes() == b"new content"
    assert ">fc" in result.stdout


def test_ignore_times_always_transfers(same_size_pair, run_blit):
    src, dst = same_size_pair
    ok(run_blit("copy", "-I", f"{src}/", dst))
    assert (dst / "f").read_bytes() == b"new content"


def test_mtime_difference_of_one_nanosecond_transfers(tmp_path, run_blit):
    write(tmp_path / "src" / "f", b"new content", T0 + 1)
    write(tmp_path / "dst" / "f", b"old content", T0)
    ok(run_blit("copy", f"{tmp_path / 'src'}/", tmp_path / "dst"))
    assert (tmp_path / "dst" / "f").read_bytes() == b"new content"


def test_modify_window_treats_close_mtimes_as_equal(tmp_path, run_blit):
    write(tmp_path / "src" / "f", b"new content", T0 + 900_000_000)
    write(tmp_path / "dst" / "f", b"old content", T0)
    ok(run_blit("copy", "--modify-window", "1", f"{tmp_path / 'src'}/", tmp_path / "dst"))
    assert (tmp_path / "dst" / "f").read_bytes() == b"old content"


def test_size_only_ignores_mtime_but_updates_it(tmp_path, run_blit):
    write(tmp_path / "src" / "f", b"new content", T0 + 5)
    write(tmp_path / "dst" / "f", b"old content", T0)
    ok(run_blit("copy", "--size-only", f"{tmp_path / 'src'}/", tmp_path / "dst"))
    assert (tmp_path / "dst" / "f").read_bytes() == b"old content"
    assert os.stat(tmp_path / "dst" / "f").st_mtime_ns == T0 + 5


def test_update_skips_files_newer_at_destination(tmp_path, run_blit):
    write(tmp_path / "src" / "older", b"from source", T0)
    write(tmp_path / "dst" / "older", b"newer at destination", T0 + 10**9)
    write(tmp_path / "src" / "newer", b"from source", T0 + 10**9)
    write(tmp_path / "dst" / "newer", b"stale", T0)
    ok(run_blit("copy", "-u", f"{tmp_path / 'src'}/", tmp_path / "dst"))
    assert (tmp_path / "dst" / "older").read_bytes() == b"newer at destination"
    assert (tmp_path / "dst" / "newer").read_bytes() == b"from source"


def test_ignore_existing_and_existing(tmp_path, run_blit):
    write(tmp_path / "src" / "both", b"source version", T0 + 1)
    write(tmp_path / "src" / "only_src", b"new")
    write(tmp_path / "dst" / "both", b"dest version", T0)
    ok(run_blit("copy", "--ignore-existing", f"{tmp_path / 'src'}/", tmp_path / "dst"))
    assert (tmp_path / "dst" / "both").read_bytes() == b"dest version"
    assert (tmp_path / "dst" / "only_src").read_bytes() == b"new"

    (tmp_path / "dst" / "only_src").unlink()
    ok(run_blit("copy", "--existing", f"{tmp_path / 'src'}/", tmp_path / "dst"))
    assert (tmp_path / "dst" / "both").read_bytes() == b"source version"
    assert not (tmp_path / "dst" / "only_src").exists()


def test_changed_permissions_alone_are_applied_without_a_copy(tmp_path, run_blit):
    write(tmp_path / "src" / "f", b"same", T0, mode=0o600)
    write(tmp_path / "dst" / "f", b"same", T0, mode=0o644)
    inode = os.stat(tmp_path / "dst" / "f").st_ino
    result = ok(run_blit("copy", "-i", f"{tmp_path / 'src'}/", tmp_path / "dst"))
    assert stat.S_IMODE(os.stat(tmp_path / "dst" / "f").st_mode) == 0o600
    assert os.stat(tmp_path / "dst" / "f").st_ino == inode
    assert ".f...p..... f" in result.stdout


def test_min_and_max_size(tmp_path, run_blit):
    write(tmp_path / "src" / "small", b"x" * 10)
    write(tmp_path / "src" / "medium", b"x" * 2048)
    write(tmp_path / "src" / "large", b"x" * 10_000)
    ok(run_blit("copy", "--min-size", "1K", "--max-size", "4K",
                f"{tmp_path / 'src'}/", tmp_path / "dst"))
    assert sorted(os.listdir(tmp_path / "dst")) == ["medium"]


# -- writes ---------------------------------------------------------------------------------


def test_replacement_is_a_new_inode_and_inplace_keeps_the_inode(tmp_path, run_blit):
    write(tmp_path / "src" / "f", b"version two", T0 + 1)
    write(tmp_path / "dst" / "f", b"version one, longer", T0)
    before = os.stat(tmp_path / "dst" / "f").st_ino
    ok(run_blit("copy", f"{tmp_path / 'src'}/", tmp_path / "dst"))
    assert os.stat(tmp_path / "dst" / "f").st_ino != before

    write(tmp_path / "src" / "f", b"v3", T0 + 2)
    before = os.stat(tmp_path / "dst" / "f").st_ino
    ok(run_blit("copy", "--inplace", f"{tmp_path / 'src'}/", tmp_path / "dst"))
    assert os.stat(tmp_path / "dst" / "f").st_ino == before
    assert (tmp_path / "dst" / "f").read_bytes() == b"v3"
    assert os.stat(tmp_path / "dst" / "f").st_mtime_ns == T0 + 2


def test_backup_keeps_replaced_and_deleted_files(tmp_path, run_blit):
    write(tmp_path / "src" / "f", b"new", T0 + 1)
    write(tmp_path / "dst" / "f", b"old", T0)
    write(tmp_path / "dst" / "gone", b"extraneous")
    ok(run_blit("mirror", "-b", f"{tmp_path / 'src'}/", tmp_path / "dst"))
    assert (tmp_path / "dst" / "f").read_bytes() == b"new"
    assert (tmp_path / "dst" / "f~").read_bytes() == b"old"
    assert (tmp_path / "dst" / "gone~").read_bytes() == b"extraneous"
    assert not (tmp_path / "dst" / "gone").exists()


def test_backup_dir_keeps_relative_paths(tmp_path, run_blit):
    write(tmp_path / "src" / "sub" / "f", b"new", T0 + 1)
    write(tmp_path / "dst" / "sub" / "f", b"old", T0)
    backups = tmp_path / "backups"
    ok(run_blit("copy", "--backup-dir", backups, f"{tmp_path / 'src'}/", tmp_path / "dst"))
    assert (backups / "sub" / "f").read_bytes() == b"old"
    assert (tmp_path / "dst" / "sub" / "f").read_bytes() == b"new"


def test_fsync_option_still_produces_an_identical_tree(small_tree, tmp_path, run_blit):
    ok(run_blit("copy", "--fsync", f"{small_tree}/", tmp_path / "dst"))
    assert_same_tree(small_tree, tmp_path / "dst")


# -- mirror ---------------------------------------------------------------------------------


def test_mirror_deletes_extraneous_entries_deepest_first(small_tree, tmp_path, run_blit):
    dst = tmp_path / "dst"
    ok(run_blit("copy", f"{small_tree}/", dst))
    write(dst / "extra.txt", b"x")
    write(dst / "old_dir" / "deep" / "file", b"y")
    os.symlink("nowhere", dst / "extra_link")
    result = ok(run_blit("mirror", "-i", f"{small_tree}/", dst))
    assert_same_tree(small_tree, dst)
    lines = result.stdout.splitlines()
    deleting = [line.split(None, 1)[1] for line in lines if line.startswith("*deleting")]
    assert deleting.index("old_dir/deep/file") < deleting.index("old_dir/deep/")
    assert deleting.index("old_dir/deep/") < deleting.index("old_dir/")
    assert {"extra.txt", "extra_link"} <= set(deleting)


def test_copy_never_deletes(small_tree, tmp_path, run_blit):
    dst = tmp_path / "dst"
    write(dst / "extra.txt", b"keep me")
    ok(run_blit("copy", f"{small_tree}/", dst))
    assert (dst / "extra.txt").read_bytes() == b"keep me"


def test_max_delete_stops_deletions_with_exit_25(small_tree, tmp_path, run_blit):
    dst = tmp_path / "dst"
    ok(run_blit("copy", f"{small_tree}/", dst))
    for index in range(5):
        write(dst / f"extra{index}", b"x")
    result = run_blit("mirror", "--max-delete", "2", f"{small_tree}/", dst)
    assert result.returncode == 25, result.stderr
    remaining = [name for name in os.listdir(dst) if name.startswith("extra")]
    assert len(remaining) == 3
    assert "max-delete" in result.stderr


def test_excluded_entries_are_protected_unless_delete_excluded(small_tree, tmp_path, run_blit):
    dst = tmp_path / "dst"
    ok(run_blit("copy", f"{small_tree}/", dst))
    write(dst / "keep.log", b"log")
    ok(run_blit("mirror", "--exclude", "*.log", f"{small_tree}/", dst))
    assert (dst / "keep.log").exists()
    write(small_tree / "src.log", b"source log")
    ok(run_blit("mirror", "--exclude", "*.log", "--delete-excluded", f"{small_tree}/", dst))
    assert not (dst / "keep.log").exists()
    assert not (dst / "src.log").exists()


def test_mirror_of_a_directory_without_slash_deletes_inside_its_copy_only(tmp_path, run_blit):
    write(tmp_path / "src" / "a", b"a")
    write(tmp_path / "dst" / "unrelated", b"stays")
    write(tmp_path / "dst" / "src" / "stale", b"goes")
    ok(run_blit("mirror", tmp_path / "src", tmp_path / "dst"))
    assert (tmp_path / "dst" / "unrelated").exists()
    assert not (tmp_path / "dst" / "src" / "stale").exists()
    assert (tmp_path / "dst" / "src" / "a").read_bytes() == b"a"


# -- move -----------------------------------------------------------------------------------


def test_move_removes_sources_after_commit(small_tree, tmp_path, run_blit):
    reference = tmp_path / "reference"
    shutil.copytree(small_tree, reference, symlinks=True)
    ok(run_blit("move", small_tree, tmp_path / "dst"))
    assert not small_tree.exists()
    assert_same_tree(reference, tmp_path / "dst" / "small", check_root_meta=False)


def test_move_with_trailing_slash_keeps_the_source_root(small_tree, tmp_path, run_blit):
    ok(run_blit("move", f"{small_tree}/", tmp_path / "dst"))
    assert small_tree.is_dir()
    assert os.listdir(small_tree) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="chattr +i needs root")
def test_move_keeps_every_source_whose_copy_failed(small_tree, tmp_path, run_blit):
    dst = tmp_path / "dst"
    (dst / "sub1").mkdir(parents=True)
    if subprocess.run(["chattr", "+i", dst / "sub1"], check=False).returncode:
        pytest.skip("the filesystem under tmp_path does not support chattr +i")
    try:
        result = run_blit("move", f"{small_tree}/", dst)
    finally:
        subprocess.run(["chattr", "-i", dst / "sub1"], check=True)
    assert result.returncode == 23, result.stderr
    kept = sorted(p.name for p in (small_tree / "sub1").iterdir() if p.is_file())
    assert kept == [f"file{i:02d}.dat" for i in range(10)]
    assert not (small_tree / "a.txt").exists()
    assert (dst / "a.txt").exists()
    assert "sub1/file00.dat" in result.stderr
    assert find_temp_files(dst) == []


# -- output ---------------------------------------------------------------------------------


def test_dry_run_changes_nothing_and_lists_what_would_happen(small_tree, tmp_path, run_blit):
    dst = tmp_path / "dst"
    ok(run_blit("copy", f"{small_tree}/", dst))
    write(small_tree / "new.txt", b"new")
    write(dst / "extra", b"x")
    os.utime(small_tree / "a.txt", ns=(T0, T0))
    before = (snapshot(small_tree), snapshot(dst))
    for verb in ("mirror", "move"):
        result = ok(run_blit(verb, "-n", f"{small_tree}/", dst))
        assert "new.txt" in result.stdout
        assert (snapshot(small_tree), snapshot(dst)) == before
    result = ok(run_blit("mirror", "-n", "-i", f"{small_tree}/", dst))
    assert ">f+++++++++ new.txt" in result.stdout
    assert ">f..t...... a.txt" in result.stdout
    assert "*deleting   extra" not in result.stdout  # rsync pads to 11 columns, one space
    assert "*deleting extra" in result.stdout


def test_itemize_codes_for_new_entries(small_tree, tmp_path, run_blit):
    result = ok(run_blit("copy", "-i", f"{small_tree}/", tmp_path / "dst"))
    lines = set(result.stdout.splitlines())
    assert "cd+++++++++ ./" in lines
    assert ">f+++++++++ a.txt" in lines
    assert "cd+++++++++ sub1/" in lines
    assert ">f+++++++++ sub1/nested/file00.dat" in lines
    assert "cL+++++++++ link_to_a -> a.txt" in lines
    again = ok(run_blit("copy", "-i", f"{small_tree}/", tmp_path / "dst"))
    assert again.stdout == ""


def test_verbose_lists_names_and_names_are_escaped(tmp_path, run_blit):
    write(tmp_path / "src" / "line\nbreak", b"x")
    result = ok(run_blit("copy", "-v", f"{tmp_path / 'src'}/", tmp_path / "dst"))
    assert "line\\#012break" in result.stdout
    assert (tmp_path / "dst" / "line\nbreak").read_bytes() == b"x"


def test_json_summary(small_tree, tmp_path, run_blit):
    result = ok(run_blit("mirror", "--json", f"{small_tree}/", tmp_path / "dst"))
    report = report_of(result)
    assert report["exit_code"] == 0
    assert report["files"]["transferred"] == 30
    assert report["bytes"]["transferred"] == sum(
        p.stat().st_size for p in small_tree.rglob("*") if p.is_file() and not p.is_symlink()
    )
    assert report["failures"] == []
    assert sum(s["files"] for s in report["strategies"].values()) == report["files"][
        "transferred"] - sum(1 for p in small_tree.rglob("*") if p.is_file()
                             and not p.is_symlink() and p.stat().st_size == 0)
    again = report_of(ok(run_blit("mirror", "--json", f"{small_tree}/", tmp_path / "dst")))
    assert again["files"]["transferred"] == 0
    assert again["files"]["unchanged"] == 31  # 30 files and one symlink


def test_stats_block(small_tree, tmp_path, run_blit):
    result = ok(run_blit("copy", "--stats", f"{small_tree}/", tmp_path / "dst"))
    assert "Number of regular files transferred: 30" in result.stdout


def test_progress_forced_when_piped_goes_to_stderr(small_tree, tmp_path, run_blit):
    result = ok(run_blit("copy", "-P", f"{small_tree}/", tmp_path / "dst"))
    assert result.stdout == ""
    assert "blit copy: 30 files" in result.stderr


def test_files_from_transfers_only_the_listed_paths(small_tree, tmp_path, run_blit):
    listing = tmp_path / "list"
    listing.write_text("a.txt\nsub1/nested/file01.dat\n# a comment\n")
    ok(run_blit("copy", "--files-from", listing, f"{small_tree}/", tmp_path / "dst"))
    copied = sorted(str(p.relative_to(tmp_path / "dst")) for p in (tmp_path / "dst").rglob("*"))
    assert copied == ["a.txt", "sub1", "sub1/nested", "sub1/nested/file01.dat"]


def test_exclude_does_not_descend_and_include_wins_when_first(small_tree, tmp_path, run_blit):
    ok(run_blit("copy", "--include", "sub1/nested/", "--exclude", "nested/",
                "--exclude", "sub2", f"{small_tree}/", tmp_path / "dst"))
    assert (tmp_path / "dst" / "sub1" / "nested" / "file00.dat").exists()
    assert not (tmp_path / "dst" / "sub2").exists()


def test_library_does_not_print(tmp_path):
    """blit_core reports through the observer only: a library call writes nothing."""
    write(tmp_path / "src" / "f", b"x")
    code = (
        "from blit_core import api; from blit_core.options import TransferOptions;"
        f"api.mirror([{str(tmp_path / 'src')!r} + '/'], {str(tmp_path / 'dst')!r},"
        " TransferOptions(want_events=True))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout == "" and result.stderr == ""
    assert (tmp_path / "dst" / "f").read_bytes() == b"x"


def test_mirror_keeps_a_backup_dir_inside_the_destination(tmp_path, run_blit):
    write(tmp_path / "src" / "f", b"new", T0 + 1)
    write(tmp_path / "dst" / "f", b"old", T0)
    ok(run_blit("mirror", "--backup-dir", "old-versions", f"{tmp_path / 'src'}/",
                tmp_path / "dst"))
    assert (tmp_path / "dst" / "old-versions" / "f").read_bytes() == b"old"
    ok(run_blit("mirror", "--backup-dir", "old-versions", f"{tmp_path / 'src'}/",
                tmp_path / "dst"))
    assert (tmp_path / "dst" / "old-versions" / "f").read_bytes() == b"old"


@pytest.mark.skipif(os.geteuid() != 0, reason="keeping owners needs root")
def test_owner_and_group_are_kept_as_root(tmp_path, run_blit):
    write(tmp_path / "src" / "owned", b"x")
    (tmp_path / "src" / "dir").mkdir()
    os.symlink("owned", tmp_path / "src" / "link")
    for name in ("owned", "dir", "link"):
        os.lchown(tmp_path / "src" / name, 1234, 5678)
    ok(run_blit("copy", f"{tmp_path / 'src'}/", tmp_path / "dst"))
    for name in ("owned", "dir", "link"):
        st = os.lstat(tmp_path / "dst" / name)
        assert (st.st_uid, st.st_gid) == (1234, 5678), name


@pytest.mark.skipif(os.geteuid() != 0, reason="creating device files needs root")
def test_devices_are_copied_only_with_devices(tmp_path, run_blit):
    (tmp_path / "src").mkdir()
    os.mknod(tmp_path / "src" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    result = ok(run_blit("copy", f"{tmp_path / 'src'}/", tmp_path / "plain"))
    assert "skipping non-regular file" in result.stderr
    assert not (tmp_path / "plain" / "null").exists()
    ok(run_blit("copy", "--devices", f"{tmp_path / 'src'}/", tmp_path / "dev"))
    st = os.lstat(tmp_path / "dev" / "null")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)


@pytest.mark.parametrize("jobs", ["1", "2", "3"])
def test_every_entry_lands_whatever_the_worker_count(tmp_path, run_blit, jobs):
    """Large directories are split into copy batches shared between workers; the inline
    pool (-j 1) and process pools must land exactly the same tree."""
    src = tmp_path / "src"
    for index in range(1500):
        write(src / "big" / f"f{index:05d}", index.to_bytes(4, "big") * 10, T0 + index)
    for index in range(40):
        write(src / f"d{index}" / "sub" / "leaf", b"leaf", T0)
    os.utime(src / "big", ns=(T0, T0))
    report = report_of(ok(run_blit("mirror", "-j", jobs, "--json", f"{src}/",
                                   tmp_path / "dst")))
    assert report["files"]["transferred"] == 1540
    assert_same_tree(src, tmp_path / "dst")
    again = report_of(ok(run_blit("mirror", "-j", jobs, "--json", f"{src}/", tmp_path / "dst")))
    assert again["files"]["unchanged"] == 1540


@pytest.mark.parametrize("verb", ["copy", "mirror", "move"])
def test_overlapping_source_and_destination_are_refused(tmp_path, run_blit, verb):
    write(tmp_path / "a" / "f", b"precious")
    write(tmp_path / "file", b"a file")
    for args in ((f"{tmp_path / 'a'}/", f"{tmp_path / 'a'}/"),
                 (f"{tmp_path / 'a'}/", tmp_path / "a" / "inner"),
                 (tmp_path / "a", tmp_path),
                 (tmp_path / "file", tmp_path / "file"),
                 (f"{tmp_path / 'a'}/", tmp_path / "file")):
        result = run_blit(verb, *args)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.startswith("blit: error:")
    assert (tmp_path / "a" / "f").read_bytes() == b"precious"
    assert not (tmp_path / "a" / "inner").exists()
    assert (tmp_path / "file").read_bytes() == b"a file"


def test_filter_options_apply_in_command_line_order(small_tree, tmp_path, run_blit):
    (tmp_path / "includes").write_text("sub1/nested/\n# comment\n")
    (tmp_path / "excludes").write_text("nested/\n*.sh\n")
    ok(run_blit("copy", "--include-from", tmp_path / "includes",
                "--exclude-from", tmp_path / "excludes",
                "--filter", "- sub2/", "--filter", "+ secret", "--exclude", "secret",
                f"{small_tree}/", tmp_path / "dst"))
    dst = tmp_path / "dst"
    assert (dst / "sub1" / "nested" / "file00.dat").exists()  # the include came first
    assert not (dst / "exec.sh").exists()
    assert not (dst / "sub2").exists()
    assert (dst / "secret").exists()  # '+ secret' precedes '--exclude secret'
    result = run_blit("copy", "--filter", "protect x", f"{small_tree}/", tmp_path / "dst2")
    assert result.returncode == 1
    result = run_blit("copy", "--exclude-from", tmp_path / "missing", f"{small_tree}/",
                      tmp_path / "dst3")
    assert result.returncode == 3
