"""Filter patterns with many wildcards match in bounded time, and the atomic groups that bound
it never change a decision.

`*a*a*a*a*a*a*a*a*b` compiled naively to a backtracking regex took over a minute against a
60-character name of 'a's (time exponential in its stars); a daemon applies a client's
filters, so that was a way to stall it. The compiled regexes take a segment's or a block's
leftmost place atomically where that is provably as good as any other
(blit_core.filters._emit says why). Here a plain recursive matcher, obviously right and
memoised, is the oracle for random patterns and paths over a small alphabet, and hostile
patterns against 4,000-character paths finish in a subprocess with a deadline."""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blit_core.filters import _emit, _tokenize

PIECES = ["a", "b", "/", "*", "**", "?", "[ab]", "[!a]"]
patterns = st.lists(st.sampled_from(PIECES), min_size=1, max_size=9).map("".join)
texts = st.text(alphabet="ab/", max_size=14)
DEADLINE_S = 30.0


def reference_match(pattern: str, text: str) -> bool:
    """rsync's wildcards, by plain recursion: `*` any run without '/', `**` any run, `?` one
    character but '/', a class one of its members (never '/')."""
    tokens = _tokenize(pattern.encode())
    assert tokens is not None

    @cache
    def match(t: int, i: int) -> bool:
        if t == len(tokens):
            return i == len(text)
        kind, value = tokens[t]
        if kind in (1, 2):  # _STAR, _STARSTAR
            return match(t + 1, i) or (i < len(text) and (kind == 2 or text[i] != "/")
                                       and match(t, i + 1))
        if i == len(text):
            return False
        if kind == 0:  # _LIT
            ok = ord(text[i]) == value
        elif kind == 3:  # _ANY
            ok = text[i] != "/"
        else:
            ok = re.fullmatch(str(value), text[i]) is not None
        return ok and match(t + 1, i + 1)

    return match(0, 0)


def after_any_dirs(pattern: str, text: str) -> bool:
    """The pattern matches the text from its start or from just after one of its '/'."""
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "/"]
    return any(reference_match(pattern, text[start:]) for start in starts)


@settings(max_examples=3000, deadline=None)
@given(pattern=patterns, text=texts)
def test_compiled_patterns_decide_as_plain_recursion_does(pattern: str, text: str) -> None:
    tokens = _tokenize(pattern.encode())
    assert tokens is not None
    assert (re.fullmatch(_emit(tokens), text, re.DOTALL) is not None) == reference_match(
        pattern, text)
    assert (re.fullmatch(_emit(tokens, any_dirs_first=True), text, re.DOTALL)
            is not None) == after_any_dirs(pattern, text)


# None of these paths holds its pattern's last letter: the worst case, every place is tried.
HOSTILE = [
    ("*a*a*a*a*a*a*a*a*b", "a" * 4000),
    ("**a**a**a**a**a**a**a**b", "a/" * 2000),
    ("/**a*a**a*a**a*a**b", "a" * 2000 + "/" + "a" * 2000),
    ("**a*a*b", "a" * 4000),
    ("**/*a*a*a*a*b", "a/" * 1000 + "a" * 2000),
    ("a*/**/*a*a*a*b*/**/x*y", "a/" * 2000),
]


@pytest.mark.parametrize(("pattern", "path"), HOSTILE, ids=[p for p, _ in HOSTILE])
def test_hostile_patterns_against_long_paths_end_quickly(pattern: str, path: str) -> None:
    program = (f"from blit_core.filters import FilterRules\n"
               f"rules = FilterRules.from_rules([('-', {pattern!r})])\n"
               f"print([rules.excludes({path!r}, is_dir) for is_dir in (False, True)])\n")
    done = subprocess.run([sys.executable, "-c", program], check=True, timeout=DEADLINE_S,
                          capture_output=True, text=True)
    assert done.stdout.strip() == "[False, False]"
