"""The daemon stopped while transfers run, with real processes on 127.0.0.1: SIGTERM lets a
running transfer finish within the grace period; with no grace period it cancels the session
cleanly (the client exits 10 with one line, neither side keeps a temp file); and a client with
--retries survives the daemon's restart on the same port, ending with an identical tree."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from helpers.daemon import Daemon, sides
from helpers.procs import bytes_arrived, finish, start_blit, wait_for
from helpers.treecheck import assert_same_tree, find_temp_files

MIB = 1 << 20
SLOW = "4M"  # bytes per second: the 16 MiB file takes seconds (--bwlimit paces 8 MiB bursts)


def make_tree(src: Path) -> None:
    src.mkdir(parents=True)
    (src / "big.bin").write_bytes(bytes(range(256)) * (16 * MIB // 256))
    for n in range(20):
        (src / f"small{n:02}.txt").write_text(f"small file {n}\n" * 20)


def start_daemon(root: Path, grace: float, port: int = 0) -> Daemon:
    config = root.parent / "blit.toml"
    config.write_text(f'[daemon]\ngrace_period = {grace}\n\n'
                      f'[[module]]\nname = "default"\npath = "{root}"\n')
    return Daemon(root, config=config, port=port)


def endpoints(direction: str, daemon: Daemon, src: Path, dst: Path) -> list[str]:
    if direction == "push":
        return [f"{src}/", daemon.endpoint(dst.name) + "/"]
    return [daemon.endpoint(src.name) + "/", f"{dst}/"]


@pytest.fixture
def module(tmp_path: Path) -> Path:
    root = tmp_path / "module"
    root.mkdir()
    return root


@pytest.mark.parametrize("direction", ["push", "pull"])
@pytest.mark.parametrize("grace", [30, 0], ids=["grace", "no-grace"])
def test_sigterm_lets_a_running_transfer_finish_or_cancels_it_cleanly(
        direction: str, grace: float, module: Path, tmp_path: Path) -> None:
    daemon = start_daemon(module, grace=grace)
    src, dst = sides(direction, daemon, tmp_path)
    make_tree(src)
    client = start_blit("copy", "--bwlimit", SLOW, *endpoints(direction, daemon, src, dst))
    try:
        wait_for(lambda: bytes_arrived(dst), 30, "file data at the destination", client)
        daemon.proc.send_signal(signal.SIGTERM)
        code, _, err = finish(client, 60, "the client of a daemon told to stop")
        assert daemon.proc.wait(30) == 0
    finally:
        daemon.stop()
    assert find_temp_files(tmp_path) == []
    if grace:
        assert code == 0, err
        assert_same_tree(src, dst)
        return
    assert code == 10, f"exit {code}: {err}"
    assert "Traceback" not in err and err.strip().count("\n") == 0, err
    assert not (dst / "big.bin").exists() or (dst / "big.bin").read_bytes() == \
        (src / "big.bin").read_bytes()


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_retries_survive_a_daemon_restart(direction: str, module: Path,
                                          tmp_path: Path) -> None:
    daemon = start_daemon(module, grace=0)
    src, dst = sides(direction, daemon, tmp_path)
    make_tree(src)
    client = start_blit("copy", "--bwlimit", SLOW, "--retries", "20", "--retries-sleep", "0.5",
                        *endpoints(direction, daemon, src, dst))
    try:
        wait_for(lambda: bytes_arrived(dst), 30, "file data at the destination", client)
        daemon.stop()
        daemon = start_daemon(module, grace=0, port=daemon.port)
        code, _, err = finish(client, 90, "the retrying client")
    finally:
        daemon.stop()
    assert code == 0, err
    assert "retrying in 0.5 s (retry 1 of 20)" in err
    assert_same_tree(src, dst)
    assert find_temp_files(tmp_path) == []
