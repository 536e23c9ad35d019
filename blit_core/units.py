"""Size parsing and formatting: `10K`, `1.5M`, `2G` (powers of 1024, as rsync) and back."""

from __future__ import annotations

import math
import re

from blit_core.errors import UsageError

_SUFFIXES = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTPB]?)(?:I?B)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Parse a size such as `4096`, `10K`, `1.5M` or `2GiB` into bytes."""
    match = _SIZE_RE.match(text)
    if not match:
        raise UsageError(f"invalid size {text!r}: use a number with a K, M, G or T suffix")
    number, suffix = match.groups()
    size = float(number) * _SUFFIXES[suffix.upper()]
    if not math.isfinite(size):
        raise UsageError(f"invalid size {text!r}: too large")
    return int(size)


def format_size(num_bytes: float) -> str:
    """Format bytes for humans: `512 B`, `4.0 KiB`, `1.2 GiB`."""
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
