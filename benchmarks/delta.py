"""``python -m benchmarks delta``: blit's delta transfer against ``rsync -a --no-W --stats``
through ``rsync --daemon``, both pushing to their daemon on 127.0.0.1, plus microbenchmarks of
the delta algorithm (:mod:`blit_core.delta`) in this process.

Each case is a basis tree, which every timed run starts from in the destination (copied
untimed, with an old mtime), and a changed source tree:

    edits   a 1 GiB random file with 16 scattered 4 KiB overwrites
    shift   the same file with 1 MiB inserted at the middle
    many    100 files of 8 MiB, each with one 4 KiB block overwritten
    mtime   the 1 GiB file unchanged, with a new mtime

The two tools alternate (their order flips every repetition) after an untimed warm-up round.
Reported per case: median seconds, the time ratio (rsync / blit), wire bytes (blit's
wire_bytes_sent + wire_bytes_received against rsync's "Total bytes sent" + "Total bytes
received") and their ratio (blit / rsync). Every destination is compared with its source
after each run.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import random
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.daemons import LOOPBACK, Daemon, running_daemons
from benchmarks.report import default_json_path, fmt, machine_header, machine_info, verdict
from benchmarks.report import write_json as write_json_file
from benchmarks.runner import BenchError, median_or_none, rep_label
from benchmarks.workloads import GiB, KiB, MiB, copy_tree, log, remove_tree

BASIS_MTIME_NS = 1_600_000_000 * 10**9
EDIT = 4 * KiB
TIME_TARGET = 2.0  # rsync seconds / blit seconds, at least
WIRE_TARGET = 1.2  # blit wire bytes / rsync wire bytes, at most
MTIME_WIRE_TARGET = 0.001  # of the file's size, at most
MICRO_TARGETS = {"weak": 350.0, "aligned": 2048.0, "match": 300.0}  # MiB/s, at least
DEFAULT_REPS = 3
RSYNC_ARGV = ["rsync", "-a", "--no-W", "--stats"]
BLIT_DAEMON = [sys.executable, "-m", "blit_daemon"]
BLIT_CLIENT = [sys.executable, "-m", "blit_cli", "copy", "--json"]


@dataclass
class Case:
    name: str
    description: str
    make: Callable[[Path, Path, float], None]  # (basis dir, source dir, scale)
    size: int = 0  # bytes in the source tree
    seconds: dict[str, list[float]] = field(default_factory=lambda: {"blit": [], "rsync": []})
    wire: dict[str, list[int]] = field(default_factory=lambda: {"blit": [], "rsync": []})

    def median(self, tool: str) -> float | None:
        return median_or_none(self.seconds[tool])

    def wire_bytes(self, tool: str) -> int | None:
        return max(self.wire[tool]) if self.wire[tool] else None

    def time_ratio(self) -> float | None:
        blit, rsync = self.median("blit"), self.median("rsync")
        return rsync / blit if blit and rsync else None

    def wire_ratio(self) -> float | None:
        blit, rsync = self.wire_bytes("blit"), self.wire_bytes("rsync")
        return blit / rsync if blit is not None and rsync else None

    def wire_of_size(self) -> float | None:
        blit = self.wire_bytes("blit")
        return blit / self.size if blit is not None and self.size else None

    def checks(self) -> list[tuple[str, float | None, float, bool]]:
        """(target, value, limit, higher is better)."""
        checks = [(f"time ratio >= {TIME_TARGET:g}", self.time_ratio(), TIME_TARGET, True),
                  (f"wire ratio <= {WIRE_TARGET:g}", self.wire_ratio(), WIRE_TARGET, False)]
        if self.name == "mtime":
            checks.append((f"wire < {MTIME_WIRE_TARGET:.1%} of size", self.wire_of_size(),
                           MTIME_WIRE_TARGET, False))
        return checks

    def met(self) -> bool | None:
        results = [None if v is None else (v >= limit if higher else v <= limit)
                   for _, v, limit, higher in self.checks()]
        return False if False in results else None if None in results else True


# -- the trees --------------------------------------------------------------------------


def _write(path: Path, data: bytes | bytearray, mtime_ns: int | None = None) -> None:
    path.write_bytes(data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


def _scaled(nbytes: int, scale: float) -> int:
    return max(MiB, round(nbytes * scale) // EDIT * EDIT)


def _overwrite(data: bytearray, count: int, rng: random.Random, aligned: bool) -> None:
    for _ in range(count):
        offset = rng.randrange(0, len(data) - EDIT)
        if aligned:
            offset -= offset % EDIT
        data[offset:offset + EDIT] = os.urandom(EDIT)


def make_edits(basis: Path, src: Path, scale: float) -> None:
    data = bytearray(os.urandom(_scaled(GiB, scale)))
    _write(basis / "image.bin", data, BASIS_MTIME_NS)
    _overwrite(data, 16, random.Random(1), aligned=False)
    _write(src / "image.bin", data)


def make_shift(basis: Path, src: Path, scale: float) -> None:
    data = os.urandom(_scaled(GiB, scale))
    _write(basis / "image.bin", data, BASIS_MTIME_NS)
    middle = len(data) // 2
    _write(src / "image.bin", data[:middle] + os.urandom(MiB) + data[middle:])


def make_many(basis: Path, src: Path, scale: float) -> None:
    rng = random.Random(2)
    for index in range(max(2, round(100 * scale))):
        data = bytearray(os.urandom(8 * MiB))
        _write(basis / f"part-{index:03d}.bin", data, BASIS_MTIME_NS)
        _overwrite(data, 1, rng, aligned=True)
        _write(src / f"part-{index:03d}.bin", data)


def make_mtime(basis: Path, src: Path, scale: float) -> None:
    data = os.urandom(_scaled(GiB, scale))
    _write(basis / "image.bin", data, BASIS_MTIME_NS)
    _write(src / "image.bin", data)


def cases() -> list[Case]:
    return [
        Case("edits", "1 GiB random file, 16 scattered 4 KiB overwrites", make_edits),
        Case("shift", "1 GiB random file, 1 MiB inserted at the middle", make_shift),
        Case("many", "100 x 8 MiB files, one 4 KiB block changed in each", make_many),
        Case("mtime", "1 GiB file unchanged, new mtime", make_mtime),
    ]


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def same_tree(src: Path, dst: Path) -> bool:
    names = sorted(p.name for p in src.iterdir())
    if names != sorted(p.name for p in dst.iterdir()):
        return False
    _, mismatch, errors = filecmp.cmpfiles(src, dst, names, shallow=False)
    return not mismatch and not errors and all(
        (src / n).stat().st_mtime_ns == (dst / n).stat().st_mtime_ns for n in names)


# -- the runs ---------------------------------------------------------------------------


def rsync_wire_bytes(stdout: str) -> int:
    total = 0
    for what in ("sent", "received"):
        found = re.search(rf"Total bytes {what}: ([\d,]+)", stdout)
        if not found:
            raise BenchError(f"no 'Total bytes {what}' in rsync's --stats output")
        total += int(found.group(1).replace(",", ""))
    return total


def blit_wire_bytes(stdout: str) -> int:
    report = json.loads(stdout)
    return int(report["wire_bytes_sent"]) + int(report["wire_bytes_received"])


class DeltaBenchmark:
    def __init__(self, ws: Path, reps: int, warmup: int, scale: float, only: list[str]) -> None:
        self.ws, self.reps, self.warmup, self.scale = ws, reps, warmup, scale
        self.cases = [c for c in cases() if not only or c.name in only]
        self.daemons: dict[str, Daemon] = {}
        self.micro: dict[str, float] = {}

    def run(self, micro: bool) -> None:
        with running_daemons(self.ws, BLIT_DAEMON, self.daemons):
            for case in self.cases:
                self._run_case(case)
        if micro:
            self.micro = microbenchmarks(self.scale)

    def _argv(self, tool: str, src: Path, dst: Path) -> list[str]:
        rel = dst.relative_to(self.ws)
        port = self.daemons[tool].port
        if tool == "rsync":
            return [*RSYNC_ARGV, f"{src}/", f"rsync://{LOOPBACK}:{port}/bench/{rel}/"]
        return [*BLIT_CLIENT, f"{src}/", f"{LOOPBACK}:{port}:/default/{rel}/"]

    def _run_case(self, case: Case) -> None:
        log(f"-- {case.name}: {case.description} --")
        basis, src = self.ws / "basis" / case.name, self.ws / "src" / case.name
        for made in (basis, src, self.ws / "dst"):
            made.mkdir(parents=True, exist_ok=True)
        case.make(basis, src, self.scale)
        case.size = tree_bytes(src)
        for rep in range(-self.warmup, self.reps):
            order = ("blit", "rsync") if rep % 2 == 0 else ("rsync", "blit")
            for tool in order:
                dst = self.ws / "dst" / f"{case.name}-{tool}"
                copy_tree(basis, dst)
                seconds, wire = self._timed(tool, self._argv(tool, src, dst))
                if not same_tree(src, dst):
                    raise BenchError(f"{case.name}: {tool}'s destination differs from the source")
                remove_tree(dst)
                log(f"  [{case.name}] {tool:5} {rep_label(rep, self.reps):9} {seconds:8.3f} s  "
                    f"wire {wire:,} B")
                if rep >= 0:
                    case.seconds[tool].append(seconds)
                    case.wire[tool].append(wire)
        remove_tree(basis)
        remove_tree(src)

    def _timed(self, tool: str, argv: list[str]) -> tuple[float, int]:
        self.daemons[tool].check()
        started = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900)
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise BenchError(f"{shlex.join(argv)} exited {proc.returncode}:\n{proc.stderr}")
        wire = rsync_wire_bytes(proc.stdout) if tool == "rsync" else blit_wire_bytes(proc.stdout)
        return seconds, wire

    def notes(self) -> list[str]:
        return [
            f"blit: `python -m blit_cli copy --json SRC/ {LOOPBACK}:PORT:/default/DST/` "
            "against blit-daemon; rsync: `rsync -a --no-W --stats SRC/ "
            f"rsync://{LOOPBACK}:PORT/bench/DST/` against `rsync --daemon`",
            "time ratio = rsync median / blit median; wire ratio = blit / rsync (bytes sent + "
            f"received); {self.reps} alternating reps after {self.warmup} warm-up",
        ]

    def markdown(self, info: dict[str, Any]) -> str:
        lines = [machine_header(info), "", *(f"_{n}_" for n in self.notes()), "",
                 "| case | blit s | rsync s | time ratio | blit wire B | rsync wire B "
                 "| wire ratio | target | met? |", "|" + "---|" * 9]
        for c in self.cases:
            target = ", ".join(text for text, *_ in c.checks())
            wire_b, wire_r = c.wire_bytes("blit"), c.wire_bytes("rsync")
            lines.append(
                f"| {c.name} | {fmt(c.median('blit'), 3)} | {fmt(c.median('rsync'), 3)} | "
                f"{fmt(c.time_ratio(), 2)} | {wire_b if wire_b is None else f'{wire_b:,}'} | "
                f"{wire_r if wire_r is None else f'{wire_r:,}'} | {fmt(c.wire_ratio(), 2)} | "
                f"{target} | {verdict(c.met())} |")
        if self.micro:
            lines += ["", "| microbenchmark (one core) | MiB/s | target MiB/s | met? |",
                      "|---|---|---|---|"]
            for name, rate in self.micro.items():
                target = MICRO_TARGETS[name]
                lines.append(f"| {MICRO_NAMES[name]} | {rate:,.0f} | >= {target:,.0f} | "
                             f"{verdict(rate >= target)} |")
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "cases": [{"name": c.name, "description": c.description, "size": c.size,
                       "seconds": c.seconds, "wire_bytes": c.wire, "time_ratio": c.time_ratio(),
                       "wire_ratio": c.wire_ratio(), "met": c.met()} for c in self.cases],
            "micro_mib_per_s": self.micro,
        }


# -- microbenchmarks --------------------------------------------------------------------

MICRO_NAMES = {
    "weak": "weak sum at every offset",
    "aligned": "aligned-block prefilter, unchanged 1 GiB file",
    "match": "full matching, 1 GiB file with 1% scattered changes",
}


def _best_rate(nbytes: int, run: Callable[[], object], reps: int = 3) -> float:
    best = min(_timed_call(run) for _ in range(reps))
    return nbytes / MiB / best


def _timed_call(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _feed_all(signature: Any, data: bytes) -> None:
    from blit_core.delta.match import Matcher

    matcher = Matcher(signature)
    with memoryview(data) as view:
        for start in range(0, len(data), 8 * MiB):
            matcher.feed(view[start:start + 8 * MiB])
    matcher.finish()


def microbenchmarks(scale: float) -> dict[str, float]:
    """MiB/s of the weak sum, the aligned prefilter and the full match, in this process (the
    best of three, as these are single-threaded), set up first as blit's own processes are:
    the weak sum's numpy temporaries are MiB-sized, and with glibc's default malloc policy
    each would land on fresh pages (best of three: 253-421 MiB/s untuned, 414-440 tuned)."""
    from blit_core.runtime import tune_process

    tune_process()
    from blit_core.delta.match import MIN_SPAN
    from blit_core.delta.signature import SignatureBuilder, block_size_for
    from blit_core.delta.weak import Roller

    size = _scaled(GiB, scale)
    log(f"-- microbenchmarks ({size / GiB:.2f} GiB in memory) --")
    basis = os.urandom(size)
    builder = SignatureBuilder(size, 7)
    builder.feed(basis)
    sig = builder.finish()
    roller = Roller(block_size_for(size))
    window = MIN_SPAN + roller.block_size - 1
    sample = basis[: 256 * MiB]

    def weak() -> None:
        with memoryview(sample) as view:
            for start in range(0, len(sample) - window, MIN_SPAN):
                roller.digests(view[start:start + window])

    changing = bytearray(basis)
    _overwrite(changing, size // 100 // EDIT, random.Random(3), aligned=False)
    changed = bytes(changing)
    del changing
    rates = {
        "weak": _best_rate(len(sample), weak),
        "aligned": _best_rate(size, lambda: _feed_all(sig, basis)),
        "match": _best_rate(size, lambda: _feed_all(sig, changed)),
    }
    for name, rate in rates.items():
        log(f"  {MICRO_NAMES[name]}: {rate:,.0f} MiB/s")
    return rates


# -- the command ------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    """The ``delta`` subcommand of ``python -m benchmarks``."""
    parser = sub.add_parser(
        "delta",
        help="blit's delta transfer vs rsync --no-W through their daemons on 127.0.0.1",
        description="Time blit's delta push against rsync -a --no-W through rsync --daemon "
        "on 127.0.0.1 (cases: edits, shift, many, mtime), and microbenchmark the delta "
        "algorithm.",
    )
    parser.add_argument("--reps", type=int, default=DEFAULT_REPS,
                        help=f"timed repetitions per tool and case (default {DEFAULT_REPS})")
    parser.add_argument("--warmup", type=int, default=1, metavar="N",
                        help="untimed warm-up rounds (default 1)")
    parser.add_argument("--cases", default="", metavar="LIST",
                        help="comma-separated subset of edits,shift,many,mtime (default all)")
    parser.add_argument("--no-micro", action="store_true", help="skip the microbenchmarks")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the file sizes and counts by this (default 1)")
    parser.add_argument("--dir", type=Path, default=Path("/dev/shm"),
                        help="create the workspace under DIR (default /dev/shm)")
    parser.add_argument("--json", type=Path, help="JSON output (default "
                        "benchmarks/results/delta-<ts>.json)")
    parser.add_argument("--markdown", type=Path, help="also write the Markdown report here")


def run(args: argparse.Namespace) -> int:
    """Run ``python -m benchmarks delta``; 1 if a tool failed or a result did not verify."""
    only = [name.strip() for name in args.cases.split(",") if name.strip()]
    unknown = set(only) - {c.name for c in cases()}
    if unknown:
        log(f"error: unknown case(s) {', '.join(sorted(unknown))}")
        return 2
    ws = Path(tempfile.mkdtemp(prefix="blit-bench-delta-", dir=args.dir)).resolve()
    info = machine_info(ws)
    bench = DeltaBenchmark(ws, max(1, args.reps), max(0, args.warmup), args.scale, only)
    error = None
    try:
        bench.run(micro=not args.no_micro)
    except (BenchError, subprocess.SubprocessError) as exc:
        error = str(exc)
        log(f"error: {exc}")
    finally:
        remove_tree(ws)
    write_json_file(args.json or default_json_path("delta"),
                    {"kind": "delta", "machine": info, "scale": args.scale, "error": error,
                     **bench.to_json()})
    report = bench.markdown(info)
    if args.scale != 1:
        report += f"\n_scale {args.scale:g}: NOT the published sizes_\n"
    sys.stdout.write(report)
    if args.markdown:
        args.markdown.write_text(report)
    return 1 if error else 0
