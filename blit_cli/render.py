"""Everything blit prints: itemized and verbose lines, warnings, the progress bar (rich, on a
terminal only), the --stats block, the --json summary and one-line errors. The library reports
through the observer methods here and never prints itself."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from types import TracebackType
from typing import Any, TextIO

from blit_core.models import FileFailure, ItemEvent, TransferReport
from blit_core.units import format_size

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]|[\udc80-\udcff]")
REFRESH_S = 0.1


def escape_name(name: str) -> str:
    """rsync's escaping of unprintable bytes in names: a newline shows as \\#012."""

    def octal(match: re.Match[str]) -> str:
        char = match.group()
        code = ord(char) - 0xDC00 if ord(char) >= 0xDC80 else ord(char)
        return f"\\#{code:03o}"

    return _UNPRINTABLE.sub(octal, name)


def drop_stdout() -> None:
    """Point stdout at /dev/null once its reader has gone (`| head`), so that nothing more
    written to it, the flush at exit included, fails again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def error(message: str, *, usage: bool = False) -> None:
    sys.stderr.write(f"blit: error: {escape_name(message)}\n")
    if usage:
        sys.stderr.write("Try 'blit --help' for more.\n")


class Console:
    """The transfer observer of the command line."""

    def __init__(
        self,
        *,
        itemize: bool,
        verbose: int,
        quiet: bool,
        events_to_stderr: bool,
        progress: bool,
    ) -> None:
        self.itemize = itemize
        self.verbose = verbose
        self.quiet = quiet
        self.events_to_stderr = events_to_stderr
        self.show_progress = progress
        self._progress: Any = None
        self._task: Any = None
        self._files_total = 0
        self._bytes_total = 0
        self._files_done = 0
        self._bytes_done = 0
        self._scanning: int | None = None  # entries listed so far while a manifest streams
        self._next_refresh = 0.0

    # -- context: start and stop the progress display ------------------------------------

    def __enter__(self) -> Console:
        if self.show_progress:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            # auto_refresh=False: no refresh thread, so worker processes can be forked safely.
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(binary_units=True),
                TextColumn("{task.fields[files]}"),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                auto_refresh=False,
                transient=True,
                console=_rich_console(),
            )
            self._progress.start()
            self._task = self._progress.add_task("blit", total=None, files="")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    # -- observer methods ----------------------------------------------------------------

    def on_planned(self, files: int, num_bytes: int) -> None:
        self._files_total += files
        self._bytes_total += num_bytes
        self._refresh()

    def on_progress(self, num_bytes: int, files: int) -> None:
        if num_bytes or files:  # (0, 0) is a refresh tick, from another thread than the counts
            self._bytes_done += num_bytes
            self._files_done += files
        self._refresh()

    def on_scanned(self, entries: int, finished: bool) -> None:
        self._scanning = None if finished else entries
        self._refresh()

    def on_item(self, event: ItemEvent) -> None:
        if self.itemize:
            self._print(f"{event.code} {escape_name(event.path)}")
        elif self.verbose:
            self._print(_verbose_line(event))

    def on_warning(self, message: str) -> None:
        if not self.quiet:
            self._print(f"blit: warning: {escape_name(message)}", stream=sys.stderr)

    def on_failure(self, failure: FileFailure) -> None:
        self._print(f"blit: failed: {escape_name(failure.path)}: {failure.reason}",
                    stream=sys.stderr)

    # -- output ----------------------------------------------------------------------------

    def _print(self, line: str, stream: TextIO | None = None) -> None:
        """Write a line; while the progress bar is up, rich's stream proxies keep it above."""
        if stream is None:
            stream = sys.stderr if self.events_to_stderr else sys.stdout
        stream.write(line + "\n")

    def _refresh(self) -> None:
        if self._progress is None:
            return
        now = time.monotonic()
        if now < self._next_refresh:
            return
        self._next_refresh = now + REFRESH_S
        # Workers report progress before the planned totals of the same batch arrive.
        scanning = self._scanning
        self._progress.update(
            self._task,
            description="blit" if scanning is None else f"scanning {scanning} files",
            total=max(self._bytes_total, self._bytes_done) or None,
            completed=self._bytes_done,
            files=f"{self._files_done}/{max(self._files_total, self._files_done)} files",
        )
        self._progress.refresh()

    def finish(
        self, report: TransferReport, *, stats: bool, as_json: bool, strategies: bool
    ) -> None:
        """Print the end-of-run output the user asked for."""
        if report.deletions_skipped:
            error(f"--max-delete stopped deletions: {report.deletions_skipped} entries kept")
        if report.failures_omitted:
            error(f"{report.failures_omitted} more failures not listed")
        if as_json:
            # ASCII escapes keep names that are not UTF-8 (surrogate-escaped) valid JSON.
            json.dump(report.to_dict(), sys.stdout, indent=2, ensure_ascii=True)
            sys.stdout.write("\n")
            return
        if stats:
            sys.stdout.write(stats_block(report))
        if strategies:
            for name, count in sorted(report.stats.strategy_bytes.items()):
                files = report.stats.strategy_files[name]
                sys.stdout.write(f"strategy {name}: {files} files, {format_size(count)}\n")
        if self.show_progress:
            sys.stderr.write(summary_line(report) + "\n")


