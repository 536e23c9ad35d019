"""SIGKILL at random moments of transfers, with real processes: push, pull and local copy,
mirror and move, killing the client or the daemon.

After every kill:
(a) every destination file under its final name holds a complete version of its source: the
    new one, or the older one the destination had before;
(b) move deleted no source file whose copy is not committed with the source's content;
(c) the same command run again (on a restarted daemon if the daemon was killed) converges to
    the source's tree, and no temp file remains, those of the killed writer included.

Each run is one test id carrying its seed (BLIT_KILL_SEED moves the whole series): the tree,
the destination's older versions and the moment of the kill all derive from it. Remote
transfers run under --bwlimit and local ones with --fsync, so that most kills land while
files are being written."""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest
from helpers.daemon import Daemon, transfer, transfer_args
from helpers.procs import finish, start_blit, wait_for
from helpers.treecheck import diff_snapshots, find_temp_files, snapshot

RUNS = 33
BASE_SEED = int(os.environ.get("BLIT_KILL_SEED", "6006"))
KIB = 1024
RATE = "1500K"  # remote --bwlimit: what differs takes over a second to cross
EARLY_KILLS = 0.2  # the share of kills before any file data (handshake, scan, manifest)
EARLY_S = (0.1, 0.6)  # when those come, after the client starts
# Local copies are not paced: more files (each fsync'ed) make them last.
SMALL_FILES = {"local": 300, "push": 40, "pull": 40}
DATA_S = {"local": 0.8, "push": 1.4, "pull": 1.4}  # how long file data flows, about
START_TIMEOUT_S = 40.0  # for the first file data (generous: shared cores)
EXIT_TIMEOUT_S = 20.0  # for a client to exit once its daemon was killed
CLEANUP_TIMEOUT_S = 20.0  # for a daemon to remove its temp files once its client was killed
EXTRA = ("extra.txt", "gone", "gone/old.dat")  # at the destination only


class Case(NamedTuple):
    direction: str
    verb: str
    victim: str  # "client" or "daemon"
    seed: int

    def __str__(self) -> str:
        return f"{self.direction}-{self.verb}-kill-{self.victim}-seed{self.seed}"


def _cases() -> list[Case]:
    combos = [(direction, verb, victim)
              for direction in ("local", "push", "pull")
              for verb in ("copy", "mirror", "move")
              for victim in (("client",) if direction == "local" else ("client", "daemon"))]
    return [Case(*combos[i % len(combos)], BASE_SEED + i) for i in range(RUNS)]


# -- trees ---------------------------------------------------------------------------------


def make_source(root: Path, rng: random.Random, small_files: int) -> None:
    """Small files (tar shards), medium ones (ranges, some sent as deltas) and a symlink."""
    for folder in ("a/b", "c"):
        (root / folder).mkdir(parents=True)
    for i in range(small_files):
        folder = ("", "a", "a/b", "c")[i % 4]
        (root / folder / f"s{i:03d}.dat").write_bytes(rng.randbytes(rng.randint(0, 6 * KIB)))
    for i in range(5):
        folder = ("c", "a/b")[i % 2]
        (root / folder / f"m{i}.bin").write_bytes(rng.randbytes(rng.randint(300, 900) * KIB))
    (root / "a" / "link").symlink_to("../c/m0.bin")


