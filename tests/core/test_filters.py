"""Tests of blit_core.filters: rsync-style include/exclude rules.

Two layers: unit tests per syntax point, and a table of rule lists whose decisions on a real
tree are compared with what the rsync binary itself transfers.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from blit_core.errors import SelectionError, UsageError
from blit_core.filters import FilterRules, parse_filter_rule, read_pattern_file

RSYNC = shutil.which("rsync")


def rules(*texts: str) -> FilterRules:
    return FilterRules.from_rules(parse_filter_rule(text) for text in texts)


# ----------------------------------------------------------------------------------------------
# unit tests, one syntax point at a time
# ----------------------------------------------------------------------------------------------

F, D = False, True  # is_dir

# (rules, path, is_dir, expected excludes())
SYNTAX_CASES = [
    # no rules / no match: included
    ((), "a.c", F, False),
    (("- *.o",), "a.c", F, False),
    # '*' stays within one component; a slash-free pattern matches the last component
    (("- *.o",), "x.o", F, True),
    (("- *.o",), "deep/er/x.o", F, True),
    (("- *.o",), "x.o/y", F, False),
    (("- *.o",), "x.o", D, True),
    (("- a*",), "b/abc", F, True),
    (("- a*",), "ab/c", F, False),
    (("- *",), "anything/at/all", D, True),
    (("- foo",), "foo", F, True),
    (("- foo",), "x/foo", D, True),
    (("- foo",), "foo/x", F, False),
    (("- foo",), "xfoo", F, False),
    # '?' is one non-slash character (one byte, as in rsync)
    (("- ?.h",), "a.h", F, True),
    (("- ?.h",), "ab.h", F, False),
    (("- ?.h",), "sub/b.h", F, True),
    (("- a?b",), "a/b", F, False),
    (("- ?.h",), "é.h", F, False),
    (("- ??.h",), "é.h", F, True),
    # character classes
    (("- [ab]*",), "apple", F, True),
    (("- [ab]*",), "cherry", F, False),
    (("- [!ab]*",), "cherry", F, True),
    (("- [^ab]*",), "apple", F, False),
    (("- [a-c]x",), "bx", F, True),
    (("- [a-c]x",), "dx", F, False),
    (("- [a-]x",), "-x", F, True),
    (("- []a]x",), "]x", F, True),
    (("- [[:upper:]]*",), "Makefile", F, True),
    (("- [[:upper:]]*",), "makefile", F, False),
    (("- [[:digit:][:space:]]z",), " z", F, True),
    (("- x[!a]y",), "x/y", F, False),  # a class never matches '/'
    (("- *[",), "a[", F, False),  # unterminated class: never matches
    (("- [[:nope:]]",), "n", F, False),  # unknown class name: never matches
    # backslash escapes, but only when the pattern has a wildcard
    (("- star\\*",), "star*", F, True),
    (("- star\\*",), "starX", F, False),
    (("- back\\slash",), "back\\slash", F, True),
    (("- a\\b*",), "ab", F, True),
    # trailing '/' matches directories only
    (("- build/",), "build", D, True),
    (("- build/",), "build", F, False),
    (("- build/",), "src/build", D, True),
    (("- *.d/",), "x.d", F, False),
    # leading '/' anchors to the transfer root
    (("- /build",), "build", F, True),
    (("- /build",), "src/build", F, False),
    (("- /build/",), "build", D, True),
    (("- /build/",), "build", F, False),
    (("- /src/*.c",), "src/a.c", F, True),
    (("- /src/*.c",), "x/src/a.c", F, False),
    # a pattern with a '/' matches the path, or unanchored any tail after a '/'
    (("- sub/file",), "sub/file", F, True),
    (("- sub/file",), "x/sub/file", F, True),
    (("- sub/file",), "x/xsub/file", F, False),
    (("- src/*.c",), "src/a.c", F, True),
    (("- src/*.c",), "p/src/a.c", F, True),
    (("- src/*.c",), "src/deep/a.c", F, False),
    (("- foo/*/bar",), "foo/x/bar", F, True),
    (("- foo/*/bar",), "foo/x/y/bar", F, False),
    # '**' crosses slashes and makes the pattern match the whole path
    (("- src/**.c",), "src/deep/a.c", F, True),
    (("- **.c",), "a/b/c.c", F, True),
    (("- a**",), "x/ab/c", F, True),
    (("- a**",), "xa/b", F, False),
    (("- /foo/**/bar",), "foo/x/bar", F, True),
    (("- /foo/**/bar",), "foo/bar", F, False),
    (("- **/deep/**",), "src/deep/y.c", F, True),
    (("- **/deep/**",), "deep/t.c", F, True),  # "**/" may match nothing at the start
    (("- **/deep/**",), "src/deep", D, False),
    (("- **/build",), "build", D, True),
    (("- /src/**",), "src/a/b", F, True),
    (("- /src/**",), "src", D, False),
    # "dir/***" is the directory and everything below it
    (("- docs/***",), "docs", D, True),
    (("- docs/***",), "docs/readme.md", F, True),
    (("- docs/***",), "docs/api/index.md", F, True),
    (("- docs/***",), "x/docs", D, True),
    (("- docs/***",), "docs", F, False),
    (("- docs/***",), "docs2", D, False),
    (("- /docs/***",), "x/docs", D, False),
    # first match wins
    (("+ keep.log", "- *.log"), "keep.log", F, False),
    (("+ keep.log", "- *.log"), "debug.log", F, True),
    (("- *.log", "+ keep.log"), "keep.log", F, True),
    (("+ */", "+ *.c", "- *"), "src", D, False),
    (("+ */", "+ *.c", "- *"), "src/a.c", F, False),
    (("+ */", "+ *.c", "- *"), "src/a.h", F, True),
    (("+ */", "- *"), "dir.c", D, False),
    (("+ */", "- *"), "file", F, True),
    (("+ /src/", "- /*"), "src", D, False),
    (("+ /src/", "- /*"), "docs", D, True),
    (("+ /src/", "- /*"), "src/a.c", F, False),
    (("- x", "+ *", "- y"), "y", F, False),
    # non-UTF-8 names (as os.fsdecode gives them) match by bytes
    (("- bad-?-name",), os.fsdecode(b"bad-\xff-name"), F, True),
    (("- bad-*",), os.fsdecode(b"dir/bad-\xff\xfe"), F, True),
    (("- *\xe9",), "caf\xe9", F, True),
    (("- caf?",), "caf\xe9", F, False),
    (("- caf??",), "caf\xe9", F, True),
    # names with newlines are ordinary names
    (("- new*",), "new\nline", F, True),
    (("- /a/**",), "a/x\ny", F, True),
]


@pytest.mark.parametrize(("texts", "path", "is_dir", "expected"), SYNTAX_CASES)
def test_syntax(texts: tuple[str, ...], path: str, is_dir: bool, expected: bool) -> None:
    assert rules(*texts).excludes(path, is_dir) is expected


def test_empty_rules_are_false_and_exclude_nothing() -> None:
    empty = FilterRules.from_rules([])
    assert not empty
    assert len(empty) == 0
    assert not empty.excludes("a", False)
    assert not empty.excludes("a", True)
    assert FilterRules.from_rules([("+", "x")])
    assert FilterRules.from_rules([("-", "x")])


def test_from_rules_accepts_any_iterable_and_keeps_rules() -> None:
    pairs = [("+", "keep.log"), ("-", "*.log")]
    compiled = FilterRules.from_rules(iter(pairs))
    assert compiled.rules == tuple(pairs)
    assert compiled == FilterRules.from_rules(pairs)
    assert compiled != FilterRules.from_rules(pairs[::-1])
    assert "keep.log" in repr(compiled)


def test_pickle_round_trip() -> None:
    compiled = FilterRules.from_rules([("+", "*/"), ("+", "*.c"), ("-", "*")])
    copy = pickle.loads(pickle.dumps(compiled))
    assert copy == compiled
    assert copy.excludes("a.h", False)
    assert not copy.excludes("a.c", False)
    assert not copy.excludes("d", True)


@pytest.mark.parametrize(
    "bad",
    [[("x", "a")], [("", "a")], [("-", "")], [("+", None)], [("-",)], ["-a"], [None]],
)
def test_from_rules_rejects_bad_rules(bad: list) -> None:
    with pytest.raises(UsageError):
        FilterRules.from_rules(bad)


def test_root_path_never_matches() -> None:
    # rsync never applies rules to the transfer root itself.
    assert not rules("- *").excludes("", True)
    assert not rules("+ a", "- *").excludes("", True)
    assert not rules("- /").excludes("", True)


def test_many_rules_and_long_paths() -> None:
    compiled = FilterRules.from_rules([("-", f"name{i}") for i in range(500)] + [("-", "*.o")])
    assert compiled.excludes("x/name499", False)
    assert compiled.excludes("x/y.o", False)
    assert not compiled.excludes("name500", False)
    deep = "/".join(["d"] * 2000)
    assert rules("- **/deep/**").excludes(deep + "/deep/x", False)
    assert not rules("- d/*/e").excludes(deep, True)


# ----------------------------------------------------------------------------------------------
# parse_filter_rule
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- *.o", ("-", "*.o")),
        ("+ *.c", ("+", "*.c")),
        ("exclude *.o", ("-", "*.o")),
        ("include /src/", ("+", "/src/")),
        ("-_*.o", ("-", "*.o")),  # rsync allows '_' in place of the space
        ("include_x", ("+", "x")),
        ("-  lead", ("-", " lead")),  # only one separator; the rest is the pattern
        ("- trail ", ("-", "trail ")),
        ("- a b", ("-", "a b")),
    ],
)
def test_parse_filter_rule(text: str, expected: tuple[str, str]) -> None:
    assert parse_filter_rule(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-",
        "- ",
        "+_",
        "include",
        "exclude ",
        "*.o",
        "-*.o",
        "+,s foo",
        "-! foo",
        " - foo",
        "includefoo foo",
        "exclude-x foo",
        "merge rules.txt",
        ". rules.txt",
        ": .rsync-filter",
        "dir-merge .rsync-filter",
        "hide foo",
        "P foo",
        "!",
        "clear",
        "x foo",
    ],
)
def test_parse_filter_rule_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_filter_rule(text)


# ----------------------------------------------------------------------------------------------
# read_pattern_file
# ----------------------------------------------------------------------------------------------


def test_read_pattern_file_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "patterns"
    path.write_bytes(
        b"# a comment\n"
        b"*.o\n"
        b"\n"
        b"; another comment\n"
        b"  indented # not a comment\n"
        b"trailing space \n"
        b"dos line\r\n"
        b"/build/\n"
        b"bad-\xff-name\n"
        b"last-no-newline"
    )
    assert read_pattern_file(str(path)) == [
        "*.o",
        "  indented # not a comment",
        "trailing space ",
        "dos line",
        "/build/",
        os.fsdecode(b"bad-\xff-name"),
        "last-no-newline",
    ]


def test_read_pattern_file_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert read_pattern_file(str(path)) == []


def test_read_pattern_file_missing(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-file"
    with pytest.raises(SelectionError) as info:
        read_pattern_file(str(missing))
    assert "no-such-file" in str(info.value)
    assert "No such file or directory" in str(info.value)
    assert info.value.exit_code == 3


def test_read_pattern_file_directory(tmp_path: Path) -> None:
    with pytest.raises(SelectionError) as info:
        read_pattern_file(str(tmp_path))
    assert str(tmp_path) in str(info.value)
    assert "directory" in str(info.value).lower()


def test_read_pattern_file_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"# c\n*.o\n\nkeep.log\n"))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert read_pattern_file("-") == ["*.o", "keep.log"]


def test_read_pattern_file_text_only_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a\n;b\nc\n"))
    assert read_pattern_file("-") == ["a", "c"]


# ----------------------------------------------------------------------------------------------
# decisions compared with real rsync
# ----------------------------------------------------------------------------------------------

TREE_FILES = [
    "a.c",
    "a.h",
    "b.h",
    "ab.h",
    "é.h",
    "keep.log",
    "debug.log",
    "x.o",
    ".hidden",
    "Makefile",
    "star*.txt",
    "starX.txt",
    "with space.txt",
    "build/out.o",
    "build/log.txt",
    "build/sub/z.c",
    "src/x.c",
    "src/x.h",
    "src/a.c",
    "src/docs",  # a file named like the docs/ directory
    "src/keep.log",
    "src/deep/y.c",
    "src/deep/y.o",
    "src/deep/build/q.c",
    "src/sub/file",
    "x/sub/file",
    "x/src/w.c",
    "docs/readme.md",
    "docs/api/index.md",
    "docs/api/keep.log",
    "deep/t.c",
    "deep/deeper/u.c",
    "dir.txt/inner.c",  # a directory whose name looks like a file's
]
TREE_DIRS = ["empty"]
TREE_LINKS = {"linkdir": "src", "link.c": "a.c"}  # a link to a directory is not a directory

RSYNC_CASES = {
    "suffix": ["- *.o"],
    "anchored-dir": ["- /build/"],
    "any-dir": ["- build/"],
    "only-c": ["+ */", "+ *.c", "- *"],
    "starstar-deep": ["- **/deep/**"],
    "slash-pattern": ["- src/*.c"],
    "class": ["- [ab]*"],
    "negated-class": ["- [!a-c]*.h"],
    "posix-class": ["- [[:upper:]]*"],
    "question": ["- ?.h"],
    "two-questions": ["- ??.h"],
    "wild3": ["- docs/***"],
    "include-first": ["+ keep.log", "- *.log"],
    "anchored-file": ["- /a.c"],
    "unanchored-file": ["- a.c"],
    "path-literal": ["- sub/file"],
    "anchored-path-literal": ["- /src/sub/file"],
    "basename-both": ["- deep"],
    "anchored-starstar": ["- /src/deep/**"],
    "everything": ["- *"],
    "only-src-c": ["+ /src/", "+ /src/*.c", "- *"],
    "starstar-suffix": ["- **.c"],
    "starstar-middle": ["- src/**/*.c"],
    "dir-only-glob": ["- *.txt/"],
    "escaped-star": ["- star\\*.txt"],
    "dir-only-link": ["- linkdir/", "- link.c/"],
    "starstar-prefix-name": ["- **/build"],
    "dirs-only": ["+ */", "- *"],
    "nested-dir": ["- /docs/api/"],
    "nested-file": ["- api/index.md"],
    "hidden": ["- .*"],
    "space": ["- with space.txt"],
    "mixed": ["+ /docs/", "+ /docs/api/", "+ *.md", "- /docs/**", "- *.log", "+ *.c", "- *.h"],
}


def _build_tree(root: Path) -> None:
    root.mkdir()
    for rel in TREE_FILES:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rel.encode() + b"\n")
    for rel in TREE_DIRS:
        (root / rel).mkdir(parents=True, exist_ok=True)
    for rel, target in TREE_LINKS.items():
        os.symlink(target, root / rel)


def _rsync_selection(src: Path, dst: Path, texts: list[str]) -> set[str]:
    assert RSYNC is not None
    cmd = [RSYNC, "-a", "-8", "--dry-run", "--out-format=%n"]
    for text in texts:
        cmd += ["--filter", text]
    cmd += [f"{src}/", f"{dst}/"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    names = set()
    for line in proc.stdout.split(b"\n"):
        name = os.fsdecode(line).rstrip("/")
        if name and name != ".":
            names.add(name)
    return names


def _blit_selection(src: Path, compiled: FilterRules) -> set[str]:
    """Walk like the engine: ask excludes() for every entry, never enter an excluded dir."""
    selected: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(src):
        rel_dir = os.path.relpath(dirpath, src)
        prefix = "" if rel_dir == "." else rel_dir + "/"
        descend = []
        for name in dirnames:
            rel = prefix + name
            is_dir = not os.path.islink(os.path.join(dirpath, name))
            if compiled.excludes(rel, is_dir):
                continue
            selected.add(rel)
            if is_dir:
                descend.append(name)
        dirnames[:] = descend
        for name in filenames:
            rel = prefix + name
            if not compiled.excludes(rel, False):
                selected.add(rel)
    return selected


@pytest.fixture(scope="module")
def rsync_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("filters")
    _build_tree(base / "SRC")
    (base / "DST").mkdir()
    return base / "SRC", base / "DST"


@pytest.mark.skipif(RSYNC is None, reason="rsync is not installed")
@pytest.mark.parametrize("case", sorted(RSYNC_CASES))
def test_matches_rsync(case: str, rsync_tree: tuple[Path, Path]) -> None:
    src, dst = rsync_tree
    texts = RSYNC_CASES[case]
    expected = _rsync_selection(src, dst, texts)
    got = _blit_selection(src, FilterRules.from_rules(map(parse_filter_rule, texts)))
    assert got == expected, (
        f"rules {texts}: only blit sends {sorted(got - expected)}, "
        f"only rsync sends {sorted(expected - got)}"
    )


@pytest.mark.skipif(RSYNC is None, reason="rsync is not installed")
def test_rsync_tree_sanity(rsync_tree: tuple[Path, Path]) -> None:
    """Without rules both send the whole tree, so the comparison above is meaningful."""
    src, dst = rsync_tree
    everything = _rsync_selection(src, dst, [])
    assert "src/deep/build/q.c" in everything and "linkdir" in everything
    assert _blit_selection(src, FilterRules.from_rules([])) == everything
