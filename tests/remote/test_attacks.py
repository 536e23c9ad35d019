"""Hostile peers against a real blit-daemon on 127.0.0.1, through the real Transfer RPC.

A hand-made initiator built from the generated stubs speaks the session frame by frame, as
the honest client would, but puts hostile values where the honest client puts safe ones: in
the Hello and Roots paths, in the manifest entry names a pushing SOURCE sends, in the tar
shard members and range records it sends over the data plane, and in the roots of a pull
that goes through a symlink of the module pointing outside it. The manifest, shard and
record bytes come from the real encoders in blit_core.wire (they do not validate names, so
they produce the hostile values unchanged); only tar members that are not regular files are
made with the stdlib tarfile, since blit's shard writer can only make regular members.

Every test checks that the daemon refuses (a Failure frame, or a session that aborts), that
nothing outside the module changed (a snapshot of the whole tmp_path, module excluded,
holding a sentinel directory next to the module), that no temp file is left in the module,
and that the daemon still serves an honest `blit copy` afterwards.

The data-plane tests open extra TCP connections to a granted port with a wrong, a short and
a stale token: each must be closed without a byte in reply while the session completes on
the good streams, which run the real session code (blit_core.net.session)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
import tarfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
import zstandard
from helpers.daemon import Daemon, run
from helpers.treecheck import assert_same_tree, diff_snapshots, find_temp_files, snapshot

from blit_core.models import FileEntry, TransferReport, TransferStats, entry_from_stat
from blit_core.net import dataplane
from blit_core.net.generated import blit_pb2 as pb
from blit_core.net.generated import blit_pb2_grpc as pb_grpc
from blit_core.net.session import PROTOCOL_VERSION, Channel, Plane, run_destination, run_source
from blit_core.options import TransferOptions, Verb
from blit_core.progress import NullObserver
from blit_core.transfer.destination import Destination
from blit_core.transfer.jobs import TransferRoot
from blit_core.wire import frames, tarshard
from blit_core.wire.codec import Decoder
from blit_core.wire.manifest import EntryRecord, ManifestWriter, RootRecord, read_records
from blit_core.wire.options import options_to_wire
from blit_core.wire.report import events_from_wire, report_from_wire, report_to_wire

HOST = "127.0.0.1"
MTIME_NS = 1_600_000_000_000_000_000
SECRET = b"sentinel secret outside the module \x00\xff" * 3
PAYLOAD = b"hostile payload"
REFUSAL_TIMEOUT_S = 15.0
SESSION_TIMEOUT_S = 30.0

FILE = stat.S_IFREG | 0o644
DIR = stat.S_IFDIR | 0o755
LINK = stat.S_IFLNK | 0o777


# -- the arena: a module, a sentinel directory next to it, and an honest tree ----------------


class Arena:
    """tmp_path as the attacks see it: module/ is exported, outside/ sits next to it with a
    secret file, and `module/evil` is a symlink to outside/. `check()` asserts that nothing
    outside the module changed and that no temp file is left inside it."""

    def __init__(self, daemon: Daemon, tmp_path: Path, honest: Path) -> None:
        self.daemon = daemon
        self.tmp = tmp_path
        self.module = daemon.root
        self.outside = tmp_path / "outside"
        self.outside.mkdir()
        (self.outside / "secret").write_bytes(SECRET)
        (self.outside / "subdir").mkdir()
        (self.outside / "subdir" / "hidden").write_bytes(SECRET)
        (self.module / "evil").symlink_to(self.outside)
        self.honest = honest
        self.ours = {"module"}  # top-level names made on purpose (honest transfers)
        self.before = snapshot(tmp_path)

    def _ignored(self, rel: str) -> bool:
        """The module, what honest transfers made, and tmp_path's own mtime (anything new
        in tmp_path shows up as an entry of its own)."""
        return rel == "" or rel.split("/", 1)[0] in self.ours

    def changes_outside(self) -> list[str]:
        return diff_snapshots(self.before, snapshot(self.tmp), ignore=self._ignored)

    def check(self) -> None:
        diffs = self.changes_outside()
        assert diffs == [], "the daemon changed things outside its module:\n" + "\n".join(diffs)
        assert find_temp_files(self.module) == [], "temp files left in the module"
        assert os.readlink(self.module / "evil") == str(self.outside)

    def check_still_serves(self, name: str = "honest") -> None:
        """An honest push and pull through the CLI still work, and change nothing outside."""
        assert self.daemon.proc.poll() is None, "the daemon died"
        result = run("copy", f"{self.honest}/", self.daemon.endpoint(name) + "/")
        assert result.returncode == 0, result.stderr
        assert_same_tree(self.honest, self.module / name)
        back = self.tmp / f"{name}-pulled"
        result = run("copy", self.daemon.endpoint(name) + "/", f"{back}/")
        assert result.returncode == 0, result.stderr
        assert_same_tree(self.honest, back)
        self.ours.add(back.name)
        self.check()


@pytest.fixture
def arena(daemon: Daemon, tmp_path: Path, small_tree: Path) -> Arena:
    return Arena(daemon, tmp_path, small_tree)


# -- a hand-made initiator -------------------------------------------------------------------


class Peer:
    """One Transfer RPC, frame by frame, with no checks of its own."""

    def __init__(self, call: grpc.aio.StreamStreamCall) -> None:
        self.call = call

    async def send(self, **body: object) -> None:
        await self.call.write(pb.Frame(**body))

    async def send_late(self, **body: object) -> None:
        """Send after hostile data: the daemon may have refused and ended the RPC already
        (its Failure is still there for refusal() to read)."""
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
            await self.call.write(pb.Frame(**body))

    async def recv(self, timeout: float = REFUSAL_TIMEOUT_S) -> pb.Frame | None:
        """The next frame that is not a keepalive (an empty Progress); None at the end."""
        while True:
            frame = await asyncio.wait_for(self.call.read(), timeout)
            if frame is grpc.aio.EOF:
                return None
            if not frame.HasField("progress"):
                return frame

    async def expect(self, field: str) -> pb.Frame:
        frame = await self.recv()
        assert frame is not None and frame.HasField(field), f"expected {field}, got {frame}"
        return frame

    async def refusal(self) -> str:
        """The daemon's refusal: the message of its Failure, or of the error the RPC ended
        with. Fails the test if the session ends cleanly or stays open."""
        try:
            while True:
                frame = await self.recv()
                if frame is None:
                    pytest.fail("the daemon ended the session without refusing it")
                if frame.HasField("failure"):
                    return frame.failure.message
                if frame.HasField("summary"):
                    pytest.fail(f"the daemon completed the session: {frame.summary.report!r}")
        except grpc.aio.AioRpcError as exc:
            return f"RPC {exc.code().name}: {exc.details()}"
        except TimeoutError:
            pytest.fail(f"the daemon neither refused nor ended in {REFUSAL_TIMEOUT_S}s")

    @contextlib.asynccontextmanager
    async def real_channel(self) -> AsyncIterator[Channel]:
        """The real session's Channel over this RPC, running (for the honest parts of a
        test); from here on it reads every frame, so use it rather than recv()."""

        async def read() -> bytes | None:  # the Channel takes frames serialized
            frame = await self.call.read()
            return None if frame is grpc.aio.EOF else frame.SerializeToString()

        async def write(raw: bytes) -> None:
            await self.call.write(pb.Frame.FromString(raw))

        chan = Channel(read, write, SESSION_TIMEOUT_S, "the daemon")
        async with chan.running():
            yield chan


@contextlib.asynccontextmanager
async def peer(daemon: Daemon) -> AsyncIterator[Peer]:
    async with grpc.aio.insecure_channel(f"{HOST}:{daemon.port}") as channel:
        call = pb_grpc.BlitStub(channel).Transfer()
        try:
            yield Peer(call)
        finally:
            call.cancel()


def hello(role: int, paths: list[str], *, verb: str = "copy", streams: int = 1) -> pb.Hello:
    return pb.Hello(protocol=PROTOCOL_VERSION, client_version="hostile", module="default",
                    paths=paths, client_role=role, verb=verb,
                    options=options_to_wire(TransferOptions()), streams=streams)


def entry(name: str, mode: int = FILE, size: int = 0, target: str | None = None) -> FileEntry:
    return FileEntry(name, mode, size, MTIME_NS, MTIME_NS, 0, 0, 1, 0, 0, 0, target)


def dial(grant: pb.DataGrant) -> list[socket.socket]:
    return dataplane.dial_streams(HOST, grant.port, grant.token, grant.streams, 10.0)


async def open_push(p: Peer, dst: str, *, is_dir: bool = True, verb: str = "copy",
                    make_dir: str = "", streams: int = 1,
                    ) -> tuple[pb.DataGrant, list[socket.socket]]:
    """Hello (as SOURCE), Roots mapping one root onto module/`dst`, the grant, the dial."""
    await p.send(hello=hello(pb.SOURCE, ["/default"], verb=verb, streams=streams))
    await p.expect("welcome")
    await p.send(roots=pb.Roots(
        roots=[pb.Root(src="src", dst=dst, prefix="" if is_dir else "f", is_dir=is_dir)],
        make_dir=make_dir, has_make_dir=bool(make_dir)))
    grant = (await p.expect("grant")).grant
    return grant, await asyncio.to_thread(dial, grant)


def dir_manifest(*entries: tuple[int, FileEntry]) -> bytes:
    """Batch 0 of a directory root: the root, then one listing of `entries` (id, entry)."""
    writer = ManifestWriter()
    writer.root(0, 0, entry("", DIR))
    writer.dir_start(0, "")
    for entry_id, item in entries:
        writer.entry(entry_id, item)
    writer.dir_end(False)
    return writer.take()


async def send_manifest(p: Peer, batches: list[bytes]) -> list[int]:
    """Send manifest batches, each answered before the next; the ids the daemon asked for
    ([-1] if it refused one)."""
    needs: list[int] = []
    for number, records in enumerate(batches):
        await p.send(manifest=pb.Manifest(batch=number, entries=records))
        frame = await p.recv()
        assert frame is not None
        if frame.HasField("failure"):
            return [-1]  # refused already: the caller's refusal() will not see it again
        assert frame.HasField("needs"), frame
        needs.extend(frame.needs.ids)
    return needs


async def push_victim(p: Peer) -> list[socket.socket]:
    """A push into module/dst whose manifest names one file, 'victim', which the daemon
    asks for as need 1; the data streams, for what follows."""
    _, socks = await open_push(p, "dst")
    try:
        needs = await send_manifest(p, [dir_manifest((1, entry("victim", FILE, len(PAYLOAD))))])
        assert needs == [1], needs
    except BaseException:
        close(socks)
        raise
    return socks


def shard(*members: tuple[bytes, bytes]) -> bytes:
    """A SHARD record holding raw (header, data) members, as the Sender frames one."""
    body = bytearray()
    for header, data in members:
        body += header + data + tarshard.padding(len(data))
    body += tarshard.END_OF_ARCHIVE
    return frames.encode_shard_header(len(body)) + bytes(body)


def member(name: str, data: bytes) -> tuple[bytes, bytes]:
    return tarshard.member_header(name, len(data), 0o644, MTIME_NS // 10**9), data


def tar_member(kind: bytes, name: str, linkname: str) -> tuple[bytes, bytes]:
    """A link member: blit's shard writer makes regular members only, so the stdlib's tarfile
    writes this one header (ustar, the format blit's reader parses)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mtime = MTIME_NS // 10**9
    return info.tobuf(tarfile.USTAR_FORMAT), b""


def write_all(socks: list[socket.socket], data: bytes) -> None:
    """Send on the first stream and END the others; the daemon may already have hung up."""
    for index, sock in enumerate(socks):
        with contextlib.suppress(OSError):
            sock.sendall((data if index == 0 else b"") + frames.encode_end())


def close(socks: list[socket.socket]) -> None:
    dataplane.close_all(socks)


def assert_reported_failure(summary: bytes) -> None:
    """A session that went through to its summary must have failed the hostile file."""
    report = report_from_wire(summary)
    assert report.failures, f"no failure reported: {report}"
    assert report.stats.files_transferred == 0, report


def empty_report() -> bytes:
    return report_to_wire(TransferReport(verb="copy", dry_run=False, stats=TransferStats(),
                                         failures=[], failures_omitted=0, warnings=[],
                                         duration_s=0.0))


# -- 1. paths in Hello and Roots ------------------------------------------------------------


def test_hello_paths_outside_the_module_are_refused(arena: Arena) -> None:
    """Hello paths that name no path of the module, are absolute elsewhere, or hold NUL."""
    hostile = ["../x", "/etc/passwd", str(arena.outside / "secret"), "a\x00b",
               "/default/a\x00b", "/default\x00/x", "/defaultx/y", "/"]
    problems: list[str] = []

    async def attack() -> None:
        for role in (pb.SOURCE, pb.DESTINATION):
            for path in hostile:
                async with peer(arena.daemon) as p:
                    await p.send(hello=hello(role, [path]))
                    message = await p.refusal()
                    if "outside module" not in message and "unsafe path" not in message:
                        problems.append(f"{path!r} (role {role}): {message}")

    asyncio.run(attack())
    assert problems == []
    arena.check()
    arena.check_still_serves()


def test_hello_paths_climbing_out_of_the_module_are_refused_not_rewritten(
        arena: Arena) -> None:
    """`/default/../x` is the module-relative path `../x`: refused like it is in Roots, not
    silently rewritten to another path inside the module."""
    hostile = ["/default/../x", "/default/../../outside/secret", "/default/sub/../../x",
               "/default/../default/x"]
    problems: list[str] = []

    async def attack() -> None:
        for path in hostile:
            async with peer(arena.daemon) as p:
                await p.send(hello=hello(pb.DESTINATION, [path]))
                frame = await p.recv()
                if frame is None or not frame.HasField("failure"):
                    body = frame.WhichOneof("body") if frame else "the end of the RPC"
                    problems.append(f"{path!r} was answered with {body}, not a Failure")

    asyncio.run(attack())
    assert problems == []
    arena.check()
    arena.check_still_serves()


def test_roots_outside_the_module_are_refused(arena: Arena) -> None:
    """Roots and make_dir outside the module, absolute, with '..' or NUL: refused before any
    data port is granted, for a push (DST side) and a pull (SRC side)."""
    outside_abs = str(arena.outside / "pwned")
    push_cases = [
        dict(dst="../outside/pwned"), dict(dst=outside_abs), dict(dst="a\x00b"),
        dict(dst="x/../../outside/pwned"), dict(dst="x//y"), dict(dst="dst", prefix=".."),
        dict(dst="dst", make_dir="../outside/newdir"), dict(dst="dst", make_dir=outside_abs),
        dict(dst="../outside/pwned", make_dir="made"),  # a refused root: nothing is created
    ]
    pull_cases = [dict(src="../outside/secret"), dict(src=str(arena.outside / "secret")),
                  dict(src="evil\x00/secret"), dict(src="x/../../outside")]
    problems: list[str] = []

    async def attack(role: int, case: dict[str, str]) -> None:
        make_dir = case.pop("make_dir", "")
        async with peer(arena.daemon) as p:
            await p.send(hello=hello(role, ["/default"]))
            await p.expect("welcome")
            root = pb.Root(src=case.get("src", "src"), dst=case.get("dst", "dst"),
                           prefix=case.get("prefix", ""), is_dir=True)
            await p.send(roots=pb.Roots(roots=[root], make_dir=make_dir,
                                        has_make_dir=bool(make_dir)))
            frame = await p.recv()
            if frame is None or not frame.HasField("failure"):
                problems.append(f"{case} {make_dir!r}: answered with {frame}")
            elif "unsafe path" not in frame.failure.message:
                problems.append(f"{case} {make_dir!r}: unclear refusal {frame.failure.message}")

    async def attacks() -> None:
        for case in push_cases:
            await attack(pb.SOURCE, case)
        for case in pull_cases:
            await attack(pb.DESTINATION, case)

    asyncio.run(attacks())
    assert problems == []
    assert not (arena.module / "dst").exists()
    assert not (arena.module / "made").exists()
    arena.check()
    arena.check_still_serves()


def test_nothing_takes_the_place_of_the_module_root(arena: Arena) -> None:
    """A root mapped onto the module root itself (dst "") may only be a directory: a file or
    link root there (which copy or mirror would put in the module's place, from the module's
    parent) is refused before any grant, and so is a directory root whose manifest says that
    its own entry is a file or a link."""
    before = sorted(os.listdir(arena.module))
    messages: dict[str, str] = {}

    async def attack(label: str, verb: str, is_dir: bool, root_entry: FileEntry) -> None:
        async with peer(arena.daemon) as p:
            await p.send(hello=hello(pb.SOURCE, ["/default"], verb=verb))
            await p.expect("welcome")
            await p.send(roots=pb.Roots(roots=[pb.Root(src="src", dst="", prefix="" if is_dir
                                                       else "f", is_dir=is_dir)]))
            frame = await p.recv()
            assert frame is not None
            if frame.HasField("failure"):
                messages[label] = frame.failure.message
                return
            socks = await asyncio.to_thread(dial, frame.grant)
            try:
                writer = ManifestWriter()
                writer.root(0, 0, root_entry)
                await p.send(manifest=pb.Manifest(batch=0, entries=writer.take()))
                messages[label] = await p.refusal()
            finally:
                close(socks)

    async def attacks() -> None:
        for verb in ("copy", "mirror"):
            await attack(f"{verb} file root", verb, False, entry("", FILE, len(PAYLOAD)))
            await attack(f"{verb} link root", verb, False, entry("", LINK, target="/"))
            await attack(f"{verb} dir root, file entry", verb, True, entry("", FILE))
            await attack(f"{verb} dir root, link entry", verb, True,
                         entry("", LINK, target=str(arena.outside)))

    asyncio.run(attacks())
    assert len(messages) == 8
    unclear = {label: m for label, m in messages.items() if "root of" not in m}
    assert unclear == {}
    assert arena.module.is_dir() and not arena.module.is_symlink()
    assert sorted(os.listdir(arena.module)) == before
    arena.check()
    arena.check_still_serves()


# -- 2. manifest entry names from a hostile SOURCE --------------------------------------------


def test_manifest_entries_with_unsafe_names_are_refused(arena: Arena) -> None:
    outside_abs = str(arena.outside / "pwned")
    batches: dict[str, bytes] = {}
    for name in ("..", ".", "", "a/b", "../../outside/pwned", "x\x00", outside_abs):
        batches[f"entry {name!r}"] = dir_manifest((1, entry(name, FILE, len(PAYLOAD))))
    batches["directory entry '..'"] = dir_manifest((1, entry("..", DIR)))
    batches["symlink entry 'a/b'"] = dir_manifest((1, entry("a/b", LINK, target="x")))
    for rel in ("..", "../outside", outside_abs, "sub/../..", "a\x00"):
        writer = ManifestWriter()
        writer.root(0, 0, entry("", DIR))
        writer.dir_start(0, rel)
        writer.entry(1, entry("pwned", FILE, len(PAYLOAD)))
        writer.dir_end(False)
        batches[f"listing of {rel!r}"] = writer.take()
    writer = ManifestWriter()
    writer.root(0, 0, entry("..", DIR))
    batches["root named '..'"] = writer.take()
    writer = ManifestWriter()
    writer.confirm(0, "../outside/secret", len(SECRET), MTIME_NS)
    batches["a CONFIRM record"] = writer.take()
    problems: list[str] = []

    async def attack(label: str, records: bytes) -> None:
        async with peer(arena.daemon) as p:
            _, socks = await open_push(p, "dst")
            try:
                await p.send(manifest=pb.Manifest(batch=0, entries=records))
                message = await p.refusal()
            finally:
                close(socks)
            if not any(word in message for word in ("unsafe", "confirmation")):
                problems.append(f"{label}: unclear refusal {message!r}")

    async def attacks() -> None:
        for label, records in batches.items():
            await attack(label, records)

    asyncio.run(attacks())
    assert problems == []
    assert sorted(os.listdir(arena.module / "dst")) == []
    arena.check()
    arena.check_still_serves()


def test_a_symlink_sent_in_the_manifest_is_never_followed_by_later_entries(
        arena: Arena) -> None:
    """A SOURCE may send a symlink pointing outside (it is only a symlink); a listing of
    that symlink's name, or a root through it, must not put anything outside."""

    async def attack() -> None:
        async with peer(arena.daemon) as p:
            _, socks = await open_push(p, "dst")
            writer = ManifestWriter()
            writer.root(0, 0, entry("", DIR))
            writer.dir_start(0, "")
            writer.entry(1, entry("esc", LINK, target=str(arena.outside)))
            writer.dir_end(False)
            writer.dir_start(0, "esc")
            writer.entry(2, entry("pwned", FILE, len(PAYLOAD)))
            writer.dir_end(False)
            needs = await send_manifest(p, [writer.take()])
            payload = b"".join(frames.encode_range_header(need_id, 0, len(PAYLOAD)) + PAYLOAD
                               for need_id in needs if need_id == 2)
            await asyncio.to_thread(write_all, socks, payload)
            await p.send_late(manifest=pb.Manifest(batch=1))
            frame = await p.recv()
            close(socks)
            if frame is not None and frame.HasField("summary"):
                await p.send(done=pb.Done(report=empty_report()))
        assert os.readlink(arena.module / "dst" / "esc") == str(arena.outside)

        # a second session whose root goes through that symlink is refused at the door
        async with peer(arena.daemon) as p:
            await p.send(hello=hello(pb.SOURCE, ["/default"]))
            await p.expect("welcome")
            await p.send(roots=pb.Roots(roots=[pb.Root(src="src", dst="dst/esc/pwned",
                                                       prefix="f", is_dir=False)]))
            assert "passes through a symlink" in await p.refusal()

    asyncio.run(attack())
    arena.check()
    arena.check_still_serves()


# -- 3. the data plane of a hostile SOURCE ---------------------------------------------------


def _data_plane_cases(arena: Arena) -> dict[str, tuple[bytes, str]]:
    """label: (what the hostile SOURCE sends on its data stream, a word of the refusal)."""
    size = len(PAYLOAD)
    escape = str(arena.outside / "pwned")
    return {
        "member '../../outside/pwned'": (shard(member("../../outside/pwned", PAYLOAD)),
                                         "unsafe path"),
        "member '../victim'": (shard(member("../victim", PAYLOAD)), "unsafe path"),
        "absolute member": (shard(member(escape, PAYLOAD)), "unsafe path"),
        "pax member path climbing out": (shard(member("../" * 40 + "pwned", PAYLOAD)),
                                         "unsafe path"),
        "member with NUL": (shard(member("victim\x00x", PAYLOAD)), "unsafe path"),
        "member not asked for": (shard(member("other", PAYLOAD)), "not asked for"),
        "member of the wrong size": (shard(member("victim", PAYLOAD + b"!")), "wrong size"),
        "member sent twice": (shard(member("victim", PAYLOAD), member("victim", b"X" * size)),
                              "not asked for"),
        "symlink member": (shard(tar_member(tarfile.SYMTYPE, "victim", escape)),
                           "regular only"),
        "hard link member": (shard(tar_member(tarfile.LNKTYPE, "victim",
                                              str(arena.outside / "secret"))), "regular only"),
        "range of an id not asked for": (frames.encode_range_header(7, 0, size) + PAYLOAD,
                                         "not asked for"),
        "range beyond the file's size": (frames.encode_range_header(1, 1 << 30, size)
                                         + PAYLOAD, "beyond its size"),
        "range longer than the file": (frames.encode_range_header(1, 0, size + 4) + PAYLOAD
                                       + b"more", "beyond its size"),
        "unknown record type": (b"\x7f" + PAYLOAD, "unknown record type"),
        "a file sent again, again": (frames.REDO_RECORD.pack(
            frames.REDO, frames.FIRST_REDO_ID, frames.FIRST_REDO_ID + 1, size, 0), "need_id"),
        "a new id given twice": (frames.encode_redo(1, frames.FIRST_REDO_ID, size, 0) * 2,
                                 "given twice"),
        "a file sent again twice": (frames.encode_redo(1, frames.FIRST_REDO_ID, size, 0)
                                    + frames.encode_redo(1, frames.FIRST_REDO_ID + 1, size, 0),
                                    "sent again twice"),
        "a shard over the limit": (frames.SHARD_HEADER.pack(frames.SHARD, (1 << 30) + 1),
                                   "shard length"),
        "a range length over the limit": (frames.RANGE_HEADER.pack(
            frames.RANGE, 1, 0, (1 << 40) + 1), "range length"),
        "a literal outside a delta": (frames.encode_literal_header(size) + PAYLOAD,
                                      "outside a delta"),
        # a compressed record claiming the victim's range, holding 64 MiB of zeros
        "decompression bomb": (_zrec_claiming(
            len(frames.encode_range_header(1, 0, size) + PAYLOAD), bytes(64 << 20)),
            "does not declare its length"),
    }


def test_a_shard_claiming_1_gib_allocates_nothing(arena: Arena) -> None:
    """A shard header at the limit (1 GiB), a few bytes, then the connection closes: the
    session is refused, and the daemon never held anything like 1 GiB."""
    async def attack() -> str:
        async with peer(arena.daemon) as p:
            socks = await push_victim(p)
            try:
                header = frames.SHARD_HEADER.pack(frames.SHARD, 1 << 30)
                await asyncio.to_thread(socks[0].sendall, header + PAYLOAD)
            finally:
                close(socks)
            await p.send_late(manifest=pb.Manifest(batch=1))
            return await p.refusal()

    message = asyncio.run(attack())
    assert "closed" in message, message
    assert _peak_rss_mb(arena.daemon.proc.pid) < 400
    assert not (arena.module / "dst" / "victim").exists()
    arena.check()
    arena.check_still_serves()


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def test_delta_ops_beyond_the_basis_never_commit_and_ask_for_the_whole_file(
        arena: Arena) -> None:
    """The destination holds a basis, so the daemon signs it; a delta that copies block
    10,000 of a 2-block basis does not rebuild anything: the file is asked for whole (and,
    never sent, reported), and the basis is untouched."""
    basis = os.urandom(128 << 10)
    target = arena.module / "dst-delta"
    target.mkdir()
    (target / "victim").write_bytes(basis)
    os.utime(target / "victim", ns=(MTIME_NS - 10**9, MTIME_NS - 10**9))

    async def attack() -> tuple[list[str], list[int]]:
        seen: list[str] = []
        async with peer(arena.daemon) as p:
            _, socks = await open_push(p, "dst-delta")
            try:
                await p.send(manifest=pb.Manifest(batch=0, entries=dir_manifest(
                    (1, entry("victim", FILE, len(basis))))))
                needs: list[int] = []
                while (frame := await p.recv()) is not None:
                    seen.append(frame.WhichOneof("body"))
                    needs.extend(frame.needs.ids)
                    if frame.HasField("needs") and not frame.needs.more:
                        break
                assert needs == [1], seen
                ops = (frames.encode_delta_start(1) + frames.encode_copy(10_000, 1)
                       + frames.encode_delta_end(len(basis), bytes(16)))
                await asyncio.to_thread(write_all, socks, ops)
                done = await p.expect("delta_done")
            finally:
                close(socks)
        return seen, list(done.delta_done.whole)

    seen, whole = asyncio.run(attack())
    assert "signature" in seen
    assert whole == [1]
    assert (target / "victim").read_bytes() == basis
    assert find_temp_files(target) == []
    arena.check()
    arena.check_still_serves()


def _zrec_claiming(raw_length: int, content: bytes) -> bytes:
    frame = zstandard.ZstdCompressor().compress(content)
    return frames.encode_compressed_header(raw_length, len(frame)) + frame


def test_hostile_data_plane_records_are_refused(arena: Arena) -> None:
    """One granted need ('victim'), then records that name something else, climb out of the
    root, are links, or write beyond the file: each session is refused, the victim is never
    committed with those bytes, and no temp file stays."""
    problems: list[str] = []

    async def attack(label: str, data: bytes, word: str) -> None:
        async with peer(arena.daemon) as p:
            socks = await push_victim(p)
            try:
                await asyncio.to_thread(write_all, socks, data)
                await p.send_late(manifest=pb.Manifest(batch=1))
                message = await p.refusal()
            finally:
                close(socks)
        if word not in message:
            problems.append(f"{label}: unclear refusal {message!r}")
        victim = arena.module / "dst" / "victim"
        if label == "member sent twice":  # the first copy was a good one: only it counts
            if victim.read_bytes() != PAYLOAD:
                problems.append(f"{label}: the second copy overwrote the first")
            victim.unlink()
        elif victim.exists() or victim.is_symlink():
            problems.append(f"{label}: the victim was committed")
            victim.unlink()

    async def attacks() -> None:
        for label, (data, word) in _data_plane_cases(arena).items():
            await attack(label, data, word)

    asyncio.run(attacks())
    assert problems == []
    arena.check()
    arena.check_still_serves()


# -- 4. symlinks inside the module that point outside ----------------------------------------


def test_push_through_a_module_symlink_writes_and_reveals_nothing_outside(
        arena: Arena) -> None:
    """module/evil -> outside/: roots (copy and mirror), a file root and a make_dir through
    it. Each is refused, or fails every entry in its summary; outside/ gains nothing and
    loses nothing, and the daemon does not compare the SOURCE's entries with what lies
    outside: a manifest entry that matches outside/secret exactly is still asked for (not
    found "unchanged" there), and no summary names an entry of outside/."""
    leaks: list[str] = []
    twin = entry_from_stat("secret", os.lstat(arena.outside / "secret"))

    async def session(dst: str, *, is_dir: bool, verb: str = "copy",
                      make_dir: str = "") -> None:
        label = f"{verb} to {dst!r}" + (f" making {make_dir!r}" if make_dir else "")
        async with peer(arena.daemon) as p:
            await p.send(hello=hello(pb.SOURCE, ["/default"], verb=verb))
            await p.expect("welcome")
            await p.send(roots=pb.Roots(
                roots=[pb.Root(src="src", dst=dst, prefix="" if is_dir else "pwned",
                               is_dir=is_dir)],
                make_dir=make_dir, has_make_dir=bool(make_dir)))
            frame = await p.recv()
            assert frame is not None, label
            if frame.HasField("failure"):
                return  # refused before any data port: the best outcome
            assert frame.HasField("grant"), frame
            socks = await asyncio.to_thread(dial, frame.grant)
            try:
                if is_dir:
                    batch = dir_manifest((1, entry("pwned", FILE, len(PAYLOAD))),
                                         (2, entry("newdir", DIR)), (3, twin))
                else:
                    writer = ManifestWriter()
                    writer.root(0, 1, entry("pwned", FILE, len(PAYLOAD)))
                    batch = writer.take()
                needs = await send_manifest(p, [batch])
                if is_dir and needs != [-1] and 1 in needs and 3 not in needs:
                    leaks.append(f"{label}: 'secret' was compared with outside/secret")
                payload = b"".join(
                    frames.encode_range_header(need_id, 0, len(PAYLOAD)) + PAYLOAD
                    for need_id in needs if need_id >= 0)
                await asyncio.to_thread(write_all, socks, payload)
                await p.send_late(manifest=pb.Manifest(batch=1))
                frame = await p.recv()
            finally:
                close(socks)
            assert frame is not None, label
            if frame.HasField("summary"):
                report = report_from_wire(frame.summary.report)
                events = events_from_wire(frame.summary.events)
                assert_reported_failure(frame.summary.report)
                named = {f.path.strip("/") for f in report.failures}
                named |= {e.path.strip("/") for e in events}
                beyond = arena.outside / dst.removeprefix("evil").strip("/")
                unsent = set(os.listdir(beyond) if is_dir else ()) - {"pwned", "newdir",
                                                                      "secret"}
                if named & unsent:
                    leaks.append(f"{label}: the summary names {sorted(named & unsent)}")
                await p.send(done=pb.Done(report=empty_report()))
            else:
                assert frame.HasField("failure"), frame

    async def attacks() -> None:
        for verb in ("copy", "mirror"):
            await session("evil", is_dir=True, verb=verb)
            await session("evil/subdir", is_dir=True, verb=verb)
        await session("evil/pwned", is_dir=False)
        await session("evil/subdir/pwned", is_dir=False)
        await session("dst", is_dir=True, make_dir="evil/newdir")

    asyncio.run(attacks())
    arena.check()
    assert leaks == [], "the daemon looked outside its module:\n" + "\n".join(leaks)
    # the honest client, pushing into the symlink, is stopped too
    for verb in ("copy", "mirror"):
        result = run(verb, f"{arena.honest}/", arena.daemon.endpoint("evil") + "/")
        assert result.returncode != 0, (verb, result.stdout)
        arena.check()
    arena.check_still_serves()


def test_pull_through_a_module_symlink_is_refused(arena: Arena) -> None:
    """module/evil -> outside/: a DESTINATION asking for evil/secret or evil/ must get a
    refusal, and neither the secret's bytes nor its name."""
    leaks: list[str] = []
    refusals: list[str] = []

    async def attack(src: str, is_dir: bool) -> None:
        async with peer(arena.daemon) as p:
            await p.send(hello=hello(pb.DESTINATION, [f"/default/{src}"]))
            state = (await p.expect("welcome")).welcome.paths[0]
            assert not state.is_dir and ("/" not in src or not state.exists), (src, state)
            await p.send(roots=pb.Roots(roots=[pb.Root(src=src, dst="got",
                                                       prefix=os.path.basename(src),
                                                       is_dir=is_dir)]))
            frame = await p.recv()
            if frame is None or not frame.HasField("grant"):
                refusals.append(f"{src}: {frame}")
                return
            socks = await asyncio.to_thread(dial, frame.grant)
            received = asyncio.ensure_future(asyncio.to_thread(read_streams, socks))
            try:
                while True:  # ask for every regular file the manifest names
                    frame = await p.recv()
                    if frame is None or not frame.HasField("manifest"):
                        break
                    if not frame.manifest.entries:
                        break
                    wanted = []
                    for record in read_records(frame.manifest.entries):
                        if isinstance(record, RootRecord | EntryRecord):
                            leaks.append(f"{src}: manifest names {record.entry.name!r}")
                            if stat.S_ISREG(record.entry.mode):
                                wanted.append(record.id)
                    await p.send(needs=pb.Needs(batch=frame.manifest.batch, ids=wanted))
                if frame is not None and frame.HasField("failure"):
                    refusals.append(f"{src}: {frame.failure.message}")
                data = await received  # up to the daemon's END (or its hang-up)
            except grpc.aio.AioRpcError as exc:
                refusals.append(f"{src}: RPC {exc.code().name}")
                data = await received
            finally:
                p.call.cancel()
                close(socks)
            if SECRET[:16] in data:
                leaks.append(f"{src}: the secret's bytes arrived")

    async def attacks() -> None:
        await attack("evil/secret", False)
        await attack("evil", True)
        await attack("evil/subdir", True)

    asyncio.run(attacks())
    assert leaks == [], "the daemon served files outside its module:\n" + "\n".join(leaks)
    assert len(refusals) == 3, refusals
    arena.check()
    # the honest client cannot pull through it either
    result = run("copy", arena.daemon.endpoint("evil/secret"), str(arena.tmp / "got"))
    assert result.returncode != 0
    assert not (arena.tmp / "got").exists()
    arena.check_still_serves()


def read_streams(socks: list[socket.socket]) -> bytes:
    """Everything the daemon sends on the data connections, until END, close or a timeout."""
    got = bytearray()
    for sock in socks:
        sock.settimeout(5.0)
        decoder = Decoder()
        try:
            while True:
                chunk = sock.recv(1 << 16)
                got += chunk
                decoder.receive_data(chunk)
                event = decoder.next_event()
                while event is not frames.NEED_DATA:
                    if isinstance(event, frames.End):
                        break
                    event = decoder.next_event()
                if not chunk or isinstance(event, frames.End):
                    break
        except Exception:  # closed, reset, timed out or garbled: all that came is in `got`
            pass
    return bytes(got)


# -- 5. tokens on the data port ---------------------------------------------------------------


def connect(port: int, data: bytes, *, shut: bool) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=5.0)
    sock.sendall(data)
    if shut:
        sock.shutdown(socket.SHUT_WR)
    return sock


