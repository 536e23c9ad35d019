"""Generation of the benchmark source trees.

Every tree is generated once per benchmark run, on the workspace filesystem, with
``os.urandom`` content (incompressible, never all-zero) written through raw ``os`` calls so
that generation stays fast even for 100,000 files. Sizes and counts are multiplied by a
``scale`` factor (1.0 = the published workload) so the whole suite can be smoke-tested in
seconds with e.g. ``--scale 0.01``: big-file sizes and directory counts scale, while files per
directory and small-file sizes stay fixed.

Trees:
    large        one 1 GiB file
    small        100,000 x 4 KiB files in 1,000 directories
    mixed        8 x 64 MiB files + 50,000 x 2 KiB files in 500 directories
    incremental  a copy of ``small`` with 1% of files changed (same size, new content, new
                 mtime), 1% deleted and 1% added
    rss1m        1,000,000 empty files in 1,000 directories
    tiny1m       1,000,000 files of 1 byte in 1,000 directories (remote first-byte test)
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

_CHUNK = 64 * MiB
_SEED = 20240611

Progress = Callable[[str], None]


def log(msg: str) -> None:
    """Print a progress message to stderr."""
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class TreeSpec:
    """Shape of a generated tree: some big files at the top plus a grid of small files."""

    big_files: int = 0
    big_size: int = 0
    dirs: int = 0
    files_per_dir: int = 0
    small_size: int = 0

    @property
    def total_files(self) -> int:
        return self.big_files + self.dirs * self.files_per_dir

    @property
    def total_bytes(self) -> int:
        return self.big_files * self.big_size + self.dirs * self.files_per_dir * self.small_size


def _scaled(n: int, scale: float) -> int:
    return max(1, round(n * scale))


def tree_specs(scale: float = 1.0) -> dict[str, TreeSpec]:
    """The base trees at the given scale (``incremental`` is derived from ``small``)."""
    return {
        "large": TreeSpec(big_files=1, big_size=_scaled(GiB, scale)),
        "small": TreeSpec(dirs=_scaled(1000, scale), files_per_dir=100, small_size=4 * KiB),
        "mixed": TreeSpec(
            big_files=8,
            big_size=_scaled(64 * MiB, scale),
            dirs=_scaled(500, scale),
            files_per_dir=100,
            small_size=2 * KiB,
        ),
        "rss1m": TreeSpec(dirs=_scaled(1000, scale), files_per_dir=1000, small_size=0),
        "tiny1m": TreeSpec(dirs=_scaled(1000, scale), files_per_dir=1000, small_size=1),
    }


def write_random_file(
    path: Path, size: int, dir_fd: int | None = None, mtime_ns: int | None = None
) -> None:
    """Create ``path`` holding ``size`` random bytes, optionally with the given mtime."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=dir_fd)
    try:
        remaining = size
        while remaining > 0:
            buf = os.urandom(min(_CHUNK, remaining))
            view = memoryview(buf)
            while view:
                view = view[os.write(fd, view) :]
            remaining -= len(buf)
        if mtime_ns is not None:
            os.utime(fd, ns=(mtime_ns, mtime_ns))
    finally:
        os.close(fd)


def generate_tree(root: Path, spec: TreeSpec, progress: Progress = log) -> None:
    """Create ``root`` (must not exist) and fill it according to ``spec``.

    Layout: ``root/big_NN.bin`` for big files, ``root/dNNNN/fNNNNN.bin`` for small ones.
    Files with content get distinct mtimes a day or more in the past (with sub-second parts),
    so a copy that does not preserve mtimes is detectable even at second granularity.
    Empty files keep their creation time (one syscall less per file for ``rss1m``).
    """
    root.mkdir(parents=True)
    base_mtime = time.time_ns() - 86_400 * 1_000_000_000
    for i in range(spec.big_files):
        write_random_file(
            root / f"big_{i:02d}.bin", spec.big_size, mtime_ns=base_mtime - i * 1_000_123_457
        )
    report_every = max(1, spec.dirs // 10)
    t0 = time.monotonic()
    for d in range(spec.dirs):
        sub = root / f"d{d:04d}"
        sub.mkdir()
        dfd = os.open(sub, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for f in range(spec.files_per_dir):
                name = f"f{f:05d}.bin"
                if spec.small_size:
                    mtime = base_mtime - (d * spec.files_per_dir + f + 1) * 1_000_123_457
                    write_random_file(Path(name), spec.small_size, dir_fd=dfd, mtime_ns=mtime)
                else:
                    os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dfd))
        finally:
            os.close(dfd)
        done = d + 1
        if spec.dirs >= 20 and (done % report_every == 0 or done == spec.dirs):
            files = done * spec.files_per_dir
            progress(
                f"    {root.name}: {done}/{spec.dirs} dirs, {files:,} files "
                f"({time.monotonic() - t0:.1f} s)"
            )


