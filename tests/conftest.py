"""Shared pytest fixtures for blit's test-suite.

Fixtures
--------
``run_blit``      (function) callable running ``python -m blit_cli ARGS...``; returns the
                  ``CompletedProcess[str]`` (stdout/stderr captured, surrogateescape).
``nasty_tree``    (session)  a large tree of awkward names, links, modes, a 256 MiB sparse
                  file and 10,000 small files, built once.  READ-ONLY: tests must never
                  modify it (copy it first); a modification is reported at session end.
``small_tree``    (function) a fresh ~30-file tree under ``tmp_path`` that tests may modify.
``tmpfs``         (function) callable ``tmpfs(size="4M") -> Path`` mounting a tmpfs under
                  ``tmp_path``; skips unless root and the mount works.
``xfs_reflink``   (function) Path of a freshly made 300 MiB XFS filesystem with reflink
                  support (loop mount); skips unless root, mkfs.xfs exists and mount works.

Tree comparison helpers live in ``tests/helpers/treecheck.py``; import them as
``from helpers.treecheck import assert_same_tree`` (this file puts ``tests/`` on sys.path).
"""

from __future__ import annotations

import importlib.util
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

# Safety net: `blit scan` and `blit-utils scan` started by any test browse loopback only.
os.environ["BLIT_MDNS_INTERFACES"] = "127.0.0.1"

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent

if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))
# The blit packages are normally pip-installed (editable); fall back to the checkout.
_BLIT_INSTALLED = importlib.util.find_spec("blit_core") is not None
if not _BLIT_INSTALLED:
    sys.path.insert(0, str(REPO_ROOT))
elif str(REPO_ROOT) not in sys.path:  # benchmarks/ is never installed (test_load reuses it)
    sys.path.append(str(REPO_ROOT))

from helpers.treecheck import diff_snapshots, snapshot  # noqa: E402

from benchmarks.runner import compile_blit_bytecode  # noqa: E402

# The tests start hundreds of blit processes: each would otherwise compile blit's modules
# again when PYTHONDONTWRITEBYTECODE is set.
compile_blit_bytecode()

MIB = 1024 * 1024

# --------------------------------------------------------------------------------------
# run_blit
# --------------------------------------------------------------------------------------


class RunBlit(Protocol):
    def __call__(
        self,
        *args: str | os.PathLike[str],
        cwd: str | os.PathLike[str] | None = None,
        input: str | None = None,
        timeout: float = 120,
        env: Mapping[str, str | None] | None = None,
    ) -> subprocess.CompletedProcess[str]: ...


@pytest.fixture
def run_blit() -> RunBlit:
    """Return ``run_blit(*args, cwd=None, input=None, timeout=120, env=None)``.

    Runs ``[sys.executable, "-m", "blit_cli", *args]`` with output captured as text
    (``errors="surrogateescape"``, so non-UTF-8 names survive).  It does not check the
    exit status.  ``env`` entries are applied on top of ``os.environ`` (a value of None
    removes the variable).  If blit is not installed, the checkout is put on PYTHONPATH.
    """

    def run(
        *args: str | os.PathLike[str],
        cwd: str | os.PathLike[str] | None = None,
        input: str | None = None,
        timeout: float = 120,
        env: Mapping[str, str | None] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ)
        if not _BLIT_INSTALLED:
            parts = [str(REPO_ROOT), *filter(None, [full_env.get("PYTHONPATH")])]
            full_env["PYTHONPATH"] = os.pathsep.join(parts)
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        return subprocess.run(
            [sys.executable, "-m", "blit_cli", *map(os.fspath, args)],
            cwd=cwd,
            input=input,
            timeout=timeout,
            env=full_env,
            capture_output=True,
            text=True,
            errors="surrogateescape",
            check=False,
        )

    return run


# --------------------------------------------------------------------------------------
# tree building helpers
# --------------------------------------------------------------------------------------


class _Stamper:
    """Hands out distinct, deterministic mtimes (ns) with a non-zero nanosecond part."""

    BASE_NS = 1_500_000_000 * 10**9  # 2017-07-14
    STEP_NS = 3_601_234_567_891  # 1 h + 1.234567891 s

    def __init__(self) -> None:
        self.i = 0

    def __call__(self) -> int:
        self.i += 1
        ns = self.BASE_NS + self.i * self.STEP_NS
        return ns + 1 if ns % 10**9 == 0 else ns


