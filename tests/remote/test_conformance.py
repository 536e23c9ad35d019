"""The conformance suite: every transfer rule runs in all three directions, local->local, push
(local -> blit-daemon) and pull (blit-daemon -> local), against real directories and a real
daemon on 127.0.0.1, and must give the same tree, itemized lines and exit code.

The expectations are what the local engine does (tests/cli/test_local_semantics.py asserts
them, several against rsync itself): the `local` parameter checks the reference still holds,
`push` and `pull` check the remote path conforms. Cases are tables; one test runs a whole
table for one direction (one daemon per test, a few cases at a time, each in its own
directories), collecting every mismatch before it fails, so a report names all the cases that
differ.

The nasty tree (awkward names, links, modes, a 256 MiB sparse file, 10,000 small files) is
mirrored once per direction and compared with assert_same_tree."""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest
from helpers.daemon import DIRECTIONS, Daemon, run, transfer
from helpers.treecheck import (
    assert_same_tree,
    file_digest,
    find_temp_files,
    hardlink_groups,
)

if TYPE_CHECKING:
    from conftest import NastyTree

T0 = 1_700_000_000_000_000_000
DIR_T = T0 - 86_400 * 10**9  # every directory a case builds gets this mtime
SEC = 10**9
PARALLEL_CASES = 3  # cases of one table run at once (the machine may be shared)
T = TypeVar("T")


# -- where the two sides live -------------------------------------------------------------


class Layout:
    """For one direction: where SRC and DST are on disk, and how the command line names them
    (a local path, or 127.0.0.1:PORT:/default/REL for the side the daemon holds)."""

    def __init__(self, direction: str, daemon: Daemon | None, tmp_path: Path) -> None:
        self.direction = direction
        self.daemon = daemon
        local = tmp_path / "local"
        local.mkdir(exist_ok=True)
        module = daemon.root if daemon is not None else local
        self.src_base = module if direction == "pull" else local
        self.dst_base = module if direction == "push" else local

    def src(self, rel: str) -> str:
        return self._spell(self.direction == "pull", self.src_base, rel)

    def dst(self, rel: str) -> str:
        return self._spell(self.direction == "push", self.dst_base, rel)

    def _spell(self, remote: bool, base: Path, rel: str) -> str:
        if remote:
            assert self.daemon is not None
            return self.daemon.endpoint(rel)
        return f"{base}/{rel}"


@pytest.fixture(params=DIRECTIONS)
def layout(request: pytest.FixtureRequest, tmp_path: Path) -> Layout:
    """The direction under test; the `daemon` fixture is started for push and pull only."""
    direction: str = request.param
    daemon = None if direction == "local" else request.getfixturevalue("daemon")
    return Layout(direction, daemon, tmp_path)


# -- trees as data ------------------------------------------------------------------------


@dataclass(frozen=True)
class F:
    """A regular file: bytes, mtime (ns) and permission bits."""

    data: bytes
    mtime_ns: int = T0
    mode: int = 0o644


@dataclass(frozen=True)
class Dir:
    """A directory; None in an expectation means "any" (for directories blit creates)."""

    mode: int | None = 0o755
    mtime_ns: int | None = DIR_T


@dataclass(frozen=True)
class Link:
    target: str


@dataclass(frozen=True)
class Other:
    """Read back for anything that is not a file, directory or symlink."""

    filemode: str


@dataclass(frozen=True)
class Hard:
    """Built as a hard link to another path of the same spec (never read back as such)."""

    to: str


Node = F | Dir | Link | Other | Hard
Spec = Mapping[str, Node]


def build(root: Path, spec: Spec) -> None:
    """Create `root` holding `spec`; every directory gets mode 0755 (unless given) and DIR_T."""
    root.mkdir(parents=True)
    dirs: dict[str, Dir] = {"": Dir()}
    for rel, node in sorted(spec.items(), key=lambda item: isinstance(item[1], Hard)):
        path = root / rel
        parts = rel.split("/")
        for i in range(1, len(parts)):
            dirs.setdefault("/".join(parts[:i]), Dir())
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(node, Dir):
            path.mkdir(exist_ok=True)
            dirs[rel] = node
        elif isinstance(node, Link):
            os.symlink(node.target, path)
        elif isinstance(node, Hard):
            os.link(root / node.to, path)
        else:
            path.write_bytes(node.data)
            path.chmod(node.mode)
            os.utime(path, ns=(node.mtime_ns, node.mtime_ns))
    for rel in sorted(dirs, key=lambda d: -len(d.split("/")) if d else 0):
        node = dirs[rel]
        path = root / rel if rel else root
        path.chmod(0o755 if node.mode is None else node.mode)
        mtime = DIR_T if node.mtime_ns is None else node.mtime_ns
        os.utime(path, ns=(mtime, mtime))


def _node(path: str) -> Node:
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        return Dir(stat.S_IMODE(st.st_mode), st.st_mtime_ns)
    if stat.S_ISLNK(st.st_mode):
        return Link(os.readlink(path))
    if stat.S_ISREG(st.st_mode):
        with open(path, "rb") as handle:
            return F(handle.read(), st.st_mtime_ns, stat.S_IMODE(st.st_mode))
    return Other(stat.filemode(st.st_mode))


def read(root: Path, *, include_root: bool = False) -> dict[str, Node]:
    """Everything under `root` as a spec (symlinks not followed); "" is root itself."""
    tree: dict[str, Node] = {"": _node(str(root))} if include_root else {}
    if not isinstance(tree.get("", Dir()), Dir):
        return tree
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in dirnames + filenames:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            tree[rel] = _node(os.path.join(dirpath, name))
    return tree


