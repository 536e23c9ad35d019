"""Fuzzing delta application and the signature reader.

The Rebuilder, given any run of operations (copies of blocks beyond the basis, of huge or
negative counts, literals past the file's end), writes only copies of the basis's blocks and
the literals, never past the file's declared size, or refuses with DeltaMismatch (the file is
sent whole) or ProtocolError. A DESTINATION session fed hostile delta records keeps the file
either as it was or exactly as the delta's end declares it (size and checksum), writes nothing
outside its directory and leaves no temp file. The signature reader accepts only parts
consistent with the basis it declares, and allocates only for the parts that arrived.
(tests/core/delta/test_delta_algorithm.py checks honest deltas against a reference.)"""

from __future__ import annotations

import os
import random
from pathlib import Path

import xxhash
from helpers.fuzz import (
    BOUNDARY_U64,
    DIR,
    DONE,
    FILE,
    Sandbox,
    entry,
    fuzz_settings,
    mutated,
    peak_allocation,
    receive_into,
)
from hypothesis import event, given
from hypothesis import strategies as st

from blit_core.delta.files import DeltaMismatch, Rebuilder
from blit_core.delta.ops import Copy, copy_length
from blit_core.delta.signature import MAX_BLOCK, SignatureReader, block_size_for
from blit_core.errors import ProtocolError
from blit_core.net.generated import blit_pb2 as pb
from blit_core.wire import frames
from blit_core.wire.manifest import ManifestWriter

