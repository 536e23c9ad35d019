"""Include/exclude filter rules with rsync's semantics: which entries of a tree a transfer sends.

The engine builds one `FilterRules` from the command line (`--exclude`, `--include`,
`--filter '+ PAT'`, `--exclude-from FILE`, ...) and asks `excludes(path, is_dir)` for every
entry it scans, not descending into excluded directories. Matching follows rsync 3.x
(`exclude.c`, `wildmatch.c`; see "FILTER RULES" in `man rsync`):

* rules are tried in order, the first match decides, no match means included;
* `*` matches any run of non-slash characters, `**` anything including slashes, `?` one
  non-slash character, `[...]` a character class (`!` or `^` negates, ranges, `[:alpha:]`
  and friends; a class never matches '/'); a backslash escapes a wildcard character, but
  only in a pattern that has a wildcard (`*`, `?` or `[`) at all;
* a trailing `/` restricts the rule to directories; a leading `/` anchors it to the transfer
  root; a pattern with no other '/' and no `**` matches the last path component; any other
  pattern matches the whole path, or (when not anchored) a tail of it starting after a '/';
  a pattern starting with `**` may also match from the start of the path as if it began with
  '/', so `**/foo` matches a top-level `foo`;
* a pattern ending in `***` also matches a directory as if the directory's path had a
  trailing '/', so `dir/***` matches the directory `dir` and everything below it.

Like rsync, wildcards work on bytes: `?` and a class match one byte of the UTF-8 (file
system) encoding, so `?` does not match `é`. ASCII paths, the common case, are matched as
`str` with no encoding step.

Speed: every rule is compiled once. Runs of consecutive rules with the same action are merged
into one group whose literal names go into a set, `*suffix` and `prefix*` patterns into
`str.endswith`/`startswith` tuples and the rest into one alternation regex, separately for
files and for directories (directory-only rules vanish from the file program). Rules that can
never decide anything (trailing includes, rules after a match-all) are dropped.
"""

from __future__ import annotations

import os
import re
import string
import sys
from collections.abc import Callable, Iterable
from typing import NamedTuple

from blit_core.errors import SelectionError, UsageError

__all__ = ["FilterRules", "parse_filter_rule", "read_pattern_file"]

# ----------------------------------------------------------------------------------------------
# pattern compilation
# ----------------------------------------------------------------------------------------------

# Token kinds of a wildcard pattern (after escapes are resolved).
_LIT, _STAR, _STARSTAR, _ANY, _CLASS = range(5)
_Token = tuple[int, int | str]  # (_LIT, byte) | (_CLASS, regex) | (_STAR/_STARSTAR/_ANY, 0)

_SLASH = 0x2F
_BACKSLASH = 0x5C


def _byte_set(chars: str) -> frozenset[int]:
    return frozenset(map(ord, chars))


_CONTROL = "".join(map(chr, range(32))) + "\x7f"
_PRINTABLE = "".join(map(chr, range(32, 127)))
# The C locale's <ctype.h> classes, as rsync's wildmatch sees bytes.
_POSIX_CLASSES: dict[bytes, frozenset[int]] = {
    b"alnum": _byte_set(string.ascii_letters + string.digits),
    b"alpha": _byte_set(string.ascii_letters),
    b"blank": _byte_set(" \t"),
    b"cntrl": _byte_set(_CONTROL),
    b"digit": _byte_set(string.digits),
    b"graph": _byte_set(_PRINTABLE[1:]),
    b"lower": _byte_set(string.ascii_lowercase),
    b"print": _byte_set(_PRINTABLE),
    b"punct": _byte_set(string.punctuation),
    b"space": _byte_set(" \t\n\r\x0b\x0c"),
    b"upper": _byte_set(string.ascii_uppercase),
    b"xdigit": _byte_set(string.hexdigits),
}


def _class_regex(members: set[int]) -> str | None:
    """A regex character class matching exactly the byte values in `members` (None: empty)."""
    if not members:
        return None
    values = sorted(members)
    parts: list[str] = []
    start = prev = values[0]
    for value in [*values[1:], -1]:
        if value == prev + 1:
            prev = value
            continue
        parts.append(f"\\x{start:02x}" if start == prev else f"\\x{start:02x}-\\x{prev:02x}")
        start = prev = value
    return "[" + "".join(parts) + "]"


