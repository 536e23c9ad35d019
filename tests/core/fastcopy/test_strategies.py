"""Each fast-copy mechanism copies bytes exactly, reports "unavailable" where it cannot act,
and the chain picks reflink on XFS and copy_file_range on tmpfs/ext4."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from blit_core import fastcopy
from blit_core.fastcopy import clone, copyrange, readwrite, sendfile, sparse
from blit_core.fastcopy.errors import REPORT_CHUNK, Unavailable
from blit_core.units import format_size

SIZES = [1, 4096, (1 << 20) + 17, 3 << 20]


def _copy_with(strategy, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "src").write_bytes(data)
    src_fd = os.open(tmp_path / "src", os.O_RDONLY)
    dst_fd = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        strategy(src_fd, dst_fd, size, None)
    finally:
        os.close(src_fd)
        os.close(dst_fd)
    assert (tmp_path / "dst").read_bytes() == data


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("strategy", [copyrange.copy, sendfile.copy, readwrite.copy, sparse.copy])
def test_strategy_copies_bytes_exactly(strategy, size, tmp_path):
    _copy_with(strategy, tmp_path, size)


def test_clone_is_unavailable_on_tmpfs(tmpfs):
    root = tmpfs("8M")
    with pytest.raises(Unavailable):
        _copy_with(clone.copy, root, 4096)


def test_clone_copies_on_xfs_with_reflink(xfs_reflink):
    _copy_with(clone.copy, xfs_reflink, 3 << 20)


def test_sparse_copy_keeps_holes(tmp_path):
    with open(tmp_path / "src", "wb") as handle:
        handle.truncate(32 << 20)
        handle.seek(16 << 20)
        handle.write(b"data in the middle")
    src_fd = os.open(tmp_path / "src", os.O_RDONLY)
    dst_fd = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT)
    try:
        assert sparse.data_segments(src_fd, 32 << 20) != []
        fastcopy.copy_file(src_fd, dst_fd, 32 << 20, devices=(1, 1), keep_sparse=True)
    finally:
        os.close(src_fd)
        os.close(dst_fd)
    assert (tmp_path / "dst").read_bytes() == (tmp_path / "src").read_bytes()
    assert os.stat(tmp_path / "dst").st_blocks * 512 < 1 << 20


def _strategies_used(run_blit, src: Path, dst: Path) -> dict:
    result = run_blit("copy", "--json", f"{src}/", dst)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["strategies"]


def _some_files(root: Path) -> None:
    root.mkdir()
    for index in range(3):
        (root / f"f{index}").write_bytes(os.urandom(1 << 20))


def test_blit_uses_reflink_clone_on_xfs(xfs_reflink, run_blit):
    _some_files(xfs_reflink / "src")
    used = _strategies_used(run_blit, xfs_reflink / "src", xfs_reflink / "dst")
    assert used == {"clone": {"bytes": 3 << 20, "files": 3}}
    for index in range(3):
        assert (xfs_reflink / "dst" / f"f{index}").read_bytes() == (
            xfs_reflink / "src" / f"f{index}").read_bytes()


def test_blit_uses_copy_file_range_on_tmpfs_and_ext4(tmpfs, tmp_path, run_blit):
    root = tmpfs("16M")
    _some_files(root / "src")
    assert set(_strategies_used(run_blit, root / "src", root / "dst")) == {"copy_file_range"}
    _some_files(tmp_path / "src")
    assert set(_strategies_used(run_blit, tmp_path / "src", tmp_path / "dst")) == {
        "copy_file_range"}


def test_verbose_reports_strategy_bytes(tmpfs, run_blit):
    root = tmpfs("16M")
    _some_files(root / "src")
    result = run_blit("copy", "-v", f"{root / 'src'}/", root / "dst")
    assert result.returncode == 0, result.stderr
    assert f"strategy copy_file_range: 3 files, {format_size(3 << 20)}" in result.stdout


@pytest.mark.parametrize("strategy", [copyrange.copy, sendfile.copy, readwrite.copy, sparse.copy])
def test_strategy_reports_progress_in_pieces_that_add_up(strategy, tmp_path):
    size = REPORT_CHUNK * 2 + 12345
    with open(tmp_path / "src", "wb") as handle:
        handle.truncate(size)
        for offset in range(0, size, 1 << 20):  # data throughout, so even -S copies it all
            handle.seek(offset)
            handle.write(b"x")
    reports: list[int] = []
    src_fd = os.open(tmp_path / "src", os.O_RDONLY)
    dst_fd = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT)
    try:
        # A sparse copy reports the data it copies; the holes are counted at the file's end.
        expected = (sum(length for _, length in sparse.data_segments(src_fd, size))
                    if strategy is sparse.copy else size)
        strategy(src_fd, dst_fd, size, reports.append)
    finally:
        os.close(src_fd)
        os.close(dst_fd)
    assert sum(reports) == expected
    assert len(reports) >= 3
    assert (tmp_path / "dst").read_bytes() == (tmp_path / "src").read_bytes()


def test_pipeline_reports_progress_during_one_large_file(tmpfs, monkeypatch):
    """A progress bar must move while a single huge file is copied, not only at its end."""
    from blit_core import api
    from blit_core.options import TransferOptions
    from blit_core.transfer import worker

    monkeypatch.setattr(worker, "PROGRESS_INTERVAL_S", 0.0)  # report every piece
    root = tmpfs("700M")
    (root / "src").mkdir()
    size = REPORT_CHUNK * 4 + 1
    with open(root / "src" / "big", "wb") as handle:
        handle.write(os.urandom(1 << 20) * (size >> 20))
        handle.write(b"!")

    class Recorder:
        def __init__(self) -> None:
            self.progress: list[int] = []

        def on_progress(self, num_bytes: int, files: int) -> None:
            self.progress.append(num_bytes)

        def on_planned(self, files: int, num_bytes: int) -> None: ...
        def on_item(self, event) -> None: ...
        def on_warning(self, message: str) -> None: ...
        def on_failure(self, failure) -> None: ...

    recorder = Recorder()
    api.copy([f"{root / 'src'}/"], str(root / "dst"), TransferOptions(want_progress=True),
             recorder)
    assert sum(recorder.progress) == size
    assert len([n for n in recorder.progress if n]) >= 4
