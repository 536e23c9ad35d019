"""`blit`: the command line. Parses arguments into TransferOptions, calls blit_core.api, renders
the result, and maps errors to rsync-style exit codes. One short function per verb."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from blit_cli import render, scan, tlsflags
from blit_cli.parsing import Parser
from blit_core import __version__, api
from blit_core.auth import PASSWORD_ENV, client_secret
from blit_core.errors import BlitError, UsageError
from blit_core.fileslist import FilesFrom
from blit_core.filters import FilterRules, parse_filter_rule, read_pattern_file
from blit_core.options import (
    DEFAULT_COMPRESS_LEVEL,
    MAX_COMPRESS_LEVEL,
    CompareMode,
    TransferOptions,
    Verb,
)
from blit_core.runtime import tune_process
from blit_core.transfer.sink import partial_excludes
from blit_core.units import parse_size

EXIT_CODES = """exit codes (rsync's numbering):
  0   success
  1   usage error
  3   error selecting files (missing source, unreadable list)
  5   cannot reach the daemon, or it refused the session
  10  the connection broke during the transfer
  11  file I/O error (for example, no space left on the destination)
  12  the peer broke the protocol
  14  internal error (a worker failed unexpectedly; --debug shows the traceback)
  20  interrupted by a signal (temp files are removed)
  23  partial transfer: some files failed, the rest landed
  24  some source files vanished during the transfer
  25  --max-delete stopped deletions
  30  the peer stalled longer than the timeout
  35  the daemon did not answer within --contimeout
"""

VERB_HELP = {
    Verb.COPY: "copy SRC... into DST; never deletes anything at DST",
    Verb.MIRROR: "make DST an exact copy of SRC: copy, then delete what SRC lacks",
    Verb.MOVE: "copy, then delete each source file once its copy is committed",
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="blit",
        description="Fast, safe copies and mirrors of file trees.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"blit {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb in Verb:
        sub = verbs.add_parser(
            verb.value,
            usage=f"blit {verb.value} [OPTIONS] SRC... DST",
            help=VERB_HELP[verb],
            description=VERB_HELP[verb] + ".\n\nSRC/ (trailing slash) means the contents of SRC;"
            " SRC without one lands as DST/SRC.",
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_transfer_arguments(sub)
    demo = verbs.add_parser("demo", help="push a sample tree to a temporary local daemon and "
                            "pull it back, to see blit work")
    demo.add_argument("--files", type=int, default=5000, help="small files to generate (5000)")
    scan.add_arguments(verbs.add_parser("scan", help=scan.HELP, description=scan.DESCRIPTION))
    return parser


def _add_transfer_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("paths", nargs="+", metavar="PATH",
                     help="one or more sources, then the destination")

    compare = sub.add_argument_group("comparison (default: skip when size and mtime match)")
    compare.add_argument("-c", "--checksum", action="store_true",
                         help="compare content (xxh3-128) instead of mtime")
    compare.add_argument("--size-only", action="store_true", help="compare sizes only")
    compare.add_argument("-I", "--ignore-times", action="store_true",
                         help="transfer every file, even when it looks up to date")
    compare.add_argument("--modify-window", type=float, default=0.0, metavar="SECS",
                         help="treat mtimes this close as equal (default 0: nanoseconds)")
    compare.add_argument("-u", "--update", action="store_true",
                         help="skip files that are newer at the destination")
    compare.add_argument("--ignore-existing", action="store_true",
                         help="skip files that already exist at the destination")
    compare.add_argument("--existing", action="store_true",
                         help="only update files that already exist at the destination")

    what = sub.add_argument_group("what is copied")
    what.add_argument("-L", "--copy-links", action="store_true",
                      help="copy what symlinks point to, not the links")
    what.add_argument("-H", "--hard-links", action="store_true", help="keep hard links")
    what.add_argument("-S", "--sparse", action="store_true", help="keep sparse files sparse")
    what.add_argument("--specials", action="store_true", help="copy sockets and FIFOs (root)")
    what.add_argument("--devices", action="store_true", help="copy device files (root)")

    filt = sub.add_argument_group("filters (rsync rules; the first match wins)")
    for flag, kind, metavar, text in (
        ("--exclude", "-", "PAT", "exclude paths matching PAT"),
        ("--include", "+", "PAT", "include paths matching PAT"),
        ("--exclude-from", "-from", "FILE", "read exclude patterns from FILE"),
        ("--include-from", "+from", "FILE", "read include patterns from FILE"),
        ("--filter", "rule", "RULE", "'+ PAT' to include, '- PAT' to exclude"),
    ):
        filt.add_argument(flag, action=_RuleAction, dest="rules", default=[], metavar=metavar,
                          help=text, const=kind)
    filt.add_argument("--files-from", metavar="FILE",
                      help="transfer only the paths listed in FILE ('-' for stdin)")
    filt.add_argument("--min-size", metavar="SIZE", help="skip files smaller than SIZE (K, M, G)")
    filt.add_argument("--max-size", metavar="SIZE", help="skip files larger than SIZE (K, M, G)")

    writes = sub.add_argument_group("writing")
    writes.add_argument("--inplace", action="store_true",
                        help="write into existing files instead of temp file and rename")
    writes.add_argument("-W", "--whole-file", action="store_true",
                        help="send changed files whole, never as a delta (remote transfers "
                        "send a delta against the old file by default)")
    writes.add_argument("--no-whole-file", action="store_true",
                        help="send changed files as deltas in local copies too")
    writes.add_argument("--partial", action="store_true",
                        help="keep an interrupted file's data (hidden beside it); the next "
                        "run rebuilds the file from it and sends only the rest")
    writes.add_argument("--partial-dir", metavar="DIR",
                        help="like --partial, keeping the data in DIR, a directory made "
                        "inside the file's destination directory")
    writes.add_argument("--fsync", action="store_true", help="fsync each file before its rename")
    writes.add_argument("-b", "--backup", action="store_true",
                        help="keep replaced and deleted files as backups")
    writes.add_argument("--suffix", help="backup suffix (default '~', or none with --backup-dir)")
    writes.add_argument("--backup-dir", metavar="DIR", help="keep backups under DIR")
    writes.add_argument("--max-delete", type=int, metavar="N",
                        help="delete at most N entries (exit 25 when more were due)")
    writes.add_argument("--delete-excluded", action="store_true",
                        help="mirror also deletes excluded entries at the destination")
    writes.add_argument("-j", "--jobs", type=int, default=0, metavar="N",
                        help="worker processes (default: one per CPU)")

    remote = sub.add_argument_group("remote transfers (a side written HOST:/module/path)")
    remote.add_argument("-z", "--compress", action="store_true",
                        help="compress file data with zstd where it shrinks, even on a LAN "
                        "(by default only for a daemon beyond the LAN)")
    remote.add_argument("--compress-level", type=int, default=DEFAULT_COMPRESS_LEVEL,
                        metavar="N", help=f"zstd level, 1-{MAX_COMPRESS_LEVEL} "
                        f"(default {DEFAULT_COMPRESS_LEVEL})")
    remote.add_argument("--force-grpc", action="store_true",
                        help="carry file data inside the gRPC stream (when the data port is "
                        "blocked; slower)")
    remote.add_argument("--streams", type=int, default=0, metavar="N",
                        help="data-plane TCP streams, 1-16 (default: automatic)")
    remote.add_argument("--bwlimit", type=parse_size, default=0, metavar="RATE",
                        help="cap the transfer at RATE bytes per second (e.g. 50M)")
    remote.add_argument("--password-file", metavar="FILE",
                        help="log in to a module with users (USER@HOST:/module) with the "
                        f"secret on FILE's first line (else ${PASSWORD_ENV})")
    remote.add_argument("--timeout", type=float, default=60.0, metavar="SECS",
                        help="give up when the daemon sends nothing for SECS seconds "
                        "(exit 30; default: 60)")
    remote.add_argument("--contimeout", type=float, metavar="SECS",
                        help="give up when the daemon does not answer within SECS seconds of "
                        "connecting (exit 35; default: only --timeout applies)")
    remote.add_argument("--retries", type=int, default=0, metavar="N",
                        help="when the daemon cannot be reached, is busy or stops answering, "
                        "or the connection breaks, run the transfer again, up to N times "
                        "(default: 0)")
    remote.add_argument("--retries-sleep", type=float, default=2.0, metavar="SECS",
                        help="wait SECS seconds before each retry (default: 2)")
    tlsflags.add_arguments(remote)

    out = sub.add_argument_group("output")
    out.add_argument("-n", "--dry-run", action="store_true",
                     help="show what would happen; change nothing")
    out.add_argument("-v", "--verbose", action="count", default=0,
                     help="list changed names, then the bytes each copy strategy moved")
    out.add_argument("-i", "--itemize-changes", action="store_true",
                     help="list changes with rsync's 11-character codes")
    out.add_argument("-q", "--quiet", action="store_true", help="print no warnings")
    out.add_argument("-P", "--progress", action="store_true", default=None,
                     help="show progress even when not on a terminal")
    out.add_argument("--no-progress", action="store_false", dest="progress",
                     help="never show progress")
    out.add_argument("--stats", action="store_true", help="print a summary block at the end")
    out.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    out.add_argument("--debug", action="store_true", help="show tracebacks for errors")


def options_from_args(args: argparse.Namespace, *, show_progress: bool) -> TransferOptions:
    """Turn parsed arguments into the library's options."""
    modes = [m for flag, m in (
        (args.checksum, CompareMode.CHECKSUM),
        (args.size_only, CompareMode.SIZE_ONLY),
        (args.ignore_times, CompareMode.IGNORE_TIMES),
    ) if flag]
    if len(modes) > 1:
        raise UsageError("choose one of --checksum, --size-only and --ignore-times")
    if args.modify_window < 0:
        raise UsageError("--modify-window must be zero or more")
    return TransferOptions(
        compare=modes[0] if modes else CompareMode.QUICK,
        modify_window_ns=int(args.modify_window * 1_000_000_000),
        update_only_older=args.update,
        ignore_existing=args.ignore_existing,
        existing_only=args.existing,
        copy_links=args.copy_links,
        hard_links=args.hard_links,
        sparse=args.sparse,
        specials=args.specials,
        devices=args.devices,
        inplace=args.inplace,
        whole_file=args.whole_file,
        force_delta=args.no_whole_file,
        partial=args.partial or args.partial_dir is not None,
        partial_dir=args.partial_dir,
        compress=args.compress,
        compress_level=args.compress_level,
        fsync=args.fsync,
        backup=args.backup or args.backup_dir is not None,
        backup_suffix=args.suffix,
        backup_dir=args.backup_dir,
        max_delete=args.max_delete,
        delete_excluded=args.delete_excluded,
        filters=FilterRules.from_rules(_filter_rules(args)),
        files_from=FilesFrom.read(args.files_from) if args.files_from else None,
        min_size=parse_size(args.min_size) if args.min_size else None,
        max_size=parse_size(args.max_size) if args.max_size else None,
        dry_run=args.dry_run,
        jobs=args.jobs,
        want_events=bool(args.verbose or args.itemize_changes or args.dry_run),
        want_progress=show_progress,
    )


class _RuleAction(argparse.Action):
    """Collects every filter option into one list, in command-line order (first match wins)."""

    def __init__(self, option_strings: list[str], dest: str, const: str, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=None, const=const, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        rules = list(getattr(namespace, self.dest) or [])
        rules.append((self.const, values))
        setattr(namespace, self.dest, rules)


def _filter_rules(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Expand the collected filter options into (sign, pattern) rules."""
    rules: list[tuple[str, str]] = []
    for kind, value in args.rules:
        if kind in ("-", "+"):
            rules.append((kind, value))
        elif kind == "rule":
            rules.append(parse_filter_rule(value))
        else:
            rules.extend((kind[0], pattern) for pattern in read_pattern_file(value))
    if args.partial or args.partial_dir is not None:
        rules += partial_excludes(args.partial_dir)
    return rules


def remote_settings(args: argparse.Namespace) -> api.RemoteSettings:
    """How a remote transfer uses the network, from the parsed arguments."""
    return api.RemoteSettings(
        force_grpc=args.force_grpc, streams=args.streams, bwlimit=args.bwlimit,
        timeout=args.timeout, secret=client_secret(args.password_file),
        contimeout=args.contimeout, retries=args.retries, retries_sleep=args.retries_sleep,
        tls=tlsflags.from_args(args))


def run_transfer(args: argparse.Namespace) -> int:
    verb = Verb(args.verb)
    if len(args.paths) < 2:
        raise UsageError(f"{verb.value} needs at least one SRC and a DST")
    *sources, destination = args.paths
    show_progress = args.progress if args.progress is not None else sys.stderr.isatty()
    show_progress = show_progress and not args.json
    options = options_from_args(args, show_progress=show_progress)
    console = render.Console(
        itemize=args.itemize_changes,
        verbose=args.verbose or args.dry_run,
        quiet=args.quiet,
        events_to_stderr=args.json,
        progress=show_progress,
    )
    with console:
        report = api.transfer(verb, sources, destination, options, console,
                              remote=remote_settings(args))
    console.finish(report, stats=args.stats, as_json=args.json, strategies=args.verbose >= 1)
    return report.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if getattr(args, "debug", False) else logging.WARNING,
                        format="blit: %(message)s")
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    try:
        if args.verb == "demo":
            from blit_cli.demo import run_demo

            return run_demo(args.files)
        if args.verb == "scan":
            return scan.run(args, "blit")
        tune_process()
        return run_transfer(args)
    except BlitError as exc:
        if getattr(args, "debug", False):
            raise
        render.error(str(exc), usage=isinstance(exc, UsageError))
        return exc.exit_code
    except KeyboardInterrupt:
        render.error("interrupted; temp files removed")
        return 20
    except BrokenPipeError:  # whoever read stdout has gone: `blit scan | head -1`
        render.drop_stdout()
        if args.verb == "scan":
            return 0
        render.error("stdout was closed (broken pipe): the transfer stopped")
        return 11
    except OSError as exc:
        if getattr(args, "debug", False):
            raise
        render.error(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
        return 11
    except Exception as exc:
        if getattr(args, "debug", False):
            raise
        render.error(f"internal error: {type(exc).__name__}: {exc} (--debug shows where)")
        return 14


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def console_script() -> None:
    sys.exit(main())
