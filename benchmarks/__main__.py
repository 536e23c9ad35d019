"""Command-line entry point: ``python -m benchmarks {local,remote,delta,load} [OPTIONS]``.

Creates a fresh workspace (under /dev/shm by default), runs the selected workloads (local:
:class:`benchmarks.runner.LocalBenchmark`, remote: :class:`benchmarks.remote.RemoteBenchmark`),
prints a Markdown table to stdout (progress goes to stderr), writes all raw data to a JSON file
and removes the workspace. Exit status: 0 on success (whether or not targets are met), 1 if a
tool failed or a result did not verify, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import delta, load
from benchmarks.remote import (
    DEFAULT_WORKLOADS,
    PYTHON_M_BLIT_CLI,
    PYTHON_M_BLIT_DAEMON,
    REMOTE_COLUMNS,
    RemoteBenchmark,
)
from benchmarks.report import (
    LOCAL_COLUMNS,
    default_json_path,
    machine_info,
    markdown_report,
    write_json,
)
from benchmarks.runner import (
    DEFAULT_REPS,
    WORKLOADS,
    BenchError,
    BenchmarkBase,
    Config,
    LocalBenchmark,
    compile_blit_bytecode,
    make_blit_tool,
    positive_float,
    positive_int,
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
    remote = sub.add_parser(
        "remote",
        help="time blit vs rsync through their daemons on 127.0.0.1",
        description="Time blit client + blit-daemon against rsync + rsync --daemon on "
        "127.0.0.1, pushing and pulling the local workloads, with the raw TCP loopback "
        "ceiling, blit --force-grpc and (opt-in, rss1m) the first file of a 1M-file push.",
    )
    for cmd, name, blit, workloads in (
        (local, "local", "blit", WORKLOADS),
        (remote, "remote", PYTHON_M_BLIT_CLI, DEFAULT_WORKLOADS),
    ):
        cmd.add_argument(
            "--dir",
            type=Path,
            help="create the workspace under DIR instead of /dev/shm (e.g. to benchmark a disk)",
        )
        cmd.add_argument(
            "--reps",
            type=positive_int,
            help="repetitions per tool and workload (default: "
            + ", ".join(f"{k} {v}" for k, v in DEFAULT_REPS.items())
            + ")",
        )
        cmd.add_argument(
            "--warmup",
            type=int,
            default=1,
            metavar="N",
            help="untimed warm-up rounds of every tool before the timed reps (default 1)",
        )
        cmd.add_argument(
            "--workloads",
            type=_workload_list,
            default=list(workloads),
            metavar="LIST",
            help="comma-separated subset of "
            + ",".join(WORKLOADS)
            + " (default: "
            + ("all" if workloads == WORKLOADS else ",".join(workloads))
            + ")",
        )
        cmd.add_argument(
            "--json",
            type=Path,
            help=f"JSON output (default benchmarks/results/{name}-<ts>.json)",
        )
        cmd.add_argument("--markdown", type=Path, help="also write the Markdown report here")
        cmd.add_argument(
            "--blit",
            default=blit,
            metavar="CMD",
            help=f'blit command (default "{blit}"). For local, a command starting with rsync '
            'is used as a stand-in, e.g. "rsync -a --delete"',
        )
        cmd.add_argument(
            "--blit-args",
            default="",
            metavar="ARGS",
            help='extra options placed after "blit mirror", e.g. "-j 4"',
        )
        cmd.add_argument(
            "--verify", action="store_true", help="also run diff -r on every destination"
        )
        cmd.add_argument(
            "--drop-caches",
            action="store_true",
            help="drop the page cache before each timed run (only meaningful with --dir on disk)",
        )
        cmd.add_argument(
            "--rss-interval",
            type=positive_float,
            default=15.0,
            metavar="MS",
            help="process-tree RSS polling interval in ms (default 15)",
        )
        cmd.add_argument("--keep", action="store_true", help="keep the workspace for inspection")
    local.add_argument("--scale", type=positive_float, default=1.0, help=argparse.SUPPRESS)
    remote.add_argument(
        "--scale",
        type=positive_float,
        default=1.0,
        help="multiply the workload sizes and the 2 GiB TCP transfer by this (default 1)",
    )
    remote.add_argument(
        "--blit-daemon",
        default=PYTHON_M_BLIT_DAEMON,
        metavar="CMD",
        help=f'blit daemon command (default "{PYTHON_M_BLIT_DAEMON}")',
    )
    remote.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="SECS",
        help="kill a client still running after SECS (0: never; default 600)",
    )
    remote.add_argument(
        "--tls",
        action="store_true",
        help="also push and pull the large workload through a TLS blit-daemon (a throwaway "
        "certificate; needs the cryptography package, in the test extra), alternating with "
        "the plain runs",
    )
    delta.add_parser(sub)
    load.add_parser(sub)
    return parser


def _make_workspace(parent: Path | None) -> Path:
    base = parent if parent is not None else DEFAULT_TMPFS
    if not base.is_dir():
        if parent is not None:
            raise BenchError(f"--dir {parent} is not a directory")
        base = Path(tempfile.gettempdir())
        log(f"warning: {DEFAULT_TMPFS} not available, using {base}")
    return Path(tempfile.mkdtemp(prefix="blit-bench-", dir=base)).resolve()


def _payload(
    args: argparse.Namespace,
    cfg: Config,
    info: dict[str, Any],
    versions: dict[str, str],
    bench: BenchmarkBase,
    error: str | None,
) -> dict[str, Any]:
    return {
        "schema": 1,
        "kind": args.command,
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
            "timeout_s": cfg.timeout,
            "blit_command": args.blit,
            "blit_args": args.blit_args,
            "argv": sys.argv,
        },
        "tools": {
            tool.name: {"command": tool.describe(), "version": versions[tool.name]}
            for tool in bench.tools
        },
        **bench.json_extra(),
        "trees": bench.trees.info,
        "workloads": [r.to_json() for r in bench.results],
        "error": error,
    }


def run(args: argparse.Namespace) -> int:
    """Run the ``local`` or ``remote`` subcommand; returns the process exit status."""
    remote = args.command == "remote"
    try:
        blit = make_blit_tool(args.blit, args.blit_args)
        if shutil.which("rsync") is None:
            raise BenchError("rsync is not installed (e.g. apt-get install rsync)")
        workspace = _make_workspace(args.dir)
    except BenchError as exc:
        log(f"error: {exc}")
        return 2
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
        timeout=(args.timeout or None) if remote else None,
    )
    bench: BenchmarkBase = (
        RemoteBenchmark(cfg, shlex.split(args.blit_daemon), tls=args.tls) if remote
        else LocalBenchmark(cfg)
    )
    json_path: Path = args.json or default_json_path(args.command)
    info = machine_info(workspace)
    versions = {t.name: tool_version(t) for t in bench.tools}
    log(f"workspace: {workspace} ({info['workspace_fs']})")
    log(f"blit command: {blit.describe()} ({versions['blit']})")

    error: str | None = None
    t0 = time.monotonic()
    try:
        try:
            bench.run()
        except BenchError as exc:
            error = str(exc)
            log(f"error: {exc}")
        except KeyboardInterrupt:
            error = "interrupted"
            log("interrupted")
        payload = _payload(args, cfg, info, versions, bench, error)
    finally:
        if args.keep:
            log(f"workspace kept: {workspace}")
        else:
            log("cleaning up workspace ...")
            remove_tree(workspace)

    write_json(json_path, payload)
    log(f"JSON written to {json_path} ({time.monotonic() - t0:.0f} s total)")
    notes = bench.notes(versions)
    if args.scale != 1.0:
        notes.append(f"scale {args.scale:g}: workloads are NOT the published sizes")
    rows = [r for r in bench.results if r.complete() or r.errors]
    if error:
        notes.append("ABORTED: " + error.splitlines()[0])
        if not rows:
            return 1
    report = markdown_report(info, rows, notes, REMOTE_COLUMNS if remote else LOCAL_COLUMNS)
    sys.stdout.write(report)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(report)
        log(f"Markdown written to {args.markdown}")
    return 1 if error or any(r.errors for r in rows) else 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks``."""
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # clean up (daemons, workspace) as on Ctrl-C
    compile_blit_bytecode()
    own = {"delta": delta.run, "load": load.run}
    return own.get(args.command, run)(args)


if __name__ == "__main__":
    sys.exit(main())
