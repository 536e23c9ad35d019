"""``python -m benchmarks remote``: the blit client and blit-daemon against ``rsync -a
--delete`` and ``rsync --daemon``, over 127.0.0.1 (daemons: :mod:`benchmarks.daemons`).

Both daemons export the workspace: a push writes ``dst/<row>-<tool>`` through its daemon, a
pull reads ``src/<tree>`` through it. Each workload runs as a push row and a pull row; the
tools alternate after the warm-up round, each destination prepared (untimed) as in the local
benchmark, and the serving daemon's process tree is sampled for RSS during every run. A tool
that fails is dropped from the rest of its row, and the error is shown under the table.

Also measured in the same run: the raw TCP loopback ceiling (:mod:`benchmarks.tcp`), ``blit
mirror --force-grpc`` on the large push, with ``--tls`` the large push and pull through a
TLS daemon (alternating with the plain runs; the row gives TLS time / plain time), and the
opt-in ``rss1m``: one push of 1,000,000 one-byte files, timed to the first complete file in
the destination.
"""

from __future__ import annotations

import os
import shlex
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.daemons import LOOPBACK, Daemon, running_daemons
from benchmarks.report import Column, fmt, verdict
from benchmarks.rss import RunResult, sampling
from benchmarks.runner import (
    DESCRIPTIONS,
    RSYNC,
    SPEED_TARGETS,
    TREES_NEEDED,
    WORKLOADS,
    BenchError,
    BenchmarkBase,
    Config,
    Tool,
    WorkloadResult,
    mb,
    median_or_none,
    rep_label,
)
from benchmarks.tcp import CHUNK, loopback_seconds
from benchmarks.workloads import GiB, MiB, copy_tree, log, remove_tree

DEFAULT_WORKLOADS: tuple[str, ...] = tuple(w for w in WORKLOADS if w != "rss1m")
PYTHON_M_BLIT_CLI = shlex.join([sys.executable, "-m", "blit_cli"])
PYTHON_M_BLIT_DAEMON = shlex.join([sys.executable, "-m", "blit_daemon"])
TCP_BYTES = 2 * GiB
TCP_REPS = 3
REMOTE_SPEED_TARGETS = {**SPEED_TARGETS, "large": 3.0}  # rsync/blit
TCP_FRACTION_TARGET = 0.5  # large rows: blit's throughput / the raw TCP ceiling
GRPC_TARGET_MBPS = 500.0
TLS_COST_TARGET = 2.0  # tls rows: time with TLS / time without
FIRST_FILE_TARGET_S = 1.0
RSS_TARGET_MB = 400.0  # rss1m: the client's process tree, and the daemon's
REMOTE_TREES_NEEDED = {**TREES_NEEDED, "rss1m": ("tiny1m",)}
REMOTE_DESCRIPTIONS = {
    **DESCRIPTIONS,
    "grpc": "`large`, pushed with blit mirror --force-grpc",
    "tls": "`large` through a TLS daemon, blit mirror --tls-ca",
    "rss1m": "blit mirror of 1,000,000 x 1-byte files in 1,000 dirs into an empty directory",
}
Check = tuple[str, float | None, float, bool]  # target text, value, limit, higher is better


