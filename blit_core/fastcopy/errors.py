"""The typed "can't" of the fast-copy chain, the errno values that mean it, and the chunk size
used when a caller wants to hear about progress."""

from __future__ import annotations

import errno

REPORT_CHUNK = 64 << 20  # bytes per system call when progress is reported


class Unavailable(Exception):
    """This mechanism cannot copy between these files; the next one in the chain should."""


# errno values that mean "this mechanism does not work here", not "the copy failed".
UNSUPPORTED_ERRNOS = frozenset(
    {errno.EXDEV, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL, errno.EBADF, errno.ENOTTY}
)


def reraise_unless_unsupported(exc: OSError) -> None:
    """Turn an unsupported-operation OSError into Unavailable; let real failures through."""
    if exc.errno in UNSUPPORTED_ERRNOS:
        raise Unavailable(str(exc)) from exc
    raise exc
