"""Fuzzing tar-shard extraction: hostile members (names climbing out or absolute, links,
devices, directories, GNU and pax long names, sizes beyond the shard) and mutated or garbage
shards.

The reader yields only safe relative paths with data inside the shard, or raises
ProtocolError. Applied by a real DESTINATION session (the manifest asks for a few files), a
shard only ever writes inside the destination: after each example nothing outside it changed,
no temp file is left, and every file committed is one that was asked for, with its member's
size. (tests/remote/test_attacks.py sends a few such shards to a daemon, one by one.)"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from helpers.fuzz import (
    DIR,
    DONE,
    FILE,
    Sandbox,
    entry,
    fuzz_settings,
    mutated,
    receive_into,
)
from hypothesis import event, given
from hypothesis import strategies as st

from blit_core.errors import BlitError, ProtocolError
from blit_core.net.generated import blit_pb2 as pb
from blit_core.pathsafe import validate_wire_path
from blit_core.wire import frames, tarshard
from blit_core.wire.manifest import ManifestWriter

ASKED = {"a": b"alpha\n", "sub/b": b"", "sub/deep/c": b"gamma" * 300}  # the manifest's files
# Member names, "{outside}" standing for the sandbox's outside/ directory (absolute).
NAMES = [*ASKED, "../outside/pwned", "../../pwned", "/etc/blit-fuzz-pwned", "{outside}/pwned",
         "escape/pwned", "sub/../../outside/pwned", "./a", "a/", "sub//b", "", ".", "..",
         "sub/deep/../../a", "a\0b", "x" * 300, "sub/" + "y" * 200, "sub", "escape"]
TYPES = [tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
         tarfile.BLKTYPE, tarfile.FIFOTYPE, tarfile.DIRTYPE, tarfile.CONTTYPE]
LINK_TARGETS = ["../outside/canary", "/etc/passwd", "{outside}/canary", "a", "escape"]


@st.composite
def members(draw: st.DrawFn) -> tuple[str, bytes, bytes, str]:
    """(name, type, data, link target) of one member."""
    name = draw(st.one_of(st.sampled_from(NAMES), st.text(max_size=12)))
    data = ASKED.get(name, b"") if draw(st.booleans()) else draw(st.binary(max_size=700))
    return name, draw(st.sampled_from(TYPES)), data, draw(st.sampled_from(LINK_TARGETS))


def tar_shard(items: list[tuple[str, bytes, bytes, str]], tar_format: int,
              outside: str) -> bytes:
    """A tar stream (as Python's tarfile writes it) of those members."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tar_format) as tar:
        for name, kind, data, target in items:
            info = tarfile.TarInfo(name.replace("{outside}", outside).replace("\0", ""))
            info.type, info.linkname = kind, target.replace("{outside}", outside)
            info.size = len(data) if kind in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
            tar.addfile(info, io.BytesIO(data) if info.size else None)
    return out.getvalue()


def blit_shard(items: list[tuple[str, bytes, bytes, str]], outside: str) -> bytes:
    """A shard as blit's SOURCE writes it (regular members only, any names)."""
    out = bytearray()
    for name, _, data, _ in items:
        named = name.replace("{outside}", outside)
        out += tarshard.member_header(named, len(data), 0o644, 0) + data
        out += tarshard.padding(len(data))
    return bytes(out + tarshard.END_OF_ARCHIVE)


@st.composite
def shards(draw: st.DrawFn, outside: str) -> bytes:
    items = draw(st.lists(members(), max_size=5))
    if draw(st.booleans()):  # the files asked for, among the others
        honest = [(name, tarfile.REGTYPE, data, "") for name, data in ASKED.items()]
        items = draw(st.permutations(honest + items))
    kind = draw(st.sampled_from(["blit", "gnu", "pax", "ustar", "garbage"]))
    if kind == "garbage":
        return draw(st.binary(max_size=3000))
    if kind == "blit":
        shard = blit_shard(items, outside)
    else:
        tar_format = {"gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT,
                      "ustar": tarfile.USTAR_FORMAT}[kind]
        try:
            shard = tar_shard(items, tar_format, outside)
        except ValueError:  # a name ustar cannot hold
            shard = blit_shard(items, outside)
    return draw(mutated(shard, max_mutations=3))


@fuzz_settings()
@given(data=st.data())
def test_the_reader_yields_safe_paths_with_data_from_the_shard(data: st.DataObject) -> None:
    shard = data.draw(shards("/tmp/outside"))
    try:
        for path, content in tarshard.read_members(shard):
            assert validate_wire_path(path) == path  # "" (the root) is matched like any name
            assert content.obj is not None and len(content) <= len(shard)
    except ProtocolError:
        pass


def _asking_manifest() -> bytes:
    """A root directory holding the ASKED files (and their directories)."""
    writer = ManifestWriter()
    writer.root(0, 1, entry("", DIR))
    listings = {"": [("a", FILE, 10), ("sub", DIR, 0)], "sub": [("b", FILE, 11), ("deep", DIR, 0)],
                "sub/deep": [("c", FILE, 12)]}
    for rel, names in listings.items():
        writer.dir_start(0, rel)
        for name, mode, entry_id in names:
            path = f"{rel}/{name}" if rel else name
            writer.entry(entry_id, entry(name, mode, len(ASKED.get(path, b""))))
        writer.dir_end(False)
    return writer.take()


MANIFEST = _asking_manifest()


def _shard_script(shard: bytes) -> list[pb.Frame]:
    stream = frames.encode_shard_header(len(shard)) + shard + frames.encode_end()
    return [pb.Frame(manifest=pb.Manifest(batch=0, entries=MANIFEST)),
            pb.Frame(manifest=pb.Manifest(batch=1)), pb.Frame(data=stream), DONE]


@fuzz_settings(0.5)
@given(data=st.data())
def test_a_shard_writes_nothing_outside_the_destination(tmp_path: Path,
                                                        data: st.DataObject) -> None:
    with Sandbox.around(tmp_path) as box:
        box.seal()
        shard = data.draw(shards(str(box.outside)))
        outcome = receive_into(box.target, _shard_script(shard))
        event(type(outcome).__name__)
        assert box.changed_outside() == []
        assert box.temp_files() == []
        for rel, content in ASKED.items():  # the SOURCE chooses the bytes, not their number
            path = box.target / rel
            assert not path.exists() or path.stat().st_size == len(content), rel
        committed = {str(p.relative_to(box.target)) for p in box.target.rglob("*")
                     if p.is_file() and not p.is_symlink()}
        assert committed <= set(ASKED)
        if not isinstance(outcome, BlitError):
            assert committed == set(ASKED)