def spec_diff(actual: Mapping[str, Node], expected: Spec) -> list[str]:
    """Differences between a tree read from disk and an expectation (Dir fields that are
    None in the expectation match anything)."""
    problems = [f"missing {k!r}" for k in sorted(set(expected) - set(actual))]
    problems += [f"unexpected {k!r}: {actual[k]}" for k in sorted(set(actual) - set(expected))]
    for key in sorted(set(actual) & set(expected)):
        want, got = expected[key], actual[key]
        if isinstance(want, Dir) and isinstance(got, Dir):
            if (want.mode not in (None, got.mode)
                    or want.mtime_ns not in (None, got.mtime_ns)):
                problems.append(f"{key!r}: {got} != {want}")
        elif want != got:
            problems.append(f"{key!r}: {got} != {want}")
    return problems


def inode(path: Path) -> int:
    return os.lstat(path).st_ino


# -- resolution: rsync's trailing-slash rules ----------------------------------------------

RES_SRC: Spec = {
    "a.txt": F(b"alpha", 1_600_000_000_123_456_789),
    "sub": Dir(0o750, 1_600_000_000_000_000_005),
    "sub/b.txt": F(b"beta", 1_600_000_000_000_000_001, 0o600),
}

# (sources below the case directory, destination, DST prepared as, {DST path: SRC path}).
# The DST side must hold exactly the mapped trees (modes, mtimes, bytes); "" is DST itself,
# and when it is not mapped DST's own attributes are not compared (blit made it, or it was
# there already).
RESOLUTION_CASES: list[tuple[list[str], str, str | None, dict[str, str]]] = [
    (["src/"], "dst", None, {"": "src"}),
    (["src/"], "dst", "dir", {"": "src"}),
    (["src/."], "dst", None, {"": "src"}),
    (["src"], "dst", None, {"src": "src"}),
    (["src"], "dst", "dir", {"src": "src"}),
    (["src"], "dst/", None, {"src": "src"}),
    (["src/a.txt"], "dst", None, {"": "src/a.txt"}),
    (["src/a.txt"], "dst/", None, {"a.txt": "src/a.txt"}),
    (["src/a.txt"], "dst", "dir", {"a.txt": "src/a.txt"}),
    (["src/a.txt"], "dst", "file", {"": "src/a.txt"}),
    (["src/a.txt", "src/sub"], "dst", None, {"a.txt": "src/a.txt", "sub": "src/sub"}),
    (["src/sub/", "src/a.txt"], "dst", "dir", {"b.txt": "src/sub/b.txt", "a.txt": "src/a.txt"}),
]


def run_resolution_case(layout: Layout, index: int) -> list[str]:
    sources, dest, prepared, mapping = RESOLUTION_CASES[index]
    case = f"r{index}"
    label = f"{case} {sources} -> {dest!r} ({prepared or 'absent'})"
    src_case, dst_case = layout.src_base / case, layout.dst_base / case
    build(src_case / "src", RES_SRC)
    dst_case.mkdir(exist_ok=True)
    if prepared == "dir":
        (dst_case / "dst").mkdir()
    elif prepared == "file":
        (dst_case / "dst").write_bytes(b"old")
    result = run("copy", *(layout.src(f"{case}/{s}") for s in sources),
                 layout.dst(f"{case}/{dest}"))
    if result.returncode != 0:
        return [f"{label}: exit {result.returncode}: {result.stderr.strip()}"]
    expected: dict[str, Node] = {}
    for dst_rel, src_rel in mapping.items():
        for rel, node in read(src_case / src_rel, include_root=True).items():
            expected["/".join(p for p in (dst_rel, rel) if p)] = node
    actual = read(dst_case / "dst", include_root=True)
    if "" not in mapping:
        actual.pop("", None)
    return [f"{label}: {p}" for p in spec_diff(actual, expected)]


def in_parallel(check: Callable[[T], list[str]], items: Sequence[T]) -> list[str]:
    """Run independent cases a few at a time (each is mostly waiting for its `blit`
    process); the problems of all of them, in table order."""
    with ThreadPoolExecutor(max_workers=PARALLEL_CASES) as pool:
        return [problem for problems in pool.map(check, items) for problem in problems]


def test_resolution_rules_agree_in_every_direction(layout: Layout) -> None:
    problems = in_parallel(lambda index: run_resolution_case(layout, index),
                           range(len(RESOLUTION_CASES)))
    assert not problems, "\n".join(problems)


# -- the case table: comparison modes, policies, filters, mirror, move, dry-run, itemize ----


@dataclass(frozen=True)
class Case:
    name: str
    src: Spec
    dst: Spec | None  # None: DST does not exist yet
    expect: Spec  # all of DST afterwards
    lines: tuple[str, ...] = ()  # the itemized stdout lines, in any order, exactly
    flags: tuple[str, ...] = ()
    verb: str = "copy"
    code: int = 0
    stderr: str = ""  # must appear in stderr
    src_arg: str = "src/"
    src_after: Spec | None = None  # SRC afterwards; None: unchanged
    src_gone: bool = False  # SRC itself is removed (move of a directory)
    ordered: tuple[str, ...] = ()  # lines that must come in this order
    same_inode: tuple[str, ...] = ()  # DST files that must be updated in place
    new_inode: tuple[str, ...] = ()  # DST files that must be replaced by a new file
    hard_groups: frozenset[frozenset[str]] | None = None


