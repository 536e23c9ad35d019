"""Paths that arrive over the wire: only plain relative POSIX paths inside the module pass
`validate_wire_path`; everything else is an UnsafePathError that quotes the path."""

from __future__ import annotations

import os

import pytest

from blit_core.errors import ProtocolError, UnsafePathError
from blit_core.pathsafe import validate_wire_path

NON_UTF8 = os.fsdecode(b"bad-\xff\xfe-name")


@pytest.mark.parametrize(
    "path",
    [
        "",
        "a",
        "a/b/c",
        ".hidden",
        "a/..b",
        "a/b..",
        "...",
        "a:b",
        "dir/C:",
        "C:/x",
        "a\\b",
        "..\\x",
        "with space/new\nline",
        "caf\u00e9/\u65e5\u672c",
        NON_UTF8,
        f"dir/{NON_UTF8}/leaf",
        "n" * 255,
        "\u65e5" * 85,  # 255 bytes of UTF-8
        "/".join(["d" * 240] * 17),  # exactly 4096 bytes
    ],
)
def test_safe_paths_are_returned_unchanged(path):
    assert validate_wire_path(path) is path


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("..", "'..' component"),
        ("../x", "'..' component"),
        ("a/../b", "'..' component"),
        ("a/..", "'..' component"),
        (".", "'.' component"),
        ("a/./b", "'.' component"),
        ("/etc", "absolute"),
        ("/", "absolute"),
        ("a//b", "empty name"),
        ("a/", "empty name"),
        ("a\x00b", "NUL"),
        ("n" * 256, "longer than 255 bytes"),
        ("ok/" + "\u00e9" * 128, "longer than 255 bytes"),  # 128 characters, 256 bytes
        ("/".join(["d" * 240] * 16 + ["d" * 241]), "longer than 4096 bytes"),  # 4097 bytes
        ("bad\ud800surrogate", "cannot be encoded"),
    ],
)
def test_unsafe_paths_are_refused(path, reason):
    with pytest.raises(UnsafePathError) as caught:
        validate_wire_path(path)
    message = str(caught.value)
    assert repr(path) in message
    assert reason in message


def test_unsafe_path_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        validate_wire_path("../etc/passwd")