def _parse_class(pat: bytes, pos: int) -> tuple[str | None, int] | None:
    """Parse a `[...]` class whose body starts at `pat[pos]`, as rsync's wildmatch does.

    Returns (regex or None when the class matches nothing, index after the closing ']'), or
    None when the class is malformed (unterminated, unknown `[:name:]`): rsync then aborts the
    whole match, so the pattern can never match.
    """
    end = len(pat)

    def at(i: int) -> int:
        return pat[i] if i < end else 0

    ch = at(pos)
    negate = ch in (0x21, 0x5E)  # '!' or '^'
    if negate:
        pos += 1
        ch = at(pos)
    members: set[int] = set()
    prev = 0
    while True:
        if not ch:
            return None
        if ch == _BACKSLASH:
            pos += 1
            ch = at(pos)
            if not ch:
                return None
            members.add(ch)
        elif ch == 0x2D and prev and at(pos + 1) and at(pos + 1) != 0x5D:  # a-z
            pos += 1
            ch = at(pos)
            if ch == _BACKSLASH:
                pos += 1
                ch = at(pos)
                if not ch:
                    return None
            members.update(range(prev, ch + 1))
            ch = 0  # a range cannot start another range
        elif ch == 0x5B and at(pos + 1) == 0x3A:  # "[:"
            name_start = pos + 2
            close = pat.find(b"]", name_start)
            if close < 0:
                return None
            if close - name_start - 1 < 0 or pat[close - 1] != 0x3A:
                members.add(ch)  # no ":]": the '[' is an ordinary member
            else:
                named = _POSIX_CLASSES.get(pat[name_start : close - 1])
                if named is None:
                    return None
                members.update(named)
                pos = close
                ch = 0
        else:
            members.add(ch)
        prev = ch
        pos += 1
        ch = at(pos)
        if ch == 0x5D:  # ']'
            break
    if negate:
        members = set(range(1, 256)) - members
    members.discard(_SLASH)
    return _class_regex(members), pos + 1


def _tokenize(pat: bytes) -> list[_Token] | None:
    """Split a wildcard pattern into tokens; None if it can never match anything."""
    tokens: list[_Token] = []
    i, end = 0, len(pat)
    while i < end:
        ch = pat[i]
        if ch == _BACKSLASH:
            if i + 1 >= end:
                return None  # a trailing backslash must match NUL: never
            tokens.append((_LIT, pat[i + 1]))
            i += 2
        elif ch == 0x2A:  # '*'
            j = i
            while j < end and pat[j] == 0x2A:
                j += 1
            tokens.append((_STARSTAR if j - i > 1 else _STAR, 0))
            i = j
        elif ch == 0x3F:  # '?'
            tokens.append((_ANY, 0))
            i += 1
        elif ch == 0x5B:  # '['
            parsed = _parse_class(pat, i + 1)
            if parsed is None:
                return None
            regex, i = parsed
            if regex is None:
                return None
            tokens.append((_CLASS, regex))
        else:
            tokens.append((_LIT, ch))
            i += 1
    return tokens


def _atoms(tokens: list[_Token]) -> str:
    """Regex source (pure ASCII, usable for str and bytes) for tokens of one character each."""
    out: list[str] = []
    for kind, value in tokens:
        if kind == _LIT:
            assert isinstance(value, int)
            out.append(re.escape(chr(value)) if value < 0x80 else f"\\x{value:02x}")
        elif kind == _ANY:
            out.append("[^/]")
        else:
            assert kind == _CLASS and isinstance(value, str)
            out.append(value)
    return "".join(out)


def _split(tokens: list[_Token], kind: int) -> list[list[_Token]]:
    """The runs of tokens between the tokens of `kind` (one more run than there are)."""
    runs: list[list[_Token]] = [[]]
    for token in tokens:
        if token[0] == kind:
            runs.append([])
        else:
            runs[-1].append(token)
    return runs


def _block(tokens: list[_Token], ends_pattern: bool) -> str:
    """A run of tokens with no `**`: segments of single characters between `*`s. Each `*`
    takes its segment's leftmost place, atomically, unless it is the pattern's last."""
    segments = _split(tokens, _STAR)
    out = [_atoms(segments[0])]
    for index, segment in enumerate(segments[1:], 1):
        if ends_pattern and index == len(segments) - 1:
            out.append(f"[^/]*{_atoms(segment)}")
        else:
            out.append(f"(?>[^/]*?{_atoms(segment)})")
    return "".join(out)