def _new(spec: Spec) -> tuple[str, ...]:
    """The itemized lines of a transfer into a DST that does not exist yet."""
    lines = ["cd+++++++++ ./"]
    for rel, node in spec.items():
        if isinstance(node, Dir):
            lines.append(f"cd+++++++++ {rel}/")
        elif isinstance(node, Link):
            lines.append(f"cL+++++++++ {rel} -> {node.target}")
        else:
            lines.append(f">f+++++++++ {rel}")
    return tuple(lines)


SAME_SIZE_SRC = {"f": F(b"new content")}
SAME_SIZE_DST = {"f": F(b"old content")}
SMALL = {"a.txt": F(b"a" * 100, T0 + 1), "secret": F(b"s", T0 + 2, 0o600),
         "exec.sh": F(b"#!/bin/sh\n", T0 + 3, 0o755), "sub1": Dir(),
         "sub1/nested": Dir(0o750), "sub1/nested/file00.dat": F(b"n0", T0 + 4),
         "sub1/nested/file01.dat": F(b"n1", T0 + 5), "sub1/file00.dat": F(b"f0", T0 + 6),
         "sub2": Dir(), "sub2/file00.dat": F(b"x", T0 + 7)}


def _without(spec: Spec, *names: str) -> dict[str, Node]:
    return {k: v for k, v in spec.items()
            if not any(k == n or k.startswith(n + "/") for n in names)}


