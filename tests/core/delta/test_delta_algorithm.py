"""The numpy delta held to the plain-Python reference: weak sums at every offset, signatures,
and files rebuilt byte for byte from the operations, for random data and random edits."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from blit_core.delta import files, match, reference, signature
from blit_core.delta.files import DeltaMismatch, Rebuilder, file_signature
from blit_core.delta.match import Matcher
from blit_core.delta.ops import Copy, Literal
from blit_core.delta.signature import (
    SignatureBuilder,
    SignatureReader,
    block_size_for,
    signature_parts,
    strong_bytes_for,
)
from blit_core.delta.weak import Roller, block_digests
from blit_core.errors import ProtocolError

SEED = 0x5EED


def delta(basis: bytes, new: bytes, block_size: int | None = None,
          feed: int = 4093) -> tuple[Matcher, list, bytes]:
    builder = SignatureBuilder(len(basis), SEED, block_size)
    for start in range(0, len(basis), 3001):
        builder.feed(basis[start:start + 3001])
    sig = builder.finish()
    matcher = Matcher(sig)
    ops = []
    for start in range(0, len(new), feed):
        ops += matcher.feed(new[start:start + feed])
    more, digest = matcher.finish()
    return matcher, ops + more, digest


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=3000), block=st.integers(1, 4000))
def test_weak_sums_at_every_offset_equal_the_reference(data: bytes, block: int) -> None:
    got = Roller(block).digests(data)
    assert got.tolist() == reference.rolling_digests(data, block)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=5000), block=st.integers(1, 900))
def test_signature_equals_the_reference(data: bytes, block: int) -> None:
    builder = SignatureBuilder(len(data), SEED, block)
    builder.feed(data[: len(data) // 3])
    builder.feed(data[len(data) // 3:])
    sig = builder.finish()
    weak, strong = reference.signature(data, block, SEED, strong_bytes_for(len(data)))
    assert sig.weak.tolist() == weak
    assert sig.strong == b"".join(strong)
    assert block_digests(data, block).tolist() == weak


def _edit(base: bytes, draw: st.DataObject) -> bytes:
    kind = draw.draw(st.sampled_from(
        ["insert", "delete", "overwrite", "shift", "truncate", "append", "none"]))
    if not base and kind not in ("insert", "append", "none"):
        return base
    where = draw.draw(st.integers(0, len(base)))
    junk = draw.draw(st.binary(min_size=1, max_size=2000))
    if kind == "insert":
        return base[:where] + junk + base[where:]
    if kind == "delete":
        return base[:where] + base[where + len(junk):]
    if kind == "overwrite":
        return base[:where] + junk + base[where + len(junk):]
    if kind == "shift":  # a piece moved elsewhere
        piece = base[where:where + len(junk)]
        rest = base[:where] + base[where + len(junk):]
        to = draw.draw(st.integers(0, len(rest)))
        return rest[:to] + piece + rest[to:]
    if kind == "truncate":
        return base[:where]
    if kind == "append":
        return base + junk
    return base


@settings(max_examples=200, deadline=None)
@given(draw=st.data(), size=st.integers(0, 40_000), block=st.sampled_from([None, 16, 64, 700]),
       edits=st.integers(0, 4))
def test_ops_rebuild_the_new_file(draw: st.DataObject, size: int, block: int | None,
                                  edits: int) -> None:
    basis = draw.draw(st.randoms(use_true_random=False)).randbytes(size)
    new = basis
    for _ in range(edits):
        new = _edit(new, draw)
    matcher, ops, digest = delta(basis, new, block)
    sig_block = block or block_size_for(len(basis))
    assert reference.apply(basis, sig_block, ops) == new
    assert matcher.literal_bytes + matcher.matched_bytes == len(new)
    assert sum(len(op.data) for op in ops if isinstance(op, Literal)) == matcher.literal_bytes
    assert digest == xxhash.xxh3_128_digest(new)


def test_identical_files_send_no_literal_bytes() -> None:
    basis = os.urandom(300_000)
    matcher, ops, _ = delta(basis, basis)
    assert matcher.literal_bytes == 0
    assert ops == [Copy(0, -(-len(basis) // block_size_for(len(basis))))]


def test_block_and_strong_hash_sizes_follow_the_documented_rule() -> None:
    assert [block_size_for(n) for n in (0, 64 << 10, 8 << 20, 1 << 30, 1 << 40)] == [
        700, 700, 3544, 40128, 128 << 10]
    assert [strong_bytes_for(n) for n in (64 << 10, 8 << 20, 1 << 30, 1 << 40)] == [4, 4, 5, 7]


def test_a_block_found_by_its_short_strong_hash_alone_is_not_copied(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # with one-byte strong hashes, a random block whose hash equals a basis block's is easy
    # to find; its weak digest differs, so it must not be copied
    monkeypatch.setattr(signature, "strong_bytes_for", lambda size: 1)
    basis = os.urandom(7000)
    strongs = {xxhash.xxh3_128_digest(basis[k:k + 700], SEED)[:1] for k in range(0, 7000, 700)}
    new = os.urandom(700)
    while xxhash.xxh3_128_digest(new, SEED)[:1] not in strongs:
        new = os.urandom(700)
    matcher, ops, _ = delta(basis, new)
    assert matcher.matched_bytes == 0
    assert ops == [Literal(new)]


def test_a_long_run_of_copies_is_cut_so_that_the_destination_can_start(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(match, "COPY_MAX", 100 * 700)
    basis = os.urandom(300_000)  # 429 blocks of 700 bytes
    _, ops, _ = delta(basis, basis)
    assert ops == [Copy(0, 100), Copy(100, 100), Copy(200, 100), Copy(300, 100),
                   Copy(400, 29)]


def test_completely_different_files_are_all_literal() -> None:
    matcher, ops, _ = delta(os.urandom(100_000), new := os.urandom(90_000))
    assert matcher.matched_bytes == 0
    assert b"".join(op.data for op in ops) == new


@pytest.mark.parametrize(("basis", "new", "literal"), [
    (b"", b"", 0), (b"", b"abc", 3), (b"abc", b"", 0),
    (b"short", b"short", 0),  # the basis's short last block, matched at the end
    (b"short", b"shorter", 7)])
def test_empty_and_shorter_than_a_block(basis: bytes, new: bytes, literal: int) -> None:
    matcher, ops, _ = delta(basis, new)
    assert reference.apply(basis, 700, ops) == new
    assert matcher.literal_bytes == literal


def test_an_insertion_shifting_everything_after_it_costs_about_one_block() -> None:
    basis = os.urandom(4 << 20)
    new = basis[:1_000_003] + os.urandom(777) + basis[1_000_003:]
    matcher, ops, _ = delta(basis, new, feed=1 << 20)
    assert reference.apply(basis, block_size_for(len(basis)), ops) == new
    assert matcher.literal_bytes <= 777 + 2 * block_size_for(len(basis))


@pytest.mark.parametrize("feed", [12 << 20, 8 << 20, 5 << 20])
def test_large_feeds_are_matched_as_held_and_trimmed(feed: int) -> None:
    """The first bytes fed are held as they are, not copied; they are trimmed and appended
    to as a copied buffer would be (TRIM_AT is 4 MiB)."""
    basis = os.urandom(12 << 20)
    new = bytearray(basis)
    for at in (1 << 20, 6 << 20, (10 << 20) + 5):
        new[at:at + 4096] = os.urandom(4096)
    new = bytes(new[: 11 << 20]) + os.urandom(3000) + bytes(new[11 << 20:])
    matcher, ops, digest = delta(basis, new, feed=feed)
    block = block_size_for(len(basis))
    assert reference.apply(basis, block, ops) == new
    assert matcher.literal_bytes <= 3 * (4096 + 2 * block) + 3000 + 2 * block
    assert digest == xxhash.xxh3_128_digest(new)


def test_signature_travels_in_parts_and_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signature, "MAX_BLOCKS_PER_PART", 100)
    basis = os.urandom(100_000)
    builder = SignatureBuilder(len(basis), SEED)  # 143 blocks of 700 bytes: two parts
    builder.feed(basis)
    sig = builder.finish()
    parts = signature_parts(sig)
    assert len(parts) == 2
    reader = SignatureReader(sig.block_size, sig.size, SEED)
    for weak, strong in parts:
        reader.add(weak, strong)
    again = reader.finish()
    assert np.array_equal(again.weak, sig.weak) and again.strong == sig.strong


def test_a_signature_is_checked_against_its_declared_basis() -> None:
    with pytest.raises(ProtocolError):
        SignatureReader(1, 10, SEED)  # not the block size the rule gives
    with pytest.raises(ProtocolError):
        reader = SignatureReader(700, 1400, SEED)
        reader.add(bytes(7), bytes(2 * strong_bytes_for(1400)))  # not whole weak sums
        reader.finish()
    with pytest.raises(ProtocolError):
        SignatureReader(700, 1 << 60, SEED)
    reader = SignatureReader(700, 1400, SEED)
    with pytest.raises(ProtocolError):
        reader.add(bytes(12), b"")  # three weak sums for two blocks
    reader = SignatureReader(700, 1400, SEED)
    reader.add(bytes(8), bytes(strong_bytes_for(1400)))
    with pytest.raises(ProtocolError):
        reader.finish()  # one strong hash short


@pytest.mark.parametrize("parallel_copy", [files.PARALLEL_COPY, 64 << 10])
def test_rebuild_from_files_checks_the_result(tmp_path, monkeypatch: pytest.MonkeyPatch,
                                              parallel_copy: int) -> None:
    # with 64 KiB, each long run is copied half by another thread; with 8 KiB chunks the
    # basis is signed in many chunks on several threads
    monkeypatch.setattr(files, "PARALLEL_COPY", parallel_copy)
    monkeypatch.setattr(files, "SIGN_CHUNK", min(files.SIGN_CHUNK, parallel_copy // 8))
    basis_data = os.urandom(1 << 20)
    new = basis_data[:300_000] + b"edit" * 100 + basis_data[300_400:]
    (tmp_path / "basis").write_bytes(basis_data)
    basis_fd = os.open(tmp_path / "basis", os.O_RDONLY)
    out_fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        sig = file_signature(basis_fd, len(basis_data), SEED)
        matcher = Matcher(sig)
        ops = matcher.feed(new)
        more, digest = matcher.finish()
        rebuild = Rebuilder(basis_fd, out_fd, sig.block_size, sig.size, len(new))
        for op in ops + more:
            rebuild.copy(op) if isinstance(op, Copy) else rebuild.literal(op.data)
        rebuild.check(len(new), digest)
        assert (tmp_path / "out").read_bytes() == new
        with pytest.raises(DeltaMismatch):
            rebuild.check(len(new), bytes(16))
        with pytest.raises(DeltaMismatch):
            rebuild.copy(Copy(10_000, 1))  # beyond the basis
        with pytest.raises(ProtocolError):
            rebuild.literal(b"x")  # beyond the new file's size
    finally:
        os.close(basis_fd)
        os.close(out_fd)


def _rebuild(tmp_path: Path, basis_data: bytes, new: bytes) -> tuple[Rebuilder, bytes, int, int]:
    """A Rebuilder that may keep its basis, fed the ops of `new` (descriptors open: the
    caller closes them)."""
    (tmp_path / "basis").write_bytes(basis_data)
    basis_fd = os.open(tmp_path / "basis", os.O_RDONLY)
    out_fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT, 0o600)
    sig = file_signature(basis_fd, len(basis_data), SEED, with_digest=True)
    assert sig.digest == xxhash.xxh3_128_digest(basis_data)
    matcher = Matcher(sig)
    ops = matcher.feed(new)
    more, digest = matcher.finish()
    rebuild = Rebuilder(basis_fd, out_fd, sig.block_size, sig.size, len(new),
                        basis_digest=sig.digest)
    for op in ops + more:
        rebuild.copy(op) if isinstance(op, Copy) else rebuild.literal(op.data)
    return rebuild, digest, basis_fd, out_fd


def test_a_file_that_is_its_basis_is_not_written(tmp_path: Path) -> None:
    data = os.urandom(1 << 20)
    rebuild, digest, basis_fd, out_fd = _rebuild(tmp_path, data, data)
    try:
        assert rebuild.check(len(data), digest) is True
        assert (tmp_path / "out").read_bytes() == b""
        assert rebuild.matched_bytes == len(data) and rebuild.literal_bytes == 0
        with pytest.raises(DeltaMismatch):  # the basis's digest is what gets checked
            rebuild.check(len(data), bytes(16))
        rebuild.write_held_back()  # it could not stay after all: now it is written
        assert rebuild.check(len(data), digest) is False
        assert (tmp_path / "out").read_bytes() == data
    finally:
        os.close(basis_fd)
        os.close(out_fd)


@pytest.mark.parametrize("where", [0, 500_000, (1 << 20) - 10])
def test_a_change_anywhere_writes_the_start_held_back(tmp_path: Path, where: int) -> None:
    data = os.urandom(1 << 20)
    new = data[:where] + b"0123456789" + data[where + 10:]
    rebuild, digest, basis_fd, out_fd = _rebuild(tmp_path, data, new)
    try:
        assert rebuild.check(len(new), digest) is False
        assert (tmp_path / "out").read_bytes() == new
    finally:
        os.close(basis_fd)
        os.close(out_fd)