def _emit(tokens: list[_Token], any_dirs_first: bool = False) -> str:
    """Regex source to fullmatch a token list (after any run of whole directories, if
    `any_dirs_first`).

    Its backtracking is bounded: `*a*a*a*a*b` compiled naively takes time exponential in its
    stars on a long name of 'a's. The pattern is cut at each `**` into blocks, and wherever
    the leftmost match is as good as any other, it is taken in an atomic group, which the
    engine never tries again:
    * a segment between two `*`s: the text between its leftmost place and a later one is
      either the segment's own (non-slash) characters, which the next `*` can take, or (if
      the segment holds a '/') there is no other place, the `*` before it being unable to
      cross a '/';
    * a segment between `*` and `**`, or a block (or the directories and the first block)
      followed by `**`: the leftmost start ends no later than any other (each `*` inside
      stays in its own component), and the `**` takes whatever lies between.
    Only the last block's start and its last `*` are tried at every place, so matching a
    path of n characters costs O(n^2) steps at worst."""
    blocks = _split(tokens, _STARSTAR)
    if len(blocks) == 1:
        return ("(?:.*/)?" if any_dirs_first else "") + _block(blocks[0], ends_pattern=True)
    first = _block(blocks[0], ends_pattern=False)
    out = [f"(?>(?:.*?/)??{first})" if any_dirs_first else first]  # the leftmost start
    out.extend(f"(?>.*?{_block(block, ends_pattern=False)})" for block in blocks[1:-1])
    out.append(".*" + _block(blocks[-1], ends_pattern=True))
    return "".join(out)


def _path_regex(tokens: list[_Token], anchored: bool, starstar_prefix: bool) -> str:
    """Regex source to fullmatch against the whole relative path."""
    if anchored:
        return _emit(tokens)
    if starstar_prefix:
        # rsync matches such a pattern against "/" + path, so a leading "**/" may match nothing.
        if len(tokens) > 1 and tokens[1] == (_LIT, _SLASH):
            return _emit(tokens[2:], any_dirs_first=True)
        return _emit(tokens)
    # Unanchored: at the start of the path or just after any '/'.
    return _emit(tokens, any_dirs_first=True)


# Rule kinds after compilation.
_K_NEVER = 0  # can never match
_K_ALL = 1  # matches every name
_K_BASE_EQ = 2  # last component == text
_K_BASE_SUFFIX = 3  # last component ends with text
_K_BASE_PREFIX = 4  # last component starts with text
_K_BASE_RE = 5  # last component fullmatches regex text
_K_PATH_EQ = 6  # path == text
_K_PATH_TAIL = 7  # path == text or path ends with "/" + text
_K_PATH_RE = 8  # path fullmatches regex text (dir_text for directories)


class _Rule(NamedTuple):
    exclude: bool
    dir_only: bool
    kind: int
    text: str = ""
    dir_text: str = ""


def _compile_rule(action: str, pattern: str) -> _Rule:
    """Classify one rule the way rsync's add_rule()/rule_matches() do."""
    exclude = action == "-"
    raw, dir_only = pattern, False
    if len(raw) > 1 and raw.endswith("/"):
        raw, dir_only = raw[:-1], True
    has_slash = "/" in raw
    wild = "*" in raw or "?" in raw or "[" in raw
    wild2 = wild and "**" in raw
    anchored = raw.startswith("/")
    body = raw[1:] if anchored else raw
    basename_only = not has_slash and not wild2

    if not wild:  # a plain string; backslashes are literal
        if basename_only:
            return _Rule(exclude, dir_only, _K_BASE_EQ, body)
        return _Rule(exclude, dir_only, _K_PATH_EQ if anchored else _K_PATH_TAIL, body)

    tokens = _tokenize(os.fsencode(body))
    if tokens is None:
        return _Rule(exclude, dir_only, _K_NEVER)

    if basename_only:
        kinds = [kind for kind, _ in tokens]
        if kinds == [_STAR]:
            return _Rule(exclude, dir_only, _K_ALL)
        literal = bytes(int(value) for kind, value in tokens if kind == _LIT)
        if literal.isascii() and kinds.count(_STAR) == 1 and kinds.count(_LIT) == len(kinds) - 1:
            if kinds[0] == _STAR:
                return _Rule(exclude, dir_only, _K_BASE_SUFFIX, literal.decode("ascii"))
            if kinds[-1] == _STAR:
                return _Rule(exclude, dir_only, _K_BASE_PREFIX, literal.decode("ascii"))
        return _Rule(exclude, dir_only, _K_BASE_RE, _emit(tokens))

    if not anchored and not wild2 and tokens.count((_LIT, _SLASH)) != raw.count("/"):
        # rsync matches such a pattern against exactly the last (slashes + 1) components; a
        # '/' inside a [class] is counted too but can never match, so this never matches.
        return _Rule(exclude, dir_only, _K_NEVER)
    starstar_prefix = raw.startswith("**")
    text = _path_regex(tokens, anchored, starstar_prefix)
    dir_text = text
    if (
        wild2
        and raw.endswith("***")
        and len(tokens) > 1
        and tokens[-1][0] == _STARSTAR
        and tokens[-2] == (_LIT, _SLASH)
    ):
        # rsync appends "/" to a directory's path for such a rule: "dir/***" matches "dir".
        dir_text = f"(?:{text})|(?:{_path_regex(tokens[:-2], anchored, starstar_prefix)})"
    if text == ".*" and dir_text == ".*":
        return _Rule(exclude, dir_only, _K_ALL)
    return _Rule(exclude, dir_only, _K_PATH_RE, text, dir_text)