BASIS = random.Random(6).randbytes(80 << 10)  # worth a delta (64 KiB or more)
BLOCK = block_size_for(len(BASIS))
BLOCKS = -(-len(BASIS) // BLOCK)
NEW_SIZE = len(BASIS) + 100  # of "big" at the SOURCE

block_numbers = st.one_of(st.integers(0, BLOCKS + 2), st.sampled_from(BOUNDARY_U64[:11]))
ops = st.lists(st.one_of(
    st.builds(Copy, block_numbers, st.one_of(st.integers(0, 8), st.sampled_from(BOUNDARY_U64))),
    st.binary(max_size=3000),
), max_size=8)


def applied(operations: list[Copy | bytes]) -> bytes:
    """What honest operations make of BASIS (copies cut at its end, as copy_length says)."""
    out = bytearray()
    for op in operations:
        if isinstance(op, Copy):
            start = op.block * BLOCK
            out += BASIS[start:start + copy_length(op, BLOCK, len(BASIS))]
        else:
            out += op
    return bytes(out)


@fuzz_settings()
@given(operations=st.lists(st.one_of(
    st.builds(Copy, st.integers(-3, BLOCKS + 2) | st.sampled_from(BOUNDARY_U64),
              st.integers(-3, 10) | st.sampled_from(BOUNDARY_U64)),
    st.binary(max_size=3000)), max_size=8),
    size=st.integers(0, 3 * len(BASIS)) | st.just(len(BASIS)), may_keep_basis=st.booleans())
def test_the_rebuilder_writes_basis_blocks_and_literals_within_the_size_or_refuses(
        tmp_path: Path, operations: list[Copy | bytes], size: int,
        may_keep_basis: bool) -> None:
    basis_path, out_path = tmp_path / "basis", tmp_path / "out"
    basis_path.write_bytes(BASIS)
    basis_fd = os.open(basis_path, os.O_RDONLY)
    out_fd = os.open(out_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    try:
        rebuild = Rebuilder(basis_fd, out_fd, BLOCK, len(BASIS), size,
                            basis_digest=xxhash.xxh3_128_digest(BASIS) if may_keep_basis
                            else None)
        done: list[Copy | bytes] = []
        for op in operations:
            try:
                if isinstance(op, Copy):
                    rebuild.copy(op)
                else:
                    rebuild.literal(op)
            except (DeltaMismatch, ProtocolError):
                break
            done.append(op)
        written = os.pread(out_fd, 4 * len(BASIS) + 1, 0)
    finally:
        os.close(basis_fd)
        os.close(out_fd)
    assert rebuild.offset <= size
    if rebuild.same_as_basis:  # nothing written: the basis itself is the file so far
        assert written == b"" and applied(done) == BASIS[:rebuild.offset]
    else:
        assert len(written) == rebuild.offset and written == applied(done)


def _delta_manifest() -> bytes:
    """The root directory holding "big", now of another size and mtime than the basis."""
    writer = ManifestWriter()
    writer.root(0, 1, entry("", DIR))
    writer.dir_start(0, "")
    writer.entry(7, entry("big", FILE, NEW_SIZE))
    writer.dir_end(False)
    return writer.take()


MANIFEST = _delta_manifest()


@st.composite
def delta_streams(draw: st.DrawFn) -> tuple[bytes, bytes, int]:
    """(data-plane bytes of a delta of "big", the content it makes, the size its end
    declares); its checksum is right or not, and the bytes may be mutated."""
    operations = draw(ops)
    short = NEW_SIZE - len(applied(operations))
    if short >= 0 and draw(st.booleans()):  # as long as the manifest says
        operations.append(random.Random(draw(st.integers(0, 255))).randbytes(short))
    content = applied(operations)
    size = draw(st.one_of(st.just(len(content)), st.just(NEW_SIZE),
                          st.integers(0, 1 << 20)))
    digest = draw(st.one_of(st.just(xxhash.xxh3_128_digest(content)),
                            st.binary(min_size=16, max_size=16)))
    need_id = draw(st.sampled_from([7, 7, 7, 7, 1, 8]))
    out = bytearray(frames.encode_delta_start(need_id))
    for op in operations:
        if isinstance(op, Copy):
            out += frames.COPY_RECORD.pack(frames.COPY, op.block, op.count)
        else:
            out += frames.encode_literal_header(len(op)) + op
    out += frames.encode_delta_end(size, digest) + frames.encode_end()
    return draw(st.just(bytes(out)) | mutated(bytes(out), max_mutations=2)), content, size


@fuzz_settings(0.5)
@given(stream=delta_streams())
def test_a_hostile_delta_keeps_the_file_or_makes_exactly_what_it_declares(
        tmp_path: Path, stream: tuple[bytes, bytes, int]) -> None:
    data, _, _ = stream
    with Sandbox.around(tmp_path) as box:
        big = box.target / "big"
        big.write_bytes(BASIS)
        box.seal()
        outcome = receive_into(box.target, [
            pb.Frame(manifest=pb.Manifest(batch=0, entries=MANIFEST)),
            pb.Frame(manifest=pb.Manifest(batch=1)), pb.Frame(data=data), DONE])
        event(type(outcome).__name__)
        assert box.changed_outside() == []
        assert box.temp_files() == []
        result = big.read_bytes()
        if result != BASIS:
            event("rebuilt")
            assert len(result) == NEW_SIZE  # the size the manifest declared
            assert xxhash.xxh3_128_digest(result) in data  # the checksum the delta's end gave


headers = st.tuples(
    st.one_of(st.integers(0, MAX_BLOCK + 1), st.sampled_from(BOUNDARY_U64)),
    st.one_of(st.integers(0, 1 << 22), st.sampled_from(BOUNDARY_U64), st.integers(0, 1 << 64)),
)


@st.composite
def signature_parts(draw: st.DrawFn) -> tuple[int, int, list[tuple[bytes, bytes]]]:
    """(block size, basis size, parts): often a consistent header, parts of any length."""
    block_size, size = draw(headers)
    if draw(st.booleans()) and size < 1 << 44:
        block_size = block_size_for(size)
    parts = draw(st.lists(st.tuples(
        st.one_of(st.binary(max_size=64), st.builds(bytes, st.integers(0, 40_000))),
        st.one_of(st.binary(max_size=64), st.builds(bytes, st.integers(0, 40_000)))),
        max_size=4))
    return block_size, size, parts


@fuzz_settings()
@given(case=signature_parts())
def test_the_signature_reader_accepts_only_a_signature_of_its_basis(
        case: tuple[int, int, list[tuple[bytes, bytes]]]) -> None:
    block_size, size, parts = case
    signatures = []

    def read() -> None:
        try:
            reader = SignatureReader(block_size, size, 1)
            for weak, strong in parts:
                reader.add(weak, strong)
            signatures.append(reader.finish())
        except ProtocolError:
            pass

    peak = peak_allocation(read)
    received = sum(len(weak) + len(strong) for weak, strong in parts)
    assert peak <= 4 * received + (64 << 10), peak
    for sig in signatures:
        assert (sig.size, sig.block_size) == (size, block_size)
        assert len(sig.weak) == sig.whole_blocks
        assert len(sig.strong) == sig.strong_bytes * sig.blocks