def copy_tree(src: Path, dst: Path) -> None:
    """``cp -a src dst`` (dst must not exist): an exact copy with matching mtimes."""
    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)


def remove_tree(path: Path) -> None:
    """``rm -rf path`` (faster than shutil.rmtree on big trees)."""
    subprocess.run(["rm", "-rf", "--", str(path)], check=True)


def list_files(root: Path) -> list[str]:
    """Sorted relative paths of all regular files under ``root``."""
    out: list[str] = []
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(root / rel if rel else root) as it:
            for entry in it:
                path = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append(path)
                elif entry.is_file(follow_symlinks=False):
                    out.append(path)
    out.sort()
    return out


@dataclass(frozen=True)
class Mutation:
    """What :func:`make_incremental` did to the source, for the record."""

    changed: int
    deleted: int
    added: int


def make_incremental(base: Path, dst: Path, fraction: float = 0.01) -> Mutation:
    """Copy ``base`` to ``dst`` and mutate it: ``fraction`` of the files changed, deleted, added.

    Changed files keep their size but get new random content and an mtime at least 2 s
    newer than before (so second-granularity quick checks see them). Added files have the
    size of the first file of the tree and go into existing directories. Deterministic
    (seeded) choice of files.
    """
    copy_tree(base, dst)
    files = list_files(dst)
    rng = random.Random(_SEED)
    n = max(1, round(len(files) * fraction))
    picked = rng.sample(files, min(len(files), 2 * n))
    changed, deleted = picked[:n], picked[n : 2 * n]
    now = time.time_ns()
    for rel in changed:
        path = dst / rel
        st = path.stat()
        write_random_file(path, st.st_size)
        new_mtime = max(now, st.st_mtime_ns + 2_000_000_000)
        os.utime(path, ns=(new_mtime, new_mtime))
    for rel in deleted:
        (dst / rel).unlink()
    size = (base / files[0]).stat().st_size if files else 4 * KiB
    dirs = sorted({rel.rpartition("/")[0] for rel in files}) or [""]
    for i in range(n):
        write_random_file(dst / rng.choice(dirs) / f"added_{i:06d}.bin", size)
    return Mutation(changed=len(changed), deleted=len(deleted), added=n)


@dataclass(frozen=True)
class TreeSummary:
    """Cheap fingerprint of a tree used to verify a copy: counts, bytes and an mtime sum."""

    files: int
    dirs: int
    symlinks: int
    bytes: int
    mtime_sum: int  # sum of whole-second file mtimes

    def same_content_shape(self, other: TreeSummary) -> bool:
        return (self.files, self.dirs, self.symlinks, self.bytes) == (
            other.files,
            other.dirs,
            other.symlinks,
            other.bytes,
        )


def summarize(root: Path) -> TreeSummary:
    """Walk ``root`` (not following symlinks) and summarize it; the root itself not counted."""
    files = dirs = links = total = msum = 0
    stack = [str(root)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_symlink():
                    links += 1
                elif entry.is_dir(follow_symlinks=False):
                    dirs += 1
                    stack.append(entry.path)
                else:
                    st = entry.stat(follow_symlinks=False)
                    files += 1
                    total += st.st_size
                    msum += int(st.st_mtime)
    return TreeSummary(files=files, dirs=dirs, symlinks=links, bytes=total, mtime_sum=msum)
