"""Everything blit-utils prints: aligned columns, sizes (exact bytes, or human-readable with -h),
names with unprintable characters escaped, colour on a terminal only (never with NO_COLOR), and
the --json forms: one document, or JSON lines written as the replies arrive. The verbs decide
what to show; this module decides how it looks."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from blit_cli.render import escape_name
from blit_core.admin import Entry, EntryKind, Removal, Space, Usage
from blit_core.units import format_size

_COLOURS = {EntryKind.DIR: "\033[1;34m", EntryKind.SYMLINK: "\033[36m"}
_RESET = "\033[0m"
SIZE_WIDTH = 10  # "1023.9 KiB", or bytes up to 9.3 GiB


def use_colour(stream: TextIO) -> bool:
    """Colour on a terminal, unless NO_COLOR is set (https://no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def size(num_bytes: int, human: bool) -> str:
    return format_size(num_bytes) if human else str(num_bytes)


def name(text: str, kind: EntryKind, colour: bool) -> str:
    """A name or path for humans: escaped, coloured by kind when colour is on."""
    shown = escape_name(text)
    code = _COLOURS.get(kind) if colour else None
    return f"{code}{shown}{_RESET}" if code else shown


@dataclass(frozen=True)
class Columns:
    """Rows aligned on fixed widths, so they can be printed as they arrive: every column but
    the last is padded to its width (to the right when `right`), the last is left as is."""

    widths: Sequence[int]
    right: Sequence[bool]

    def line(self, cells: Sequence[str]) -> str:
        padded = [cell.rjust(width) if right else cell.ljust(width)
                  for cell, width, right in zip(cells, self.widths, self.right, strict=False)]
        return "  ".join([*padded, *cells[len(self.widths):]])


def table(rows: Sequence[Sequence[str]], right: Sequence[bool]) -> list[str]:
    """Whole rows (a header first) as aligned lines, each column as wide as its widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(right))]
    columns = Columns(widths, right)
    return [columns.line(row).rstrip() for row in rows]


def entry_line(entry: Entry, shown: str, *, long: bool, human: bool, colour: bool) -> str:
    """One `ls` line: the name, or with `long` mode, size, mtime and name (-> target)."""
    label = name(shown, entry.kind, colour)
    if not long:
        return label
    if entry.kind is EntryKind.SYMLINK:
        label = f"{label} -> {escape_name(entry.target)}"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.mtime_ns / 1e9))
    return _LONG.line([stat.filemode(entry.mode), size(entry.size, human), when, label])


_LONG = Columns(widths=(10, SIZE_WIDTH, 16), right=(False, True, False))
_USAGE = Columns(widths=(SIZE_WIDTH, 8), right=(True, True))


def usage_line(usage: Usage, path: str, *, human: bool) -> str:
    """One `du` line: size, file count, path."""
    return _USAGE.line([size(usage.bytes, human), str(usage.files), escape_name(path)])


def space_table(path: str, space: Space, *, human: bool) -> list[str]:
    capacity = space.used + space.free
    percent = f"{100 * space.used / capacity:.0f}%" if capacity else "-"
    return table([["PATH", "TOTAL", "USED", "FREE", "USE%"],
                  [escape_name(path), *(size(n, human) for n in
                                        (space.total, space.used, space.free)), percent]],
                 right=(False, True, True, True, True))


def removal_table(removals: Sequence[Removal], *, human: bool) -> list[str]:
    rows = [["PATH", "FILES", "DIRS", "SIZE"]]
    rows += [[escape_name(r.path), str(r.files), str(r.dirs), size(r.bytes, human)]
             for r in removals]
    return table(rows, right=(False, True, True, True))


def counts(files: int, dirs: int, num_bytes: int) -> str:
    """"3 files, 1 directory (12.0 KiB)"."""
    file_word = "file" if files == 1 else "files"
    dir_word = "directory" if dirs == 1 else "directories"
    return f"{files} {file_word}, {dirs} {dir_word} ({format_size(num_bytes)})"


def planned(removal: Removal) -> str:
    """What a dry run says would go for one path: "/m/dir: 3 files, 1 directory (12.0 KiB)"."""
    what = (f"error: {removal.error}" if removal.error
            else counts(removal.files, removal.dirs, removal.bytes))
    return f"{escape_name(removal.path)}: {what}"


def entry_json(entry: Entry, entry_name: str, path: str) -> dict[str, Any]:
    return {"name": entry_name, "path": path, "type": entry.kind.value, "size": entry.size,
            "mode": stat.S_IMODE(entry.mode), "mtime": entry.mtime_ns / 1e9,
            "target": entry.target if entry.kind is EntryKind.SYMLINK else None}


def usage_json(usage: Usage, path: str) -> dict[str, Any]:
    return {"path": path, "bytes": usage.bytes, "files": usage.files}


def removal_json(removal: Removal) -> dict[str, Any]:
    return {"path": removal.path, "files": removal.files, "dirs": removal.dirs,
            "bytes": removal.bytes, "error": removal.error or None}


def json_out(document: Any) -> None:
    """One JSON document (or one JSON line) on stdout. Names that are not UTF-8 keep their
    bytes as \\udcXX escapes."""
    sys.stdout.write(json.dumps(document) + "\n")


def lines_out(lines: Sequence[str]) -> None:
    for line in lines:
        print(line)


def problem(message: str) -> None:
    """One line on stderr about one path that failed, while the others carry on."""
    sys.stderr.write(f"blit-utils: error: {escape_name(message)}\n")
