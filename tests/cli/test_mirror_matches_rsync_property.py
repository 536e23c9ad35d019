"""Property: for random source trees and random prior destination states (stale, extra and
conflicting entries of every type), `blit mirror SRC/ A/` and `rsync -a --delete SRC/ B/`
leave identical trees, and so do `blit copy` and `rsync -a`, with the same success or partial
failure. Hypothesis shrinks any counter-example to a small one."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers.treecheck import assert_same_tree, find_temp_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

RSYNC = shutil.which("rsync")
pytestmark = pytest.mark.skipif(RSYNC is None, reason="rsync is not installed")

NAMES = st.sampled_from(["a", "b", "c", "d e", "-x", "é", "a.txt", ".hidden"])
BASE_NS = 1_650_000_000_000_000_000

# A node is ("file", content, mode, mtime offset), ("link", target), or ("dir", children).
FILES = st.tuples(
    st.just("file"),
    st.binary(max_size=64),
    st.sampled_from([0o644, 0o600, 0o755, 0o444]),
    st.integers(0, 3),
)
LINKS = st.tuples(st.just("link"), st.sampled_from(["a", "../a", "missing", "/etc/hostname"]))


def _dirs(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.tuples(st.just("dir"), st.dictionaries(NAMES, children, max_size=4))


TREES = st.dictionaries(
    NAMES, st.recursive(st.one_of(FILES, LINKS), _dirs, max_leaves=12), max_size=5
)


def build(root: Path, tree: dict) -> None:
    """Create the tree; directory mtimes are set after their contents."""
    root.mkdir(parents=True, exist_ok=True)
    for name, node in tree.items():
        path = root / name
        if node[0] == "file":
            _, content, mode, offset = node
            path.write_bytes(content)
            path.chmod(mode)
            os.utime(path, ns=(BASE_NS, BASE_NS + offset * 1_000_000_007))
        elif node[0] == "link":
            os.symlink(node[1], path)
            os.utime(path, ns=(BASE_NS, BASE_NS + 11), follow_symlinks=False)
        else:
            build(path, node[1])
    os.utime(root, ns=(BASE_NS, BASE_NS + 5))


@settings(
    max_examples=int(os.environ.get("BLIT_PROPERTY_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.parametrize(
    ("verb", "rsync_args"), [("mirror", ["--delete"]), ("copy", []), ("move", [])]
)
@given(source=TREES, prior=TREES)
def test_blit_leaves_the_same_tree_as_rsync(
    tmp_path_factory, run_blit, verb, rsync_args, source, prior
):
    work = tmp_path_factory.mktemp("prop")
    build(work / "src", source)
    build(work / "A", prior)
    build(work / "B", prior)
    theirs = subprocess.run([RSYNC, "-a", *rsync_args, f"{work / 'src'}/", f"{work / 'B'}/"],
                            check=False, capture_output=True, text=True)
    result = run_blit(verb, f"{work / 'src'}/", f"{work / 'A'}/")
    assert result.returncode == theirs.returncode, (result.stderr, theirs.stderr)
    assert_same_tree(work / "A", work / "B")
    if verb == "mirror":
        assert_same_tree(work / "src", work / "A")
    if verb == "move" and result.returncode == 0:  # everything moved: no file is left behind
        assert [p for p in (work / "src").rglob("*") if not p.is_dir() or p.is_symlink()] == []
    assert find_temp_files(work / "A") == []