CASES: list[Case] = [
    # comparison modes
    Case("quick-check-skips-same-size-and-mtime", SAME_SIZE_SRC, SAME_SIZE_DST, SAME_SIZE_DST),
    Case("checksum-compares-content", SAME_SIZE_SRC, SAME_SIZE_DST, SAME_SIZE_SRC,
         (">fc........ f",), flags=("-c",)),
    Case("checksum-skips-equal-content-and-fixes-mtime", {"f": F(b"same", T0 + SEC)},
         {"f": F(b"same")}, {"f": F(b"same", T0 + SEC)}, (".f..t...... f",), flags=("-c",),
         same_inode=("f",)),
    Case("ignore-times-always-transfers", SAME_SIZE_SRC, SAME_SIZE_DST, SAME_SIZE_SRC,
         (">f......... f",), flags=("-I",)),
    Case("one-nanosecond-newer-transfers", {"f": F(b"new content", T0 + 1)}, SAME_SIZE_DST,
         {"f": F(b"new content", T0 + 1)}, (">f..t...... f",)),
    Case("modify-window-treats-close-mtimes-as-equal",
         {"f": F(b"new content", T0 + 900_000_000)}, SAME_SIZE_DST, SAME_SIZE_DST,
         flags=("--modify-window", "1")),
    Case("size-only-ignores-mtime-but-updates-it", {"f": F(b"new content", T0 + 5)},
         SAME_SIZE_DST, {"f": F(b"old content", T0 + 5)}, (".f..t...... f",),
         flags=("--size-only",)),
    Case("update-skips-files-newer-at-destination",
         {"older": F(b"from source"), "newer": F(b"from source", T0 + SEC)},
         {"older": F(b"newer at destination", T0 + SEC), "newer": F(b"stale")},
         {"older": F(b"newer at destination", T0 + SEC), "newer": F(b"from source", T0 + SEC)},
         (">f.st...... newer",), flags=("-u",)),
    Case("ignore-existing", {"both": F(b"source version", T0 + 1), "only_src": F(b"new")},
         {"both": F(b"dest version")}, {"both": F(b"dest version"), "only_src": F(b"new")},
         (">f+++++++++ only_src",), flags=("--ignore-existing",)),
    Case("existing", {"both": F(b"source version", T0 + 1), "only_src": F(b"new")},
         {"both": F(b"dest version")}, {"both": F(b"source version", T0 + 1)},
         (">f.st...... both",), flags=("--existing",)),
    Case("changed-permissions-alone-are-applied-in-place", {"f": F(b"same", mode=0o600)},
         {"f": F(b"same")}, {"f": F(b"same", mode=0o600)}, (".f...p..... f",),
         same_inode=("f",)),
    Case("min-and-max-size",
         {"small": F(b"x" * 10), "medium": F(b"x" * 2048), "large": F(b"x" * 10_000)}, None,
         {"medium": F(b"x" * 2048)}, ("cd+++++++++ ./", ">f+++++++++ medium"),
         flags=("--min-size", "1K", "--max-size", "4K")),
    # writes
    Case("replacement-is-a-new-inode", {"f": F(b"version two", T0 + 1)},
         {"f": F(b"version one, longer")}, {"f": F(b"version two", T0 + 1)},
         (">f.st...... f",), new_inode=("f",)),
    Case("inplace-keeps-the-inode", {"f": F(b"v3", T0 + 2)}, {"f": F(b"version one, longer")},
         {"f": F(b"v3", T0 + 2)}, (">f.st...... f",), flags=("--inplace",),
         same_inode=("f",)),
    Case("backup-keeps-replaced-and-deleted-files", {"f": F(b"new", T0 + 1)},
         {"f": F(b"old"), "gone": F(b"extraneous")},
         {"f": F(b"new", T0 + 1), "f~": F(b"old"), "gone~": F(b"extraneous")},
         (">f..t...... f", "*deleting gone"), flags=("-b",), verb="mirror"),
    Case("fsync-still-lands-the-same-file", {"f": F(b"data", T0 + 9, 0o640)}, None,
         {"f": F(b"data", T0 + 9, 0o640)}, ("cd+++++++++ ./", ">f+++++++++ f"),
         flags=("--fsync",)),
    Case("backup-with-a-suffix", {"f": F(b"new", T0 + 1)}, {"f": F(b"old")},
         {"f": F(b"new", T0 + 1), "f.old": F(b"old")}, (">f..t...... f",),
         flags=("-b", "--suffix", ".old")),
    Case("directory-replaces-a-file", {"thing": Dir(), "thing/inner": F(b"inner")},
         {"thing": F(b"i am a file")}, {"thing": Dir(), "thing/inner": F(b"inner")},
         ("cd+++++++++ thing/", ">f+++++++++ thing/inner")),
    Case("symlinks-are-copied-as-links",
         {"real.txt": F(b"real"), "dir": Dir(), "dir/inner": F(b"inner"),
          "link": Link("real.txt"), "dirlink": Link("dir"), "dangling": Link("missing")},
         None,
         {"real.txt": F(b"real"), "dir": Dir(), "dir/inner": F(b"inner"),
          "link": Link("real.txt"), "dirlink": Link("dir"), "dangling": Link("missing")},
         ("cd+++++++++ ./", ">f+++++++++ real.txt", "cd+++++++++ dir/",
          ">f+++++++++ dir/inner", "cL+++++++++ link -> real.txt",
          "cL+++++++++ dirlink -> dir", "cL+++++++++ dangling -> missing")),
    Case("a-changed-symlink-target-is-updated", {"link": Link("new")}, {"link": Link("old")},
         {"link": Link("new")}, ("cLc.t...... link -> new",)),
    Case("read-only-directory-keeps-its-mode", {"ro": Dir(0o555), "ro/inside": F(b"data")},
         None, {"ro": Dir(0o555), "ro/inside": F(b"data")},
         ("cd+++++++++ ./", "cd+++++++++ ro/", ">f+++++++++ ro/inside")),
    Case("awkward-posix-names",
         {"line\nbreak": F(b"1"), "C:": F(b"2"), "back\\slash": F(b"3"), "sp ace": F(b"4"),
          "-rf": F(b"5")},
         None,
         {"line\nbreak": F(b"1"), "C:": F(b"2"), "back\\slash": F(b"3"), "sp ace": F(b"4"),
          "-rf": F(b"5")},
         ("cd+++++++++ ./", ">f+++++++++ line\\#012break", ">f+++++++++ C:",
          ">f+++++++++ back\\slash", ">f+++++++++ sp ace", ">f+++++++++ -rf")),
    # filters
    Case("exclude-does-not-descend-and-include-wins-when-first", SMALL, None,
         _without(SMALL, "sub2", "sub1/nested/file01.dat"),
         _new(_without(SMALL, "sub2", "sub1/nested/file01.dat")),
         flags=("--include", "sub1/nested/", "--include", "file00.dat",
                "--exclude", "nested/*", "--exclude", "sub2")),
    Case("filter-options-apply-in-command-line-order", SMALL, None,
         _without(SMALL, "exec.sh", "sub2"), _new(_without(SMALL, "exec.sh", "sub2")),
         flags=("--include-from", "{lists}/includes", "--exclude-from", "{lists}/excludes",
                "--filter", "- sub2/", "--filter", "+ secret", "--exclude", "secret")),
    Case("files-from-transfers-only-the-listed-paths", SMALL, None,
         {"a.txt": SMALL["a.txt"], "sub1": Dir(), "sub1/nested": Dir(0o750),
          "sub1/nested/file01.dat": SMALL["sub1/nested/file01.dat"]},
         ("cd+++++++++ ./", ">f+++++++++ a.txt", "cd+++++++++ sub1/",
          "cd+++++++++ sub1/nested/", ">f+++++++++ sub1/nested/file01.dat"),
         flags=("--files-from", "{lists}/files")),
    Case("excluded-entries-are-protected-from-mirror",
         {"f": F(b"f"), "src.log": F(b"source log")},
         {"f": F(b"f"), "keep.log": F(b"log")}, {"f": F(b"f"), "keep.log": F(b"log")},
         flags=("--exclude", "*.log"), verb="mirror"),
    Case("delete-excluded", {"f": F(b"f"), "src.log": F(b"source log")},
         {"f": F(b"f"), "keep.log": F(b"log")}, {"f": F(b"f")}, ("*deleting keep.log",),
         flags=("--exclude", "*.log", "--delete-excluded"), verb="mirror"),
    # mirror
    Case("mirror-deletes-extraneous-entries-deepest-first", {"a": F(b"a"), "d": Dir()},
         {"a": F(b"a"), "d": Dir(), "extra.txt": F(b"x"), "old_dir": Dir(),
          "old_dir/deep": Dir(), "old_dir/deep/file": F(b"y"), "extra_link": Link("nowhere")},
         {"a": F(b"a"), "d": Dir()},
         ("*deleting extra.txt", "*deleting extra_link", "*deleting old_dir/",
          "*deleting old_dir/deep/", "*deleting old_dir/deep/file"),
         verb="mirror",
         ordered=("*deleting old_dir/deep/file", "*deleting old_dir/deep/",
                  "*deleting old_dir/")),
    Case("mirror-without-slash-deletes-inside-its-copy-only", {"a": F(b"a")},
         {"unrelated": F(b"stays"), "src": Dir(), "src/stale": F(b"goes")},
         {"unrelated": F(b"stays"), "src": Dir(), "src/a": F(b"a")},
         (">f+++++++++ src/a", "*deleting src/stale"), verb="mirror", src_arg="src"),
    Case("max-delete-zero-copies-but-deletes-nothing", {"new": F(b"n")},
         {"x": F(b"x"), "y": F(b"y")}, {"new": F(b"n"), "x": F(b"x"), "y": F(b"y")},
         (">f+++++++++ new",), flags=("--max-delete", "0"), verb="mirror", code=25,
         stderr="max-delete"),
    # dry run
    Case("dry-run-mirror-changes-nothing-and-lists-everything",
         {"a.txt": F(b"aaa", T0 + SEC), "new.txt": F(b"new")},
         {"a.txt": F(b"aaa"), "extra": F(b"x")}, {"a.txt": F(b"aaa"), "extra": F(b"x")},
         (">f..t...... a.txt", ">f+++++++++ new.txt", "*deleting extra"),
         flags=("-n",), verb="mirror"),
    Case("dry-run-move-changes-nothing", {"a.txt": F(b"aaa"), "sub": Dir(),
                                          "sub/b": F(b"b")}, None, {},
         ("cd+++++++++ ./", ">f+++++++++ a.txt", "cd+++++++++ sub/", ">f+++++++++ sub/b"),
         flags=("-n",), verb="move"),
    # move
    Case("move-with-trailing-slash-keeps-the-source-root",
         {"a": F(b"a"), "sub": Dir(0o750), "sub/b": F(b"b", T0 + 3)}, None,
         {"a": F(b"a"), "sub": Dir(0o750), "sub/b": F(b"b", T0 + 3)},
         ("cd+++++++++ ./", ">f+++++++++ a", "cd+++++++++ sub/", ">f+++++++++ sub/b"),
         verb="move", src_after={}),
    Case("move-of-a-directory-removes-it", {"a": F(b"a"), "sub": Dir(), "sub/b": F(b"b")},
         {}, {"src": Dir(), "src/a": F(b"a"), "src/sub": Dir(), "src/sub/b": F(b"b")},
         ("cd+++++++++ src/", ">f+++++++++ src/a", "cd+++++++++ src/sub/",
          ">f+++++++++ src/sub/b"), verb="move", src_arg="src", src_gone=True),
    Case("move-removes-sources-already-up-to-date", {"same": F(b"same"), "new": F(b"n")},
         {"same": F(b"same")}, {"same": F(b"same"), "new": F(b"n")}, (">f+++++++++ new",),
         verb="move", src_after={}),
]

