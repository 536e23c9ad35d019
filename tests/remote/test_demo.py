"""The README's Quick start: `blit demo` runs a real daemon round trip (push, pull back,
verify) and leaves nothing behind."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from helpers.daemon import run


def test_demo_round_trip_verifies_and_cleans_up() -> None:
    before = set(Path(tempfile.gettempdir()).glob("blit-demo-*"))
    result = run("demo", "--files", "60")
    assert result.returncode == 0, result.stderr
    assert re.search(r"blit-daemon on 127\.0\.0\.1:\d+", result.stdout)
    assert re.search(r"^push: blit mirror: 64 files .* transferred", result.stdout, re.M)
    assert re.search(r"^pull: blit mirror: 64 files .* transferred", result.stdout, re.M)
    assert "verify: the pulled-back tree is identical to the source" in result.stdout
    assert set(Path(tempfile.gettempdir()).glob("blit-demo-*")) == before
