"""Remote transfers against a real blit-daemon on 127.0.0.1 (ephemeral port): the same cases
run local->local, push and pull, and their trees and exit codes must agree."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from helpers.daemon import DIRECTIONS, Daemon, run, sides, transfer
from helpers.treecheck import assert_same_tree, file_digest, find_temp_files, hardlink_groups

from blit_core import pathsafe
from blit_daemon.config import DaemonConfig, ModuleConfig
from blit_daemon.service import BlitService, add_to_server


def make_tree(root: Path) -> None:
    (root / "sub" / "deep").mkdir(parents=True)
    for i in range(300):
        (root / f"small{i:03}").write_bytes(os.urandom(i * 7))
    (root / "sub" / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 11))
    (root / "sub" / "deep" / "empty").write_bytes(b"")
    (root / "link").symlink_to("small001")
    (root / "ro").write_text("read only")
    (root / "ro").chmod(0o444)
    os.utime(root / "sub", ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_mirror_round_trip_is_identical(direction: str, daemon: Daemon, tmp_path: Path) -> None:
    src, dst = sides(direction, daemon, tmp_path)
    src.mkdir()
    make_tree(src)
    result = transfer(direction, daemon, "mirror", src, dst)
    assert result.returncode == 0, result.stderr
    assert_same_tree(src, dst)
    assert find_temp_files(dst) == []
    # a second pass changes nothing; a changed, an added and a removed file are handled
    (src / "small005").write_bytes(b"changed!")
    (src / "added").write_bytes(b"new")
    (src / "small006").unlink()
    (dst / "extraneous").write_bytes(b"stale")
    result = transfer(direction, daemon, "mirror", src, dst, "-i")
    assert result.returncode == 0, result.stderr
    assert ">f+++++++++ added" in result.stdout
    assert "*deleting extraneous" in result.stdout
    assert_same_tree(src, dst)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_copy_keeps_extraneous_and_dry_run_changes_nothing(
    direction: str, daemon: Daemon, tmp_path: Path
) -> None:
    src, dst = sides(direction, daemon, tmp_path)
    src.mkdir()
    make_tree(src)
    dst.mkdir()
    (dst / "keep").write_text("mine")
    result = transfer(direction, daemon, "copy", src, dst, "-n")
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(dst)) == ["keep"]
    result = transfer(direction, daemon, "copy", src, dst)
    assert result.returncode == 0, result.stderr
    assert (dst / "keep").read_text() == "mine"
    assert file_digest(dst / "sub" / "big.bin") == file_digest(src / "sub" / "big.bin")


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_filters_and_max_delete_behave_as_locally(
    direction: str, daemon: Daemon, tmp_path: Path
) -> None:
    src, dst = sides(direction, daemon, tmp_path)
    src.mkdir()
    make_tree(src)
    result = transfer(direction, daemon, "mirror", src, dst, "--exclude", "small1*")
    assert result.returncode == 0, result.stderr
    assert not (dst / "small100").exists()
    assert (dst / "small099").exists()
    for name in ("x1", "x2", "x3"):
        (dst / name).write_text(name)
    result = transfer(direction, daemon, "mirror", src, dst, "--exclude", "small1*",
                      "--max-delete", "1")
    assert result.returncode == 25, result.stderr
    assert sum((dst / n).exists() for n in ("x1", "x2", "x3")) == 2


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_move_removes_sources_after_commit(direction: str, daemon: Daemon,
                                           tmp_path: Path) -> None:
    src, dst = sides(direction, daemon, tmp_path)
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_bytes(b"payload")
    (src / "top").write_bytes(os.urandom(1 << 20))
    digest = file_digest(src / "top")
    result = transfer(direction, daemon, "move", src, dst)
    assert result.returncode == 0, result.stderr
    assert (dst / "d" / "f").read_bytes() == b"payload"
    assert file_digest(dst / "top") == digest
    assert not (src / "top").exists() and not (src / "d" / "f").exists()


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_force_grpc_carries_the_data(direction: str, daemon: Daemon, tmp_path: Path) -> None:
    src, dst = sides(direction, daemon, tmp_path)
    src.mkdir()
    make_tree(src)
    result = transfer(direction, daemon, "mirror", src, dst, "--force-grpc", "--json")
    assert result.returncode == 0, result.stderr
    assert_same_tree(src, dst)
    report = json.loads(result.stdout)
    assert report["stream_bytes"] == []
    content = sum(p.stat().st_size for p in src.rglob("*") if p.is_file() and not p.is_symlink())
    data = report["wire_bytes_sent" if direction == "push" else "wire_bytes_received"]
    assert content < data < content * 1.2 + (256 << 10)  # the data once, in frames


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_small_files_travel_on_one_stream(direction: str, daemon: Daemon,
                                          tmp_path: Path) -> None:
    """With the stream count left to blit, shards of small files all go on one stream (a
    second one only adds contention), and every file arrives intact."""
    src, dst = sides(direction, daemon, tmp_path)
    for index in range(3000):
        path = src / f"d{index % 30}" / f"f{index}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(index % 5000))
    result = transfer(direction, daemon, "copy", src, dst, "--json")
    assert result.returncode == 0, result.stderr
    assert_same_tree(src, dst)
    streams = json.loads(result.stdout)["stream_bytes"]
    content = sum(index % 5000 for index in range(3000))
    assert len(streams) > 1  # several were granted
    assert streams[0] > content, streams
    assert all(count <= 1 for count in streams[1:]), streams  # at most their END record


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_large_file_goes_over_several_streams(direction: str, tmpfs, tmp_path: Path) -> None:
    """512 MiB (on tmpfs) in 64 MiB ranges over 4 streams: every stream carries some, the
    bytes arrive intact, and the wire counts are the file plus a little framing."""
    space = tmpfs("1300M")
    (space / "module").mkdir()
    daemon = Daemon(space / "module")
    try:
        src, dst = sides(direction, daemon, space)
        src.mkdir()
        block = os.urandom(1 << 20)
        with open(src / "huge", "wb") as out:
            for index in range(512):
                out.write(index.to_bytes(8, "little") + block[8:])
        result = transfer(direction, daemon, "copy", src, dst, "--streams", "4", "--json")
    finally:
        daemon.stop()
    assert result.returncode == 0, result.stderr
    assert file_digest(dst / "huge") == file_digest(src / "huge")
    report = json.loads(result.stdout)
    assert len(report["stream_bytes"]) == 4
    assert min(report["stream_bytes"]) >= 64 << 20
    data = report["wire_bytes_sent" if direction == "push" else "wire_bytes_received"]
    assert 512 << 20 <= data < (512 << 20) + (1 << 20)
    assert report["wire_bytes_received" if direction == "push" else "wire_bytes_sent"] < 1 << 20


def test_unknown_module_and_missing_daemon_are_clear_errors(daemon: Daemon,
                                                             tmp_path: Path) -> None:
    result = run("copy", str(tmp_path), f"127.0.0.1:{daemon.port}:/nosuch/x")
    assert result.returncode == 5
    assert "unknown module 'nosuch'" in result.stderr
    daemon.stop()
    result = run("copy", str(tmp_path), f"127.0.0.1:{daemon.port}:/default/x")
    assert result.returncode == 5
    assert "cannot connect" in result.stderr


def test_push_through_a_symlink_out_of_the_module_writes_nothing_outside(
    daemon: Daemon, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (daemon.root / "escape").symlink_to(outside)
    src = tmp_path / "src"
    src.mkdir()
    (src / "payload").write_text("x")
    result = run("copy", f"{src}/", daemon.endpoint("escape") + "/")
    assert result.returncode != 0
    assert os.listdir(outside) == []
    result = run("copy", daemon.endpoint("escape") + "/", f"{tmp_path}/pulled/")
    assert not (tmp_path / "pulled" / "payload").exists()


def test_pull_never_reads_through_a_symlink_swapped_in_after_the_scan(
    daemon: Daemon, tmp_path: Path
) -> None:
    """The daemon scans src/sub/big (70 MiB: two ranges on one stream, each opened when it is
    sent). While the first range is on the wire, sub becomes a symlink to a directory outside
    the module holding a big of the same size: the daemon must refuse to open it for the
    second range rather than send outside bytes."""
    size = 70 << 20
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big").write_bytes(b"S" * size)
    src = daemon.root / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "big").write_bytes(b"i" * size)
    client = subprocess.Popen(
        [sys.executable, "-m", "blit_cli", "copy", "--streams", "1", "--bwlimit", "40M",
         daemon.endpoint("src") + "/", f"{tmp_path}/dst/"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (
            (tmp_path / "dst" / "sub").is_dir() and find_temp_files(tmp_path / "dst")):
        time.sleep(0.02)  # the first range is arriving
    (src / "sub").rename(daemon.root / "sub-moved")
    (src / "sub").symlink_to(outside)
    _, stderr = client.communicate(timeout=60)
    assert client.returncode == 23, stderr
    assert "sub/big" in stderr and "symbolic links" in stderr
    assert not (tmp_path / "dst" / "sub" / "big").exists()
    assert find_temp_files(tmp_path / "dst") == []


def test_read_only_module_refuses_a_push(tmp_path: Path) -> None:
    module = tmp_path / "m"
    module.mkdir()
    config = tmp_path / "blit.toml"
    config.write_text(f'[[module]]\nname = "default"\npath = "{module}"\nread_only = true\n')
    running = Daemon(module, config=config)
    try:
        result = run("copy", str(tmp_path / "blit.toml"), running.endpoint("x"))
        assert result.returncode == 5
        assert "read-only" in result.stderr
        assert os.listdir(module) == []
    finally:
        running.stop()


def test_a_summary_larger_than_a_grpc_message_arrives_in_parts(daemon: Daemon,
                                                              tmp_path: Path) -> None:
    """20,000 deletions with 200-byte names itemize to ~4.5 MB, over gRPC's 4 MiB limit."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "keep").write_text("k")
    dst = daemon.root / "dst"
    for d in range(20):
        (dst / f"d{d}").mkdir(parents=True)
        for f in range(1000):
            (dst / f"d{d}" / f"{f:05d}{'x' * 195}").touch()
    result = run("mirror", "-i", f"{src}/", daemon.endpoint("dst") + "/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("*deleting ") == 20_020
    assert sorted(os.listdir(dst)) == ["keep"]


def test_max_sessions_refuses_the_extra_client_clearly(tmp_path: Path) -> None:
    module = tmp_path / "m"
    module.mkdir()
    (tmp_path / "slow").write_bytes(os.urandom(3 << 20))
    config = tmp_path / "blit.toml"
    config.write_text(f'[daemon]\nmax_sessions = 1\n[[module]]\nname = "default"\n'
                      f'path = "{module}"\n')
    running = Daemon(module, config=config)
    try:
        busy = subprocess.Popen(
            [sys.executable, "-m", "blit_cli", "copy", "--bwlimit", "1M",
             str(tmp_path / "slow"), running.endpoint("slow")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while not any(running.root.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)  # until the first session is writing
        result = run("copy", str(tmp_path / "blit.toml"), running.endpoint("x"))
        assert result.returncode == 5
        assert "too many sessions; retry later" in result.stderr
        assert busy.wait(60) == 0, busy.stderr.read() if busy.stderr else ""
        assert file_digest(module / "slow") == file_digest(tmp_path / "slow")
    finally:
        running.stop()


def test_rsync_agrees_on_the_pushed_tree(daemon: Daemon, tmp_path: Path) -> None:
    if shutil.which("rsync") is None:
        pytest.skip("rsync is not installed")
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    assert run("mirror", f"{src}/", daemon.endpoint("dst") + "/").returncode == 0
    check = subprocess.run(["rsync", "-ani", "--delete", f"{src}/", f"{daemon.root}/dst/"],
                           capture_output=True, text=True, check=True)
    assert check.stdout == ""


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_directory_larger_than_a_manifest_batch(direction: str, daemon: Daemon,
                                                tmp_path: Path) -> None:
    """Copies planned from one manifest batch are asked for in that batch's answer, even in a
    directory that spans several batches (a regression: 'need for unknown file id')."""
    src, dst = sides(direction, daemon, tmp_path)
    (src / "wide").mkdir(parents=True)
    for i in range(4000):
        (src / "wide" / f"file-with-a-longish-name-{i:05}").write_bytes(b"y" * (i % 97))
    result = transfer(direction, daemon, "mirror", src, dst)
    assert result.returncode == 0, result.stderr
    assert_same_tree(src, dst)


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_hard_link_groups_spanning_manifest_batches(direction: str, daemon: Daemon,
                                                    tmp_path: Path) -> None:
    """-H with each group's members manifest batches apart: the leader is asked for in its
    own batch's answer, the others are linked once every file is in; a second run is a no-op
    and a third, after a new member joins a group, only links that member (and sets its
    directory's mtime)."""
    src, dst = sides(direction, daemon, tmp_path)
    (src / "wide").mkdir(parents=True)
    (src / "zz").mkdir()
    for i in range(4000):
        (src / "wide" / f"file-with-a-longish-name-{i:05}").write_bytes(b"w%d" % i)
    for i in (0, 1999, 3999):
        leader = src / "wide" / f"file-with-a-longish-name-{i:05}"
        os.link(leader, src / "zz" / f"after-{i}")
        os.link(leader, src / f"top-{i}")
    result = transfer(direction, daemon, "mirror", src, dst, "-H")
    assert result.returncode == 0, result.stderr
    assert_same_tree(src, dst)
    groups = {frozenset({f"wide/file-with-a-longish-name-{i:05}", f"zz/after-{i}", f"top-{i}"})
              for i in (0, 1999, 3999)}
    assert hardlink_groups(dst) == groups
    again = transfer(direction, daemon, "mirror", src, dst, "-H", "-i")
    assert (again.returncode, again.stdout) == (0, ""), again.stderr
    os.link(src / "top-1999", src / "zz" / "late")
    third = transfer(direction, daemon, "mirror", src, dst, "-H", "-i")
    assert third.returncode == 0, third.stderr
    assert sorted(third.stdout.splitlines()) == [".d..t...... zz/",
                                                 "hf+++++++++ zz/late => top-1999"]
    assert (dst / "zz" / "late").stat().st_ino == (dst / "top-1999").stat().st_ino


FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_IMMUTABLE_FL = 0x80086601, 0x40086602, 0x10


def set_immutable(path: Path, on: bool) -> None:
    """chattr +i / -i: even root cannot create a file in an immutable directory."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        flags = bytearray(8)
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags)
        value = int.from_bytes(flags, "little")
        value = value | FS_IMMUTABLE_FL if on else value & ~FS_IMMUTABLE_FL
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, value.to_bytes(8, "little"))
    finally:
        os.close(fd)


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_hard_links_are_not_made_to_a_leader_that_failed(direction: str, daemon: Daemon,
                                                         tmp_path: Path) -> None:
    """-H: when the new content of a group's leader cannot be committed, its old destination
    file stays, and the other members are failures, never links to that old content."""
    src, dst = sides(direction, daemon, tmp_path)
    for side in (src, dst):
        (side / "a").mkdir(parents=True)
    (src / "b").mkdir()
    (src / "a" / "lead").write_bytes(b"new content")
    os.link(src / "a" / "lead", src / "b" / "follow")
    (dst / "a" / "lead").write_bytes(b"old")
    try:
        set_immutable(dst / "a", True)
    except OSError as exc:
        pytest.skip(f"no immutable directories on {tmp_path}: {exc}")
    try:
        result = transfer(direction, daemon, "copy", src, dst, "-H")
    finally:
        set_immutable(dst / "a", False)
    assert result.returncode == 23, result.stderr
    assert "b/follow" in result.stderr and "not linked" in result.stderr
    assert (dst / "a" / "lead").read_bytes() == b"old"
    assert not (dst / "b" / "follow").exists()


def test_push_backup_dir_beside_dst_keeps_what_mirror_replaces_and_deletes(
        daemon: Daemon, tmp_path: Path) -> None:
    """--backup-dir ../bk is relative to DST, as in rsync: the daemon keeps replaced and
    deleted files there, in the module, with their paths; one inside DST is never deleted as
    extraneous."""
    src, dst = tmp_path / "src", daemon.root / "dst"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_bytes(b"new")
    (dst / "sub").mkdir(parents=True)
    (dst / "sub" / "f").write_bytes(b"old")
    (dst / "gone").write_bytes(b"deleted by mirror")
    result = transfer("push", daemon, "mirror", src, dst, "--backup-dir", "../bk")
    assert result.returncode == 0, result.stderr
    assert (dst / "sub" / "f").read_bytes() == b"new" and not (dst / "gone").exists()
    assert (daemon.root / "bk" / "sub" / "f").read_bytes() == b"old"
    assert (daemon.root / "bk" / "gone").read_bytes() == b"deleted by mirror"
    (src / "sub" / "f").write_bytes(b"newer")
    result = transfer("push", daemon, "mirror", src, dst, "--backup-dir", "inside")
    assert result.returncode == 0, result.stderr
    assert (dst / "inside" / "sub" / "f").read_bytes() == b"new"
    assert (dst / "sub" / "f").read_bytes() == b"newer"


def test_push_backup_dir_never_leaves_the_module(daemon: Daemon, tmp_path: Path) -> None:
    """A --backup-dir outside the module is refused before anything changes; one reached
    through a symlink inside the module is never followed: the file it would have kept fails
    (exit 23) and stays as it was, and nothing is written outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    src, dst = tmp_path / "src", daemon.root / "dst"
    src.mkdir()
    (src / "f").write_bytes(b"new")
    dst.mkdir()
    (dst / "f").write_bytes(b"old")
    for given in (str(outside), "../../escape"):
        result = transfer("push", daemon, "copy", src, dst, "--backup-dir", given)
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("blit: error: --backup-dir") and "module" in result.stderr
        assert (dst / "f").read_bytes() == b"old"
    (daemon.root / "bk").symlink_to(outside)
    result = transfer("push", daemon, "copy", src, dst, "--backup-dir", "../bk")
    assert result.returncode == 23, result.stderr
    assert "f" in result.stderr
    assert (dst / "f").read_bytes() == b"old"
    assert list(outside.iterdir()) == []
    assert find_temp_files(dst) == []


def test_pull_with_L_follows_only_links_that_stay_in_the_module(daemon: Daemon,
                                                                 tmp_path: Path) -> None:
    """-L on a pull follows a symlink to a file or a directory elsewhere in the module (even
    through `..`), but one that leads out, or is absolute, is a failure (exit 23): neither
    its content nor its listing leaves the daemon."""
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret").write_bytes(b"outside the module")
    (outside / "dir" / "hidden-name").write_bytes(b"")
    other = daemon.root / "other"
    other.mkdir()
    (other / "shared").write_bytes(b"shared inside")
    src = daemon.root / "src"
    src.mkdir()
    (src / "to-file").symlink_to("../other/shared")
    (src / "to-dir").symlink_to("../other")
    (src / "out-relative").symlink_to(os.path.relpath(outside / "secret", src))
    (src / "out-absolute").symlink_to(outside / "secret")
    (src / "out-dir").symlink_to(outside / "dir")
    dst = tmp_path / "dst"
    result = transfer("pull", daemon, "copy", src, dst, "-L")
    assert result.returncode == 23, result.stderr
    for name in ("out-relative", "out-absolute", "out-dir"):
        assert name in result.stderr and "leads out of the module" in result.stderr
    assert (dst / "to-file").read_bytes() == b"shared inside"
    assert (dst / "to-dir" / "shared").read_bytes() == b"shared inside"
    assert sorted(p.name for p in dst.iterdir()) == ["to-dir", "to-file"]
    assert "hidden-name" not in result.stdout + result.stderr
    # a root that is itself such a link is followed too, with or without a trailing slash
    for spelled, into, copied in (("src/to-dir/", "contents", "contents"),
                                  ("src/to-dir", "named", "named/to-dir")):
        result = run("copy", "-L", daemon.endpoint(spelled), f"{tmp_path / into}/")
        assert result.returncode == 0, result.stderr
        assert (tmp_path / copied / "shared").read_bytes() == b"shared inside"
    result = run("copy", "-L", daemon.endpoint("src/out-dir/"), f"{tmp_path / 'leak'}/")
    assert result.returncode == 3, result.stderr
    assert result.stderr == ("blit: error: source 'default/src/out-dir/' does not exist on "
                             "the daemon\n")
    assert not (tmp_path / "leak").exists()


def test_pull_with_L_filters_by_what_links_inside_the_module_lead_to(
        daemon: Daemon, tmp_path: Path) -> None:
    """-L with a directory-only exclude: a link to a directory inside the module is matched as
    a directory; one that leads out is not followed even to learn that it is a directory, so
    it is not matched, and fails as it would unfiltered."""
    (tmp_path / "outside").mkdir()
    (daemon.root / "inside").mkdir()
    (daemon.root / "inside" / "f").write_bytes(b"in")
    src = daemon.root / "src-filtered"
    src.mkdir()
    (src / "skip-in").symlink_to("../inside")
    (src / "skip-out").symlink_to(tmp_path / "outside")
    (src / "kept").write_bytes(b"kept")
    dst = tmp_path / "dst"
    result = run("copy", "-L", "--exclude", "skip-*/", daemon.endpoint("src-filtered/"), f"{dst}/")
    assert result.returncode == 23, result.stderr
    assert "skip-out" in result.stderr and "leads out of the module" in result.stderr
    assert "skip-in" not in result.stderr
    assert sorted(p.name for p in dst.iterdir()) == ["kept"]


def test_pull_with_L_is_refused_clearly_where_openat2_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without openat2 the daemon cannot follow links only inside its module, so it refuses a
    pull with -L in one line. The Transfer service is served in-process (real gRPC on
    127.0.0.1) so that the kernel's answer can be replaced; the client is the real CLI."""
    monkeypatch.setattr(pathsafe, "_have_openat2", False)
    (tmp_path / "module" / "src").mkdir(parents=True)
    (tmp_path / "module" / "src" / "f").write_bytes(b"x")
    ready: queue.Queue[int] = queue.Queue()
    stop = threading.Event()

    async def serve() -> None:
        server = grpc.aio.server()
        config = DaemonConfig(modules=(ModuleConfig("default", str(tmp_path / "module")),))
        add_to_server(BlitService(config), server)
        ready.put(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        await asyncio.to_thread(stop.wait)
        await server.stop(None)

    thread = threading.Thread(target=asyncio.run, args=(serve(),))
    thread.start()
    try:
        port = ready.get(timeout=10)
        result = run("copy", "-L", f"127.0.0.1:{port}:/default/src/", str(tmp_path / "dst"))
    finally:
        stop.set()
        thread.join()
    assert result.returncode == 5, result.stderr
    assert result.stderr == ("blit: error: -L/--copy-links when pulling needs openat2 (Linux 5.6"
                             " or later) on the daemon's machine\n")
    assert not (tmp_path / "dst").exists()


def test_a_module_at_the_filesystem_root_can_be_pulled(tmp_path: Path) -> None:
    """A daemon exporting `/`: the module root's own entry is read from its descriptor (every
    name is excluded, so nothing below it is read)."""
    daemon = Daemon(Path("/"))
    try:
        for flags in ((), ("-L",)):
            dst = tmp_path / f"dst{len(flags)}"
            result = run("copy", "-i", *flags, "--exclude", "*", daemon.endpoint(""), f"{dst}/")
            assert (result.returncode, result.stdout) == (0, "cd+++++++++ ./\n"), result.stderr
            assert dst.is_dir() and list(dst.iterdir()) == []
    finally:
        daemon.stop()


def test_the_module_root_is_a_destination_and_a_source(tmp_path: Path) -> None:
    """`host:/module/` names the module root itself: push a file and a tree into it, pull it
    back whole (the root's parent, above the module, is never asked of the daemon)."""
    module = tmp_path / "module"
    module.mkdir()
    make_tree(tmp_path / "tree")
    running = Daemon(module)
    try:
        root = f"127.0.0.1:{running.port}:/default"
        assert run("copy", str(tmp_path / "tree" / "ro"), root + "/").returncode == 0
        assert (module / "ro").read_text() == "read only"
        result = run("mirror", f"{tmp_path / 'tree'}/", root)
        assert result.returncode == 0, result.stderr
        assert_same_tree(tmp_path / "tree", module)
        result = run("copy", root + "/", str(tmp_path / "back"))
        assert result.returncode == 0, result.stderr
        assert_same_tree(tmp_path / "tree", tmp_path / "back")
    finally:
        running.stop()


def test_a_pull_over_many_existing_directories_holds_few_descriptors(
        daemon: Daemon, tmp_path: Path) -> None:
    """The DESTINATION plans a whole manifest batch of directories before it writes: each
    existing directory is opened for its listing and closed, not kept open until the batch
    ends (300 of them under a limit of 96 descriptors)."""
    src, dst = daemon.root / "src", tmp_path / "dst"
    for index in range(300):
        (src / f"d{index:03d}").mkdir(parents=True)
        (src / f"d{index:03d}" / "f").write_bytes(b"x" * index)
    assert transfer("pull", daemon, "mirror", src, dst).returncode == 0
    (src / "d299" / "f").write_bytes(b"changed")

    def few_descriptors() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96))

    again = subprocess.run([sys.executable, "-m", "blit_cli", "mirror", "--json",
                            daemon.endpoint("src") + "/", f"{dst}/"],
                           capture_output=True, text=True, timeout=120, preexec_fn=few_descriptors)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["files"]["transferred"] == 1
    assert (dst / "d299" / "f").read_bytes() == b"changed"
    assert_same_tree(src, dst)
