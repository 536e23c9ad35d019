"""Transfer options: one frozen record that every layer reads, built by the front ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from blit_core.errors import UsageError
from blit_core.fileslist import FilesFrom
from blit_core.filters import FilterRules

if TYPE_CHECKING:
    from blit_core.net.tls import ClientTls

DEFAULT_COMPRESS_LEVEL = 3  # zstd's
MAX_COMPRESS_LEVEL = 19  # beyond, zstd's "ultra" levels need windows a receiver refuses


class Verb(StrEnum):
    COPY = "copy"
    MIRROR = "mirror"
    MOVE = "move"


class CompareMode(StrEnum):
    """How a destination file is judged up to date (rsync's quick check and its variants)."""

    QUICK = "quick"  # size and mtime
    CHECKSUM = "checksum"  # size and xxh3-128 of content
    SIZE_ONLY = "size-only"
    IGNORE_TIMES = "ignore-times"  # always transfer


@dataclass(frozen=True)
class TransferOptions:
    compare: CompareMode = CompareMode.QUICK
    modify_window_ns: int = 0
    update_only_older: bool = False  # -u: skip files newer at the destination
    ignore_existing: bool = False
    existing_only: bool = False
    copy_links: bool = False
    hard_links: bool = False
    sparse: bool = False
    specials: bool = False
    devices: bool = False
    inplace: bool = False
    whole_file: bool = False  # -W: never delta
    force_delta: bool = False  # --no-whole-file: delta for local copies too
    partial: bool = False  # keep an interrupted file's data for the next run to rebuild from
    partial_dir: str | None = None  # ... in this directory (one name) inside its directory
    compress: bool = False  # -z: compress what shrinks on the data plane, even on a LAN
    compress_level: int = DEFAULT_COMPRESS_LEVEL
    fsync: bool = False
    backup: bool = False
    backup_suffix: str | None = None  # None: "~", or "" with a backup dir (as rsync)
    backup_dir: str | None = None
    max_delete: int | None = None
    delete_excluded: bool = False
    filters: FilterRules = field(default_factory=lambda: FilterRules.from_rules([]))
    files_from: FilesFrom | None = None
    min_size: int | None = None
    max_size: int | None = None
    dry_run: bool = False
    jobs: int = 0  # 0 = one worker per CPU
    want_events: bool = False  # itemize / verbose / dry-run listing
    want_progress: bool = False

    @property
    def has_file_policies(self) -> bool:
        """Whether any option can skip a file regardless of its content."""
        return (
            self.update_only_older or self.ignore_existing or self.existing_only
            or self.min_size is not None or self.max_size is not None
        )

    @property
    def effective_backup_suffix(self) -> str:
        if self.backup_suffix is not None:
            return self.backup_suffix
        return "" if self.backup_dir else "~"

    def __post_init__(self) -> None:
        if self.ignore_existing and self.existing_only:
            raise UsageError("--ignore-existing and --existing together would skip every file")
        if self.max_delete is not None and self.max_delete < 0:
            raise UsageError("--max-delete must be zero or more")
        if self.jobs < 0:
            raise UsageError("--jobs must be zero (auto) or more")
        if self.whole_file and self.force_delta:
            raise UsageError("--whole-file and --no-whole-file cannot be combined")
        if self.partial_dir is not None and (
                self.partial_dir in ("", ".", "..") or "/" in self.partial_dir
                or "\0" in self.partial_dir):
            raise UsageError("--partial-dir must be a directory name (no '/'), made inside "
                             "each destination directory")
        if not 1 <= self.compress_level <= MAX_COMPRESS_LEVEL:
            raise UsageError(f"--compress-level must be between 1 and {MAX_COMPRESS_LEVEL}")
        if self.partial_dir is not None and not self.partial:
            raise UsageError("--partial-dir goes with --partial")
        if self.inplace and self.sparse:
            raise UsageError("--inplace and --sparse cannot be combined")
        if self.backup_suffix is not None and "/" in self.backup_suffix:
            raise UsageError("--suffix cannot contain '/'")
        if self.backup and not self.effective_backup_suffix and not self.backup_dir:
            raise UsageError("--suffix cannot be empty without --backup-dir")


@dataclass(frozen=True)
class RemoteSettings:
    """How a remote transfer uses the network (ignored for local ones)."""

    force_grpc: bool = False
    streams: int = 0  # data-plane streams, 0: automatic
    bwlimit: int = 0  # bytes per second, 0: none
    timeout: float = 60.0  # seconds of silence from the daemon that end the session
    secret: bytes | None = field(default=None, repr=False)  # to log in to a module with users
    contimeout: float | None = None  # seconds the daemon has to answer; None: only `timeout`
    retries: int = 0  # attempts after the first, when a retryable error ends one
    retries_sleep: float = 2.0  # seconds between attempts
    tls: ClientTls | None = None  # TLS on both planes, checking the daemon (None: plain TCP)

    def __post_init__(self) -> None:
        if not 0 <= self.streams <= 16:
            raise UsageError("--streams must be between 1 and 16")
        if self.timeout < 2:
            raise UsageError("--timeout must be at least 2 seconds")
        if self.contimeout is not None and not self.contimeout > 0:
            raise UsageError("--contimeout must be more than 0 seconds")
        if self.retries < 0:
            raise UsageError("--retries must be zero or more")
        if not self.retries_sleep >= 0:
            raise UsageError("--retries-sleep must be zero or more seconds")