@dataclass
class RemoteResult(WorkloadResult):
    """A row: a workload in one direction, ``large-push-grpc``, ``large-pull-tls`` or
    ``rss1m-push``; its first tool is the blit being measured."""

    kind: str = ""  # the workload, "grpc" or "tls"
    tcp_bytes_per_s: float | None = None  # the raw TCP ceiling
    first_file_s: float | None = None  # rss1m: from launching the client
    plain: RemoteResult | None = None  # a tls row: the same runs without TLS

    def mb_per_s(self) -> float | None:
        """blit's throughput on a fresh copy."""
        median = self.median(self.tools[0])
        if self.kind in ("large", "small", "mixed", "grpc", "tls") and median:
            return mb(self.tree["bytes"]) / median
        return None

    def tcp_fraction(self) -> float | None:
        rate = self.mb_per_s()
        if self.kind in ("large", "grpc", "tls") and rate and self.tcp_bytes_per_s:
            return rate * MiB / self.tcp_bytes_per_s
        return None

    def tls_cost(self) -> float | None:
        """A tls row: the median over the reps of the time with TLS / the time without (the
        run just before it, so that both saw the same load)."""
        if self.plain is None:
            return None
        pairs = zip(self.seconds(self.tools[0]), self.plain.seconds("blit"), strict=False)
        return median_or_none([tls / plain for tls, plain in pairs if plain])

    def daemon_peak_rss_mb(self) -> float | None:
        peaks = [r["daemon_peak_rss_bytes"] for r in self.runs
                 if r["tool"] == self.tools[0] and not r["warmup"]]
        return mb(max(peaks)) if peaks else None

    def checks(self) -> list[Check]:
        if self.kind == "grpc":
            return [(f"blit >= {GRPC_TARGET_MBPS:g} MB/s", self.mb_per_s(), GRPC_TARGET_MBPS, True)]
        if self.kind == "tls":
            return [(f"TLS/plain time <= {TLS_COST_TARGET:g}", self.tls_cost(), TLS_COST_TARGET,
                     False)]
        if self.kind == "rss1m":
            first, rss = FIRST_FILE_TARGET_S, RSS_TARGET_MB
            return [
                (f"first file <= {first:g} s", self.first_file_s, first, False),
                (f"client RSS <= {rss:g} MB", self.peak_rss_mb("blit"), rss, False),
                (f"daemon RSS <= {rss:g} MB", self.daemon_peak_rss_mb(), rss, False),
            ]
        speed = REMOTE_SPEED_TARGETS[self.kind]
        checks = [(f"rsync/blit >= {speed:g}", self.ratios()["rsync/blit"], speed, True)]
        if self.kind == "large":
            text = f"blit >= {TCP_FRACTION_TARGET:.0%} of TCP"
            checks.append((text, self.tcp_fraction(), TCP_FRACTION_TARGET, True))
        return checks

    def target(self) -> str:
        return ", ".join(text for text, *_ in self.checks())

    def met(self) -> bool | None:
        if self.errors:
            return False
        ok = [
            None if value is None else (value >= limit if higher else value <= limit)
            for _, value, limit, higher in self.checks()
        ]
        return False if False in ok else None if None in ok else True

    def to_json(self) -> dict[str, Any]:
        return {
            **super().to_json(),
            "blit_mb_per_s": self.mb_per_s(),
            "tcp_fraction": self.tcp_fraction(),
            "blit_daemon_peak_rss_mb": self.daemon_peak_rss_mb(),
            "first_file_s": self.first_file_s,
            "tls_over_plain": self.tls_cost(),
        }


REMOTE_COLUMNS: tuple[Column, ...] = (
    ("workload", lambda r: r.name),
    ("blit median s", lambda r: fmt(r.median(r.tools[0]), 3)),
    ("rsync median s", lambda r: fmt(r.median("rsync"), 3)),
    ("rsync/blit ratio", lambda r: fmt(r.ratios()["rsync/blit"], 2)),
    ("blit MB/s", lambda r: fmt(r.mb_per_s(), 0)),
    ("blit % of TCP", lambda r: fmt(r.tcp_fraction() and 100 * r.tcp_fraction(), 0)),
    ("first file s", lambda r: fmt(r.first_file_s, 3)),
    ("TLS/plain time", lambda r: fmt(r.tls_cost(), 2)),
    ("target", lambda r: r.target()),
    ("met?", lambda r: "FAILED" if r.errors else verdict(r.met())),
    ("blit client peak RSS MB", lambda r: fmt(r.peak_rss_mb(r.tools[0]), 1)),
    ("blit daemon peak RSS MB", lambda r: fmt(r.daemon_peak_rss_mb(), 1)),
)


class FirstFile(threading.Thread):
    """Rescans ``root`` every 5 ms until a file shows up whose name does not start with a
    dot (blit writes dot-named temp files and renames them when complete); ``at`` is the
    ``time.perf_counter()`` of that scan."""

    def __init__(self, root: Path) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.at: float | None = None
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.005):
            for _, _, files in os.walk(self.root):
                if any(not name.startswith(".") for name in files):
                    self.at = time.perf_counter()
                    return