# ----------------------------------------------------------------------------------------------
# rule groups: the matching program for files or for directories
# ----------------------------------------------------------------------------------------------


# One group of consecutive same-action rules, as a flat tuple for fast unpacking in excludes();
# it matches when any of its parts does (empty parts are falsy and skipped).
_Group = tuple[
    bool,  # exclude (else include)
    bool,  # matches everything
    frozenset[str],  # last components, literally
    tuple[str, ...],  # last-component suffixes ("*.o")
    tuple[str, ...],  # last-component prefixes ("core*")
    re.Pattern[str] | None,  # last component, for ASCII paths
    re.Pattern[bytes] | None,  # last component, encoded (non-ASCII paths)
    frozenset[str],  # whole paths, literally
    tuple[str, ...],  # "/" + literal path tails
    re.Pattern[str] | None,  # whole path, for ASCII paths
    re.Pattern[bytes] | None,  # whole path, encoded (non-ASCII paths)
]


def _regex_pair(sources: list[str]) -> tuple[re.Pattern[str] | None, re.Pattern[bytes] | None]:
    if not sources:
        return None, None
    source = sources[0] if len(sources) == 1 else "|".join(f"(?:{s})" for s in sources)
    return re.compile(source, re.DOTALL), re.compile(source.encode("ascii"), re.DOTALL)


def _build_group(exclude: bool, rules: list[_Rule], for_dirs: bool) -> _Group:
    base_eq: set[str] = set()
    suffixes: list[str] = []
    prefixes: list[str] = []
    base_sources: list[str] = []
    path_eq: set[str] = set()
    tails: list[str] = []
    path_sources: list[str] = []
    match_all = False
    for rule in rules:
        kind = rule.kind
        if kind == _K_ALL:
            match_all = True
        elif kind == _K_BASE_EQ:
            base_eq.add(rule.text)
        elif kind == _K_BASE_SUFFIX:
            suffixes.append(rule.text)
        elif kind == _K_BASE_PREFIX:
            prefixes.append(rule.text)
        elif kind == _K_BASE_RE:
            base_sources.append(rule.text)
        elif kind == _K_PATH_EQ:
            path_eq.add(rule.text)
        elif kind == _K_PATH_TAIL:
            path_eq.add(rule.text)
            tails.append("/" + rule.text)
        elif kind == _K_PATH_RE:
            path_sources.append(rule.dir_text if for_dirs else rule.text)
    base_re, base_bre = _regex_pair(base_sources)
    path_re, path_bre = _regex_pair(path_sources)
    return (
        exclude,
        match_all,
        frozenset(base_eq),
        tuple(dict.fromkeys(suffixes)),
        tuple(dict.fromkeys(prefixes)),
        base_re,
        base_bre,
        frozenset(path_eq),
        tuple(dict.fromkeys(tails)),
        path_re,
        path_bre,
    )


def _build_program(rules: list[_Rule], for_dirs: bool) -> tuple[_Group, ...]:
    runs: list[tuple[bool, list[_Rule]]] = []
    for rule in rules:
        if rule.kind == _K_NEVER or (rule.dir_only and not for_dirs):
            continue
        if runs and runs[-1][0] == rule.exclude:
            runs[-1][1].append(rule)
        else:
            runs.append((rule.exclude, [rule]))
        if rule.kind == _K_ALL:
            break  # every later rule is unreachable
    while runs and not runs[-1][0]:
        runs.pop()  # a trailing include decides nothing: unmatched names are included anyway
    return tuple(_build_group(exclude, group, for_dirs) for exclude, group in runs)


