"""A real blit-daemon process on 127.0.0.1 with an ephemeral port (blit_daemon.child), a
runner for the blit CLI, and the three directions of a transfer, shared by the remote tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from blit_daemon.child import ChildDaemon


class Daemon(ChildDaemon):
    """A daemon exporting `root` as module `default` (or what `config` says)."""

    def __init__(self, root: Path, *, config: Path | None = None, port: int = 0) -> None:
        self.root = root
        super().__init__(*(["--config", str(config)] if config else ["--root", str(root)]),
                         port=port)

    def endpoint(self, path: str) -> str:
        return f"127.0.0.1:{self.port}:/default/{path}"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "blit_cli", *args], capture_output=True,
                          text=True, timeout=120)


def transfer(direction: str, daemon: Daemon | None, verb: str, src: Path, dst: Path,
             *flags: str) -> subprocess.CompletedProcess[str]:
    """`blit VERB SRC/ DST/` in one direction: the daemon's module holds SRC for a pull and
    DST for a push (as module/<name>)."""
    return run(*transfer_args(direction, daemon, verb, src, dst, *flags))


def transfer_args(direction: str, daemon: Daemon | None, verb: str, src: Path, dst: Path,
                  *flags: str) -> list[str]:
    """The arguments of `transfer` (a local one needs no daemon)."""
    if direction == "local":
        return [verb, *flags, f"{src}/", f"{dst}/"]
    assert daemon is not None
    if direction == "push":
        return [verb, *flags, f"{src}/", daemon.endpoint(dst.name) + "/"]
    return [verb, *flags, daemon.endpoint(src.name) + "/", f"{dst}/"]


def sides(direction: str, daemon: Daemon, tmp_path: Path) -> tuple[Path, Path]:
    """Where SRC and DST live for a direction (the module side is inside the daemon's root)."""
    src = (daemon.root if direction == "pull" else tmp_path) / "src"
    dst = (daemon.root if direction == "push" else tmp_path) / "dst"
    return src, dst


DIRECTIONS = ["local", "push", "pull"]