class RemoteBenchmark(BenchmarkBase):
    """Runs the remote workloads against the two daemons, which it starts and stops."""

    trees_needed = REMOTE_TREES_NEEDED

    def __init__(self, config: Config, daemon_command: Sequence[str], *,
                 tls: bool = False) -> None:
        """`tls`: also run the large rows through a TLS daemon."""
        super().__init__(config)
        self.daemon_command = daemon_command
        self.grpc = replace(config.blit, extra=("--force-grpc", *config.blit.extra))
        self.tls = tls
        self.tls_tool: Tool | None = None  # with tls: blit --tls-ca, once the CA exists
        self.daemons: dict[str, Daemon] = {}  # by the name of the tool they serve
        self.tcp_bytes = max(CHUNK, round(TCP_BYTES * config.scale))
        self.tcp_seconds: list[float] = []  # timed runs

    @property
    def tools(self) -> list[Tool]:
        return [self.cfg.blit, RSYNC]

    def run(self) -> list[WorkloadResult]:
        with running_daemons(self.ws, self.daemon_command, self.daemons, tls=self.tls) as ca:
            if ca is not None:
                extra = ("--tls-ca", str(ca), *self.cfg.blit.extra)
                self.tls_tool = replace(self.cfg.blit, name="blit-tls", extra=extra)
            self._measure_tcp()
            return super().run()

    def _measure_tcp(self) -> None:
        reps = self.cfg.reps or TCP_REPS
        log(f"== raw TCP loopback ceiling ({self.tcp_bytes / GiB:.2f} GiB per run) ==")
        for rep in self._rep_range(reps):
            seconds = loopback_seconds(self.tcp_bytes)
            log(f"  [tcp] {rep_label(rep, reps)} {seconds:8.3f} s")
            if rep >= 0:
                self.tcp_seconds.append(seconds)

    def tcp_bytes_per_s(self) -> float | None:
        median = median_or_none(self.tcp_seconds)
        return self.tcp_bytes / median if median else None

    # -- runs --------------------------------------------------------------------------

    def _new_row(
        self, name: str, kind: str, tree: str, tools: list[str], reps: int
    ) -> RemoteResult:
        direction = name.split("-")[1]
        row = RemoteResult(
            name, f"{REMOTE_DESCRIPTIONS[kind]}, {direction}", reps, tools, kind=kind
        )
        row.tree = dict(self.trees.info[tree])
        row.tcp_bytes_per_s = self.tcp_bytes_per_s()
        self.results.append(row)
        return row

    def _endpoint(self, tool: Tool, path: Path) -> str:
        """``path`` (in the workspace) as the daemon serving ``tool`` names it."""
        rel = path.relative_to(self.ws)
        port = self.daemons[tool.name].port
        if tool is RSYNC:
            return f"rsync://{LOOPBACK}:{port}/bench/{rel}"
        return f"{LOOPBACK}:{port}:/default/{rel}"

    def _attempt(
        self, row: RemoteResult, tool: Tool, rep: int, argv: list[str], tree: str, dst: Path
    ) -> RunResult | None:
        """Time ``argv``, sampling the serving daemon, then verify ``dst`` against ``tree``
        and record the run. A failure goes into ``row.errors`` and gives None."""
        try:
            with sampling(self.daemons[tool.name].proc.pid, self.cfg.rss_interval) as daemon_rss:
                res = self._measure(row.name, tool, rep, argv)
            status = self._verify(row.name, row, tool, tree, dst)
        except BenchError as exc:
            row.errors.append(str(exc))
            log(f"  error: {exc}\n  [{row.name}] {tool.name} dropped from this row")
            return None
        self._record(
            row, tool, rep, res, verify=status, daemon_peak_rss_bytes=daemon_rss.peak_rss_bytes
        )
        return res

    # -- workloads ---------------------------------------------------------------------

    def _run_both(self, workload: str) -> None:
        for direction in ("push", "pull"):
            self._run_row(workload, direction)

    _run_large = _run_small = _run_mixed = _run_noop = _run_incremental = _run_both

    def _run_row(self, workload: str, direction: str) -> None:
        name = f"{workload}-{direction}"
        log(f"-- {name} --")
        for daemon in self.daemons.values():
            daemon.check()
        tree = "small" if workload == "noop" else workload
        src = self.trees.get(tree)
        row = self._new_row(name, workload, tree, ["blit", "rsync"], self.reps_for(workload))
        runs = [(self.cfg.blit, row), (RSYNC, row)]
        if name == "large-push":
            grpc_row = self._new_row(f"{name}-grpc", "grpc", tree, ["blit"], row.reps)
            runs.insert(1, (self.grpc, grpc_row))
        if workload == "large" and self.tls_tool is not None:  # right after the plain blit
            tls_row = self._new_row(f"{name}-tls", "tls", tree, [self.tls_tool.name], row.reps)
            tls_row.plain = row
            runs.insert(1, (self.tls_tool, tls_row))
        dsts = self.ws / "dst"
        dsts.mkdir()
        if workload == "noop":
            log("  preparing up-to-date copies (cp -a) ...")
            for tool, r in runs:
                copy_tree(src, dsts / f"{r.name}-{tool.name}")
        for rep in self._rep_range(row.reps):
            for tool, r in list(runs):
                dst = dsts / f"{r.name}-{tool.name}"
                if workload == "incremental":
                    copy_tree(self.trees.get("small"), dst)
                elif workload != "noop":
                    dst.mkdir()
                if direction == "push":
                    argv = tool.argv(src, self._endpoint(tool, dst))
                else:
                    argv = tool.argv(self._endpoint(tool, src), dst)
                if self._attempt(r, tool, rep, argv, tree, dst) is None:
                    runs.remove((tool, r))
                if workload != "noop":
                    remove_tree(dst)
        remove_tree(dsts)

    def _run_rss1m(self, workload: str) -> None:
        log("-- rss1m-push (once, blit only) --")
        for daemon in self.daemons.values():
            daemon.check()
        src = self.trees.get("tiny1m")
        row = self._new_row("rss1m-push", "rss1m", "tiny1m", ["blit"], 1)
        dst = self.ws / "dst" / "rss1m-push-blit"
        dst.mkdir(parents=True)
        argv = self.cfg.blit.argv(src, self._endpoint(self.cfg.blit, dst))
        poller = FirstFile(dst)
        poller.start()
        try:
            res = self._attempt(row, self.cfg.blit, 0, argv, "tiny1m", dst)
        finally:
            poller.stopped.set()
            poller.join()
        if res is not None and poller.at is not None:
            row.first_file_s = poller.at - res.started
            log(f"  [rss1m-push] first file after {row.first_file_s:.3f} s")
        remove_tree(self.ws / "dst")

    # -- report ------------------------------------------------------------------------

    def notes(self, versions: dict[str, str]) -> list[str]:
        blitd, rsyncd = self.daemons.get("blit"), self.daemons.get("rsync")
        blit_dst = f"{LOOPBACK}:{blitd.port if blitd else 'PORT'}:/default/DST"
        rsync_dst = f"rsync://{LOOPBACK}:{rsyncd.port if rsyncd else 'PORT'}/bench/DST"
        daemon = shlex.join(blitd.argv if blitd else self.daemon_command)
        tcp = self.tcp_bytes_per_s()
        notes = [
            f"blit: `{self.cfg.blit.describe(dst=blit_dst)}` ({versions['blit']}) against "
            f"`{daemon.replace(str(self.ws), 'WS')}`",
            f"rsync: `{RSYNC.describe(dst=rsync_dst)}` against `rsync --daemon` "
            f"({versions['rsync']})",
            f"raw TCP loopback ceiling: {fmt(tcp and tcp / GiB, 2)} GiB/s (median of "
            f"{len(self.tcp_seconds)} x {self.tcp_bytes / GiB:.2f} GiB, one connection)",
            "MB = 2^20 bytes; ratio = rsync median / blit median; RSS summed over a process tree",
        ]
        tlsd = self.daemons.get("blit-tls")
        if tlsd and self.tls_tool:
            command = self.tls_tool.describe(dst=f"{LOOPBACK}:{tlsd.port}:/default/DST")
            note = (f"TLS rows: `{command}` against `{shlex.join(tlsd.argv)}` (a throwaway "
                    "certificate); TLS/plain time: the median over the reps of the TLS run's "
                    "time / the plain run's just before it")
            notes.append(note.replace(str(self.ws), "WS"))
        return notes

    def json_extra(self) -> dict[str, Any]:
        conf = self.ws / "conf" / "rsyncd.conf"
        return {
            "daemons": {d.name: {"argv": d.argv, "port": d.port} for d in self.daemons.values()},
            "rsyncd_conf": conf.read_text() if conf.exists() else None,
            "tcp_ceiling": {
                "bytes": self.tcp_bytes,
                "chunk": CHUNK,
                "seconds": self.tcp_seconds,
                "bytes_per_s": self.tcp_bytes_per_s(),
            },
        }
