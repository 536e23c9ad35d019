"""The benchmark loop: prepare state, run tools alternately, time, measure and verify.

:class:`BenchmarkBase` is shared with the remote benchmark (:mod:`benchmarks.remote`);
:class:`LocalBenchmark` holds the local workloads.

For every workload and every repetition, each tool in turn gets its destination prepared
(untimed), then ``sync`` is called and the tool's command is timed with
:func:`benchmarks.rss.run_measured`. One untimed warm-up round of every tool (``warmup``)
precedes the timed ones: on a fresh VM the first writes into tmpfs fault in new memory and
can be several times slower, which would otherwise always penalize the first tool (blit).
A non-zero exit code aborts the local benchmark. After each run the destination is verified
(untimed) against the source with a cheap tree summary (file/dir/symlink counts and total
bytes; a file-mtime mismatch is recorded as a warning), plus a full ``diff -r`` when
``verify`` is set.

Fresh-copy workloads (large, small, mixed) give every tool an existing, EMPTY destination
directory, so ``blit mirror SRC/ DST/``, ``rsync -a --delete SRC/ DST/`` and
``cp -a SRC/. DST/`` do the same work.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import shlex
import shutil
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.rss import RunResult, run_measured
from benchmarks.workloads import (
    MiB,
    TreeSummary,
    copy_tree,
    generate_tree,
    log,
    make_incremental,
    remove_tree,
    summarize,
    tree_specs,
)

WORKLOADS: tuple[str, ...] = ("large", "small", "mixed", "noop", "incremental", "rss1m")
FRESH_COPY: frozenset[str] = frozenset({"large", "small", "mixed"})
DEFAULT_REPS: dict[str, int] = {
    "large": 3,
    "small": 5,
    "mixed": 3,
    "noop": 5,
    "incremental": 5,
    "rss1m": 1,
}
DESCRIPTIONS: dict[str, str] = {
    "large": "one 1 GiB file, fresh copy into an empty directory",
    "small": "100,000 x 4 KiB files in 1,000 dirs, fresh copy into an empty directory",
    "mixed": "8 x 64 MiB + 50,000 x 2 KiB files in 500 dirs, fresh copy into an empty directory",
    "noop": "mirror of `small` onto its up-to-date copy (cp -a)",
    "incremental": "mirror of `small` after 1% changed / 1% deleted / 1% added",
    "rss1m-uptodate": "blit mirror -n over 1,000,000 empty files, destination up to date",
    "rss1m-empty": "blit mirror -n over 1,000,000 empty files, destination empty",
}
# Trees each workload needs (generated lazily, freed once no later workload needs them).
TREES_NEEDED: dict[str, tuple[str, ...]] = {
    "large": ("large",),
    "small": ("small",),
    "mixed": ("mixed",),
    "noop": ("small",),
    "incremental": ("small", "incremental"),
    "rss1m": ("rss1m",),
}
RSS_TARGET_MB = 300.0
SPEED_TARGETS: dict[str, float] = {
    "large": 2.0,
    "small": 2.0,
    "mixed": 2.0,
    "incremental": 2.0,
    "noop": 1.5,
}
CP_TARGET = 1.1  # blit/cp on `large`


def positive_float(text: str) -> float:
    """A command-line value above 0 (argparse type)."""
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def positive_int(text: str) -> int:
    """A command-line count of at least 1 (argparse type)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


class BenchError(RuntimeError):
    """A tool failed or produced a wrong result: the benchmark is aborted."""


@dataclass(frozen=True)
class Tool:
    """One command under comparison; :meth:`argv` builds the command line for a SRC/DST pair."""

    name: str
    base: tuple[str, ...]
    style: str  # "blit" (subcommand CLI), "rsync" (rsync-like flags) or "cp"
    extra: tuple[str, ...] = ()

    def argv(
        self, src: str | os.PathLike[str], dst: str | os.PathLike[str], *, dry_run: bool = False
    ) -> list[str]:
        """``SRC/ DST/`` (contents of SRC into DST); either may be a remote spelling."""
        dry = ["-n"] if dry_run else []
        if self.style == "blit":
            return [*self.base, "mirror", *self.extra, *dry, f"{src}/", f"{dst}/"]
        if self.style == "rsync":
            return [*self.base, *self.extra, *dry, f"{src}/", f"{dst}/"]
        if dry_run:
            raise ValueError("cp has no dry-run mode")
        return [*self.base, *self.extra, f"{src}/.", f"{dst}/"]

    def describe(self, src: str = "SRC", dst: str = "DST") -> str:
        return shlex.join(self.argv(src, dst))