def closed_without_reply(sock: socket.socket, timeout: float = 5.0) -> bool:
    """True if the daemon closed the connection without sending a single byte."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    finally:
        sock.close()


def preface(token: bytes) -> bytes:
    """A preface as dial_streams sends it; a token of another length is packed by hand
    (encode_preface refuses it), so the daemon's own check is what is tested."""
    if len(token) == frames.TOKEN_BYTES:
        return frames.encode_preface(token)
    return frames.MAGIC + bytes([frames.DATA_VERSION]) + token


Intruders = Callable[[pb.DataGrant], list[socket.socket]]


async def session_with_intruders(
        arena: Arena, role: int, root: pb.Root, streams: int, intruders: Intruders,
        serve: Callable[[Channel, Plane], Awaitable[TransferReport]],
) -> tuple[TransferReport, pb.DataGrant, list[socket.socket]]:
    """A real session (the client's session code, `serve`, on `streams` good streams), with
    intruder connections opened on the granted port before the good streams are dialled."""
    async with peer(arena.daemon) as p, p.real_channel() as chan:
        await chan.send(pb.Frame(hello=hello(role, ["/default"], streams=streams)))
        await chan.expect("welcome")
        await chan.send(pb.Frame(roots=pb.Roots(roots=[root])))
        grant = (await chan.expect("grant")).grant
        bad = await asyncio.to_thread(intruders, grant)
        socks = await asyncio.to_thread(dial, grant)
        try:
            report = await serve(chan, Plane(socks, 0))
            await p.call.done_writing()
        finally:
            close(socks)
    return report, grant, bad


