"""Self-tests for the shared fixtures (conftest.py) and tests/helpers/treecheck.py.

They prove that the tree comparison can actually fail (mtime, mode, content, symlink target,
missing/extra entries), that the nasty tree builds with the promised properties, and that
the mount fixtures work where they can.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers.treecheck import (
    assert_same_tree,
    find_temp_files,
    hardlink_groups,
    is_sparse,
    snapshot,
)

if TYPE_CHECKING:
    from conftest import NastyTree, RunBlit


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def _touch_mtime(path: Path) -> None:
    st = os.lstat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1), follow_symlinks=False)


def _flip_content(path: Path) -> None:
    """Change one byte but keep size and mtime, so only the digest can notice."""
    st = os.stat(path)
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _retarget_link(path: Path) -> None:
    st = os.lstat(path)
    path.unlink()
    os.symlink("b.bin", path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


MUTATIONS: dict[str, tuple[Callable[[Path], None], str]] = {
    "file mtime": (lambda r: _touch_mtime(r / "a.txt"), "'a.txt': mtime_ns differs"),
    "dir mtime": (lambda r: _touch_mtime(r / "sub1"), "'sub1': mtime_ns differs"),
    "link mtime": (lambda r: _touch_mtime(r / "link_to_a"), "'link_to_a': mtime_ns differs"),
    "mode": (lambda r: os.chmod(r / "secret", 0o640), "'secret': mode differs: a=0o600 b=0o640"),
    "content": (lambda r: _flip_content(r / "sub2" / "file03.dat"), "digest differs"),
    "link target": (lambda r: _retarget_link(r / "link_to_a"), "target differs"),
    "missing": (lambda r: (r / "sub1" / "file00.dat").unlink(), "missing in b: 'sub1/file00.dat'"),
    "extra": (lambda r: (r / "empty_dir" / "new").touch(), "extra in b:   'empty_dir/new'"),
}


def test_copy_of_small_tree_is_same(small_tree: Path, tmp_path: Path) -> None:
    assert len([v for v in snapshot(small_tree).values() if v[0] == "f"]) == 30
    assert_same_tree(small_tree, _copy(small_tree, tmp_path / "copy"))


@pytest.mark.parametrize("name", MUTATIONS)
def test_assert_same_tree_detects(name: str, small_tree: Path, tmp_path: Path) -> None:
    mutate, expected = MUTATIONS[name]
    copy = _copy(small_tree, tmp_path / "copy")
    mutate(copy)
    # Parent-directory mtimes change for missing/extra; ignore them to test one thing.
    ignore = None if "mtime" in name else (lambda rel: rel in ("", "sub1", "empty_dir"))
    with pytest.raises(AssertionError) as excinfo:
        assert_same_tree(small_tree, copy, ignore=ignore)
    assert expected in str(excinfo.value)


def test_root_meta_and_ignore(small_tree: Path, tmp_path: Path) -> None:
    copy = _copy(small_tree, tmp_path / "copy")
    os.chmod(copy, 0o700)
    with pytest.raises(AssertionError, match="'': mode differs"):
        assert_same_tree(small_tree, copy)
    assert_same_tree(small_tree, copy, check_root_meta=False)
    (copy / "sub2" / ".x.123.blit-tmp").write_bytes(b"")
    assert find_temp_files(copy) == ["sub2/.x.123.blit-tmp"]
    assert_same_tree(
        small_tree, copy, check_root_meta=False, ignore=lambda rel: rel in ("sub2", "")
        or rel.endswith(".blit-tmp")
    )


def test_difference_list_is_capped(small_tree: Path, tmp_path: Path) -> None:
    copy = _copy(small_tree, tmp_path / "copy")
    for f in copy.rglob("*.dat"):  # 25 files
        os.chmod(f, 0o777)
    with pytest.raises(AssertionError) as excinfo:
        assert_same_tree(small_tree, copy)
    assert "... and " in str(excinfo.value)
    assert len(str(excinfo.value).splitlines()) == 22


def test_nasty_tree_properties(nasty_tree: NastyTree) -> None:
    root = nasty_tree.root
    snap = snapshot(root)
    for field in (
        "sparse_file", "readonly_dir", "readonly_file", "nfc_name", "nfd_name",
        "newline_name", "long_ascii_name", "long_utf8_name", "non_utf8_name", "deep_dir",
        "deep_file", "symlink_rel_file", "symlink_abs_external", "symlink_abs_internal",
        "symlink_dangling", "symlink_dir", "many_dir",
    ):
        assert getattr(nasty_tree, field) in snap, field
    assert nasty_tree.nfc_name != nasty_tree.nfd_name
    assert snap[nasty_tree.nfc_name][6] != snap[nasty_tree.nfd_name][6]
    assert len(os.fsencode(os.path.basename(nasty_tree.long_ascii_name))) == 255
    assert len(os.fsencode(os.path.basename(nasty_tree.long_utf8_name))) == 255
    assert nasty_tree.deep_dir.count("/") == nasty_tree.depth
    assert snap[nasty_tree.readonly_dir][1] == 0o555
    assert {m: snap[p][1] for m, p in nasty_tree.mode_files.items()} == {
        m: m for m in nasty_tree.mode_files
    }
    assert snap[nasty_tree.symlink_dangling][0] == "l"
    assert not os.path.exists(root / nasty_tree.symlink_dangling)
    assert os.path.isabs(snap[nasty_tree.symlink_abs_internal][7])
    assert hardlink_groups(root) == {
        frozenset(nasty_tree.hardlink_pair), frozenset(nasty_tree.hardlink_triple)
    }
    sparse = root / nasty_tree.sparse_file
    assert os.stat(sparse).st_size == nasty_tree.sparse_size
    assert is_sparse(sparse)
    assert os.stat(sparse).st_blocks * 512 < 1024 * 1024
    assert sum(1 for v in snap.values() if v[0] == "f") == nasty_tree.file_count
    many = [k for k in snap if k.startswith("many/") and snap[k][0] == "f"]
    assert len(many) == nasty_tree.many_count == 10_000
    assert all(v[2] % 10**9 != 0 for v in snap.values())  # non-zero nanoseconds everywhere
    assert find_temp_files(root) == []


def test_nasty_tree_copytree(nasty_tree: NastyTree, tmp_path: Path) -> None:
    # The sparse file is skipped: copytree would write all 256 MiB of it.
    copy = tmp_path / "copy"
    shutil.copytree(
        nasty_tree.root, copy, symlinks=True, ignore=shutil.ignore_patterns(nasty_tree.sparse_file)
    )
    # copytree(symlinks=True) keeps types, modes, mtimes, contents and link targets ...
    assert_same_tree(nasty_tree.root, copy, ignore=lambda rel: rel == nasty_tree.sparse_file)
    # ... but breaks hard links.
    assert hardlink_groups(copy) == set()


def test_tmpfs(tmpfs: Callable[..., Path]) -> None:
    mnt = tmpfs("1M")
    assert os.path.ismount(mnt)
    st = os.statvfs(mnt)
    assert st.f_blocks * st.f_frsize == 1024 * 1024
    with pytest.raises(OSError):
        (mnt / "big").write_bytes(b"x" * 2 * 1024 * 1024)


def test_xfs_reflink(xfs_reflink: Path) -> None:
    assert os.path.ismount(xfs_reflink)
    src = xfs_reflink / "src"
    src.write_bytes(os.urandom(1024 * 1024))
    proc = subprocess.run(
        ["cp", "--reflink=always", str(src), str(xfs_reflink / "dst")],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (xfs_reflink / "dst").read_bytes() == src.read_bytes()


@pytest.mark.skipif(not _has_module("blit_cli.__main__"), reason="blit_cli.__main__ not there yet")
def test_run_blit_help(run_blit: RunBlit) -> None:
    proc = run_blit("--help")
    assert proc.returncode == 0, proc.stderr
    assert "blit" in proc.stdout.lower()