def _write(path: Path | str, data: bytes, mode: int, mtime_ns: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
        os.utime(fd, ns=(mtime_ns, mtime_ns))
    finally:
        os.close(fd)


def _symlink(target: str, path: Path, mtime_ns: int) -> None:
    os.symlink(target, path)
    os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)


def _finish_dirs(root: Path, stamp: Callable[[], int], modes: Mapping[str, int]) -> None:
    """Set every directory's mode (0755 unless in ``modes``) and mtime, deepest first."""
    dirs = [""]
    for dirpath, dirnames, _ in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
        dirs.extend(d if rel == "." else f"{rel}/{d}" for d in dirnames)
    dirs.sort(key=lambda d: (-d.count("/") - (d != ""), d))
    for rel in dirs:
        path = root / rel if rel else root
        os.chmod(path, modes.get(rel, 0o755))
        ns = stamp()
        os.utime(path, ns=(ns, ns), follow_symlinks=False)


# --------------------------------------------------------------------------------------
# nasty_tree
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NastyTree:
    """Relative names (``str``, ``/``-separated) of the interesting parts of ``root``.

    The tree is shared by the whole session: treat it as READ-ONLY.
    """

    root: Path
    sparse_file: str  # 256 MiB, data only at start, middle and end
    sparse_size: int
    hardlinks: list[str]  # every path that belongs to a hard-link group
    hardlink_pair: tuple[str, str]
    hardlink_triple: tuple[str, str, str]  # spans two directories
    readonly_dir: str  # mode 0555
    readonly_file: str  # inside readonly_dir
    mode_files: dict[int, str]  # {0o600: ..., 0o755: ..., 0o444: ..., 0o644: ...}
    nfc_name: str  # "café" precomposed
    nfd_name: str  # "café" decomposed (a different file from nfc_name)
    space_names: tuple[str, ...]
    dash_names: tuple[str, ...]  # "-rf", "--help" at the top level
    newline_name: str
    long_ascii_name: str  # 255-byte name
    long_utf8_name: str  # 255-byte name of 3-byte UTF-8 characters
    non_utf8_name: str  # b"bad-\xff\xfe-name" as os.fsdecode gives it
    odd_char_names: tuple[str, ...]  # colon, shell/glob metacharacters, backslash
    deep_dir: str  # 64 nested "d" directories below "deep"
    deep_file: str  # a file at the bottom of deep_dir
    depth: int
    empty_files: tuple[str, ...]
    empty_dirs: tuple[str, ...]
    symlink_rel_file: str  # relative, to a regular file
    symlink_abs_external: str  # -> /etc/hostname
    symlink_abs_internal: str  # absolute path of a file inside this tree
    symlink_dangling: str
    symlink_dir: str  # relative, to a directory
    many_dir: str  # 10,000 files of 0-4096 random bytes in 100 sub-directories
    many_count: int
    file_count: int  # regular-file paths in the whole tree (hard links counted per path)