def bundle(name: str, cases: Sequence[Case]) -> Case:
    """Cases with the same command as one run, each in a subdirectory named after it."""
    first = cases[0]
    src: dict[str, Node] = {}
    dst: dict[str, Node] = {}
    expect: dict[str, Node] = {}
    lines: list[str] = []
    same_inode: list[str] = []
    new_inode: list[str] = []
    for case in cases:
        assert (case.verb, case.flags, case.code, case.src_arg) == (
            first.verb, first.flags, first.code, first.src_arg)
        assert case.src_after is None and not case.src_gone and not case.ordered
        sub = case.name
        src[sub] = expect[sub] = Dir()
        src.update({f"{sub}/{rel}": node for rel, node in case.src.items()})
        if case.dst is not None:
            dst[sub] = Dir()
            dst.update({f"{sub}/{rel}": node for rel, node in case.dst.items()})
        expect.update({f"{sub}/{rel}": node for rel, node in case.expect.items()})
        for line in case.lines:
            code, _, path = line.partition(" ")
            lines.append(f"{code} {sub}/" if path == "./" else f"{code} {sub}/{path}")
        same_inode += [f"{sub}/{rel}" for rel in case.same_inode]
        new_inode += [f"{sub}/{rel}" for rel in case.new_inode]
    return Case(name, src, dst, expect, tuple(lines), first.flags, first.verb, first.code,
                src_arg=first.src_arg, same_inode=tuple(same_inode),
                new_inode=tuple(new_inode))


# Cases of a plain `blit copy` share one session, each in its own subdirectory: a real
# transfer mixes them like that, and it saves processes on a shared machine.
PLAIN_COPY = {"quick-check-skips-same-size-and-mtime", "one-nanosecond-newer-transfers",
              "changed-permissions-alone-are-applied-in-place", "replacement-is-a-new-inode",
              "directory-replaces-a-file", "symlinks-are-copied-as-links",
              "a-changed-symlink-target-is-updated", "read-only-directory-keeps-its-mode"}
TABLE = [bundle("plain-copy", [case for case in CASES if case.name in PLAIN_COPY]),
         *(case for case in CASES if case.name not in PLAIN_COPY)]


LISTS = {
    "includes": "sub1/nested/\n# comment\n",
    "excludes": "nested/\n*.sh\n",
    "files": "a.txt\nsub1/nested/file01.dat\n# a comment\n",
}