def _never(path: str) -> bool:
    return False


def _names_only(group: _Group) -> bool:
    """Whether a group holds only literal, "*suffix" and "prefix*" last-component rules."""
    match_all, base_re, path_eq, tails, path_re = group[1], group[5], group[7], group[8], group[9]
    return not (match_all or base_re or path_eq or tails or path_re)


def _name_test(
    base_eq: frozenset[str], suffixes: tuple[str, ...], prefixes: tuple[str, ...]
) -> Callable[[str], bool]:
    """A fast test for a names-only group. No suffix holds a '/', so testing it on the whole
    path is the same as testing it on the last component."""
    if not (base_eq or prefixes):
        return lambda path: path.endswith(suffixes)
    if not prefixes:
        if not suffixes:
            return lambda path: path[path.rfind("/") + 1 :] in base_eq
        return lambda path: path.endswith(suffixes) or path[path.rfind("/") + 1 :] in base_eq

    def test(path: str) -> bool:
        if suffixes and path.endswith(suffixes):
            return True
        base = path[path.rfind("/") + 1 :]
        return base in base_eq or bool(prefixes and base.startswith(prefixes))

    return test


def _make_matcher(groups: tuple[_Group, ...]) -> Callable[[str], bool]:
    """The function deciding `excludes` for one program (files or directories)."""
    if not groups:
        return _never
    first = groups[0]
    if _names_only(first):
        test = _name_test(first[2], first[3], first[4])
        if len(groups) == 1 and first[0]:
            return test  # "- NAME" rules only
        if len(groups) == 2 and not first[0] and groups[1][1]:
            return lambda path: bool(path) and not test(path)  # "+ NAME"..., then "- *"

    def match(path: str) -> bool:
        if not path:
            return False
        base = path[path.rfind("/") + 1 :]
        ascii_path = path.isascii()
        raw_path = raw_base = b""
        for (
            exclude,
            match_all,
            base_eq,
            suffixes,
            prefixes,
            base_re,
            base_bre,
            path_eq,
            tails,
            path_re,
            path_bre,
        ) in groups:
            if (
                match_all
                or (base_eq and base in base_eq)
                or (suffixes and base.endswith(suffixes))
                or (prefixes and base.startswith(prefixes))
                or (path_eq and path in path_eq)
                or (tails and path.endswith(tails))
            ):
                return exclude
            if base_re is not None:
                if ascii_path:
                    if base_re.fullmatch(base) is not None:
                        return exclude
                else:
                    if not raw_path:
                        raw_path = os.fsencode(path)
                        raw_base = raw_path[raw_path.rfind(b"/") + 1 :]
                    if base_bre.fullmatch(raw_base) is not None:  # type: ignore[union-attr]
                        return exclude
            if path_re is not None:
                if ascii_path:
                    if path_re.fullmatch(path) is not None:
                        return exclude
                else:
                    if not raw_path:
                        raw_path = os.fsencode(path)
                        raw_base = raw_path[raw_path.rfind(b"/") + 1 :]
                    if path_bre.fullmatch(raw_path) is not None:  # type: ignore[union-attr]
                        return exclude
        return False

    return match


# ----------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------


