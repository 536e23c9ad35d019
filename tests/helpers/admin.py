"""A blit-daemon for the blit-utils tests, and a runner for `python -m blit_utils`.

The daemon exports three modules from one config: `data`, a prepared tree the tests only read;
`scratch`, writable, where each rm test makes its own directory; and `ro`, read-only. Next to
the modules lies `outside`, which `data/escape` (a symlink) points to: nothing in it may ever
be listed, counted or removed through the daemon.

The prepared tree (sizes in bytes):
    data/a.txt            100
    data/.hidden            3
    data/docs/one.md     1000  (modified 10 days ago)
    data/docs/two.md     2500  (modified 1 hour ago)
    data/docs/nested/deep.txt  7
    data/many/f0000 ... f1999  1 each
    data/link_to_a        -> a.txt
    data/escape           -> <outside> (absolute)
    outside/secret.txt   12345"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.daemon import Daemon

MANY = 2000
SECRET_SIZE = 12345
DAY_S = 86400


@dataclass
class AdminSetup:
    daemon: Daemon
    data: Path
    scratch: Path
    ro: Path
    outside: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.daemon.port}"

    def at(self, path: str) -> str:
        """The location of "/module/path" on this daemon."""
        return f"{self.host}:{path}"


def _write(path: Path, size: int, age_s: float = 0.0) -> None:
    path.write_bytes(b"x" * size)
    if age_s:
        when = time.time() - age_s
        os.utime(path, (when, when))


def start(base: Path) -> AdminSetup:
    """Build the modules under `base` and start a daemon exporting them."""
    data, scratch, ro, outside = (base / name for name in ("data", "scratch", "ro", "outside"))
    for directory in (data / "docs" / "nested", data / "many", scratch, ro, outside):
        directory.mkdir(parents=True)
    _write(data / "a.txt", 100)
    _write(data / ".hidden", 3)
    _write(data / "docs" / "one.md", 1000, age_s=10 * DAY_S)
    _write(data / "docs" / "two.md", 2500, age_s=3600)
    _write(data / "docs" / "nested" / "deep.txt", 7)
    for i in range(MANY):
        _write(data / "many" / f"f{i:04d}", 1)
    (data / "link_to_a").symlink_to("a.txt")
    (data / "escape").symlink_to(outside)
    _write(outside / "secret.txt", SECRET_SIZE)
    _write(ro / "keep.txt", 10)
    config = base / "blit.toml"
    config.write_text(
        f'[[module]]\nname = "data"\npath = "{data}"\ncomment = "prepared tree"\n\n'
        f'[[module]]\nname = "scratch"\npath = "{scratch}"\n\n'
        f'[[module]]\nname = "ro"\npath = "{ro}"\nread_only = true\ncomment = "archive"\n')
    return AdminSetup(Daemon(base, config=config), data, scratch, ro, outside)


def utils(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python -m blit_utils ARGS` with stdin closed (not a terminal), output captured."""
    return subprocess.run([sys.executable, "-m", "blit_utils", *args], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=timeout)


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]