def make_blit_tool(command: str, extra_args: str = "") -> Tool:
    """The blit tool from ``--blit CMD``; an ``rsync ...`` command is run as a stand-in.

    A stand-in gets no ``mirror`` subcommand: ``--blit "rsync -a --delete"`` runs
    ``rsync -a --delete [-n] SRC/ DST/``.
    """
    base = tuple(shlex.split(command))
    if not base:
        raise BenchError("--blit command is empty")
    style = "rsync" if os.path.basename(base[0]) == "rsync" else "blit"
    if shutil.which(base[0]) is None:
        raise BenchError(
            f"blit command {base[0]!r} not found on PATH "
            '(install blit, or pass e.g. --blit "python -m blit_cli")'
        )
    return Tool("blit", base, style, tuple(shlex.split(extra_args)))


RSYNC = Tool("rsync", ("rsync", "-a", "--delete"), "rsync")
CP = Tool("cp", ("cp", "-a"), "cp")


BLIT_PACKAGES = ("blit_core", "blit_cli", "blit_daemon", "blit_utils")


def compile_blit_bytecode() -> None:
    """Write blit's .pyc files, as installing it from a wheel does. A checkout installed with
    ``pip install -e`` has none until a run writes them, and with PYTHONDONTWRITEBYTECODE set
    (as on these machines) no run does: every blit process would then compile its ~60
    modules again, ~70 ms of start-up that no installed copy pays."""
    for package in BLIT_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                compileall.compile_dir(location, quiet=2)  # a read-only install: as is


def tool_version(tool: Tool) -> str:
    """First line of ``<tool> --version`` (also warms up imports for blit)."""
    argv = [*tool.base, "--version"] if tool.style == "blit" else [tool.base[0], "--version"]
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    out = (proc.stdout or proc.stderr).strip().splitlines()
    return out[0] if out else f"unknown (exit {proc.returncode})"


def mb(nbytes: float) -> float:
    """Bytes to MB (MiB, 2**20 bytes, as RSS is reported by the kernel in KiB)."""
    return nbytes / MiB


def median_or_none(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass
class Config:
    """Settings of one benchmark run."""

    workspace: Path
    workloads: list[str]
    blit: Tool
    reps: int | None = None  # None: per-workload DEFAULT_REPS
    scale: float = 1.0
    verify: bool = False
    drop_caches: bool = False
    rss_interval: float = 0.015
    warmup: int = 1  # untimed rounds of every tool before the timed ones
    timeout: float | None = None  # seconds before a run is killed (None: never)


@dataclass
class WorkloadResult:
    """Raw runs and derived figures for one table row."""

    name: str
    description: str
    reps: int
    tools: list[str]
    tree: dict[str, Any] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # failed runs (remote only)

    def complete(self) -> bool:
        """True when every tool has all its repetitions recorded."""
        timed = [r for r in self.runs if not r["warmup"]]
        return len(timed) == self.reps * len(self.tools)

    def seconds(self, tool: str) -> list[float]:
        return [r["seconds"] for r in self.runs if r["tool"] == tool and not r["warmup"]]

    def median(self, tool: str) -> float | None:
        return median_or_none(self.seconds(tool))

    def peak_rss_mb(self, tool: str) -> float | None:
        peaks = [r["peak_rss_bytes"] for r in self.runs if r["tool"] == tool and not r["warmup"]]
        return mb(max(peaks)) if peaks else None

    def ratios(self) -> dict[str, float | None]:
        blit, rsync, cp = self.median("blit"), self.median("rsync"), self.median("cp")
        return {
            "rsync/blit": rsync / blit if blit and rsync is not None else None,
            "blit/cp": blit / cp if cp and blit is not None else None,
        }

    def target(self) -> str:
        base = self.name.split("-")[0]
        if base == "rss1m":
            return f"peak RSS <= {RSS_TARGET_MB:g} MB"
        parts = [f"rsync/blit >= {SPEED_TARGETS[base]:g}"]
        if base == "large":
            parts.append(f"blit/cp <= {CP_TARGET:g}")
        return ", ".join(parts)

    def met(self) -> bool | None:
        base = self.name.split("-")[0]
        if base == "rss1m":
            peak = self.peak_rss_mb("blit")
            return None if peak is None else peak <= RSS_TARGET_MB
        ratios = self.ratios()
        speed = ratios["rsync/blit"]
        if speed is None:
            return None
        ok = speed >= SPEED_TARGETS[base]
        if base == "large":
            cp = ratios["blit/cp"]
            ok = ok and cp is not None and cp <= CP_TARGET
        return ok

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "reps": self.reps,
            "tools": self.tools,
            "tree": self.tree,
            "runs": self.runs,
            "medians_s": {t: self.median(t) for t in self.tools},
            "peak_rss_mb": {t: self.peak_rss_mb(t) for t in self.tools},
            "ratios": self.ratios(),
            "target": self.target(),
            "met": self.met(),
            "warnings": self.warnings,
            "errors": self.errors,
        }