class FilterRules:
    """Ordered include/exclude rules with rsync semantics; first match wins; no match = included.

    Build with `from_rules`; instances are immutable, comparable and cheap to pickle (only
    the rule list travels; the matchers are rebuilt on unpickling).
    """

    __slots__ = ("_dir_match", "_file_match", "_rules")

    def __init__(self, rules: Iterable[tuple[str, str]] = ()) -> None:
        checked: list[tuple[str, str]] = []
        for rule in rules:
            try:
                if isinstance(rule, str):
                    raise TypeError
                action, pattern = rule
            except (TypeError, ValueError):
                raise UsageError(f"bad filter rule {rule!r}: expected (action, pattern)") from None
            if action not in ("+", "-"):
                raise UsageError(f"bad filter rule action {action!r}: expected '+' or '-'")
            if not isinstance(pattern, str):
                raise UsageError(f"bad filter rule {action} {pattern!r}: the pattern is not text")
            if not pattern:
                raise UsageError(f"bad filter rule '{action}': the pattern is empty")
            checked.append((action, pattern))
        compiled = [_compile_rule(action, pattern) for action, pattern in checked]
        self._rules: tuple[tuple[str, str], ...] = tuple(checked)
        self._file_match = _make_matcher(_build_program(compiled, for_dirs=False))
        self._dir_match = _make_matcher(_build_program(compiled, for_dirs=True))

    @classmethod
    def from_rules(cls, rules: Iterable[tuple[str, str]]) -> FilterRules:
        """Compile ('+' or '-', pattern) pairs, in order. Raises UsageError for a bad pair."""
        return cls(rules)

    @property
    def rules(self) -> tuple[tuple[str, str], ...]:
        """The (action, pattern) pairs as given."""
        return self._rules

    def excludes(self, path: str, is_dir: bool) -> bool:
        """Whether the entry at `path` ('/'-separated, relative to the transfer root, no
        leading or trailing slash) is excluded. `is_dir`: it is a directory (not a link)."""
        return (self._dir_match if is_dir else self._file_match)(path)

    def __bool__(self) -> bool:
        return bool(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FilterRules):
            return NotImplemented
        return self._rules == other._rules

    def __hash__(self) -> int:
        return hash(self._rules)

    def __reduce__(self) -> tuple[type[FilterRules], tuple[tuple[tuple[str, str], ...]]]:
        return (type(self), (self._rules,))

    def __repr__(self) -> str:
        return f"FilterRules({list(self._rules)!r})"


_RULE_WORDS = {"include": "+", "exclude": "-"}
_UNSUPPORTED_RULES = {
    "merge": ".",
    "dir-merge": ":",
    "hide": "H",
    "show": "S",
    "protect": "P",
    "risk": "R",
    "clear": "!",
}
_RULE_WORD_RE = re.compile(r"[A-Za-z-]+")


def parse_filter_rule(text: str) -> tuple[str, str]:
    """'+ PAT' / '- PAT' / 'include PAT' / 'exclude PAT' -> ('+'|'-', PAT). Else UsageError.

    As in rsync, the rule name is followed by exactly one space or underscore and everything
    after it (further spaces included) is the pattern. Modifiers (`-!`, `+/`, ...), merge
    files and the other rule types are not supported.
    """
    head = text[:1]
    if head in ("+", "-"):
        action = head
    else:
        word = _RULE_WORD_RE.match(text)
        head = word.group() if word else text[:1]
        if head in _RULE_WORDS:
            action = _RULE_WORDS[head]
        elif head in _UNSUPPORTED_RULES or head in _UNSUPPORTED_RULES.values():
            raise UsageError(
                f"unsupported filter rule {text!r}: only include (+) and exclude (-) rules "
                "are supported"
            )
        else:
            raise UsageError(f"unknown filter rule {text!r}: expected '+ PATTERN' or '- PATTERN'")
    rest = text[len(head) :]
    if rest and rest[0] not in (" ", "_"):
        raise UsageError(
            f"bad filter rule {text!r}: put one space between the rule and the pattern "
            "(rule modifiers are not supported)"
        )
    if not rest[1:]:
        raise UsageError(f"filter rule {text!r} has no pattern")
    return action, rest[1:]


def read_pattern_file(path: str) -> list[str]:
    """Lines of an --exclude-from/--include-from file; blank lines and lines starting with ';'
    or '#' skipped; '-' means stdin.

    Lines end at '\\n' or '\\r' (so CRLF files work); other whitespace is kept, as rsync
    does. Bytes that are not valid UTF-8 are decoded like file names (surrogateescape).
    Raises SelectionError naming the file and the reason if it cannot be read.
    """
    try:
        if path == "-":
            stdin = sys.stdin
            if stdin is None:
                raise OSError("standard input is closed")
            buffer = getattr(stdin, "buffer", None)
            data = buffer.read() if buffer is not None else os.fsencode(stdin.read())
        else:
            with open(path, "rb") as fh:
                data = fh.read()
    except OSError as exc:
        name = "standard input" if path == "-" else repr(path)
        reason = exc.strerror or str(exc)
        raise SelectionError(f"cannot read pattern file {name}: {reason}") from exc
    lines = data.replace(b"\r", b"\n").split(b"\n")
    return [os.fsdecode(line) for line in lines if line and line[:1] not in (b";", b"#")]
