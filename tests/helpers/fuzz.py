"""Shared pieces of the fuzz tests (tests/fuzz).

``fuzz_settings``   the selected hypothesis profile (tests/fuzz/conftest.py), optionally with a
                    share of its examples for a slower target.
``mutated``         a strategy of byte strings made from a valid one by structural mutations:
                    flipped and replaced bytes, big-endian fields set to boundary values,
                    cuts, insertions, duplicated and deleted spans.
``messages``        random protobuf messages of a generated class, field by field from its
                    descriptor (oneofs respected, nested messages included).
``Sandbox``         a fresh directory whose ``target`` the code under test may write, with
                    things around it (``outside/``, a symlink from target to it) that must
                    never change; ``changed_outside()`` lists what did.
``run_session``     one session role (run_source or run_destination) against a scripted
                    hostile peer on an in-memory control stream, bounded in time;
                    ``receive_into`` runs a DESTINATION into a directory that way, and a
                    script may end with ``DONE``, an honest SOURCE's last frame.
``peak_allocation`` the peak bytes Python allocated while running a function.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
import struct
import tempfile
import threading
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import settings
from hypothesis import strategies as st

from blit_core.errors import BlitError
from blit_core.models import FileEntry, TransferReport, TransferStats
from blit_core.net.generated import blit_pb2 as pb
from blit_core.net.session import Channel, Plane, run_destination
from blit_core.options import TransferOptions, Verb
from blit_core.progress import NullObserver
from blit_core.transfer.destination import Destination
from blit_core.transfer.jobs import TransferRoot
from blit_core.wire.report import report_to_wire
from helpers.treecheck import diff_snapshots, find_temp_files, snapshot

T = TypeVar("T")

# -- settings --------------------------------------------------------------------------------


def fuzz_settings(share: float = 1.0) -> settings:
    """The active fuzz profile, with `share` of its examples (a slower target takes fewer)."""
    profile = settings.get_profile("fuzz-active")
    return settings(profile, max_examples=max(10, int(profile.max_examples * share)))


# -- mutations -------------------------------------------------------------------------------

BOUNDARY_U64 = (0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 1 << 24, (1 << 30) + 1, (1 << 31), (1 << 32) - 1,
                1 << 40, (1 << 40) + 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1)
_U64 = struct.Struct(">Q")


@st.composite
def mutated(draw: st.DrawFn, base: bytes, max_mutations: int = 4) -> bytes:
    """`base` after a few structural mutations (possibly none)."""
    data = bytearray(base)
    for _ in range(draw(st.integers(0, max_mutations))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(("flip", "byte", "u64", "cut", "insert", "dup", "delete")))
        if kind == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte" and at < len(data):
            data[at] = draw(st.sampled_from((0, 1, 0x2F, 0x2E, 0x7F, 0x80, 0xFF)))
        elif kind == "u64":
            value = draw(st.sampled_from(BOUNDARY_U64))
            width = draw(st.sampled_from((1, 2, 4, 8)))
            data[at:at + width] = _U64.pack(value)[8 - width:]
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "dup":
            end = draw(st.integers(at, min(len(data), at + 600)))
            data[end:end] = data[at:end]
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 64))]
    return bytes(data)


# -- protobuf messages -----------------------------------------------------------------------

_INTEGERS = {
    FieldDescriptor.TYPE_INT32: (-(1 << 31), (1 << 31) - 1),
    FieldDescriptor.TYPE_SINT32: (-(1 << 31), (1 << 31) - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(1 << 31), (1 << 31) - 1),
    FieldDescriptor.TYPE_UINT32: (0, (1 << 32) - 1),
    FieldDescriptor.TYPE_FIXED32: (0, (1 << 32) - 1),
    FieldDescriptor.TYPE_INT64: (-(1 << 63), (1 << 63) - 1),
    FieldDescriptor.TYPE_SINT64: (-(1 << 63), (1 << 63) - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(1 << 63), (1 << 63) - 1),
    FieldDescriptor.TYPE_UINT64: (0, (1 << 64) - 1),
    FieldDescriptor.TYPE_FIXED64: (0, (1 << 64) - 1),
}


def _scalars(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type in _INTEGERS:
        low, high = _INTEGERS[field.type]
        return st.one_of(st.integers(low, high), st.sampled_from([low, high, 0, 1]),
                         st.integers(0, 64))
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type == FieldDescriptor.TYPE_STRING:
        return st.text(max_size=40)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=200)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return st.one_of(st.sampled_from([v.number for v in field.enum_type.values]),
                         st.integers(-5, 100))
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(width=32 if field.type == FieldDescriptor.TYPE_FLOAT else 64)
    raise AssertionError(f"no strategy for protobuf field type {field.type}")


def messages(cls: type[T], depth: int = 3) -> st.SearchStrategy[T]:
    """Random messages of the generated class `cls`: each field set or left out, one member
    (or none) of each oneof, nested messages down to `depth`."""

    @st.composite
    def build(draw: st.DrawFn) -> T:
        msg = cls()
        desc = msg.DESCRIPTOR
        chosen = {draw(st.sampled_from(list(oneof.fields))).name
                  for oneof in desc.oneofs if draw(st.booleans())}
        in_oneof = {field.name for oneof in desc.oneofs for field in oneof.fields}
        for field in desc.fields:
            if field.name not in chosen and (field.name in in_oneof or not draw(st.booleans())):
                continue
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                if depth == 0:
                    continue
                sub = messages(message_factory.GetMessageClass(field.message_type), depth - 1)
                if field.is_repeated:
                    for item in draw(st.lists(sub, max_size=3)):
                        getattr(msg, field.name).add().CopyFrom(item)
                else:
                    getattr(msg, field.name).SetInParent()
                    getattr(msg, field.name).CopyFrom(draw(sub))
            elif field.is_repeated:
                getattr(msg, field.name).extend(draw(st.lists(_scalars(field), max_size=5)))
            else:
                setattr(msg, field.name, draw(_scalars(field)))
        return msg

    return build()


# -- manifests -------------------------------------------------------------------------------

FILE = stat.S_IFREG | 0o644
DIR = stat.S_IFDIR | 0o755
LINK = stat.S_IFLNK | 0o777
MTIME_NS = 1_600_000_000_123_456_789


def entry(name: str, mode: int, size: int = 0, target: str | None = None) -> FileEntry:
    """A manifest entry as a SOURCE would send it."""
    return FileEntry(name, mode, size, MTIME_NS, MTIME_NS, 0, 0, 1, 1, 1, 0, target)


# -- the sandbox -----------------------------------------------------------------------------


class Sandbox:
    """A fresh directory under `base`: `target/` (which the code under test may change),
    `outside/` holding a file, and `target/escape`, a symlink to `outside/`. Everything but
    target's contents must stay as it was."""

    def __init__(self, base: Path) -> None:
        self.root = Path(tempfile.mkdtemp(dir=base))
        self.target = self.root / "target"
        self.outside = self.root / "outside"
        self.target.mkdir()
        self.outside.mkdir()
        (self.outside / "canary").write_bytes(b"must not change\n")
        (self.target / "escape").symlink_to("../outside")
        self._before: dict[str, tuple] = {}

    def seal(self) -> None:
        """Take the picture `changed_outside` compares with (after setting target up)."""
        self._before = snapshot(self.root)

    def changed_outside(self) -> list[str]:
        """What changed outside `target/` since `seal()`; `target` must still be a directory."""
        problems = diff_snapshots(self._before, snapshot(self.root),
                                  ignore=lambda rel: rel == "target" or rel.startswith("target/"))
        if self.target.is_symlink() or not self.target.is_dir():
            problems.append("target is no longer a directory")
        return problems

    def temp_files(self) -> list[str]:
        return find_temp_files(self.target)

    def remove(self) -> None:
        for dirpath, dirnames, _ in os.walk(self.root):  # modes from a manifest may be 0
            for name in dirnames:
                path = os.path.join(dirpath, name)
                if not os.path.islink(path):
                    os.chmod(path, 0o700)
        shutil.rmtree(self.root)

    @classmethod
    @contextlib.contextmanager
    def around(cls, base: Path) -> Iterator[Sandbox]:
        sandbox = cls(base)
        try:
            yield sandbox
        finally:
            sandbox.remove()