class TreeStore:
    """Source trees under ``<workspace>/src``, generated on first use and freed on release."""

    def __init__(self, root: Path, scale: float) -> None:
        self.root = root
        self.specs = tree_specs(scale)
        self.paths: dict[str, Path] = {}
        self.summaries: dict[str, TreeSummary] = {}
        self.info: dict[str, dict[str, Any]] = {}

    def get(self, name: str) -> Path:
        if name in self.paths:
            return self.paths[name]
        path = self.root / name
        if name == "incremental":
            base = self.get("small")
            log(f"  generating source tree {name!r} (copy of 'small' + mutations) ...")
            mutation = make_incremental(base, path)
            self.info[name] = {
                "changed": mutation.changed,
                "deleted": mutation.deleted,
                "added": mutation.added,
            }
        else:
            spec = self.specs[name]
            log(
                f"  generating source tree {name!r}: {spec.total_files:,} files, "
                f"{mb(spec.total_bytes):,.1f} MB ..."
            )
            generate_tree(path, spec)
        self.paths[name] = path
        summary = summarize(path)
        self.summaries[name] = summary
        self.info.setdefault(name, {}).update(
            files=summary.files, dirs=summary.dirs, bytes=summary.bytes
        )
        return path

    def release(self, name: str) -> None:
        path = self.paths.pop(name, None)
        if path is not None:
            remove_tree(path)