def _verbose_line(event: ItemEvent) -> str:
    if event.code.startswith("*"):
        return f"deleting {escape_name(event.path)}"
    return escape_name(event.path)


def summary_line(report: TransferReport) -> str:
    s = report.stats
    rate = s.bytes_transferred / report.duration_s if report.duration_s > 0 else 0.0
    parts = [
        f"{s.files_transferred} files ({format_size(s.bytes_transferred)}) transferred",
        f"{s.files_unchanged} unchanged",
    ]
    if s.deleted:
        parts.append(f"{s.deleted} deleted")
    if report.failures:
        parts.append(f"{len(report.failures) + report.failures_omitted} failed")
    return (f"blit {report.verb}: " + ", ".join(parts)
            + f" in {report.duration_s:.2f}s ({format_size(rate)}/s)")


def stats_block(report: TransferReport) -> str:
    """rsync-style --stats summary."""
    s = report.stats
    lines = [
        "",
        f"Number of files: {s.files_seen + s.dirs_seen:,} (reg+links: {s.files_seen:,}, "
        f"dir: {s.dirs_seen:,})",
        f"Number of created files: {s.files_created + s.dirs_created + s.symlinks_created:,}",
        f"Number of deleted files: {s.deleted:,}",
        f"Number of regular files transferred: {s.files_transferred:,}",
        f"Number of unchanged files: {s.files_unchanged:,}",
        f"Total file size: {s.bytes_total:,} bytes",
        f"Total transferred file size: {s.bytes_transferred:,} bytes",
        f"Failures: {len(report.failures) + report.failures_omitted:,}",
        f"Elapsed: {report.duration_s:.3f} s",
    ]
    if report.wire_bytes_sent or report.wire_bytes_received:
        lines += [
            f"Total bytes sent: {report.wire_bytes_sent:,}",
            f"Total bytes received: {report.wire_bytes_received:,}",
            f"Data streams: {len(report.stream_bytes) or 'the control stream (--force-grpc)'}",
            f"Speedup: {report.speedup:,.2f}",
        ]
    if s.delta_files:
        lines += [
            f"Delta files: {s.delta_files:,}",
            f"Literal data: {s.literal_bytes:,} bytes",
            f"Matched data: {s.matched_bytes:,} bytes",
            f"Signature data: {s.signature_bytes:,} bytes",
        ]
    return "\n".join([*lines, ""])


def _rich_console() -> Any:
    from rich.console import Console as RichConsole

    return RichConsole(file=sys.stderr)
