"""The one error hierarchy of blit_core. Each error carries the rsync-style exit code that the
command layer maps it to, so every front end reports failures the same way."""

from __future__ import annotations


class BlitError(Exception):
    """Base of every error blit_core raises on purpose. `retryable`: the network or the
    daemon's state failed, not the request, so the same transfer may succeed later
    (--retries)."""

    exit_code = 1
    retryable = False


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


class RemoteError(BlitError):
    """The daemon cannot be reached, or refuses the session: unknown module, read-only
    module, protocol version mismatch, too many sessions (exit 5, rsync's "error starting
    client-server protocol")."""

    exit_code = 5


class Unreachable(RemoteError):
    """No daemon answers at the address: nothing listens, or it is stopping (exit 5)."""

    retryable = True


class DaemonBusy(RemoteError):
    """The daemon, or the module, is serving as many sessions as it may (exit 5)."""

    retryable = True


class ConnectTimeout(BlitError):
    """The daemon did not answer within --contimeout (exit 35, rsync's)."""

    exit_code = 35
    retryable = True


class ConnectionLost(BlitError):
    """The connection to the peer broke during the transfer (exit 10, rsync's socket I/O
    error)."""

    exit_code = 10
    retryable = True


class ProtocolError(BlitError):
    """The peer sent something the protocol does not allow (exit 12, rsync's protocol data
    stream error)."""

    exit_code = 12


class UnsafePathError(ProtocolError):
    """A path that arrived over the wire is not a safe relative path inside the module."""


class PeerTimeout(BlitError):
    """The peer stopped reading or writing for longer than the timeout (exit 30)."""

    exit_code = 30
    retryable = True


EXIT_PARTIAL = 23
EXIT_VANISHED = 24
EXIT_MAX_DELETE = 25
