"""Reporting for the local benchmark: machine description, Markdown table and JSON file.

The Markdown output is a one-line machine header followed by one table row per workload
(``rss1m`` yields two rows: up-to-date and empty destination). The JSON file holds the
machine info, the configuration, every raw run (seconds, peak RSS, argv, verification) and
the derived medians, ratios and target verdicts.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from collections.abc import Sequence
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


def _fmt(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def markdown_table(results: Sequence[WorkloadResult]) -> str:
    """One row per workload with medians, ratios, target verdict and blit's peak RSS."""
    header = (
        "| workload | blit median s | rsync median s | cp median s | rsync/blit ratio | "
        "blit/cp ratio | target | met? | blit peak RSS MB |"
    )
    lines = [header, "|" + "---|" * 9]
    for r in results:
        ratios = r.ratios()
        met = r.met()
        verdict = "—" if met is None else ("yes" if met else "NO")
        lines.append(
            f"| {r.name} | {_fmt(r.median('blit'), 3)} | {_fmt(r.median('rsync'), 3)} | "
            f"{_fmt(r.median('cp'), 3)} | {_fmt(ratios['rsync/blit'], 2)} | "
            f"{_fmt(ratios['blit/cp'], 2)} | {r.target()} | {verdict} | "
            f"{_fmt(r.peak_rss_mb('blit'), 1)} |"
        )
    return "\n".join(lines)


def markdown_report(
    info: dict[str, Any], results: Sequence[WorkloadResult], notes: Sequence[str] = ()
) -> str:
    """Header line, optional notes, then the table."""
    parts = [machine_header(info), ""]
    parts += [f"_{note}_" for note in notes]
    if notes:
        parts.append("")
    parts.append(markdown_table(results))
    warnings = [f"- {r.name}: {w}" for r in results for w in r.warnings]
    if warnings:
        parts += ["", "Warnings:", *warnings]
    return "\n".join(parts) + "\n"


def default_json_path() -> Path:
    """``benchmarks/results/local-<timestamp>.json`` (the directory is gitignored)."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return RESULTS_DIR / f"local-{stamp}.json"


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON, creating parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
