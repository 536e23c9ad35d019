"""Reporting for the benchmarks: machine description, Markdown table and JSON file.

The Markdown output is a one-line machine header, notes, and a table with one row per result
in the caller's columns (:data:`LOCAL_COLUMNS`, or the remote ones). The JSON file holds the
machine info, the configuration, every raw run (seconds, peak RSS, argv, verification) and
the derived medians, ratios and target verdicts.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.runner import WorkloadResult

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / (1024 * 1024)
    except OSError:
        pass
    return None


def fs_type(path: Path) -> str:
    """Filesystem type of ``path`` as reported by ``stat -f -c %T``."""
    proc = subprocess.run(
        ["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() or "unknown"


def machine_info(workspace: Path) -> dict[str, Any]:
    """Facts about the machine and workspace that the numbers depend on."""
    uname = os.uname()
    return {
        "uname": f"{uname.sysname} {uname.release}",
        "hostname": uname.nodename,
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_total_gib": _mem_total_gib(),
        "workspace": str(workspace),
        "workspace_fs": fs_type(workspace),
        "python": platform.python_version(),
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def machine_header(info: dict[str, Any]) -> str:
    """The one-line Markdown header describing the machine."""
    mem = f", {info['mem_total_gib']:.0f} GiB RAM" if info.get("mem_total_gib") else ""
    return (
        f"**Machine:** {info['uname']} | {info['cpu_count']} CPUs ({info['cpu_model']}){mem} | "
        f"workspace fs: {info['workspace_fs']} | Python {info['python']} | {info['date']}"
    )


def fmt(value: float | None, digits: int) -> str:
    """``value`` with ``digits`` decimals, or an em dash when there is none."""
    return "—" if value is None else f"{value:.{digits}f}"


def verdict(met: bool | None) -> str:
    return "—" if met is None else ("yes" if met else "NO")


# A table column: its header and how a row's cell is computed.
Column = tuple[str, Callable[[Any], str]]

LOCAL_COLUMNS: tuple[Column, ...] = (
    ("workload", lambda r: r.name),
    ("blit median s", lambda r: fmt(r.median("blit"), 3)),
    ("rsync median s", lambda r: fmt(r.median("rsync"), 3)),
    ("cp median s", lambda r: fmt(r.median("cp"), 3)),
    ("rsync/blit ratio", lambda r: fmt(r.ratios()["rsync/blit"], 2)),
    ("blit/cp ratio", lambda r: fmt(r.ratios()["blit/cp"], 2)),
    ("target", lambda r: r.target()),
    ("met?", lambda r: verdict(r.met())),
    ("blit peak RSS MB", lambda r: fmt(r.peak_rss_mb("blit"), 1)),
)


def markdown_report(
    info: dict[str, Any],
    results: Sequence[WorkloadResult],
    notes: Sequence[str],
    columns: Sequence[Column],
) -> str:
    """Header line, notes, the table (one row per result), then warnings and failures."""
    parts = [machine_header(info), ""]
    parts += [f"_{note}_" for note in notes]
    if notes:
        parts.append("")
    parts.append("| " + " | ".join(header for header, _ in columns) + " |")
    parts.append("|" + "---|" * len(columns))
    parts += ["| " + " | ".join(cell(r) for _, cell in columns) + " |" for r in results]
    warnings = [f"- {r.name}: {w}" for r in results for w in r.warnings]
    if warnings:
        parts += ["", "Warnings:", *warnings]
    failures = [f"```\n{e.rstrip()}\n```" for r in results for e in r.errors]
    if failures:
        parts += ["", "Failures:", "", *failures]
    return "\n".join(parts) + "\n"


def default_json_path(kind: str) -> Path:
    """``benchmarks/results/<kind>-<timestamp>.json`` (the directory is gitignored)."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return RESULTS_DIR / f"{kind}-{stamp}.json"


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON, creating parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
