"""Plain data records shared by the scanner, planner, sinks and reports.

`FileEntry` is the compact per-entry record: one tuple per file, which is what keeps scanning a
million-entry tree cheap. Everything here is picklable, because entries and results cross
process boundaries in the local worker pool."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import NamedTuple

from blit_core.errors import EXIT_MAX_DELETE, EXIT_PARTIAL, EXIT_VANISHED

# Builds a NamedTuple from a tuple of its fields without its Python-level __new__ (about a
# third of the cost), where one is built per entry of a tree: new_tuple(FileEntry, (...)).
new_tuple = tuple.__new__


class FileEntry(NamedTuple):
    """What the scanner saw of one directory entry (lstat, or stat with --copy-links)."""

    name: str
    mode: int
    size: int
    mtime_ns: int
    atime_ns: int
    uid: int
    gid: int
    nlink: int
    ino: int
    dev: int
    rdev: int
    target: str | None  # symlink target, read during the scan

    @property
    def perms(self) -> int:
        return stat.S_IMODE(self.mode)


def entry_from_stat(name: str, st: os.stat_result, target: str | None = None) -> FileEntry:
    """Build the compact record from a stat result."""
    return new_tuple(FileEntry, (
        name, st.st_mode, st.st_size, st.st_mtime_ns, st.st_atime_ns, st.st_uid, st.st_gid,
        st.st_nlink, st.st_ino, st.st_dev, st.st_rdev, target,
    ))


class ItemEvent(NamedTuple):
    """One line of itemized output: an 11-character rsync code and the path it applies to.

    `path` is relative to the transfer root; directories end in '/'."""

    code: str
    path: str


class FileFailure(NamedTuple):
    """A file that could not be transferred (or deleted), and why."""

    path: str
    reason: str
    vanished: bool = False


@dataclass
class TransferStats:
    """Counters merged from every worker. Only ints and dicts, so merging is cheap."""

    files_seen: int = 0
    dirs_seen: int = 0
    files_transferred: int = 0
    files_created: int = 0
    files_updated: int = 0
    files_unchanged: int = 0
    files_skipped: int = 0
    attrs_updated: int = 0
    dirs_created: int = 0
    symlinks_created: int = 0
    hardlinks_created: int = 0
    specials_created: int = 0
    specials_skipped: int = 0
    bytes_total: int = 0
    bytes_transferred: int = 0
    deleted: int = 0
    sources_removed: int = 0
    delta_files: int = 0  # files rebuilt from a basis and a delta
    literal_bytes: int = 0  # delta bytes that crossed as literals
    matched_bytes: int = 0  # delta bytes copied from the basis
    signature_bytes: int = 0  # basis signatures sent by the DESTINATION
    strategy_bytes: dict[str, int] = field(default_factory=dict)
    strategy_files: dict[str, int] = field(default_factory=dict)

    def merge(self, other: TransferStats) -> None:
        """Add another worker's counters into this one."""
        for name, value in vars(other).items():
            if isinstance(value, dict):
                mine = getattr(self, name)
                for key, count in value.items():
                    mine[key] = mine.get(key, 0) + count
            else:
                setattr(self, name, getattr(self, name) + value)

    def count_strategy(self, strategy: str, num_bytes: int) -> None:
        self.strategy_bytes[strategy] = self.strategy_bytes.get(strategy, 0) + num_bytes
        self.strategy_files[strategy] = self.strategy_files.get(strategy, 0) + 1


@dataclass
class TransferReport:
    """The one merged result of a transfer, whatever the direction."""

    verb: str
    dry_run: bool
    stats: TransferStats
    failures: list[FileFailure]
    failures_omitted: int
    warnings: list[str]
    duration_s: float
    deletions_skipped: int = 0
    deletions_suppressed_reason: str | None = None
    wire_bytes_sent: int = 0  # remote transfers: bytes on the network, control plane included
    wire_bytes_received: int = 0
    stream_bytes: list[int] = field(default_factory=list)  # data-plane bytes of each stream

    @property
    def exit_code(self) -> int:
        """rsync's numbering: 25 max-delete, 23 partial, 24 vanished only, else 0."""
        if any(not failure.vanished for failure in self.failures) or (
            self.failures_omitted and not self.failures
        ):
            return EXIT_PARTIAL
        if self.failures:
            return EXIT_VANISHED
        if self.deletions_skipped:
            return EXIT_MAX_DELETE
        return 0

    @property
    def speedup(self) -> float | None:
        """rsync's: the size of the files over the bytes on the wire (None if nothing moved
        on a network)."""
        wire = self.wire_bytes_sent + self.wire_bytes_received
        return round(self.stats.bytes_total / wire, 2) if wire else None

    def to_dict(self) -> dict:
        """A JSON-ready summary for scripts (documented in the README)."""
        s = self.stats
        return {
            "verb": self.verb,
            "dry_run": self.dry_run,
            "exit_code": self.exit_code,
            "duration_s": round(self.duration_s, 6),
            "files": {
                "seen": s.files_seen,
                "transferred": s.files_transferred,
                "created": s.files_created,
                "updated": s.files_updated,
                "unchanged": s.files_unchanged,
                "skipped": s.files_skipped,
                "attrs_updated": s.attrs_updated,
            },
            "bytes": {"total": s.bytes_total, "transferred": s.bytes_transferred},
            "entries": {
                "dirs_seen": s.dirs_seen,
                "dirs_created": s.dirs_created,
                "symlinks_created": s.symlinks_created,
                "hardlinks_created": s.hardlinks_created,
                "specials_created": s.specials_created,
                "specials_skipped": s.specials_skipped,
                "sources_removed": s.sources_removed,
            },
            "deleted": s.deleted,
            "delta": {
                "files": s.delta_files,
                "literal_bytes": s.literal_bytes,
                "matched_bytes": s.matched_bytes,
                "signature_bytes": s.signature_bytes,
            },
            "speedup": self.speedup,
            "wire_bytes_sent": self.wire_bytes_sent,
            "wire_bytes_received": self.wire_bytes_received,
            "stream_bytes": self.stream_bytes,
            "deletions_skipped": self.deletions_skipped,
            "deletions_suppressed": self.deletions_suppressed_reason,
            "failures": [
                {"path": f.path, "reason": f.reason, "vanished": f.vanished} for f in self.failures
            ],
            "failures_omitted": self.failures_omitted,
            "warnings": self.warnings,
            "strategies": {
                name: {"bytes": s.strategy_bytes[name], "files": s.strategy_files[name]}
                for name in sorted(s.strategy_bytes)
            },
        }