class BenchmarkBase:
    """What the local and remote benchmarks share: source trees, the measured and verified
    run of one command, and the workload loop (``_run_<workload>`` methods, trees freed as
    soon as no later workload needs them)."""

    trees_needed: dict[str, tuple[str, ...]] = TREES_NEEDED

    def __init__(self, config: Config) -> None:
        self.cfg = config
        self.ws = config.workspace
        self.trees = TreeStore(self.ws / "src", config.scale)
        self.results: list[WorkloadResult] = []
        self.logdir = self.ws / "logs"
        self.logdir.mkdir(parents=True, exist_ok=True)

    # -- helpers -----------------------------------------------------------------------

    def reps_for(self, workload: str) -> int:
        return self.cfg.reps if self.cfg.reps is not None else DEFAULT_REPS[workload]

    def _rep_range(self, reps: int) -> range:
        """Repetition numbers: negative ones are untimed warm-up rounds."""
        return range(-self.cfg.warmup, reps)

    def _quiesce(self) -> None:
        os.sync()
        if self.cfg.drop_caches:
            try:
                Path("/proc/sys/vm/drop_caches").write_text("3\n")
            except OSError as exc:
                log(f"  warning: cannot drop caches: {exc}")

    def _measure(self, workload: str, tool: Tool, rep: int, argv: list[str]) -> RunResult:
        self._quiesce()
        out_path = self.logdir / f"{workload}-{tool.name}-{rep}.out"
        err_path = self.logdir / f"{workload}-{tool.name}-{rep}.err"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            try:
                res = run_measured(
                    argv,
                    stdout=out,
                    stderr=err,
                    interval=self.cfg.rss_interval,
                    timeout=self.cfg.timeout,
                )
            except OSError as exc:
                raise BenchError(f"[{workload}] cannot run {shlex.join(argv)}: {exc}") from exc
        if res.returncode != 0:
            tail = tail_text(err_path) or tail_text(out_path)
            why = f", killed after the {self.cfg.timeout:g} s timeout" if res.timed_out else ""
            raise BenchError(
                f"[{workload}] {tool.name} exited with {res.returncode} ({rep_label(rep)}{why}):\n"
                f"  $ {shlex.join(argv)}\n{tail}"
            )
        out_path.unlink()
        err_path.unlink()
        return res

    def _record(
        self, result: WorkloadResult, tool: Tool, rep: int, res: RunResult, **extra: Any
    ) -> None:
        result.runs.append(
            {
                "tool": tool.name,
                "rep": rep,
                "warmup": rep < 0,
                "seconds": res.seconds,
                "peak_rss_bytes": res.peak_rss_bytes,
                "ru_maxrss_bytes": res.ru_maxrss_bytes,
                "peak_procs": res.peak_procs,
                "rss_samples": res.samples,
                "argv": res.argv,
                **extra,
            }
        )
        log(
            f"  [{result.name}] {rep_label(rep, result.reps)} {tool.name:5s} "
            f"{res.seconds:8.3f} s   peak RSS {mb(res.peak_rss_bytes):7.1f} MB "
            f"({res.peak_procs} procs)"
        )

    def _verify(
        self, workload: str, result: WorkloadResult, tool: Tool, src_name: str, dst: Path
    ) -> str:
        expected = self.trees.summaries[src_name]
        got = summarize(dst)
        if not expected.same_content_shape(got):
            raise BenchError(
                f"[{workload}] {tool.name}: destination does not match source\n"
                f"  expected {expected}\n  got      {got}"
            )
        status = "ok"
        if expected.mtime_sum != got.mtime_sum:
            msg = f"{tool.name}: file mtimes differ from source (not preserved?)"
            if msg not in result.warnings:
                result.warnings.append(msg)
                log(f"  [{workload}] warning: {msg}")
            status = "ok (mtimes differ)"
        if self.cfg.verify:
            src = self.trees.paths[src_name]
            proc = subprocess.run(
                ["diff", "-rq", "--no-dereference", str(src), str(dst)],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise BenchError(
                    f"[{workload}] {tool.name}: diff -r found differences:\n"
                    + "\n".join(proc.stdout.splitlines()[:20])
                    + proc.stderr
                )
            status += ", diff -r ok"
        return status

    @property
    def tools(self) -> list[Tool]:
        return [self.cfg.blit, RSYNC, CP]

    def notes(self, versions: dict[str, str]) -> list[str]:
        """Lines for the report, above the table."""
        notes = [f"blit command: `{self.cfg.blit.describe()}` ({versions['blit']})"]
        if self.cfg.blit.style == "rsync":
            notes.append("blit is an rsync STAND-IN: ratios are not meaningful")
        return notes

    def json_extra(self) -> dict[str, Any]:
        return {}

    def run(self) -> list[WorkloadResult]:
        todo = list(self.cfg.workloads)
        for i, workload in enumerate(todo):
            log(f"== workload {workload} ==")
            getattr(self, f"_run_{workload}")(workload)
            still_needed = {t for w in todo[i + 1 :] for t in self.trees_needed[w]}
            for tree in self.trees_needed[workload]:
                if tree not in still_needed:
                    self.trees.release(tree)
        return self.results


class LocalBenchmark(BenchmarkBase):
    """Runs the configured workloads and collects :class:`WorkloadResult` rows."""

    # -- workloads ---------------------------------------------------------------------

    def _new_result(self, name: str, tools: list[Tool], reps: int) -> WorkloadResult:
        result = WorkloadResult(name, DESCRIPTIONS[name], reps, [t.name for t in tools])
        self.results.append(result)
        return result

    def _fresh_copy(self, workload: str) -> None:
        src = self.trees.get(workload)
        tools = [self.cfg.blit, RSYNC, CP]
        result = self._new_result(workload, tools, self.reps_for(workload))
        result.tree = dict(self.trees.info[workload])
        dst = self.ws / "dst"
        for rep in self._rep_range(result.reps):
            for tool in tools:
                remove_tree(dst)
                dst.mkdir()
                res = self._measure(workload, tool, rep, tool.argv(src, dst))
                status = self._verify(workload, result, tool, workload, dst)
                self._record(result, tool, rep, res, verify=status)
        remove_tree(dst)

    _run_large = _fresh_copy
    _run_small = _fresh_copy
    _run_mixed = _fresh_copy

    def _run_noop(self, workload: str) -> None:
        src = self.trees.get("small")
        tools = [self.cfg.blit, RSYNC]
        result = self._new_result(workload, tools, self.reps_for(workload))
        result.tree = dict(self.trees.info["small"])
        dsts = {t.name: self.ws / f"noop-{t.name}" for t in tools}
        log("  preparing up-to-date copies (cp -a) ...")
        for dst in dsts.values():
            remove_tree(dst)
            copy_tree(src, dst)
        for rep in self._rep_range(result.reps):
            for tool in tools:
                res = self._measure(workload, tool, rep, tool.argv(src, dsts[tool.name]))
                status = self._verify(workload, result, tool, "small", dsts[tool.name])
                self._record(result, tool, rep, res, verify=status)
        for dst in dsts.values():
            remove_tree(dst)

    def _run_incremental(self, workload: str) -> None:
        pristine = self.trees.get("small")
        src = self.trees.get("incremental")
        tools = [self.cfg.blit, RSYNC]
        result = self._new_result(workload, tools, self.reps_for(workload))
        result.tree = dict(self.trees.info["incremental"])
        dst = self.ws / "dst"
        for rep in self._rep_range(result.reps):
            for tool in tools:
                remove_tree(dst)
                copy_tree(pristine, dst)  # same starting state for every run
                res = self._measure(workload, tool, rep, tool.argv(src, dst))
                status = self._verify(workload, result, tool, "incremental", dst)
                self._record(result, tool, rep, res, verify=status)
        remove_tree(dst)

    def _run_rss1m(self, workload: str) -> None:
        src = self.trees.get("rss1m")
        tool = self.cfg.blit
        reps = self.reps_for(workload)
        uptodate = self.ws / "rss1m-dst"
        empty = self.ws / "rss1m-empty"
        log(f"  preparing up-to-date copy of {self.trees.info['rss1m']['files']:,} files ...")
        remove_tree(uptodate)
        copy_tree(src, uptodate)
        cases: list[tuple[WorkloadResult, Path]] = []
        for name, dst in (("rss1m-uptodate", uptodate), ("rss1m-empty", empty)):
            result = self._new_result(name, [tool], reps)
            result.tree = dict(self.trees.info["rss1m"])
            cases.append((result, dst))
        for rep in self._rep_range(reps):
            for result, dst in cases:
                if dst == empty:
                    remove_tree(empty)
                    empty.mkdir()
                res = self._measure(result.name, tool, rep, tool.argv(src, dst, dry_run=True))
                status = "dry run"
                if dst == empty:
                    if any(empty.iterdir()):
                        raise BenchError(f"[{result.name}] dry run (-n) wrote into {empty}")
                    status = "dry run, destination still empty"
                self._record(result, tool, rep, res, verify=status)
        remove_tree(uptodate)
        remove_tree(empty)


def tail_text(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file, each indented with ``  | ``."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join("  | " + line for line in text.splitlines()[-lines:])


def rep_label(rep: int, reps: int | None = None) -> str:
    """``warm-up`` or ``rep N/REPS``."""
    if rep < 0:
        return "warm-up"
    return f"rep {rep + 1}/{reps}" if reps else f"rep {rep + 1}"
