"""Fuzzing the manifest and need-list handling, at both ends of a session.

- The record reader: any bytes give records with safe names and paths, or ProtocolError.
- A DESTINATION fed mutated manifests of hostile trees (names of links out of it, a symlink
  already in it, listings of what is not a directory), random Frames built from the generated
  protobuf classes and data for what it asked: it ends with a report or a BlitError, writes
  nothing outside its directory and leaves no temp file.
- A SOURCE (copy or move, as a client or in a daemon's module) fed random Needs, Signatures,
  DeltaDone and Summary frames (confirmations of files it did not send, or of files reached
  through a symlink to outside): a report or a BlitError, and nothing outside its tree changes
  (nothing at all, for a copy).
(tests/remote/test_attacks.py sends a few hand-made hostile manifests to a daemon.)"""

from __future__ import annotations

import os
from pathlib import Path

from helpers.fuzz import (
    DIR,
    DONE,
    FILE,
    LINK,
    MTIME_NS,
    Sandbox,
    Sent,
    entry,
    fuzz_settings,
    manifest_ended,
    messages,
    mutated,
    receive_into,
    run_session,
)
from hypothesis import event, example, given
from hypothesis import strategies as st

from blit_core.errors import ProtocolError
from blit_core.net.generated import blit_pb2 as pb
from blit_core.net.session import Channel, Plane, run_source
from blit_core.options import TransferOptions, Verb
from blit_core.pathsafe import validate_wire_path
from blit_core.progress import NullObserver
from blit_core.transfer.jobs import TransferRoot
from blit_core.wire import frames
from blit_core.wire.manifest import (
    Confirm,
    DirStart,
    EntryRecord,
    ManifestWriter,
    RootRecord,
    read_records,
)

NAMES = ["a", "b", "sub", "escape", "é", "with space", "...", ".hidden", "x" * 255]
TARGETS = ["../outside", "../outside/canary", "/etc/passwd", "a", "sub", "escape", ".."]
MODES = [FILE, DIR, LINK, FILE | 0o4000, DIR & ~0o777, 0o010644, 0o020644, 0]


@st.composite
def trees(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, int]]]:
    """A manifest batch of a small tree (a root directory, its listing, then listings of
    some of its entries), and the (id, size) of its files."""
    writer, files, next_id = ManifestWriter(), [], 2
    writer.root(0, 1, entry("", draw(st.sampled_from([DIR, DIR, FILE, LINK]))))
    listings = ["", *draw(st.lists(st.sampled_from(["sub", "escape", "a", "sub/sub"]),
                                   max_size=2, unique=True))]
    for rel in listings:
        writer.dir_start(0, rel)
        names = sorted(draw(st.lists(st.sampled_from(NAMES), max_size=4, unique=True)))
        for name in names:
            mode = draw(st.sampled_from(MODES))
            size = draw(st.integers(0, 3000)) if mode & 0o170000 == 0o100000 else 0
            target = draw(st.sampled_from(TARGETS)) if mode == LINK else None
            writer.entry(next_id, entry(name, mode, size, target))
            if mode & 0o170000 == 0o100000:
                files.append((next_id, size))
            next_id += 1
        writer.dir_end(draw(st.booleans()))
    return writer.take(), files


@fuzz_settings()
@given(data=st.one_of(st.binary(max_size=600), trees().flatmap(lambda t: mutated(t[0]))))
def test_the_reader_gives_records_with_safe_names_or_a_protocol_error(data: bytes) -> None:
    try:
        for record in read_records(data):
            if isinstance(record, DirStart | Confirm):
                assert validate_wire_path(record.rel) == record.rel
            elif isinstance(record, EntryRecord | RootRecord):
                name = record.entry.name
                assert "/" not in name and name not in (".", "..") and "\0" not in name
                assert name or isinstance(record, RootRecord)
    except ProtocolError:
        pass


