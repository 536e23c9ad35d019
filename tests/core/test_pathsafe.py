"""Destination directories are reached without following symlinks, and the sink's writes stay
in the directory it opened even if that directory's path is swapped for a symlink; a daemon
lists its module's directories the same way, as SOURCE and as DESTINATION."""

from __future__ import annotations

import errno
import os

import pytest

from blit_core import hashing, pathsafe
from blit_core.models import entry_from_stat
from blit_core.options import CompareMode, TransferOptions, Verb
from blit_core.transfer.jobs import TransferRoot
from blit_core.transfer.sink import DestDir, FsSink
from blit_core.transfer.source import Batch, SourceAccess, scan_to_manifest
from blit_core.transfer.worker import Worker


def test_open_beneath_walks_real_directories(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    root = pathsafe.open_root(str(tmp_path))
    try:
        fd = pathsafe.open_beneath(root, "a/b")
        os.mkdir("made-here", dir_fd=fd)
        os.close(fd)
    finally:
        os.close(root)
    assert (tmp_path / "a" / "b" / "made-here").is_dir()


def test_open_beneath_refuses_a_symlinked_component(tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "dst" / "a").mkdir(parents=True)
    os.symlink(tmp_path / "outside", tmp_path / "dst" / "a" / "b")
    root = pathsafe.open_root(str(tmp_path / "dst"))
    try:
        with pytest.raises(OSError) as caught:
            pathsafe.open_beneath(root, "a/b")
        assert caught.value.errno == errno.ENOTDIR
        for bad in ("..", "a/../..", "a//b", "./a"):
            with pytest.raises(OSError) as caught:
                pathsafe.open_beneath(root, bad)
            assert caught.value.errno in (errno.EINVAL, errno.ENOTDIR)
    finally:
        os.close(root)


def test_the_root_itself_may_be_a_symlink_the_user_named(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink("real", tmp_path / "link")
    fd = pathsafe.open_root(str(tmp_path / "link"))
    os.mkdir("x", dir_fd=fd)
    os.close(fd)
    assert (tmp_path / "real" / "x").is_dir()


def test_a_swapped_in_symlink_does_not_redirect_the_sinks_writes(tmp_path):
    """The path of the directory being written is replaced by a symlink to elsewhere between
    opening it and committing into it: the file still lands in the directory that was opened."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_bytes(b"payload")
    (tmp_path / "dst" / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    root = pathsafe.open_root(str(tmp_path / "dst"))
    sub = pathsafe.open_beneath(root, "sub")
    try:
        os.rename(tmp_path / "dst" / "sub", tmp_path / "dst" / "sub.moved")
        os.symlink(tmp_path / "outside", tmp_path / "dst" / "sub")
        sink = FsSink(TransferOptions(), replace_directories=False)
        entry = entry_from_stat("f", os.lstat(tmp_path / "src" / "f"))
        sink.commit_file(str(tmp_path / "src" / "f"), sub, "f", entry, None, "sub/f",
                         DestDir(entry.dev, False))
    finally:
        os.close(sub)
        os.close(root)
    assert (tmp_path / "dst" / "sub.moved" / "f").read_bytes() == b"payload"
    assert os.listdir(tmp_path / "outside") == []


@pytest.mark.parametrize("openat2", [True, False])
def test_open_file_beneath_follows_no_symlink(tmp_path, monkeypatch, openat2):
    """openat2 (RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) or, without it, the component walk."""
    monkeypatch.setattr(pathsafe, "_have_openat2", openat2)
    module, outside = tmp_path / "module", tmp_path / "outside"
    (module / "sub").mkdir(parents=True)
    outside.mkdir()
    (module / "sub" / "f").write_bytes(b"inside")
    (outside / "secret").write_bytes(b"outside")
    (module / "evil").symlink_to(outside)
    (module / "link").symlink_to("sub/f")
    root_fd = pathsafe.open_root(str(module))
    try:
        fd = pathsafe.open_file_beneath(root_fd, "sub/f", os.O_RDONLY)
        assert os.read(fd, 100) == b"inside"
        os.close(fd)
        for rel in ("evil/secret", "link"):
            with pytest.raises(OSError):
                os.close(pathsafe.open_file_beneath(root_fd, rel, os.O_RDONLY))
    finally:
        os.close(root_fd)


def _scan_with_swap(tmp_path, jail: str | None) -> tuple[bytes, list[str]]:
    """Scan a module-like tree as a daemon's SOURCE, swapping its directory `0-sub` for a
    symlink to a directory outside once the first manifest batch is out: after the root's
    listing recorded it as a directory (it sorts first), before it is listed itself. Returns
    the manifest's bytes and the failures."""
    module, outside = tmp_path / "module", tmp_path / "outside"
    (module / "0-sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret-name-outside").write_bytes(b"")
    for number in range(4000):  # enough names for several 256 KiB batches
        (module / f"{number:06d}-{'x' * 60}").write_bytes(b"")
    sent: list[bytes] = []

    def deliver(batch: Batch) -> None:
        if not sent:
            (module / "0-sub").rmdir()
            (module / "0-sub").symlink_to(outside)
        sent.append(batch.records)

    roots = [TransferRoot(str(module), "/unused", "", True)]
    access = SourceAccess(TransferOptions(), jail)
    try:
        result = scan_to_manifest(roots, TransferOptions(), Verb.COPY, deliver, access)
    finally:
        access.close()
    assert len(sent) > 1
    return b"".join(sent), [failure.path for failure in result.failures]


def test_a_daemon_source_never_lists_a_directory_swapped_for_a_symlink(tmp_path):
    manifest, failures = _scan_with_swap(tmp_path, jail=str(tmp_path / "module"))
    assert b"secret-name-outside" not in manifest
    assert failures == ["0-sub/"]


def test_a_local_source_lists_what_its_path_names(tmp_path):
    """The same race without a jail: a local scan follows the path, as rsync does (this is
    what makes the jailed test above a test of the jail)."""
    manifest, failures = _scan_with_swap(tmp_path, jail=None)
    assert b"secret-name-outside" in manifest
    assert failures == []


def test_a_daemon_destination_never_lists_a_directory_swapped_for_a_symlink(tmp_path):
    """The DESTINATION lists a directory when the SOURCE's listing of it arrives; by then it
    may be a symlink (swapped after its parent was compared). Listed through a descriptor
    reached from the module root, it is reported unreadable; by path it would list outside."""
    module, outside = tmp_path / "module", tmp_path / "outside"
    (module / "dst").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret-name-outside").write_bytes(b"")
    (module / "dst" / "d").symlink_to(outside)
    roots = [TransferRoot("/unused", str(module / "dst"), "", True)]
    parts: list = []
    worker = Worker(roots, TransferOptions(), Verb.MIRROR, parts.append, remote_source=True,
                    jail=str(module))
    try:
        assert worker.open_dir_pass(0, "d", True) is None
        worker.flush_result()
    finally:
        worker.release_places()
    failures = [failure for part in parts for failure in part.failures]
    assert [failure.path for failure in failures] == ["d/"]
    assert "secret-name-outside" not in repr(parts)
    listing = worker.open_dir_pass(0, "", True)
    assert listing is not None and sorted(listing.dst_listing) == ["d"]
    worker.release_places()


def test_a_daemon_source_never_hashes_a_file_through_a_swapped_directory(tmp_path):
    """-c: a daemon's SOURCE reads each file for its digest beneath the module, following no
    symlink: once `sub` becomes a link to a directory outside holding the same names, no
    digest of the outside content reaches the manifest (by path it would)."""
    module, outside = tmp_path / "module", tmp_path / "outside"
    (module / "sub").mkdir(parents=True)
    outside.mkdir()
    for number in range(4000):  # several 256 KiB manifest batches
        name = f"{number:06d}-{'x' * 60}"
        (module / "sub" / name).write_bytes(b"inside")
        (outside / name).write_bytes(b"secret outside")
    sent: list[bytes] = []

    def deliver(batch: Batch) -> None:
        if not sent:
            (module / "sub").rename(tmp_path / "moved-away")
            (module / "sub").symlink_to(outside)
        sent.append(batch.records)

    options = TransferOptions(compare=CompareMode.CHECKSUM)
    access = SourceAccess(options, str(module))
    try:
        scan_to_manifest([TransferRoot(str(module), "/unused", "", True)], options, Verb.COPY,
                         deliver, access)
    finally:
        access.close()
    manifest = b"".join(sent)
    assert len(sent) > 1
    assert hashing.file_digest(str(tmp_path / "moved-away" / name)) in manifest
    assert hashing.file_digest(str(outside / name)) not in manifest
