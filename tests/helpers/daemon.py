"""A real blit-daemon process on 127.0.0.1 with an ephemeral port, and a runner for the blit
CLI, shared by the remote test files. The daemon is started with --no-mdns and its ready line
parsed for the port; stop() terminates it (SIGTERM, then SIGKILL after 10 s)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path


class Daemon:
    def __init__(self, root: Path, *, config: Path | None = None) -> None:
        self.root = root
        where = ["--config", str(config)] if config else ["--root", str(root)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "blit_daemon", *where, "--port", "0", "--no-mdns"],
            stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 20
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            match = re.search(r"ready on 127\.0\.0\.1:(\d+)", line)
            if match:
                self.port = int(match.group(1))
                return
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"blit-daemon did not start: {line!r}")

    def endpoint(self, path: str) -> str:
        return f"127.0.0.1:{self.port}:/default/{path}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "blit_cli", *args], capture_output=True,
                          text=True, timeout=120)


def transfer(direction: str, daemon: Daemon, verb: str, src: Path, dst: Path,
             *flags: str) -> subprocess.CompletedProcess[str]:
    """`blit VERB SRC/ DST/` in one direction: the daemon's module holds SRC for a pull and
    DST for a push (as module/<name>)."""
    if direction == "local":
        return run(verb, *flags, f"{src}/", f"{dst}/")
    if direction == "push":
        return run(verb, *flags, f"{src}/", daemon.endpoint(dst.name) + "/")
    return run(verb, *flags, daemon.endpoint(src.name) + "/", f"{dst}/")


def sides(direction: str, daemon: Daemon, tmp_path: Path) -> tuple[Path, Path]:
    """Where SRC and DST live for a direction (the module side is inside the daemon's root)."""
    src = (daemon.root if direction == "pull" else tmp_path) / "src"
    dst = (daemon.root if direction == "push" else tmp_path) / "dst"
    return src, dst


DIRECTIONS = ["local", "push", "pull"]
