"""A source file that changes while a data-plane Sender reads it (a sender thread writing
into a capture, decoded back; the test changes the file just after the sender opens it).

What must hold, for every way a file travels (in a tar shard, as a range by sendfile, as
compressed records, as a delta): the file is never sent as complete with the bytes of two
versions. The first change makes the sender send it again, whole, as it is now: a REDO naming
a fresh id, the new size and mtime, then that id's range with the new bytes. A file that
changes again is aborted as "changed during the transfer", and one that vanished before it
could be sent again as vanished."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.capture import Capture

from blit_core.delta.files import file_signature
from blit_core.models import entry_from_stat
from blit_core.net.dataplane import (
    CHANGED,
    SMALL_FILE,
    STOP,
    DeltaWork,
    Sender,
    ShardWork,
    Work,
    WorkQueue,
)
from blit_core.net.tuning import StreamGate
from blit_core.transfer.source import SourceFile
from blit_core.wire import frames
from blit_core.wire.compression import Compressor

NEED_ID = 7
BASIS_SEED = 3
KINDS = ["shard", "range", "compressed", "delta"]


def content(kind: str) -> bytes:
    if kind == "shard":
        return os.urandom(SMALL_FILE // 4)
    if kind == "compressed":
        return b"a line of log text that compresses well\n" * 60_000
    return os.urandom(3 * SMALL_FILE)


def rewrite(path: Path, changes: list[bytes]) -> None:
    """A new version: other bytes, 512 more of them, and a later mtime."""
    data = os.urandom(path.stat().st_size + 512)
    path.write_bytes(data)
    mtime = path.stat().st_mtime_ns + (len(changes) + 1) * 10**9
    os.utime(path, ns=(mtime, mtime))
    changes.append(data)


def send(kind: str, path: Path, change: Callable[[int], bool]) -> tuple[list, list[bytes]]:
    """One sender sends the file as `kind`; `change(n)` says whether the file changes just
    after the sender's n-th open of it. The events sent, and each version written."""
    entry = entry_from_stat(path.name, path.stat())
    file = SourceFile(0, path.name, entry)
    if kind == "shard":
        unit: object = ShardWork([Work(NEED_ID, file, str(path), path.name, 0, entry.size)])
    elif kind == "delta":
        fd = os.open(path, os.O_RDONLY)  # the basis: the file's first half
        try:
            signature = file_signature(fd, entry.size // 2, BASIS_SEED)
        finally:
            os.close(fd)
        unit = DeltaWork(NEED_ID, file, str(path), signature)
    else:
        unit = Work(NEED_ID, file, str(path), path.name, 0, entry.size)
    opens, changes = 0, []

    def open_file(where: str) -> int:
        nonlocal opens
        fd = os.open(where, os.O_RDONLY)
        opens += 1
        if change(opens):
            rewrite(path, changes)
        return fd

    out, work = Capture(), WorkQueue(4)
    work.put(unit)
    work.put(STOP)
    compressor = Compressor(3) if kind == "compressed" else None
    Sender(out, work, None, lambda *counts: None, open_file, StreamGate(1), 0,
           compressor).run()
    return out.events(), changes


def range_bytes(events: list, need_id: int) -> bytes:
    """The payload of `need_id`'s RANGE records, in order."""
    data, current = bytearray(), None
    for event in events:
        if isinstance(event, frames.RangeStart):
            current = event.need_id
            assert event.offset == len(data) or current != need_id
        elif isinstance(event, frames.Data) and current == need_id:
            data += event.chunk
        elif isinstance(event, frames.PayloadEnd):
            current = None
    return bytes(data)


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_that_changed_once_is_sent_again_whole(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(content(kind))
    events, changes = send(kind, path, lambda n: n == 1)

    assert len(changes) == 1
    redos = [e for e in events if isinstance(e, frames.Redo)]
    assert redos == [frames.Redo(NEED_ID, frames.FIRST_REDO_ID, len(changes[0]),
                                 path.stat().st_mtime_ns)]
    assert not [e for e in events if isinstance(e, frames.Abort | frames.DeltaEnd)]
    assert range_bytes(events, frames.FIRST_REDO_ID) == changes[0]
    assert isinstance(events[-1], frames.End)


@pytest.mark.parametrize("kind", KINDS)
def test_a_file_that_changes_again_is_aborted_after_one_redo(kind: str,
                                                             tmp_path: Path) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(content(kind))
    events, changes = send(kind, path, lambda n: True)

    assert len(changes) == 3  # sent, looked at again, sent again
    ends = [e for e in events if isinstance(e, frames.Redo | frames.Abort | frames.DeltaEnd)]
    assert ends == [frames.Redo(NEED_ID, frames.FIRST_REDO_ID, len(changes[1]),
                                ends[0].mtime_ns),
                    frames.Abort(frames.FIRST_REDO_ID, CHANGED)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_changed_file_that_then_vanished_is_reported_as_vanished(kind: str,
                                                                   tmp_path: Path) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(content(kind))
    changes: list[bytes] = []

    def change_then_vanish(n: int) -> bool:
        if n == 1:
            rewrite(path, changes)  # the same inode: the open file changes
            path.unlink()
        return False

    events, _ = send(kind, path, change_then_vanish)
    ends = [e for e in events if isinstance(e, frames.Redo | frames.Abort | frames.DeltaEnd)]
    assert ends == [frames.Abort(NEED_ID, "vanished during the transfer")]


def test_a_large_file_whose_other_range_changed_is_not_sent_twice(tmp_path: Path) -> None:
    """Two ranges of one file: the first finds it changed and sends it again whole; the
    second range, queued behind, is skipped (the DESTINATION ignores the old id anyway)."""
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(4 * SMALL_FILE))
    entry = entry_from_stat(path.name, path.stat())
    file = SourceFile(0, path.name, entry)
    half = entry.size // 2
    changes: list[bytes] = []

    def open_file(where: str) -> int:
        fd = os.open(where, os.O_RDONLY)
        if not changes:
            rewrite(path, changes)
        return fd

    out, work = Capture(), WorkQueue(4)
    work.put(Work(NEED_ID, file, str(path), path.name, 0, half))
    work.put(Work(NEED_ID, file, str(path), path.name, half, entry.size - half))
    work.put(STOP)
    Sender(out, work, None, lambda *counts: None, open_file, StreamGate(1), 0).run()
    events = out.events()

    starts = [(e.need_id, e.offset) for e in events if isinstance(e, frames.RangeStart)]
    assert (NEED_ID, half) not in starts
    assert range_bytes(events, frames.FIRST_REDO_ID) == changes[0]
