"""Command-line entry point: ``python -m benchmarks local [OPTIONS]``.

Creates a fresh workspace (under /dev/shm by default), generates the selected workloads,
times blit against rsync and cp, prints a Markdown table to stdout (progress goes to stderr),
writes all raw data to a JSON file and removes the workspace. Exit status: 0 on success
(whether or not targets are met), 1 if a tool failed or a result did not verify, 2 on usage
errors.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.report import (
    default_json_path,
    machine_info,
    markdown_report,
    write_json,
)
from benchmarks.runner import (
    CP,
    DEFAULT_REPS,
    RSYNC,
    WORKLOADS,
    BenchError,
    Config,
    LocalBenchmark,
    make_blit_tool,
    tool_version,
)
from benchmarks.workloads import log, remove_tree

DEFAULT_TMPFS = Path("/dev/shm")


def _workload_list(text: str) -> list[str]:
    names = [w.strip() for w in text.split(",") if w.strip()]
    unknown = [w for w in names if w not in WORKLOADS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown workload(s) {', '.join(unknown) or '(none)'}; choose from "
            + ",".join(WORKLOADS)
        )
    return list(dict.fromkeys(names))


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m benchmarks`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Benchmarks for blit."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    local = sub.add_parser(
        "local",
        help="time blit vs rsync vs cp on one machine",
        description="Time blit against rsync and cp on generated local workloads.",
    )
    local.add_argument(
        "--dir",
        type=Path,
        help="create the workspace under DIR instead of /dev/shm (e.g. to benchmark a disk)",
    )
    local.add_argument(
        "--reps",
        type=_positive_int,
        help="repetitions per tool and workload (default: "
        + ", ".join(f"{k} {v}" for k, v in DEFAULT_REPS.items())
        + ")",
    )
    local.add_argument(
        "--warmup",
        type=int,
        default=1,
        metavar="N",
        help="untimed warm-up rounds of every tool before the timed reps (default 1)",
    )
    local.add_argument(
        "--workloads",
        type=_workload_list,
        default=list(WORKLOADS),
        metavar="LIST",
        help="comma-separated subset of " + ",".join(WORKLOADS) + " (default: all)",
    )
    local.add_argument(
        "--json", type=Path, help="JSON output (default benchmarks/results/local-<ts>.json)"
    )
    local.add_argument("--markdown", type=Path, help="also write the Markdown report here")
    local.add_argument(
        "--blit",
        default="blit",
        metavar="CMD",
        help='blit command (default "blit"); e.g. "python -m blit_cli". A command starting '
        'with rsync is used as a stand-in, e.g. "rsync -a --delete"',
    )
    local.add_argument(
        "--blit-args",
        default="",
        metavar="ARGS",
        help='extra options placed after "blit mirror", e.g. "-j 4"',
    )
    local.add_argument(
        "--verify", action="store_true", help="also run diff -r on every destination"
    )
    local.add_argument(
        "--drop-caches",
        action="store_true",
        help="drop the page cache before each timed run (only meaningful with --dir on disk)",
    )
    local.add_argument(
        "--rss-interval",
        type=_positive_float,
        default=15.0,
        metavar="MS",
        help="process-tree RSS polling interval in ms (default 15)",
    )
    local.add_argument("--keep", action="store_true", help="keep the workspace for inspection")
    local.add_argument("--scale", type=_positive_float, default=1.0, help=argparse.SUPPRESS)
    return parser


def _payload(
    args: argparse.Namespace,
    cfg: Config,
    info: dict[str, Any],
    versions: dict[str, str],
    bench: LocalBenchmark | None,
    error: str | None,
) -> dict[str, Any]:
    return {
        "schema": 1,
        "kind": "local",
        "machine": info,
        "config": {
            "workloads": cfg.workloads,
            "reps": cfg.reps,
            "default_reps": DEFAULT_REPS,
            "warmup": cfg.warmup,
            "scale": cfg.scale,
            "verify": cfg.verify,
            "drop_caches": cfg.drop_caches,
            "rss_interval_ms": cfg.rss_interval * 1000,
            "blit_command": args.blit,
            "blit_args": args.blit_args,
            "argv": sys.argv,
        },
        "tools": {
            tool.name: {"command": tool.describe(), "version": versions.get(tool.name)}
            for tool in (cfg.blit, RSYNC, CP)
        },
        "trees": bench.trees.info if bench else {},
        "workloads": [r.to_json() for r in bench.results] if bench else [],
        "error": error,
    }


def run_local(args: argparse.Namespace) -> int:
    """Run the ``local`` subcommand; returns the process exit status."""
    try:
        blit = make_blit_tool(args.blit, args.blit_args)
    except BenchError as exc:
        log(f"error: {exc}")
        return 2
    parent = args.dir if args.dir is not None else DEFAULT_TMPFS
    if not parent.is_dir():
        if args.dir is not None:
            log(f"error: --dir {parent} is not a directory")
            return 2
        parent = Path(tempfile.gettempdir())
        log(f"warning: {DEFAULT_TMPFS} not available, using {parent}")
    workspace = Path(tempfile.mkdtemp(prefix="blit-bench-", dir=parent)).resolve()
    cfg = Config(
        workspace=workspace,
        workloads=args.workloads,
        blit=blit,
        reps=args.reps,
        scale=args.scale,
        verify=args.verify,
        drop_caches=args.drop_caches,
        rss_interval=args.rss_interval / 1000.0,
        warmup=max(0, args.warmup),
    )
    json_path: Path = args.json or default_json_path()
    info = machine_info(workspace)
    versions = {t.name: tool_version(t) for t in (blit, RSYNC, CP)}
    notes = [f"blit command: `{blit.describe()}` ({versions['blit']})"]
    if blit.style == "rsync":
        notes.append("blit is an rsync STAND-IN: ratios are not meaningful")
    if args.scale != 1.0:
        notes.append(f"scale {args.scale:g}: workloads are NOT the published sizes")
    log(f"workspace: {workspace} ({info['workspace_fs']})")
    for note in notes:
        log(note)

    bench: LocalBenchmark | None = None
    error: str | None = None
    t0 = time.monotonic()
    try:
        bench = LocalBenchmark(cfg)
        bench.run()
    except BenchError as exc:
        error = str(exc)
        log(f"error: {exc}")
    except KeyboardInterrupt:
        error = "interrupted"
        log("interrupted")
    finally:
        if args.keep:
            log(f"workspace kept: {workspace}")
        else:
            log("cleaning up workspace ...")
            remove_tree(workspace)

    write_json(json_path, _payload(args, cfg, info, versions, bench, error))
    log(f"JSON written to {json_path} ({time.monotonic() - t0:.0f} s total)")
    complete = [r for r in bench.results if r.complete()] if bench else []
    if error:
        notes.append("ABORTED: " + error.splitlines()[0])
        if not complete:
            return 1
    report = markdown_report(info, complete, notes)
    sys.stdout.write(report)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(report)
        log(f"Markdown written to {args.markdown}")
    return 1 if error else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks``."""
    args = build_parser().parse_args(argv)
    if args.command == "local":
        return run_local(args)
    return 2  # unreachable: the subcommand is required


if __name__ == "__main__":
    sys.exit(main())