def run_case(layout: Layout, case: Case, lists: Path) -> list[str]:
    """Run one case in `layout`'s direction; the list of what did not conform."""
    src_dir = layout.src_base / case.name / "src"
    dst_dir = layout.dst_base / case.name / "dst"
    build(src_dir, case.src)
    if case.dst is None:
        dst_dir.parent.mkdir(parents=True, exist_ok=True)
    else:
        build(dst_dir, case.dst)
    src_before = read(src_dir)
    inodes = {rel: inode(dst_dir / rel) for rel in case.same_inode + case.new_inode}
    flags = [flag.format(lists=lists) for flag in case.flags]
    result = run(case.verb, "-i", *flags, layout.src(f"{case.name}/{case.src_arg}"),
                 layout.dst(f"{case.name}/dst"))
    problems: list[str] = []
    if result.returncode != case.code:
        problems.append(f"exit {result.returncode}, expected {case.code}: "
                        f"{result.stderr.strip()!r}")
    if case.stderr not in result.stderr or "Traceback" in result.stderr:
        problems.append(f"stderr {result.stderr!r} lacks {case.stderr!r}")
    lines = result.stdout.splitlines()
    if sorted(lines) != sorted(case.lines):
        problems.append(f"itemized {sorted(lines)}, expected {sorted(case.lines)}")
    positions = [lines.index(line) for line in case.ordered if line in lines]
    if positions != sorted(positions):
        problems.append(f"not in the order {case.ordered}: {lines}")
    actual = read(dst_dir) if dst_dir.is_dir() else {}
    problems += [f"DST {p}" for p in spec_diff(actual, case.expect)]
    if dst_dir.is_dir() and find_temp_files(dst_dir):
        problems.append(f"temp files left: {find_temp_files(dst_dir)}")
    for rel, before in inodes.items():
        kept = (dst_dir / rel).exists() and inode(dst_dir / rel) == before
        if kept != (rel in case.same_inode):
            problems.append(f"{rel!r}: inode {'changed' if rel in case.same_inode else 'kept'}")
    if case.src_gone:
        if src_dir.exists():
            problems.append(f"SRC still exists: {sorted(read(src_dir))}")
    else:
        want = src_before if case.src_after is None else case.src_after
        problems += [f"SRC {p}" for p in spec_diff(read(src_dir), want)]
    return [f"{case.name}: {p}" for p in problems]


