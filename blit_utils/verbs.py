"""The blit-utils verbs that ask a daemon's admin service: list-modules, ls, find, du, df, rm, and
the hidden complete-path that shell completion runs. One short function per verb: parse the
locations (blit_core.locations), make one call (blit_core.net.admin), render the answer
(blit_utils.render). Exit codes: 0, 1 usage, 5 cannot connect or refused, 23 some paths not
removed, 30 no reply within --timeout."""

from __future__ import annotations

import argparse
import asyncio
import math
import posixpath
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from blit_cli import tlsflags
from blit_core.admin import EntryKind, FindCriteria, Removal
from blit_core.auth import PASSWORD_ENV, client_secret
from blit_core.errors import EXIT_PARTIAL, BlitError, UsageError
from blit_core.locations import RemoteLocation, parse_location
from blit_core.net.admin import AdminClient, connect
from blit_core.net.client import DEFAULT_PORT
from blit_core.units import parse_size
from blit_utils import render

DEFAULT_TIMEOUT_S = 30.0
COMPLETION_TIMEOUT_S = 5.0
_TYPES = {"f": EntryKind.FILE, "d": EntryKind.DIR, "l": EntryKind.SYMLINK}
MAX_UINT32 = 2**32 - 1  # the widest counts and sizes the admin RPCs carry
MAX_UINT64 = 2**64 - 1
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = _verb(subparsers, "list-modules", _list_modules, "list the modules of a daemon",
                "List the modules a daemon exports: name, access and comment.")
    sub.add_argument("daemon", metavar="HOST[:PORT]", help="the daemon ([v6addr]:port for IPv6)")

    sub = _verb(subparsers, "ls", _ls, "list a directory of a module",
                "List a directory of a module, sorted by name (a file or a symlink lists"
                " itself; symlinks are never followed).")
    sub.add_argument("location", metavar="HOST:/MODULE/PATH")
    sub.add_argument("-l", dest="long", action="store_true",
                     help="long format: mode, size, modification time")
    sub.add_argument("-a", dest="all", action="store_true", help="show names starting with '.'")
    _human_flag(sub)

    sub = _verb(subparsers, "find", _find, "find files in a module",
                "Find the entries at and below a path of a module that meet every test given,"
                " printed as they are found.")
    sub.add_argument("location", metavar="HOST:/MODULE/PATH")
    sub.add_argument("--name", default="", metavar="GLOB",
                     help="the base name matches this glob (quote it from the shell)")
    sub.add_argument("--type", choices=tuple(_TYPES), help="f: file, d: directory, l: symlink")
    sub.add_argument("--min-size", type=_size, metavar="SIZE", help="at least SIZE (10K, 1.5M)")
    sub.add_argument("--max-size", type=_size, metavar="SIZE", help="at most SIZE")
    sub.add_argument("--newer", type=_duration, metavar="DURATION",
                     help="modified within DURATION before now, by the daemon's clock (90s, 10m,"
                     " 2h, 3d, 1w)")
    sub.add_argument("--limit", type=_limit, default=0, metavar="N",
                     help="stop after N matches")

    sub = _verb(subparsers, "du", _du, "disk usage below a path of a module",
                "Bytes and file counts below each directory (apparent sizes of the"
                " non-directories), each directory as soon as it is counted, deepest first.")
    sub.add_argument("location", metavar="HOST:/MODULE/PATH")
    sub.add_argument("--max-depth", type=_depth, metavar="N",
                     help="show directories at most N levels below the path (0: the path only)")
    _human_flag(sub)

    sub = _verb(subparsers, "df", _df, "free space of a module's filesystem",
                "Total, used and free bytes of the filesystem holding a module (free: available"
                " to unprivileged users).")
    sub.add_argument("location", metavar="HOST:/MODULE")
    _human_flag(sub)

    sub = _verb(subparsers, "rm", _rm, "remove files or directories from a module",
                "Remove paths from a module. On a terminal it shows what will go and asks first;"
                " elsewhere it needs --yes. Symlinks are removed as links, never followed.")
    sub.add_argument("locations", nargs="+", metavar="HOST:/MODULE/PATH")
    sub.add_argument("-r", dest="recursive", action="store_true",
                     help="remove directories and everything in them")
    sub.add_argument("--yes", action="store_true", help="remove without asking")
    _human_flag(sub)

    # Hidden (no help): shell completion runs it. Silent on every error.
    sub = subparsers.add_parser("complete-path", add_help=False)
    sub.add_argument("word")
    sub.add_argument("--timeout", type=_seconds, default=COMPLETION_TIMEOUT_S)
    tlsflags.add_arguments(sub)
    sub.set_defaults(run=_complete_path)


