"""blit_core.admin's walks stop when told (the daemon tells them when the caller has gone): a
removal interrupted part-way reports what went and says it was interrupted, and leaves the
rest; a find or du ends with Interrupted. Real directories, no daemon."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from blit_core import admin

FILES = 50


class StopAfter(threading.Event):
    """A stop event that sets itself once it has been asked `checks` times."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.checks_left = checks

    def is_set(self) -> bool:
        self.checks_left -= 1
        if self.checks_left < 0:
            self.set()
        return super().is_set()


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    top = tmp_path / "top"
    top.mkdir()
    for i in range(FILES):
        (top / f"f{i:02d}").write_bytes(b"x" * 10)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd, top
    finally:
        os.close(fd)


def test_an_interrupted_removal_reports_what_went_and_leaves_the_rest(
        tree: tuple[int, Path]) -> None:
    fd, top = tree
    removal = admin.remove("/m/top", fd, "top", recursive=True, dry_run=False,
                           stop=StopAfter(10))
    left = sorted(os.listdir(top))
    assert removal.error == "interrupted before everything was removed"
    assert 0 < removal.files < FILES and removal.dirs == 0
    assert len(left) == FILES - removal.files
    assert removal.bytes == 10 * removal.files
    assert left == [f"f{i:02d}" for i in range(removal.files, FILES)]


def test_an_uninterrupted_removal_takes_everything(tree: tuple[int, Path]) -> None:
    fd, top = tree
    removal = admin.remove("/m/top", fd, "top", recursive=True, dry_run=False,
                           stop=threading.Event())
    assert (removal.files, removal.dirs, removal.bytes, removal.error) == (FILES, 1, 10 * FILES,
                                                                          "")
    assert not top.exists()


def test_find_and_du_end_with_interrupted(tree: tuple[int, Path]) -> None:
    fd, _ = tree
    found = admin.find(fd, "top", admin.FindCriteria(), StopAfter(5))
    with pytest.raises(admin.Interrupted):
        list(found)
    with pytest.raises(admin.Interrupted):
        list(admin.disk_usage(fd, "top", None, StopAfter(5)))