def make_older_destination(src: Path, dst: Path, rng: random.Random) -> None:
    """What the destination held before: older versions of some files (a medium one differs
    in one stretch, so it goes as a delta), files it already has, and entries the source
    does not have (which mirror deletes)."""
    for folder in ("a/b", "c", "gone"):
        (dst / folder).mkdir(parents=True)
    old_ns = 1_500_000_000_000_000_000
    for rel in ("c/m0.bin", "a/b/m1.bin"):
        data = bytearray((src / rel).read_bytes())
        start = rng.randrange(len(data) // 2)
        data[start:start + 40 * KIB] = rng.randbytes(40 * KIB)
        (dst / rel).write_bytes(data)
        os.utime(dst / rel, ns=(old_ns, old_ns))
    small = sorted(src.rglob("s*.dat"))
    for path in rng.sample(small, 8):
        older = dst / path.relative_to(src)
        older.write_bytes(rng.randbytes(rng.randint(0, 6 * KIB)))
        os.utime(older, ns=(old_ns, old_ns))
    for path in rng.sample(small, 4):  # already there, up to date
        same = dst / path.relative_to(src)
        same.write_bytes(path.read_bytes())
        st = path.stat()
        os.utime(same, ns=(st.st_atime_ns, st.st_mtime_ns))
    (dst / EXTRA[0]).write_bytes(b"only at the destination")
    (dst / EXTRA[2]).write_bytes(rng.randbytes(3 * KIB))


def file_versions(*trees: dict[str, tuple]) -> dict[str, set[str]]:
    """Each regular file's digests in any of these snapshots: its complete versions."""
    versions: dict[str, set[str]] = {}
    for tree in trees:
        for rel, entry in tree.items():
            if entry.kind == "f":
                versions.setdefault(rel, set()).add(entry.digest)
    return versions


# -- processes -----------------------------------------------------------------------------


class Sides:
    """Where a case's SRC and DST are, and its daemon (None for a local transfer), which
    may be killed and started again on the same module."""

    def __init__(self, direction: str, tmp_path: Path) -> None:
        self.module = tmp_path / "module"
        self.module.mkdir()
        self.daemon = None if direction == "local" else Daemon(self.module)
        self.src = (self.module if direction == "pull" else tmp_path) / "src"
        self.dst = (self.module if direction == "push" else tmp_path) / "dst"

    def kill_daemon(self) -> None:
        assert self.daemon is not None
        self.daemon.proc.kill()
        self.daemon.proc.wait(10)

    def restart_daemon(self) -> None:
        self.daemon = Daemon(self.module)

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()


@contextmanager
def case_sides(direction: str, tmp_path: Path) -> Iterator[Sides]:
    sides = Sides(direction, tmp_path)
    try:
        yield sides
    finally:
        sides.stop()


def without_temp_files(tree: dict[str, tuple], temps: list[str]) -> dict[str, tuple]:
    return {rel: entry for rel, entry in tree.items() if rel not in temps}


def content(entry: tuple | None) -> tuple | None:
    """What a copy must match: kind, size, digest and symlink target."""
    return None if entry is None else (entry.kind, entry.size, entry.digest, entry.target)


def dir_mtimes_ignored(tree: dict[str, tuple]) -> dict[str, tuple]:
    """A move's directories take the source's attributes as they were when scanned, and a
    killed move removed files from them since: their mtimes are not compared."""
    return {rel: entry._replace(mtime_ns=0) if entry.kind == "d" else entry
            for rel, entry in tree.items()}


def wait_for_the_moment(rng: random.Random, client: subprocess.Popen[str], dst: Path,
                        data_s: float) -> None:
    """Until a random moment of the transfer: early on, or once file data arrives at the
    destination, at some point of the time it flows and the finishing phases after it."""
    moment = rng.random()
    if moment < EARLY_KILLS:
        time.sleep(rng.uniform(*EARLY_S))
        return
    deadline = time.monotonic() + START_TIMEOUT_S
    while not find_temp_files(dst) and client.poll() is None:
        assert time.monotonic() < deadline, "no file data arrived"
        time.sleep(0.01)
    time.sleep((moment - EARLY_KILLS) / (1 - EARLY_KILLS) * data_s)


# -- the runs ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", _cases(), ids=str)
def test_sigkill_anywhere_leaves_whole_files_and_a_rerun_converges(
    case: Case, tmp_path: Path, reaper: list[subprocess.Popen[str]],
) -> None:
    rng = random.Random(case.seed)
    about = f"[{case}; BLIT_KILL_SEED={BASE_SEED}]"
    with case_sides(case.direction, tmp_path) as sides:
        src, dst = sides.src, sides.dst
        make_source(src, rng, SMALL_FILES[case.direction])
        make_older_destination(src, dst, rng)
        src_before, dst_before = snapshot(src), snapshot(dst)
        complete_versions = file_versions(src_before, dst_before)

        flags = ["--fsync"] if case.direction == "local" else ["--bwlimit", RATE]
        client = start_blit(*transfer_args(case.direction, sides.daemon, case.verb, src, dst,
                                           *flags))
        reaper.append(client)
        wait_for_the_moment(rng, client, dst, DATA_S[case.direction])
        if case.victim == "client":
            client.kill()
            client.communicate(timeout=10)
            if case.direction == "push":  # its session's temp files are the daemon's to remove
                wait_for(lambda: find_temp_files(dst) == [], CLEANUP_TIMEOUT_S,
                         f"the daemon to remove its temp files {about}")
        else:
            sides.kill_daemon()
            finish(client, EXIT_TIMEOUT_S, f"the client once its daemon was killed {about}")

        # (a) whole files only, under final names
        temps = find_temp_files(dst)
        after = without_temp_files(snapshot(dst), temps)
        for rel, entry in after.items():
            if entry.kind == "f":
                assert entry.digest in complete_versions.get(rel, set()), (
                    f"{rel} holds content no version of it ever had {about}")
        # (b) a move removed only sources whose copies are committed
        if case.verb == "move":
            src_now = snapshot(src)
            for rel, entry in src_before.items():
                if rel not in src_now and entry.kind != "d":
                    assert content(after.get(rel)) == content(entry), (
                        f"move removed {rel} without its copy committed {about}")

        # (c) the same command again converges, and no temp file is left
        if case.victim == "daemon":
            sides.restart_daemon()
        result = transfer(case.direction, sides.daemon, case.verb, src, dst)
        assert result.returncode == 0, f"re-run failed {about}: {result.stderr}"
        assert find_temp_files(dst) == [], f"temp files left {about}"
        if case.verb == "mirror":
            assert diff_snapshots(src_before, snapshot(dst)) == [], about
            return
        expected, final = src_before, snapshot(dst)
        if case.verb == "move":
            expected, final = dir_mtimes_ignored(expected), dir_mtimes_ignored(final)
            leftover = [rel for rel, entry in snapshot(src).items() if entry.kind != "d"]
            assert leftover == [], f"move left sources behind {about}"
        assert diff_snapshots(expected, final, ignore=lambda rel: rel in EXTRA) == [], about