async def push_with_intruders(arena: Arena, src: Path, dst: str, streams: int,
                              intruders: Intruders,
                              ) -> tuple[TransferReport, pb.DataGrant, list[socket.socket]]:
    """Push src/ to module/dst/ with run_source."""

    async def serve(chan: Channel, plane: Plane) -> TransferReport:
        return await run_source(
            chan, plane, [TransferRoot(str(src), f"/default/{dst}", "", True)],
            TransferOptions(), Verb.COPY, NullObserver())

    root = pb.Root(src=str(src), dst=dst, prefix="", is_dir=True)
    return await session_with_intruders(arena, pb.SOURCE, root, streams, intruders, serve)


async def pull_with_intruders(arena: Arena, src: str, dst: Path, streams: int,
                              intruders: Intruders,
                              ) -> tuple[TransferReport, pb.DataGrant, list[socket.socket]]:
    """Pull module/src/ to dst/ with run_destination."""

    async def serve(chan: Channel, plane: Plane) -> TransferReport:
        dest = Destination([TransferRoot(f"/default/{src}", str(dst), "", True)],
                           Verb.COPY, TransferOptions(), NullObserver())
        return await run_destination(chan, plane, dest)

    root = pb.Root(src=src, dst=str(dst), prefix="", is_dir=True)
    return await session_with_intruders(arena, pb.DESTINATION, root, streams, intruders,
                                        serve)