def build_nasty_tree(root: Path) -> NastyTree:
    """Create the nasty tree at ``root`` (which must not exist yet)."""
    rng = random.Random(0xB117)
    stamp = _Stamper()
    files: list[str] = []

    def mkfile(rel: str, data: bytes = b"", mode: int = 0o644) -> str:
        _write(root / rel, data, mode, stamp())
        files.append(rel)
        return rel

    def text(rel: str) -> bytes:
        return f"content of {rel!r}\n".encode("utf-8", "surrogateescape")

    root.mkdir()
    for d in ("names", "files", "links", "empty", "hardlinks", "readonly", "many"):
        (root / d).mkdir()

    # names
    nfc, nfd = "names/caf\u00e9", "names/cafe\u0301"
    space_names = ("names/with space", "names/ leading space", "names/trailing space ")
    dash_names = ("-rf", "--help")
    newline_name = "names/new\nline"
    long_ascii = "names/" + "a" * 255
    long_utf8 = "names/" + "\u65e5" * 85  # 85 * 3 bytes
    non_utf8 = "names/" + os.fsdecode(b"bad-\xff\xfe-name")
    odd = ("names/host:path", "names/glob*?[x]'\"$`\\;&|")
    unicode_dir = "names/\u00fcn\u00ef c\u00f8d\u00e9 dir"
    (root / unicode_dir).mkdir()
    for rel in (nfc, nfd, *space_names, *dash_names, newline_name, long_ascii, long_utf8,
                non_utf8, *odd, f"{unicode_dir}/inside"):
        mkfile(rel, text(rel))
    assert len(os.fsencode(os.path.basename(long_utf8))) == 255

    # modes
    mode_files = {m: mkfile(f"files/mode_{m:04o}", text(f"mode {m:o}"), m)
                  for m in (0o600, 0o755, 0o444, 0o644)}

    # read-only directory (mode applied by _finish_dirs)
    readonly_file = mkfile("readonly/file", b"in a read-only directory\n")

    # deep chain
    deep_dir = "deep/" + "/".join(["d"] * 64)
    (root / deep_dir).mkdir(parents=True)
    deep_file = mkfile(f"{deep_dir}/leaf", b"bottom\n")

    # empties
    empty_files = (mkfile("empty/empty_file"), mkfile("empty/.hidden_empty"))
    empty_dirs = ("empty/empty_dir", "empty/nested/a/b")
    for d in empty_dirs:
        (root / d).mkdir(parents=True)

    # hard links (one mtime per inode)
    pair = ("hardlinks/pair_a", "hardlinks/pair_b")
    triple = ("hardlinks/triple_1", "hardlinks/triple_2", "files/triple_3")
    for group in (pair, triple):
        mkfile(group[0], text(group[0]) * 10)
        for other in group[1:]:
            os.link(root / group[0], root / other)
            files.append(other)

    # symlinks
    links = {
        "rel": ("links/rel_file", "../files/mode_0644"),
        "abs_ext": ("links/abs_external", "/etc/hostname"),
        "abs_int": ("links/abs_internal", str(root / "files/mode_0644")),
        "dangling": ("links/dangling", "../no/such/target"),
        "dir": ("links/dir_link", "../names"),
    }
    for rel, target in links.values():
        _symlink(target, root / rel, stamp())

    # sparse file: data at start, (unaligned) middle and the very end
    sparse_file, sparse_size = "sparse.bin", 256 * MIB
    fd = os.open(root / sparse_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.ftruncate(fd, sparse_size)
        os.pwrite(fd, rng.randbytes(8192), 0)
        os.pwrite(fd, rng.randbytes(4096), sparse_size // 2 + 12345)
        os.pwrite(fd, rng.randbytes(3000), sparse_size - 3000)
        os.fchmod(fd, 0o644)
        ns = stamp()
        os.utime(fd, ns=(ns, ns))
    finally:
        os.close(fd)
    files.append(sparse_file)

    # many small files
    many_dirs, per_dir = 100, 100
    sizes = [rng.randint(0, 4096) for _ in range(many_dirs * per_dir)]
    pool = rng.randbytes(sum(sizes))
    offset = 0
    for d in range(many_dirs):
        dpath = root / "many" / f"d{d:03d}"
        dpath.mkdir()
        for j in range(per_dir):
            size = sizes[d * per_dir + j]
            _write(dpath / f"f{j:03d}", pool[offset:offset + size], 0o644, stamp())
            offset += size
    many_count = many_dirs * per_dir

    _finish_dirs(root, stamp, {"readonly": 0o555})

    return NastyTree(
        root=root,
        sparse_file=sparse_file,
        sparse_size=sparse_size,
        hardlinks=[*pair, *triple],
        hardlink_pair=pair,
        hardlink_triple=triple,
        readonly_dir="readonly",
        readonly_file=readonly_file,
        mode_files=mode_files,
        nfc_name=nfc,
        nfd_name=nfd,
        space_names=space_names,
        dash_names=dash_names,
        newline_name=newline_name,
        long_ascii_name=long_ascii,
        long_utf8_name=long_utf8,
        non_utf8_name=non_utf8,
        odd_char_names=odd,
        deep_dir=deep_dir,
        deep_file=deep_file,
        depth=64,
        empty_files=empty_files,
        empty_dirs=empty_dirs,
        symlink_rel_file=links["rel"][0],
        symlink_abs_external=links["abs_ext"][0],
        symlink_abs_internal=links["abs_int"][0],
        symlink_dangling=links["dangling"][0],
        symlink_dir=links["dir"][0],
        many_dir="many",
        many_count=many_count,
        file_count=len(files) + many_count,
    )


@pytest.fixture(scope="session")
def nasty_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NastyTree]:
    """The shared nasty source tree (built once per session).  DO NOT MODIFY IT.

    Copy it (``shutil.copytree(nasty_tree.root, dst, symlinks=True)``) if you need a
    writable version.  At the end of the session the tree is re-checked and an error is
    reported if any test changed it.
    """
    tree = build_nasty_tree(tmp_path_factory.mktemp("nasty") / "src")
    before = snapshot(tree.root)
    yield tree
    diffs = diff_snapshots(before, snapshot(tree.root))
    if diffs:
        pytest.fail(
            "a test modified the read-only nasty_tree fixture:\n" + "\n".join(diffs[:20]),
            pytrace=False,
        )


# --------------------------------------------------------------------------------------
# small_tree
# --------------------------------------------------------------------------------------


def build_small_tree(root: Path, seed: int = 1) -> Path:
    """Create a small tree (30 files, one symlink, one empty dir) at ``root``."""
    rng = random.Random(seed)
    stamp = _Stamper()
    stamp.i = 1000 * seed
    for d in ("sub1/nested", "sub2", "empty_dir"):
        (root / d).mkdir(parents=True)
    top = {"a.txt": 0o644, "b.bin": 0o644, "exec.sh": 0o755, "secret": 0o600, "ro.txt": 0o444}
    for name, mode in top.items():
        _write(root / name, rng.randbytes(rng.randint(0, 3000)), mode, stamp())
    for d, count in (("sub1", 10), ("sub1/nested", 5), ("sub2", 10)):
        for i in range(count):
            mode = (0o644, 0o640, 0o755, 0o600)[i % 4]
            _write(root / d / f"file{i:02d}.dat", rng.randbytes(rng.randint(0, 5000)), mode,
                   stamp())
    _symlink("a.txt", root / "link_to_a", stamp())
    _finish_dirs(root, stamp, {"sub2": 0o750})
    return root


@pytest.fixture
def small_tree(tmp_path: Path) -> Path:
    """A fresh small tree under ``tmp_path / "small"`` that the test may modify.

    Layout: a.txt, b.bin, exec.sh (0755), secret (0600), ro.txt (0444), link_to_a -> a.txt,
    sub1/file00..09.dat, sub1/nested/file00..04.dat, sub2/ (0750) file00..09.dat, empty_dir/.
    Every file, link and directory has a distinct mtime with non-zero nanoseconds.
    """
    return build_small_tree(tmp_path / "small")


# --------------------------------------------------------------------------------------
# mounts: tmpfs and XFS with reflink
# --------------------------------------------------------------------------------------


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def _umount(path: Path) -> None:
    if _run(["umount", str(path)]).returncode != 0:
        proc = _run(["umount", "-l", str(path)])
        if proc.returncode != 0:
            raise RuntimeError(f"cannot unmount {path}: {proc.stderr.strip()}")


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"{what} needs root (to mount a filesystem)")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Return ``tmpfs(size="4M") -> Path``: mount a fresh tmpfs under ``tmp_path``.

    May be called several times; everything is unmounted at teardown.  Skips the test if
    not root or if the mount fails.
    """
    mounts: list[Path] = []

    def mount(size: str = "4M") -> Path:
        _require_root("tmpfs fixture")
        target = tmp_path / f"tmpfs{len(mounts)}"
        target.mkdir()
        proc = _run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)])
        if proc.returncode != 0:
            pytest.skip(f"cannot mount tmpfs (size={size}): {proc.stderr.strip()}")
        mounts.append(target)
        return target

    yield mount
    for target in reversed(mounts):
        _umount(target)


@pytest.fixture
def xfs_reflink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Mount point of a fresh 300 MiB XFS filesystem made with ``-m reflink=1``.

    Backed by a sparse image file, loop-mounted; unmounted and deleted at teardown.
    Skips if not root, if mkfs.xfs (package xfsprogs) is missing, or if mkfs/mount fails.
    """
    _require_root("xfs_reflink fixture")
    sbin_path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    mkfs = shutil.which("mkfs.xfs", path=sbin_path)
    if mkfs is None:
        pytest.skip("mkfs.xfs not found (install the xfsprogs package)")
    base = tmp_path_factory.mktemp("xfs")
    image, mnt = base / "xfs.img", base / "mnt"
    with open(image, "wb") as fh:
        fh.truncate(300 * MIB)
    try:
        proc = _run([mkfs, "-q", "-m", "reflink=1", str(image)])
        if proc.returncode != 0:
            pytest.skip(f"mkfs.xfs -m reflink=1 failed: {proc.stderr.strip()}")
        mnt.mkdir()
        proc = _run(["mount", "-o", "loop", str(image), str(mnt)])
        if proc.returncode != 0:
            pytest.skip(f"cannot loop-mount the XFS image: {proc.stderr.strip()}")
        try:
            yield mnt
        finally:
            _umount(mnt)
    finally:
        image.unlink(missing_ok=True)