@st.composite
def destination_scripts(draw: st.DrawFn) -> list[pb.Frame]:
    """Manifest batches (mutated), random frames among them, data for the files."""
    script = []
    stream = bytearray()
    for batch in range(draw(st.integers(1, 2))):
        entries, files = draw(trees())
        script.append(pb.Frame(manifest=pb.Manifest(batch=batch, entries=draw(mutated(entries)))))
        for need_id, size in files:
            if draw(st.integers(0, 3)) == 0:  # half sent, then again (new id perhaps reused)
                new_id = frames.FIRST_REDO_ID + draw(st.integers(0, 2))
                new_size = draw(st.integers(0, 3000))
                stream += frames.encode_range_header(need_id, 0, size // 2) + bytes(size // 2)
                stream += frames.encode_redo(need_id, new_id, new_size, MTIME_NS)
                need_id, size = new_id, new_size
            stream += frames.encode_range_header(need_id, 0, size) + bytes(size)
    stream += frames.encode_end()
    script += draw(st.lists(messages(pb.Frame), max_size=2))
    script.append(pb.Frame(manifest=pb.Manifest(batch=len(script))))
    script.append(pb.Frame(data=draw(mutated(bytes(stream), max_mutations=2))))
    return draw(st.permutations(script)) if draw(st.booleans()) else [*script, DONE]


@fuzz_settings(0.5)
@given(script=destination_scripts(), verb=st.sampled_from([Verb.COPY, Verb.MIRROR]))
def test_a_hostile_source_writes_nothing_outside_the_destination(
        tmp_path: Path, script: list[pb.Frame], verb: Verb) -> None:
    with Sandbox.around(tmp_path) as box:
        (box.target / "sub").mkdir()
        (box.target / "sub" / "a").write_bytes(b"kept\n")
        box.seal()
        outcome = receive_into(box.target, script, verb)
        event(type(outcome).__name__)
        assert box.changed_outside() == []
        assert box.temp_files() == []


# What a DESTINATION may confirm (with the true size): files sent, the canary outside through
# the tree's `escape` symlink, a directory, the root, nothing.
CANARY = ("escape/canary", len(b"must not change\n"))
CONFIRMED = [("a", 5), ("sub/b", 5), CANARY, CANARY, ("sub", 0), ("", 0), ("missing", 0)]


@st.composite
def confirmations(draw: st.DrawFn) -> bytes:
    """Summary confirmations, of any root, with their true size and mtime or not."""
    writer = ManifestWriter()
    for _ in range(draw(st.integers(1, 4))):
        rel, size = draw(st.sampled_from(CONFIRMED))
        if draw(st.integers(0, 3)) == 0:
            size += 1
        writer.confirm(draw(st.sampled_from([0, 0, 0, 0, 1, 1 << 31])), rel, size, MTIME_NS)
    records = writer.take()
    return draw(st.just(records) | mutated(records, max_mutations=1))


ids = st.lists(st.integers(0, 12) | st.sampled_from([1 << 32, (1 << 64) - 1]), max_size=5)
summaries = st.builds(
    lambda confirmed, events, report, last: pb.Frame(summary=pb.Summary(
        confirmed=confirmed, events=events, report=report, last=last)),
    confirmations(), st.sampled_from([b"", b'[["c", "a"]]', b"[1]", b"{", b'[["x"]]']),
    st.sampled_from([DONE.done.report, b"", b"{}", b'{"stats": 1}']), st.booleans())
answers = st.one_of(
    st.builds(lambda batch, wanted, more: pb.Frame(needs=pb.Needs(batch=batch, ids=wanted,
                                                                  more=more)),
              st.sampled_from([0, 0, 0, 1, 1 << 40]), ids, st.booleans()),
    st.builds(lambda ended, whole: pb.Frame(delta_done=pb.DeltaDone(ended=ended, whole=whole)),
              ids, ids),
    summaries,
    messages(pb.Signature).map(lambda sig: pb.Frame(signature=sig)),
    messages(pb.Frame),
)


@st.composite
def source_scripts(draw: st.DrawFn) -> list[pb.Frame | Sent]:
    """After the manifest: random answers; or those of an honest DESTINATION (it needs the
    files, then sums up) but for the confirmations."""
    script: list[pb.Frame | Sent] = [manifest_ended]
    if draw(st.booleans()):
        return script + draw(st.lists(answers, max_size=5))
    script.append(pb.Frame(needs=pb.Needs(batch=0, ids=[1, 4])))  # a, escape, sub; sub/b
    return [*script, pb.Frame(summary=pb.Summary(confirmed=draw(confirmations()),
                                                 report=DONE.done.report, last=True))]


def honest_answers(root: int, rel: str, size: int) -> list[pb.Frame | Sent]:
    """An honest DESTINATION's answers, with one confirmation (found by fuzzing)."""
    writer = ManifestWriter()
    writer.confirm(root, rel, size, MTIME_NS)
    return [manifest_ended, pb.Frame(needs=pb.Needs(batch=0, ids=[1, 4])),
            pb.Frame(summary=pb.Summary(confirmed=writer.take(), report=DONE.done.report,
                                        last=True))]


@fuzz_settings(0.5)
@example(script=honest_answers(0, "a", 5), verb=Verb.COPY, jailed=True)
@example(script=honest_answers(0, *CANARY), verb=Verb.MOVE, jailed=False)
@example(script=honest_answers(7, "a", 5), verb=Verb.MOVE, jailed=False)
@given(script=source_scripts(), verb=st.sampled_from([Verb.COPY, Verb.MOVE, Verb.MOVE]),
       jailed=st.sampled_from([False, False, True]))
def test_a_hostile_destination_changes_nothing_outside_the_source(
        tmp_path: Path, script: list[pb.Frame | Sent], verb: Verb, jailed: bool) -> None:
    with Sandbox.around(tmp_path) as box:
        tree = box.target
        (tree / "a").write_bytes(b"alpha")
        (tree / "sub").mkdir()
        (tree / "sub" / "b").write_bytes(b"bravo")
        for path in (tree / "a", tree / "sub" / "b", box.outside / "canary"):
            os.utime(path, ns=(MTIME_NS, MTIME_NS))
        box.seal()
        before = sorted(str(p) for p in tree.rglob("*"))

        async def serve(chan: Channel, plane: Plane) -> object:
            return await run_source(chan, plane, [TransferRoot(str(tree), "/dst", "", True)],
                                    TransferOptions(), verb, NullObserver(),
                                    jail=str(box.root) if jailed else None)

        outcome, _ = run_session(script, serve)
        event(type(outcome).__name__)
        assert box.changed_outside() == []
        if verb is Verb.COPY:
            assert sorted(str(p) for p in tree.rglob("*")) == before


def test_a_source_that_fails_at_once_leaves_no_thread_waiting(tmp_path: Path) -> None:
    """Found by fuzzing: a SOURCE whose session failed while its scan was still listing
    left a thread waiting for the next manifest batch forever (asyncio.run never returned;
    a daemon lost a worker thread per session)."""
    for i in range(2000):
        (tmp_path / f"f{i}").write_bytes(b"")

    async def serve(chan: Channel, plane: Plane) -> object:
        return await run_source(chan, plane, [TransferRoot(str(tmp_path), "/dst", "", True)],
                                TransferOptions(), Verb.COPY, NullObserver())

    outcome, _ = run_session([pb.Frame(needs=pb.Needs(batch=1 << 40))], serve)
    assert isinstance(outcome, ProtocolError)  # and run_session found no thread left