def test_wrong_tokens_are_closed_and_the_session_completes(arena: Arena) -> None:
    """During a push and then a pull (real session code on 2 streams): a wrong 32-byte
    token, a short one and the previous session's token are each closed without a byte,
    and the transfer completes on the good streams with the right tree. Once the streams
    are in, the granted port accepts nobody."""
    pulled = arena.tmp / "pulled"

    def wrong_and_short(grant: pb.DataGrant) -> list[socket.socket]:
        wrong = bytes(b ^ 0x5A for b in grant.token)
        return [connect(grant.port, preface(wrong), shut=False),
                connect(grant.port, preface(grant.token[:16]), shut=True),
                connect(grant.port, preface(b""), shut=True)]

    async def attack() -> None:
        report, first, bad = await push_with_intruders(arena, arena.honest, "pushed", 2,
                                                       wrong_and_short)
        assert report.failures == [] and report.stats.files_transferred > 0
        assert [closed_without_reply(sock) for sock in bad] == [True] * len(bad)
        with pytest.raises(ConnectionRefusedError):
            connect(first.port, preface(first.token), shut=False).close()

        def stale(grant: pb.DataGrant) -> list[socket.socket]:
            return [connect(grant.port, preface(first.token), shut=False),
                    *wrong_and_short(grant)]

        report, _, bad = await pull_with_intruders(arena, "pushed", pulled, 2, stale)
        assert report.failures == [] and report.stats.files_transferred > 0
        assert [closed_without_reply(sock) for sock in bad] == [True] * len(bad)

    asyncio.run(attack())
    assert_same_tree(arena.honest, arena.module / "pushed")
    assert_same_tree(arena.honest, pulled)
    arena.ours.add(pulled.name)
    arena.check()
    arena.check_still_serves()


