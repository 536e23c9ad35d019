"""A destination that fills up during a remote move: a push into a daemon's module on a small
tmpfs, and a pull into a small local tmpfs.

What must hold: exit 11 with one clear error naming the destination, no temp file left,
whatever the destination held before intact, every file that landed whole, and the source of
the move untouched (a remote move removes sources only after a successful summary)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.daemon import Daemon, transfer
from helpers.treecheck import file_digest, find_temp_files, snapshot

MIB = 1024 * 1024
EXIT_FILE_IO = 11
OLD_BYTES = b"the older version, kept when its replacement does not fit"


def make_source(root: Path) -> None:
    """12 MiB of incompressible data: more than the 8 MiB destination holds."""
    rng = random.Random(11)
    (root / "big").mkdir(parents=True)
    for i in range(12):
        (root / "big" / f"b{i:02d}.bin").write_bytes(os.urandom(MIB))
    for i in range(30):
        (root / f"s{i:02d}.txt").write_bytes(rng.randbytes(rng.randint(0, 4000)))


def fill_destination(dst: Path) -> dict[str, bytes]:
    """What the destination holds before: a file the source does not have and an older
    version of one it does."""
    (dst / "big").mkdir(parents=True)
    before = {"mine.txt": b"the destination's own file", "big/b11.bin": OLD_BYTES}
    for rel, data in before.items():
        (dst / rel).write_bytes(data)
        os.utime(dst / rel, ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    return before


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_remote_move_into_a_full_destination_fails_cleanly(
    direction: str, tmpfs: Callable[..., Path], tmp_path: Path,
) -> None:
    small = tmpfs("8M")
    module = small if direction == "push" else tmp_path / "module"
    module.mkdir(exist_ok=True)
    src = (module if direction == "pull" else tmp_path) / "src"
    dst = (module if direction == "push" else small) / "dst"
    make_source(src)
    before = fill_destination(dst)
    src_before = snapshot(src)

    daemon = Daemon(module)
    try:
        result = transfer(direction, daemon, "move", src, dst)
    finally:
        daemon.stop()

    assert result.returncode == EXIT_FILE_IO, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("blit: error: ")]
    assert len(errors) == 1, result.stderr
    named = "/default/dst/ on the daemon" if direction == "push" else f"{dst}/"
    assert f"no space left on device in {named} (writing " in errors[0], errors[0]
    assert find_temp_files(small) == []
    assert snapshot(src) == src_before, "the source of the failed move changed"
    landed = [path for path in dst.rglob("*") if path.is_file()]
    assert len(landed) < len(src_before), "everything fitted: the destination never filled"
    for path in landed:
        rel = path.relative_to(dst).as_posix()
        if rel in before and path.read_bytes() == before[rel]:
            continue  # what was there stays whole
        assert file_digest(path) == file_digest(src / rel), f"{rel} is not whole"
    assert (dst / "mine.txt").read_bytes() == before["mine.txt"]