# -- a scripted peer -------------------------------------------------------------------------

PEER_SILENCE_S = 0.2  # the scripted peer says nothing more after its script: it times out
SESSION_LIMIT_S = 20.0  # a session still running after this long is a hang
THREAD_LIMIT_S = 5.0  # ... and so is a thread of its own left running after it
_SESSION_THREADS = "fuzz-session"


async def _cancel_all(tasks: set[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


Sent = Callable[[list[pb.Frame]], bool]  # a script's wait: until the role sent such frames


def manifest_ended(sent: list[pb.Frame]) -> bool:
    """A Sent condition: the SOURCE sent the end of its manifest."""
    return any(frame.HasField("manifest") and not frame.manifest.entries for frame in sent)


def run_session(script: list[pb.Frame | Sent],
                serve: Callable[[Channel, Plane], Awaitable[T]],
                ) -> tuple[T | BlitError, list[pb.Frame]]:
    """Run `serve` (a session role) on a control stream whose peer sends the frames of
    `script` (each condition in it waits until the frames the role sent satisfy it), then
    falls silent; data rides inside the stream (no sockets). Returns the role's result or the
    BlitError it ended with, and the frames it sent. Any other exception propagates; a role
    still running after SESSION_LIMIT_S, or a thread it left waiting, fails the test."""
    sent: list[pb.Frame] = []

    async def session() -> T | BlitError:
        steps = iter(script)

        async def read() -> bytes | None:  # the Channel takes frames serialized
            for step in steps:
                if isinstance(step, pb.Frame):
                    return step.SerializeToString()
                while not step(sent):  # the Channel's timeout bounds the wait
                    await asyncio.sleep(0.005)
            await asyncio.Event().wait()  # silent until the Channel's timeout
            return None

        async def write(raw: bytes) -> None:
            sent.append(pb.Frame.FromString(raw))

        chan = Channel(read, write, PEER_SILENCE_S, "the fuzzer")
        async with chan.running():
            try:
                return await asyncio.wait_for(serve(chan, Plane([], 0)), SESSION_LIMIT_S)
            except TimeoutError:
                raise AssertionError(f"the session hung for {SESSION_LIMIT_S} s") from None
            except BlitError as exc:
                return exc

    loop = asyncio.new_event_loop()
    loop.set_default_executor(ThreadPoolExecutor(thread_name_prefix=_SESSION_THREADS))
    try:
        outcome = loop.run_until_complete(session())
    finally:
        loop.run_until_complete(_cancel_all(asyncio.all_tasks(loop)))
        loop.close()  # its executor's idle threads end; a blocked one would not
    threads = [t for t in threading.enumerate() if t.name.startswith(_SESSION_THREADS)]
    for thread in threads:
        thread.join(THREAD_LIMIT_S)
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"threads of the session still blocked after it ended: {stuck}"
    return outcome, sent


def receive_into(target: Path, script: list[pb.Frame],
                 verb: Verb = Verb.COPY) -> TransferReport | BlitError:
    """A DESTINATION session into the directory `target`, fed `script`."""

    async def serve(chan: Channel, plane: Plane) -> TransferReport:
        dest = Destination([TransferRoot("/src", str(target), "", True)], verb,
                           TransferOptions(), NullObserver())
        return await run_destination(chan, plane, dest)

    return run_session(script, serve)[0]


DONE = pb.Frame(done=pb.Done(report=report_to_wire(TransferReport(
    verb="copy", dry_run=False, stats=TransferStats(), failures=[], failures_omitted=0,
    warnings=[], duration_s=0.0))))


# -- memory ----------------------------------------------------------------------------------


def peak_allocation(run: Callable[[], object]) -> int:
    """The most bytes Python held at once, beyond what it held before, while `run` ran."""
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        run()
        return tracemalloc.get_traced_memory()[1] - start
    finally:
        if not tracing:
            tracemalloc.stop()