def test_stalled_handshakes_do_not_starve_the_good_streams(arena: Arena) -> None:
    """Connections to the granted port that send a partial preface (or nothing) and then
    hold still must not keep the good streams out: the session completes, and promptly."""

    def stallers(grant: pb.DataGrant) -> list[socket.socket]:
        return [connect(grant.port, preface(grant.token[:16]), shut=False),
                connect(grant.port, b"", shut=False)]

    async def attack() -> float:
        started = time.monotonic()
        report, _, bad = await push_with_intruders(arena, arena.honest, "pushed", 2, stallers)
        elapsed = time.monotonic() - started
        assert report.failures == [] and report.stats.files_transferred > 0
        assert [closed_without_reply(sock) for sock in bad] == [True] * len(bad)
        return elapsed

    elapsed = asyncio.run(attack())
    assert elapsed < 4.0, f"the session waited {elapsed:.1f}s on stalled handshakes"
    assert_same_tree(arena.honest, arena.module / "pushed")
    arena.check()
    arena.check_still_serves()


# -- 6. need-lists --------------------------------------------------------------------------


def test_a_file_needed_twice_is_refused(arena: Arena) -> None:
    """A DESTINATION may answer a batch in several Needs (more=True until the last), but
    naming a file it already asked for ends the session: nothing is sent twice."""
    (arena.module / "twice").mkdir()
    (arena.module / "twice" / "a").write_bytes(b"a" * 1000)
    (arena.module / "twice" / "b").write_bytes(b"b" * 1000)
    refusals: list[str] = []

    async def attack() -> None:
        async with peer(arena.daemon) as p:
            await p.send(hello=hello(pb.DESTINATION, ["/default/twice/"]))
            await p.expect("welcome")
            await p.send(roots=pb.Roots(roots=[pb.Root(src="twice", dst="got", prefix="",
                                                       is_dir=True)]))
            socks = await asyncio.to_thread(dial, (await p.expect("grant")).grant)
            try:
                batch = (await p.expect("manifest")).manifest
                files = [record.id for record in read_records(batch.entries)
                         if isinstance(record, EntryRecord)]
                assert len(files) == 2
                await p.send(needs=pb.Needs(batch=batch.batch, ids=files[:1], more=True))
                await p.send(needs=pb.Needs(batch=batch.batch, ids=files[:1], more=True))
                refusals.append(await p.refusal())
            finally:
                close(socks)

    asyncio.run(attack())
    assert len(refusals) == 1 and "already needed" in refusals[0], refusals
    arena.ours.add("got")
    arena.check_still_serves()


# -- 7. the control port --------------------------------------------------------------------


def test_many_half_open_connections_do_not_keep_honest_clients_out(arena: Arena) -> None:
    """Slowloris: 200 connections to the daemon's gRPC port that send nothing, or half of
    HTTP/2's preface, and hold still. Meanwhile an honest push and pull complete, promptly;
    the daemon keeps serving after they are dropped."""
    held = []
    try:
        for n in range(200):
            sock = socket.create_connection(("127.0.0.1", arena.daemon.port), timeout=10)
            if n % 2:
                sock.sendall(b"PRI * HTTP/2.0\r\n")
            held.append(sock)
        started = time.monotonic()
        arena.check_still_serves()
        elapsed = time.monotonic() - started
    finally:
        for sock in held:
            sock.close()
    assert elapsed < 20, f"honest transfers took {elapsed:.1f}s beside half-open connections"
    arena.check_still_serves("after")
