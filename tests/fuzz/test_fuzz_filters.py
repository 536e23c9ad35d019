"""Fuzzing the filter parser and matcher: any rule text parses or gives UsageError, any rules
compile or give UsageError, and every path gets a yes or no, the same as when the rules are
tried one at a time, first match deciding (the compiled program merges runs of rules into
sets, affix tests and one regex). Pattern files of random bytes read as lines.
(tests/core/test_filters.py compares hand-picked cases with rsync itself.)"""

from __future__ import annotations

from pathlib import Path

from helpers.fuzz import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from blit_core.errors import UsageError
from blit_core.filters import FilterRules, parse_filter_rule, read_pattern_file

PIECES = ["a", "b", "ab", ".", "é", "/", "*", "**", "***", "?", "[ab]", "[!a]", "[^/]", "[a-",
          "[[:alpha:]]", "[[:nope:]]", "\\", "\\*", "]", " ", "x.txt"]
patterns = st.one_of(st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join),
                     st.text(min_size=1, max_size=10))
rules = st.tuples(st.sampled_from(["+", "-"]), patterns)
paths = st.lists(st.sampled_from(["a", "b", "ab", "é", "x.txt", ".", "*", "[ab]", "a b", "\\"]),
                 min_size=1, max_size=4).map("/".join)


@fuzz_settings()
@given(text=st.one_of(st.text(max_size=20),
                      st.tuples(st.sampled_from(["+", "-", "include", "exclude", "merge", "+!",
                                                 "hide", ""]),
                                st.sampled_from([" ", "_", "", "  "]), patterns)
                      .map("".join)))
def test_any_rule_text_parses_or_gives_a_usage_error(text: str) -> None:
    try:
        action, pattern = parse_filter_rule(text)
    except UsageError:
        return
    assert action in ("+", "-") and pattern and text.endswith(pattern)


@fuzz_settings()
@given(given_rules=st.lists(st.one_of(rules, st.tuples(st.sampled_from(["+", "-", "!", ""]),
                                                       st.sampled_from(["", "a", 3]))),
                            max_size=6),
       path=paths, is_dir=st.booleans())
def test_rules_decide_like_the_first_matching_rule_alone(
        given_rules: list[tuple[str, object]], path: str, is_dir: bool) -> None:
    try:
        program = FilterRules(given_rules)
    except UsageError:
        return
    expected = False
    for action, pattern in given_rules:  # as rsync tries them: first match decides
        if FilterRules([("-", pattern)]).excludes(path, is_dir):
            expected = action == "-"
            break
    assert program.excludes(path, is_dir) is expected


@fuzz_settings(0.5)
@given(data=st.binary(max_size=300))
def test_a_pattern_file_of_any_bytes_reads_as_lines(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "patterns"
    path.write_bytes(data)
    lines = read_pattern_file(str(path))
    assert all(line and "\n" not in line and "\r" not in line for line in lines)
