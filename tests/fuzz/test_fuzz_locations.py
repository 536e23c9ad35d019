"""Fuzzing endpoint parsing: any text is a local path (itself), a remote location or a
UsageError; a remote location is a safe module path, and written back it parses to itself.
Resolving sources onto a destination (over an in-memory tree) gives roots that land in the
destination, or a UsageError or SelectionError.
(tests/core/test_locations.py checks the syntax case by case.)"""

from __future__ import annotations

import os
import stat

from helpers.fuzz import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from blit_core.endpoints import Probe, resolve_local
from blit_core.errors import SelectionError, UsageError
from blit_core.locations import RemoteLocation, is_module_name, parse_location

PIECES = ["host", "h.example", "[::1]", "[", "]", "[1.2.3.4]", ":", "9031", "0", "99999", "@",
          "alice@", "/", "mod", "m-1", "..", ".", "~", "a b", "\\", "\0", "é", "//"]
texts = st.one_of(st.lists(st.sampled_from(PIECES), max_size=8).map("".join), st.text(max_size=30))


@fuzz_settings()
@given(text=texts)
def test_any_text_is_a_path_a_location_or_a_usage_error(text: str) -> None:
    try:
        where = parse_location(text)
    except UsageError:
        return
    if isinstance(where, str):
        assert where == text
        return
    assert isinstance(where, RemoteLocation) and is_module_name(where.module)
    parts = where.path.split("/") if where.path else []
    assert all(part not in ("", ".", "..") and "\\" not in part and "\0" not in part
               for part in parts)
    assert where.port is None or 1 <= where.port <= 65535
    assert parse_location(str(where)) == where


# An in-memory tree: path -> is a directory.
TREE = {"src": True, "src/f": False, "dst": True, "file": False, "/": True, ".": True}
NAMES = ["src", "src/", "src/.", "src/f", "file", "file/", "missing", ".", "./", "..", "/",
         "src/..", "src//", ""]


def _mode(path: str, follow: bool) -> int:
    is_dir = TREE.get(path.rstrip("/") or "/", TREE.get(os.path.normpath(path))) if path else None
    if is_dir is None:
        raise SelectionError(f"source {path!r} does not exist")
    return stat.S_IFDIR if is_dir else stat.S_IFREG


PROBE = Probe(_mode, lambda path: (path.rstrip("/") in TREE, TREE.get(path.rstrip("/"), False)),
              lambda parent: TREE.get(parent, False))


@fuzz_settings()
@given(sources=st.lists(st.sampled_from(NAMES), max_size=3),
       destination=st.sampled_from(["dst", "dst/", "dst/new", "new", "file", "file/", "", "/"]))
def test_sources_resolve_into_the_destination_or_give_a_clean_error(
        sources: list[str], destination: str) -> None:
    try:
        roots, into = resolve_local(sources, destination, probe=PROBE)
    except (UsageError, SelectionError):
        return
    assert into in (destination, None)
    for root in roots:  # DST itself, or one name inside it
        assert root.dst == destination or (
            root.dst == os.path.join(destination, root.prefix)
            and root.prefix not in ("", ".", "..") and "/" not in root.prefix), root
