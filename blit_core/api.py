"""The library's entry points: copy, mirror and move. This is the only place that chooses how
a transfer runs (today: local to local, through the local pipeline)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from blit_core.endpoints import anchor_backup_dir, check_not_overlapping, resolve_local
from blit_core.locations import RemoteLocation, parse_location
from blit_core.models import TransferReport
from blit_core.options import RemoteSettings, TransferOptions, Verb
from blit_core.progress import NullObserver, TransferObserver
from blit_core.transfer.pipeline import LocalPipeline


def transfer(
    verb: Verb,
    sources: Sequence[str],
    destination: str,
    options: TransferOptions | None = None,
    observer: TransferObserver | None = None,
    remote: RemoteSettings | None = None,
) -> TransferReport:
    """Run one transfer and return its merged report. Raises BlitError subclasses for
    failures that stop the whole transfer; per-file failures are in the report. A side
    written HOST:/module/path is a daemon endpoint: the transfer is then a push or a pull."""
    options = options or TransferOptions()
    locations = [parse_location(s) for s in sources]
    target = parse_location(destination)
    if isinstance(target, RemoteLocation) or any(
        isinstance(s, RemoteLocation) for s in locations
    ):
        from blit_core.net.client import remote_transfer

        return remote_transfer(verb, locations, target, options, observer or NullObserver(),
                               remote or RemoteSettings())
    if options.files_from is not None:  # as rsync: a source directory is the list's base
        sources = [s.rstrip("/") + "/" if os.path.isdir(s) else s for s in sources]
    roots, into_dir = resolve_local(list(sources), destination, copy_links=options.copy_links)
    filters = options.filters
    for root in roots:
        check_not_overlapping(root, lambda path: bool(filters) and filters.excludes(path, True))
    options = anchor_backup_dir(options, into_dir, destination)
    roots = [
        root for root in roots
        if not (options.filters and options.filters.excludes(root.prefix, root.is_dir))
    ]
    if (
        into_dir is not None
        and not options.dry_run
        and not os.path.isdir(into_dir)
        and any(root.dst != into_dir for root in roots)
    ):
        os.mkdir(into_dir)
    return LocalPipeline(roots, verb, options, observer or NullObserver()).run()


def copy(sources: Sequence[str], destination: str, options: TransferOptions | None = None,
         observer: TransferObserver | None = None) -> TransferReport:
    """Copy sources to destination; nothing at the destination is deleted."""
    return transfer(Verb.COPY, sources, destination, options, observer)


def mirror(sources: Sequence[str], destination: str, options: TransferOptions | None = None,
           observer: TransferObserver | None = None) -> TransferReport:
    """Copy, then delete destination entries absent from the source (after all commits)."""
    return transfer(Verb.MIRROR, sources, destination, options, observer)


def move(sources: Sequence[str], destination: str, options: TransferOptions | None = None,
         observer: TransferObserver | None = None) -> TransferReport:
    """Copy, deleting each source file once its copy is committed and verified."""
    return transfer(Verb.MOVE, sources, destination, options, observer)