def _verb(subparsers: argparse._SubParsersAction, verb: str, run: Callable[..., int],
          summary: str, description: str) -> argparse.ArgumentParser:
    sub = subparsers.add_parser(verb, add_help=False, help=summary, description=description)
    sub.add_argument("--json", action="store_true",
                     help="JSON on stdout (one document, or one object per line as it streams)")
    sub.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT_S, metavar="SECS",
                     help="give up when the daemon has not answered for SECS seconds"
                     f" (default: {DEFAULT_TIMEOUT_S:g})")
    tlsflags.add_arguments(sub)
    sub.add_argument("--password-file", metavar="FILE",
                     help="log in to a module with users (USER@HOST:/MODULE/PATH) with the "
                     f"secret on FILE's first line (else ${PASSWORD_ENV})")
    sub.add_argument("--help", action="help", help="show this help and exit")
    sub.set_defaults(run=run)
    return sub


def _human_flag(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("-h", dest="human", action="store_true",
                     help="human-readable sizes (KiB, MiB, ...)")


def _list_modules(args: argparse.Namespace) -> int:
    where = parse_daemon(args.daemon)
    listing = _call(where, args, lambda client: client.list_modules())
    if args.json:
        render.json_out({
            "modules": [{"name": m.name, "comment": m.comment, "read_only": m.read_only}
                        for m in listing.modules],
            "motd": listing.motd, "server_version": listing.server_version})
        return 0
    if listing.motd:
        print(listing.motd)
    rows = [["MODULE", "ACCESS", "COMMENT"]]
    rows += [[m.name, "read-only" if m.read_only else "read-write", m.comment]
             for m in listing.modules]
    render.lines_out(render.table(rows, right=(False, False)))
    return 0


def _ls(args: argparse.Namespace) -> int:
    where = _location(args.location)
    base = module_path(where)
    colour = not args.json and render.use_colour(sys.stdout)

    async def run(client: AdminClient) -> None:
        async for entry in client.list(base, show_hidden=args.all):
            shown = entry.path or posixpath.basename(base)
            if args.json:
                render.json_out(render.entry_json(entry, shown, _joined(base, entry.path)))
            else:
                print(render.entry_line(entry, shown, long=args.long, human=args.human,
                                        colour=colour))

    _call(where, args, run)
    return 0


def _find(args: argparse.Namespace) -> int:
    where = _location(args.location)
    base = module_path(where)
    criteria = FindCriteria(name=args.name, kind=_TYPES.get(args.type),
                            min_size=args.min_size, max_size=args.max_size,
                            newer_s=args.newer, limit=args.limit)
    colour = not args.json and render.use_colour(sys.stdout)

    async def run(client: AdminClient) -> None:
        async for entry in client.find(base, criteria):
            path = _joined(base, entry.path)
            if args.json:
                render.json_out(render.entry_json(entry, posixpath.basename(path), path))
            else:
                print(render.name(path, entry.kind, colour))

    _call(where, args, run)
    return 0


def _du(args: argparse.Namespace) -> int:
    where = _location(args.location)
    base = module_path(where)

    async def run(client: AdminClient) -> None:
        async for usage in client.disk_usage(base, args.max_depth):
            path = _joined(base, usage.path)
            if args.json:
                render.json_out(render.usage_json(usage, path))
            else:
                print(render.usage_line(usage, path, human=args.human))

    _call(where, args, run)
    return 0


def _df(args: argparse.Namespace) -> int:
    where = _location(args.location)
    base = module_path(where)
    space = _call(where, args, lambda client: client.disk_free(base))
    if args.json:
        render.json_out({"path": base, "total": space.total, "used": space.used,
                         "free": space.free})
    else:
        render.lines_out(render.space_table(base, space, human=args.human))
    return 0


def _rm(args: argparse.Namespace) -> int:
    wheres = [_location(text) for text in args.locations]
    daemons = {(w.host, w.port) for w in wheres}
    if len(daemons) > 1:
        raise UsageError("rm removes from one daemon at a time: give paths of the same daemon")
    paths = [module_path(w) for w in wheres]
    if not args.yes:
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise BlitError("rm asks before removing and there is no terminal to ask on: "
                            "pass --yes to remove without asking")
        planned = _call(wheres[0], args, _removing(paths, args.recursive, dry_run=True))
        if not _confirmed(planned):
            raise BlitError("nothing removed")
    removals = _call(wheres[0], args, _removing(paths, args.recursive, dry_run=False))
    done = [r for r in removals if r.files or r.dirs or not r.error]
    if args.json:
        render.json_out({"removals": [render.removal_json(r) for r in removals]})
    elif done:
        render.lines_out(render.removal_table(done, human=args.human))
    failed = [r for r in removals if r.error]
    for removal in failed:
        render.problem(f"cannot remove {removal.path}: {removal.error}")
    return EXIT_PARTIAL if failed else 0


def _removing(paths: Sequence[str], recursive: bool,
              dry_run: bool) -> Callable[[AdminClient], Awaitable[list[Removal]]]:
    def run(client: AdminClient) -> Awaitable[list[Removal]]:
        return client.remove(paths, recursive=recursive, dry_run=dry_run)

    return run


def _confirmed(planned: Sequence[Removal]) -> bool:
    """Show what a removal would take (on stderr) and ask; True for yes."""
    for removal in planned:
        sys.stderr.write(f"  {render.planned(removal)}\n")
    going = [r for r in planned if not r.error]
    if not going:
        return True  # nothing would go: the removal reports each path's error
    total = render.counts(sum(r.files for r in going), sum(r.dirs for r in going),
                          sum(r.bytes for r in going))
    sys.stderr.write(f"remove {total}? [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _complete_path(args: argparse.Namespace) -> int:
    """Candidates for a partial remote path, one full word per line; never an error."""
    word = args.word
    slash = word.find("/")  # a host never holds '/': the path starts at the first one
    try:
        if slash < 1 or word[slash - 1] != ":":
            return 0
        where = parse_daemon(word[:slash - 1])
        found = _call(where, args, lambda client: client.complete_path(word[slash:]))
    except Exception:  # completion must never print an error into the user's command line
        return 0
    for candidate in found:
        print(word[:slash] + candidate)
    return 0


def parse_daemon(text: str) -> RemoteLocation:
    """The daemon `host`, `host:port` or `[v6addr]:port` names, as a location (its module
    and path are placeholders); the host and port rules are parse_location's."""
    try:
        where = parse_location(f"{text}:/m")
    except UsageError:
        where = text
    if isinstance(where, str):
        raise UsageError(f"{text!r} is not a daemon: use HOST or HOST:PORT"
                         " ([v6addr]:port for IPv6)")
    return where


def module_path(where: RemoteLocation) -> str:
    """"/module/path" (the module root: "/module"), as the daemon is asked about it."""
    return f"/{where.module}/{where.path}" if where.path else f"/{where.module}"


def _location(text: str) -> RemoteLocation:
    try:
        where = parse_location(text)
    except UsageError:
        if "/" in text:
            raise
        raise UsageError(f"{text!r} names no module: use HOST:/MODULE/PATH (HOST:PORT:/MODULE/"
                         f"PATH for another port); blit-utils list-modules {text.rstrip(':')}"
                         " lists the modules") from None
    if isinstance(where, str):
        raise UsageError(f"{text!r} is not a daemon location: use HOST:/MODULE/PATH"
                         " (HOST:PORT:/MODULE/PATH for another port)")
    return where


def _joined(base: str, rel: str) -> str:
    return f"{base}/{rel}" if rel else base


def _call(where: RemoteLocation, args: argparse.Namespace,
          work: Callable[[AdminClient], Awaitable[T]]) -> T:
    """Run `work` with a client of the daemon `where` names (--timeout, --tls, --tls-ca, and
    its user with --password-file or $BLIT_PASSWORD)."""
    client_tls = tlsflags.from_args(args)
    login = None
    if where.user:
        secret = client_secret(getattr(args, "password_file", None))
        if secret is None:
            raise UsageError(f"logging in as {where.user!r} needs a secret: --password-file "
                             f"FILE or ${PASSWORD_ENV}")
        login = (where.user, secret)

    async def main() -> T:
        async with connect(where.address(DEFAULT_PORT), args.timeout, client_tls,
                           login) as client:
            return await work(client)

    return asyncio.run(main())


def _size(text: str) -> int:
    try:
        size = parse_size(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if size > MAX_UINT64:
        raise argparse.ArgumentTypeError(f"size {text!r} is too large")
    return size


def _duration(text: str) -> float:
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: use a number with s, m, h, d or w (90s, 10m, 2h, 3d, 1w)")
    seconds = float(match[1]) * _SECONDS[match[2]]
    if not math.isfinite(seconds):
        raise argparse.ArgumentTypeError(f"duration {text!r} is too long")
    return seconds


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}: use more than 0")
    return value


def _depth(text: str) -> int:
    return _count(text, 0, MAX_UINT32)


def _limit(text: str) -> int:
    return _count(text, 1, MAX_UINT64)


def _count(text: str, least: int, most: int) -> int:
    if not (text.isascii() and text.isdigit()) or not least <= int(text) <= most:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: use {least} to {most}")
    return int(text)
