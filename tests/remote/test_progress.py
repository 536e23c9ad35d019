"""What a remote transfer tells its observer, in both directions, through a real daemon: the
manifest's growing entry count ("scanning N files") ending with `finished`, and progress that
adds up to exactly the bytes and files moved."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers.daemon import Daemon

from blit_core import api
from blit_core.models import FileFailure, ItemEvent
from blit_core.options import TransferOptions, Verb


class Recorder:
    def __init__(self) -> None:
        self.scanned: list[tuple[int, bool]] = []
        self.bytes = 0
        self.files = 0

    def on_planned(self, files: int, num_bytes: int) -> None:
        return

    def on_progress(self, num_bytes: int, files: int) -> None:
        self.bytes += num_bytes
        self.files += files

    def on_scanned(self, entries: int, finished: bool) -> None:
        self.scanned.append((entries, finished))

    def on_item(self, event: ItemEvent) -> None:
        return

    def on_warning(self, message: str) -> None:
        return

    def on_failure(self, failure: FileFailure) -> None:
        raise AssertionError(failure)


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_scanning_count_and_progress_add_up(direction: str, daemon: Daemon,
                                            tmp_path: Path) -> None:
    src = (daemon.root if direction == "pull" else tmp_path) / "src"
    for d in range(40):
        (src / f"d{d}").mkdir(parents=True)
        for f in range(300):
            (src / f"d{d}" / f"f{f}").write_bytes(os.urandom(1 + f % 50))
    (src / "big").write_bytes(os.urandom(5 << 20))
    total = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    remote = daemon.endpoint("src" if direction == "pull" else "dst") + "/"
    source, destination = (remote, str(tmp_path / "dst")) if direction == "pull" else (
        f"{src}/", remote)
    recorder = Recorder()
    report = api.transfer(Verb.COPY, [source], destination,
                          TransferOptions(want_progress=True), recorder)
    assert report.exit_code == 0
    entries = 1 + 40 + 40 * 300 + 1  # the root, the directories, the files, big
    counts = [count for count, _ in recorder.scanned]
    assert counts == sorted(counts) and len(counts) > 2  # grew batch by batch
    assert recorder.scanned[-1] == (entries, True)
    assert all(not finished for _, finished in recorder.scanned[:-1])
    assert (recorder.bytes, recorder.files) == (total, 40 * 300 + 1)
