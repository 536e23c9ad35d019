"""blit-utils rm against a real daemon: what it refuses as a whole (read-only module, module
root, a path outside the module) before anything goes, asking on a terminal (a pty) and
refusing without --yes elsewhere, directories only with -r, exact counts, and symlinks removed
as links (never followed out of the module)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.admin import AdminSetup, json_lines, utils
from helpers.treecheck import diff_snapshots, snapshot

PTY_TIMEOUT_S = 30.0


@pytest.fixture
def victim(setup: AdminSetup, request: pytest.FixtureRequest) -> Path:
    """A fresh directory in the scratch module: victim/top.bin (300 B), victim/sub/a (20 B),
    victim/sub/deeper/b (1 B), victim/out -> the `outside` directory."""
    root = setup.scratch / request.node.name.replace("[", "_").replace("]", "")
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "top.bin").write_bytes(b"t" * 300)
    (root / "sub" / "a").write_bytes(b"a" * 20)
    (root / "sub" / "deeper" / "b").write_bytes(b"b")
    (root / "out").symlink_to(setup.outside)
    return root


def where(setup: AdminSetup, path: Path) -> str:
    return setup.at(f"/scratch/{path.relative_to(setup.scratch)}")


def test_without_a_terminal_rm_needs_yes_and_removes_nothing(setup: AdminSetup,
                                                             victim: Path) -> None:
    before = snapshot(victim)
    result = utils("rm", "-r", where(setup, victim))
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and "--yes" in result.stderr
    assert diff_snapshots(before, snapshot(victim)) == []


def test_a_directory_needs_r(setup: AdminSetup, victim: Path) -> None:
    result = utils("rm", "--yes", where(setup, victim / "sub"))
    assert result.returncode == 23
    assert "/scratch/" in result.stderr and "-r" in result.stderr
    assert (victim / "sub" / "a").exists()


def test_rm_r_removes_everything_and_a_symlink_as_a_link(setup: AdminSetup,
                                                        victim: Path) -> None:
    outside_before = snapshot(setup.outside)
    link_size = len(str(setup.outside))
    result = utils("rm", "-r", "--yes", "--json", where(setup, victim))
    assert result.returncode == 0, result.stderr
    (document,) = json_lines(result.stdout)
    assert document == {"removals": [{
        "path": f"/scratch/{victim.name}", "files": 4, "dirs": 3,
        "bytes": 300 + 20 + 1 + link_size, "error": None}]}
    assert not os.path.lexists(victim)
    assert diff_snapshots(outside_before, snapshot(setup.outside)) == []


def test_rm_reports_per_path_in_a_table(setup: AdminSetup, victim: Path) -> None:
    result = utils("rm", "--yes", where(setup, victim / "top.bin"), where(setup, victim / "out"))
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["PATH", "FILES", "DIRS", "SIZE"]
    assert [row.split()[1:] for row in rows] == [["1", "0", "300"],
                                                 ["1", "0", str(len(str(setup.outside)))]]
    assert not (victim / "top.bin").exists() and not os.path.lexists(victim / "out")
    assert (setup.outside / "secret.txt").exists()


def test_a_missing_path_is_partial_while_the_others_go(setup: AdminSetup, victim: Path) -> None:
    result = utils("rm", "--yes", where(setup, victim / "top.bin"),
                   where(setup, victim / "nothing"))
    assert result.returncode == 23
    assert "nothing" in result.stderr and "No such file" in result.stderr
    assert not (victim / "top.bin").exists()


def test_nothing_goes_through_a_symlink_inside_the_module(setup: AdminSetup,
                                                          victim: Path) -> None:
    outside_before = snapshot(setup.outside)
    result = utils("rm", "-r", "--yes", where(setup, victim / "out" / "secret.txt"))
    assert result.returncode == 5 and "symlink" in result.stderr
    assert diff_snapshots(outside_before, snapshot(setup.outside)) == []


@pytest.mark.parametrize(("paths", "message"), [
    (["/ro/keep.txt"], "read-only"),
    (["/scratch"], "root of module"),
    (["/scratch/"], "root of module"),
    (["/scratch/{victim}/top.bin", "/ro/keep.txt"], "read-only"),  # refused as a whole
    (["/nope/x"], "unknown module"),
])
def test_whole_request_refusals_remove_nothing(setup: AdminSetup, victim: Path,
                                               paths: list[str], message: str) -> None:
    before = snapshot(setup.scratch.parent)
    result = utils("rm", "-r", "--yes", *(setup.at(p.format(victim=victim.name)) for p in paths))
    assert result.returncode == 5
    assert message in result.stderr and len(result.stderr.splitlines()) == 1
    assert diff_snapshots(before, snapshot(setup.scratch.parent)) == []


def test_dot_dot_is_a_usage_error_on_the_client(setup: AdminSetup, victim: Path) -> None:
    before = snapshot(setup.scratch.parent)
    result = utils("rm", "-r", "--yes", setup.at(f"/scratch/{victim.name}/../../data"))
    assert result.returncode == 1 and "'..'" in result.stderr
    assert diff_snapshots(before, snapshot(setup.scratch.parent)) == []


def run_on_terminal(args: list[str], answer: bytes) -> tuple[int, str, str]:
    """Run blit-utils with stdin and stderr on a pty; answer its question once it asks.
    (exit code, stdout, what the terminal showed)."""
    leader, follower = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "blit_utils", *args], stdin=follower,
                            stderr=follower, stdout=subprocess.PIPE)
    os.close(follower)
    shown = b""
    deadline = time.monotonic() + PTY_TIMEOUT_S
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"no question within {PTY_TIMEOUT_S}s: {shown!r}"
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the program ended and closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if shown.endswith(b"[y/N] "):
                os.write(leader, answer + b"\n")
        assert proc.stdout is not None
        stdout = proc.stdout.read().decode()
        return proc.wait(PTY_TIMEOUT_S), stdout, shown.decode()
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_on_a_terminal_no_keeps_everything(setup: AdminSetup, victim: Path) -> None:
    before = snapshot(victim)
    code, stdout, shown = run_on_terminal(["rm", "-r", where(setup, victim / "sub")], b"n")
    assert code == 1 and stdout == ""
    assert f"/scratch/{victim.name}/sub: 2 files, 2 directories (21 B)" in shown
    assert "nothing removed" in shown
    assert diff_snapshots(before, snapshot(victim)) == []


def test_on_a_terminal_yes_removes(setup: AdminSetup, victim: Path) -> None:
    code, stdout, shown = run_on_terminal(
        ["rm", "-r", where(setup, victim / "sub"), where(setup, victim / "top.bin")], b"y")
    assert code == 0, shown
    assert "remove 3 files, 2 directories (321 B)? [y/N]" in shown
    assert len(stdout.splitlines()) == 3  # the header and one row per path
    assert sorted(os.listdir(victim)) == ["out"]


def test_names_that_are_not_utf8_are_listed_and_removed(setup: AdminSetup,
                                                        victim: Path) -> None:
    bad = os.fsdecode(b"bad-\xff-name")
    (victim / bad).write_bytes(b"12")
    listed = utils("ls", "--json", where(setup, victim))
    assert bad in [entry["name"] for entry in json_lines(listed.stdout)]
    assert "bad-\\#377-name" in utils("ls", where(setup, victim)).stdout.splitlines()
    result = utils("rm", "--yes", where(setup, victim / bad))
    assert result.returncode == 0, result.stderr
    assert not os.path.lexists(victim / bad)
