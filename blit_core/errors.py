"""The one error hierarchy of blit_core. Each error carries the rsync-style exit code that the
command layer maps it to, so every front end reports failures the same way."""

from __future__ import annotations


class BlitError(Exception):
    """Base of every error blit_core raises on purpose."""

    exit_code = 1


class UsageError(BlitError):
    """Bad arguments or options (exit 1)."""

    exit_code = 1


class SelectionError(BlitError):
    """A source cannot be selected: missing, unreadable, or an unreadable file list (exit 3)."""

    exit_code = 3


class FileIOError(BlitError):
    """A fatal I/O error, such as a full disk at the destination (exit 11)."""

    exit_code = 11


class WorkerLost(BlitError):
    """A worker process died or failed unexpectedly (exit 14, rsync's IPC error)."""

    exit_code = 14


class TransferInterrupted(BlitError):
    """The transfer was stopped by a signal; temp files were removed (exit 20)."""

    exit_code = 20


EXIT_PARTIAL = 23
EXIT_VANISHED = 24
EXIT_MAX_DELETE = 25
