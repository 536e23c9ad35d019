"""A local source file that changes while the FsSink copies it: copied once more as it is then,
and reported if it changes again; never committed with content and metadata that disagree.
The change is made from the sink's byte-count hook, so it lands after the data was copied and
before the copy is checked, as a writer racing the copy would."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers.treecheck import find_temp_files

from blit_core.models import entry_from_stat
from blit_core.options import TransferOptions
from blit_core.transfer.sink import SOURCE_CHANGED, DestDir, FsSink

OLD_NS = 1_500_000_000_000_000_000


def copy_while_changing(tmp_path: Path, changes: list[bytes]) -> tuple[Path, Path, str]:
    """Copy src/data into dst/ while `changes` are written to the source, one each time the
    sink reports bytes copied; returns (source, destination file, the strategy used)."""
    src, dst = tmp_path / "data", tmp_path / "dst"
    src.write_bytes(b"first version")
    os.utime(src, ns=(OLD_NS, OLD_NS))
    dst.mkdir()
    entry = entry_from_stat("data", os.lstat(src))
    sink = FsSink(TransferOptions(), replace_directories=False)
    pending = list(changes)

    def change(_: int) -> None:
        if pending:
            src.write_bytes(pending.pop(0))

    sink.on_bytes = change
    dir_fd = os.open(dst, os.O_RDONLY | os.O_DIRECTORY)
    try:
        strategy = sink.commit_file(str(src), dir_fd, "data", entry, None, "data",
                                    DestDir.of(dir_fd))
    finally:
        os.close(dir_fd)
    return src, dst / "data", strategy


def test_a_file_that_changed_once_is_copied_again_as_it_is_then(tmp_path: Path) -> None:
    src, copy, _ = copy_while_changing(tmp_path, [b"second, longer version"])
    assert copy.read_bytes() == b"second, longer version"
    assert copy.stat().st_mtime_ns == src.stat().st_mtime_ns != OLD_NS
    assert find_temp_files(tmp_path / "dst") == []


@pytest.mark.parametrize("second", [b"third version", b""], ids=["rewritten", "emptied"])
def test_a_file_that_keeps_changing_is_reported_and_not_committed(
    tmp_path: Path, second: bytes,
) -> None:
    with pytest.raises(OSError, match=SOURCE_CHANGED):
        copy_while_changing(tmp_path, [b"second version", second])
    assert os.listdir(tmp_path / "dst") == []