def test_case_table_agrees_in_every_direction(layout: Layout, tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    for name, text in LISTS.items():
        (lists / name).write_text(text)
    problems = in_parallel(lambda case: run_case(layout, case, lists), TABLE)
    assert not problems, "\n".join(problems)


# -- hard links, copy-links, backup-dir: honoured in every direction -----------------------

FEATURE_CASES: dict[str, Case] = {
    "-H": Case(
        "hard-links-are-kept-with-H",
        {"one": F(b"shared"), "two": Hard("one"), "d": Dir(), "d/three": Hard("one")}, None,
        {"one": F(b"shared"), "two": F(b"shared"), "d": Dir(), "d/three": F(b"shared")},
        ("cd+++++++++ ./", ">f+++++++++ one", "hf+++++++++ two => one", "cd+++++++++ d/",
         "hf+++++++++ d/three => one"),
        flags=("-H",), hard_groups=frozenset({frozenset({"one", "two", "d/three"})})),
    "-L": Case(
        "copy-links-follows-symlinks",
        {"real.txt": F(b"real"), "dir": Dir(), "dir/inner": F(b"inner"),
         "link": Link("real.txt"), "dirlink": Link("dir"), "dangling": Link("missing")},
        None,
        {"real.txt": F(b"real"), "dir": Dir(), "dir/inner": F(b"inner"), "link": F(b"real"),
         "dirlink": Dir(), "dirlink/inner": F(b"inner")},
        ("cd+++++++++ ./", ">f+++++++++ real.txt", "cd+++++++++ dir/",
         ">f+++++++++ dir/inner", ">f+++++++++ link", "cd+++++++++ dirlink/",
         ">f+++++++++ dirlink/inner"),
        flags=("-L",), code=23, stderr="dangling"),
    "--backup-dir": Case(
        "backup-dir-keeps-relative-paths",
        {"sub": Dir(), "sub/f": F(b"new", T0 + 1)}, {"sub": Dir(), "sub/f": F(b"old")},
        {"sub": Dir(), "sub/f": F(b"new", T0 + 1), "bk": Dir(None, None),
         "bk/sub": Dir(None, None), "bk/sub/f": F(b"old")},
        (">f..t...... sub/f",), flags=("--backup-dir", "bk")),
}

@pytest.mark.parametrize("flag", list(FEATURE_CASES))
def test_hard_links_copy_links_and_backup_dir_work_in_every_direction(
    layout: Layout, tmp_path: Path, flag: str
) -> None:
    case = FEATURE_CASES[flag]
    problems = run_case(layout, case, tmp_path)
    dst = layout.dst_base / case.name / "dst"
    if case.hard_groups is not None and hardlink_groups(dst) != case.hard_groups:
        problems.append(f"hard links {hardlink_groups(dst)} != {case.hard_groups}")
    assert not problems, "\n".join(problems)


# -- -H in every direction: groups across directories, links already there, move ---------

SHARED = F(b"shared")
HARD_LINK_TABLE: list[Case] = [
    Case("hard-links-already-linked-are-left-alone",
         {"one": SHARED, "two": Hard("one")}, {"one": SHARED, "two": Hard("one")},
         {"one": SHARED, "two": SHARED}, (), flags=("-H",),
         hard_groups=frozenset({frozenset({"one", "two"})})),
    Case("hard-links-replace-separate-copies",
         {"one": SHARED, "two": Hard("one")}, {"one": SHARED, "two": SHARED},
         {"one": SHARED, "two": SHARED}, ("hf+++++++++ two => one",), flags=("-H",),
         hard_groups=frozenset({frozenset({"one", "two"})})),
    Case("hard-links-two-groups-across-directories",
         {"a": Dir(), "a/x": F(b"x"), "b": Dir(), "b/y": Hard("a/x"), "a/z": F(b"z"),
          "c": Dir(), "c/v": Hard("a/z"), "c/w": Hard("a/z"), "lone": F(b"lone")}, None,
         {"a": Dir(), "a/x": F(b"x"), "b": Dir(), "b/y": F(b"x"), "a/z": F(b"z"),
          "c": Dir(), "c/v": F(b"z"), "c/w": F(b"z"), "lone": F(b"lone")},
         ("cd+++++++++ ./", "cd+++++++++ a/", ">f+++++++++ a/x", ">f+++++++++ a/z",
          "cd+++++++++ b/", "hf+++++++++ b/y => a/x", "cd+++++++++ c/",
          "hf+++++++++ c/v => a/z", "hf+++++++++ c/w => a/z", ">f+++++++++ lone"),
         flags=("-H",),
         hard_groups=frozenset({frozenset({"a/x", "b/y"}), frozenset({"a/z", "c/v", "c/w"})})),
    Case("hard-links-dry-run-writes-nothing",
         {"one": SHARED, "two": Hard("one")}, None, {},
         ("cd+++++++++ ./", ">f+++++++++ one", "hf+++++++++ two => one"),
         flags=("-H", "-n")),
    Case("hard-links-move-removes-every-member",
         {"one": SHARED, "d": Dir(), "d/two": Hard("one")}, None,
         {"one": SHARED, "d": Dir(), "d/two": SHARED},
         ("cd+++++++++ ./", ">f+++++++++ one", "cd+++++++++ d/", "hf+++++++++ d/two => one"),
         flags=("-H",), verb="move", src_after={},
         hard_groups=frozenset({frozenset({"one", "d/two"})})),
    Case("hard-links-move-with-checksum-verifies-every-member",
         {"one": SHARED, "d": Dir(), "d/two": Hard("one")}, None,
         {"one": SHARED, "d": Dir(), "d/two": SHARED},
         ("cd+++++++++ ./", ">f+++++++++ one", "cd+++++++++ d/", "hf+++++++++ d/two => one"),
         flags=("-H", "-c"), verb="move", src_after={},
         hard_groups=frozenset({frozenset({"one", "d/two"})})),
]


def test_hard_link_table_agrees_in_every_direction(layout: Layout, tmp_path: Path) -> None:
    def check(case: Case) -> list[str]:
        problems = run_case(layout, case, tmp_path)
        dst = layout.dst_base / case.name / "dst"
        groups = hardlink_groups(dst) if dst.is_dir() else set()
        if case.hard_groups is not None and groups != case.hard_groups:
            problems.append(f"{case.name}: hard links {groups} != {case.hard_groups}")
        return problems

    problems = in_parallel(check, HARD_LINK_TABLE)
    assert not problems, "\n".join(problems)


# -- exit codes of requests that cannot start ----------------------------------------------

# (name, arguments: "S:" a SRC-side path, "D:" a DST-side path, others as they are; the exit
# code; what stderr starts with or holds)
EXIT_CASES: list[tuple[str, list[str], int, str]] = [
    ("missing-source", ["S:nope", "D:dst"], 3, "blit: error: source"),
    ("file-source-with-a-trailing-slash", ["S:a/", "D:dst"], 3, "blit: error: "),
    ("several-sources-into-a-file", ["S:a", "S:b", "D:file"], 1, "not a directory"),
    ("destination-parent-missing", ["S:a", "D:no/such/dst"], 3, "does not exist"),
    ("contradicting-options", ["--existing", "--ignore-existing", "S:a", "D:dst"], 1,
     "would skip every file"),
    ("unknown-filter-rule", ["--filter", "protect x", "S:a", "D:dst"], 1, "blit: error:"),
    ("unreadable-exclude-from", ["--exclude-from", "{tmp}/missing", "S:a", "D:dst"], 3,
     "blit: error:"),
]


def run_exit_case(layout: Layout, tmp_path: Path, name: str, args: list[str], code: int,
                  message: str) -> list[str]:
    argv = [layout.src(f"e/{a[2:]}") if a.startswith("S:")
            else layout.dst(f"e/{a[2:]}") if a.startswith("D:")
            else a.format(tmp=tmp_path) for a in args]
    result = run("copy", *argv)
    problems = []
    if result.returncode != code:
        problems.append(f"{name}: exit {result.returncode}, expected {code}: "
                        f"{result.stderr.strip()!r}")
    if (not result.stderr.startswith("blit: error:") or message not in result.stderr
            or "Traceback" in result.stderr):
        problems.append(f"{name}: stderr {result.stderr!r} lacks {message!r}")
    return problems


def test_exit_codes_agree_in_every_direction(layout: Layout, tmp_path: Path) -> None:
    build(layout.src_base / "e", {"a": F(b"a"), "b": F(b"b")})
    (layout.dst_base / "e").mkdir(exist_ok=True)
    (layout.dst_base / "e" / "file").write_bytes(b"a file")
    dst_before = read(layout.dst_base / "e")
    problems = in_parallel(lambda case: run_exit_case(layout, tmp_path, *case), EXIT_CASES)
    problems += [f"DST {p}" for p in spec_diff(read(layout.dst_base / "e"), dst_before)]
    assert not problems, "\n".join(problems)


# -- what is copied: sparse files, special files --------------------------------------------


def test_sparse_files_stay_sparse_with_S(layout: Layout) -> None:
    src = layout.src_base / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as handle:
        handle.truncate(64 << 20)
        handle.seek(32 << 20)
        handle.write(b"middle")
    os.utime(src / "sparse", ns=(T0, T0))
    result = run("copy", "-S", layout.src("src/"), layout.dst("dst"))
    assert result.returncode == 0, result.stderr
    copied = layout.dst_base / "dst" / "sparse"
    assert copied.stat().st_size == 64 << 20
    assert file_digest(copied) == file_digest(src / "sparse")
    assert copied.stat().st_mtime_ns == T0
    assert copied.stat().st_blocks * 512 < 1 << 20, f"{copied.stat().st_blocks} blocks"


def test_special_files_are_skipped_with_a_warning_unless_asked_for(layout: Layout) -> None:
    src = layout.src_base / "src"
    build(src, {"file": F(b"x")})
    os.mkfifo(src / "pipe")
    as_root = os.geteuid() == 0
    if as_root:
        os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.utime(src, ns=(DIR_T, DIR_T))
    result = run("copy", "-i", layout.src("src/"), layout.dst("plain"))
    assert result.returncode == 0, result.stderr
    plain = layout.dst_base / "plain"
    assert sorted(os.listdir(plain)) == ["file"]
    assert sorted(result.stdout.splitlines()) == [">f+++++++++ file", "cd+++++++++ ./"]
    assert "skipping non-regular file 'pipe'" in result.stderr
    if as_root:
        assert "skipping non-regular file 'null'" in result.stderr

    result = run("copy", "-i", "--specials", "--devices", layout.src("src/"),
                 layout.dst("all"))
    assert result.returncode == 0, result.stderr
    full = layout.dst_base / "all"
    assert (full / "file").read_bytes() == b"x"
    if not as_root:  # blit creates FIFOs and devices as root only, as rsync does
        assert "skipping non-regular file 'pipe'" in result.stderr
        assert sorted(os.listdir(full)) == ["file"]
        return
    assert result.stderr == ""
    assert sorted(result.stdout.splitlines()) == [
        ">f+++++++++ file", "cD+++++++++ null", "cS+++++++++ pipe", "cd+++++++++ ./"]
    for name, kind in (("pipe", stat.S_ISFIFO), ("null", stat.S_ISCHR)):
        st, src_st = os.lstat(full / name), os.lstat(src / name)
        assert kind(st.st_mode) and st.st_mode == src_st.st_mode, name
        assert (st.st_rdev, st.st_mtime_ns) == (src_st.st_rdev, src_st.st_mtime_ns), name


# -- itemized listing, --json and --stats on a whole small tree ----------------------------


def test_reports_agree_in_every_direction(layout: Layout, small_tree: Path) -> None:
    """Itemized lines of a whole new tree, a no-op second pass, the --json counts (dry run
    included) and --stats, on the small tree (30 files, a symlink, an empty directory)."""
    if layout.direction == "pull":
        src = layout.src_base / "small"
        shutil.copytree(small_tree, src, symlinks=True)
        src_arg = layout.src("small/")
    else:
        src, src_arg = small_tree, f"{small_tree}/"
    result = run("mirror", "-i", src_arg, layout.dst("dst"))
    assert result.returncode == 0, result.stderr
    dst = layout.dst_base / "dst"
    assert_same_tree(src, dst)
    assert sorted(result.stdout.splitlines()) == sorted(_new(read(src)))
    again = run("mirror", "-i", src_arg, layout.dst("dst"))
    assert (again.returncode, again.stdout) == (0, "")

    files = [p for p in src.rglob("*") if p.is_file() and not p.is_symlink()]
    size = sum(p.stat().st_size for p in files)
    for dry_run in (("-n",), ()):
        result = run("copy", "--json", *dry_run, src_arg, layout.dst("json"))
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert (report["exit_code"], report["dry_run"], report["failures"]) == (
            0, bool(dry_run), [])
        assert (report["files"]["transferred"], report["bytes"]["transferred"]) == (
            len(files), size), dry_run
        assert (layout.dst_base / "json").exists() != bool(dry_run)
    again = json.loads(run("copy", "--json", src_arg, layout.dst("json")).stdout)
    assert (again["files"]["transferred"], again["files"]["unchanged"]) == (0, 31)

    result = run("copy", "--stats", src_arg, layout.dst("stats"))
    assert result.returncode == 0, result.stderr
    assert "Number of regular files transferred: 30" in result.stdout


# -- the nasty tree ------------------------------------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_nasty_tree_mirrors_identically(
    direction: str, nasty_tree: NastyTree, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Mirror the whole nasty tree, then mirror again: the copy equals the source in types,
    modes, nanosecond mtimes, bytes and link targets, no temp file is left, hard links are
    separate files without -H (as in rsync), and the second pass has nothing to do. A pull
    reads the shared tree itself through a read-only module, so it cannot change it."""
    src = nasty_tree.root
    daemon: Daemon | None = None
    if direction == "pull":
        config = tmp_path / "read-only.toml"
        config.write_text(f'[[module]]\nname = "default"\npath = "{src.parent}"\n'
                          "read_only = true\n")
        daemon = Daemon(src.parent, config=config)
        dst = tmp_path / "dst"
    elif direction == "push":
        daemon = request.getfixturevalue("daemon")
        dst = daemon.root / "dst"
    else:
        dst = tmp_path / "dst"
    try:
        for itemize in ((), ("-i",)):
            if daemon is None:
                result = run("mirror", *itemize, f"{src}/", f"{dst}/")
            else:
                result = transfer(direction, daemon, "mirror", src, dst, *itemize)
            assert result.returncode == 0, result.stderr[-3000:]
            assert result.stderr == ""
            if itemize:
                assert result.stdout == "", "the second pass is not a no-op"
            else:
                assert_same_tree(src, dst)
                assert find_temp_files(dst) == []
                assert hardlink_groups(dst) == set()
    finally:
        if direction == "pull" and daemon is not None:
            daemon.stop()
