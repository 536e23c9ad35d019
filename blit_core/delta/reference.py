"""A slow, plain-Python rsync delta, written to be obviously right: the oracle the tests hold
the numpy code to (weak sums, signatures, and rebuilding a file from operations)."""

from __future__ import annotations

from collections.abc import Iterable

import xxhash

from blit_core.delta.ops import Copy, Literal, Op


def weak_digest(window: bytes) -> int:
    size = len(window)
    s1 = sum(window) % 65536
    s2 = sum((size - i) * byte for i, byte in enumerate(window)) % 65536
    return s1 | s2 << 16


def rolling_digests(data: bytes, block_size: int) -> list[int]:
    """The weak digest of the window at every offset, recomputed from scratch each time."""
    return [weak_digest(data[k : k + block_size]) for k in range(len(data) - block_size + 1)]


def signature(basis: bytes, block_size: int, seed: int,
              strong_bytes: int) -> tuple[list[int], list[bytes]]:
    """(weak digests of the whole blocks, strong hashes of every block, a short last one
    included)."""
    weak = [weak_digest(basis[k : k + block_size])
            for k in range(0, len(basis) - block_size + 1, block_size)]
    strong = [xxhash.xxh3_128_digest(basis[k : k + block_size], seed)[:strong_bytes]
              for k in range(0, len(basis), block_size)]
    return weak, strong


def apply(basis: bytes, block_size: int, ops: Iterable[Op]) -> bytes:
    """The file the operations describe."""
    out = bytearray()
    for op in ops:
        if isinstance(op, Copy):
            out += basis[op.block * block_size : (op.block + op.count) * block_size]
        else:
            assert isinstance(op, Literal)
            out += op.data
    return bytes(out)
