"""A DESTINATION's delta of a file that is its basis byte for byte (only its mtime is new):
the basis stays where it is, with the new metadata, only while it is still the file signed,
untouched, under that name and no other. Otherwise the file is rebuilt from the basis as
opened for the delta, or asked for whole when that no longer checks out. Driven through
Destination's own calls, so each change lands between exactly the steps it must."""

from __future__ import annotations

import os
import random
from pathlib import Path

import xxhash
from helpers.fuzz import DIR, FILE, MTIME_NS, entry
from helpers.treecheck import find_temp_files

from blit_core.options import TransferOptions, Verb
from blit_core.progress import NullObserver
from blit_core.transfer.destination import Destination
from blit_core.transfer.jobs import TransferRoot
from blit_core.wire.manifest import ManifestWriter

BASIS = random.Random(3).randbytes(200 << 10)
OLD_MTIME_NS = 1_500_000_000_000_000_000
NEED = 7


class Session:
    """A Destination into tmp_path/dst, whose "big" (BASIS, with an old mtime) the SOURCE's
    "big" (the same bytes, at MTIME_NS) is on its way to as a delta of all copies."""

    def __init__(self, tmp_path: Path) -> None:
        self.target = tmp_path / "dst"
        self.target.mkdir()
        self.big = self.target / "big"
        self.big.write_bytes(BASIS)
        os.utime(self.big, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
        self.dest = Destination([TransferRoot("/src", str(self.target), "", True)],
                                Verb.COPY, TransferOptions(), NullObserver())
        self.ended: list[tuple[int, bool]] = []
        self.dest.on_delta_end = lambda need_id, whole: self.ended.append((need_id, whole))
        writer = ManifestWriter()
        writer.root(0, 1, entry("", DIR))
        writer.dir_start(0, "")
        writer.entry(NEED, entry("big", FILE, len(BASIS)))
        writer.dir_end(False)
        assert self.dest.plan_batch(writer.take()) == [NEED]
        [(need_id, sig)] = list(self.dest.sign(self.dest.take_delta_candidates(), 1))
        assert need_id == NEED and sig is not None
        self.inode = self.big.stat().st_ino
        self.dest.delta_start(NEED)
        self.dest.delta_copy(NEED, 0, sig.blocks)

    def end(self) -> None:
        self.dest.delta_end(NEED, len(BASIS), xxhash.xxh3_128_digest(BASIS))

    def finish(self) -> None:
        report = self.dest.finish()
        assert report.failures == []
        assert find_temp_files(self.target) == []


def test_the_basis_stays_and_takes_the_new_metadata(tmp_path: Path) -> None:
    session = Session(tmp_path)
    session.end()
    session.finish()
    st = session.big.stat()
    assert st.st_ino == session.inode and st.st_mtime_ns == MTIME_NS
    assert session.big.read_bytes() == BASIS
    assert session.ended == [(NEED, False)]


def test_a_basis_written_after_its_copies_arrived_is_not_stamped(tmp_path: Path) -> None:
    """Its size and mtime are put back; its ctime tells. The rebuilt file (from the changed
    basis) does not check out either, so the file is asked for whole, and the changed
    basis is left as it is until then."""
    session = Session(tmp_path)
    with open(session.big, "r+b") as f:
        f.seek(1000)
        f.write(b"changed!")
    os.utime(session.big, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    session.end()
    assert session.ended == [(NEED, True)]
    assert session.big.stat().st_mtime_ns == OLD_MTIME_NS
    assert session.big.read_bytes()[1000:1008] == b"changed!"
    assert find_temp_files(session.target) == []


def test_a_basis_replaced_under_its_name_is_rebuilt_not_stamped(tmp_path: Path) -> None:
    """Another file took the name (an editor's save): the metadata must not go to the old,
    unlinked inode. The file is rebuilt from the basis opened for the delta, and replaces
    the newcomer, as any received file replaces what is at its name."""
    session = Session(tmp_path)
    newcomer = session.target / "newcomer"
    newcomer.write_bytes(b"saved by an editor")
    os.replace(newcomer, session.big)
    session.end()
    session.finish()
    st = session.big.stat()
    assert session.big.read_bytes() == BASIS and st.st_mtime_ns == MTIME_NS
    assert st.st_ino != session.inode
    assert session.ended == [(NEED, False)]


def test_a_basis_given_a_second_name_is_rebuilt_not_stamped(tmp_path: Path) -> None:
    """The other name keeps the old inode and its old metadata, as rsync leaves it."""
    session = Session(tmp_path)
    other = tmp_path / "other-name"
    os.link(session.big, other)
    session.end()
    session.finish()
    assert session.big.read_bytes() == BASIS and session.big.stat().st_mtime_ns == MTIME_NS
    assert session.big.stat().st_ino != session.inode
    assert other.stat().st_ino == session.inode and other.stat().st_mtime_ns == OLD_MTIME_NS
