"""The signature of a basis file: for each block, rsync's weak digest and the first bytes of its
seeded xxh3-128. Built from buffers fed in order (no I/O here), and cut into parts for the
control plane.

Block size (tuned on the delta benchmark; rsync uses sqrt(size) with 700 bytes below 490,000):
sqrt(1.5 x size) rounded down to a multiple of 8, at least 700 bytes and at most 128 KiB.

Strong hash length, like rsync's: just long enough that a false match is unlikely, since every
rebuilt file is checked whole (xxh3-128) and sent whole if it does not check out. In the
rolling search a false match needs a weak digest collision (32 bits) and a strong one; across
size x blocks candidate pairs, STRONG_MARGIN_BITS more bits than that keeps the expected
number of false matches per file under 2^-20. (Comparing a block with the one a run of copies
expects there, by strong hash alone, adds one chance in 2^(8 x length) per changed block.)
At least 4 bytes, at most the whole 16."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import xxhash

from blit_core.delta.weak import block_digests
from blit_core.errors import ProtocolError

MIN_STRONG_BYTES = 4
MAX_STRONG_BYTES = 16  # the whole xxh3-128
STRONG_MARGIN_BITS = 20
MIN_BLOCK = 700
MAX_BLOCK = 128 << 10
MAX_BLOCKS_PER_PART = 32 << 10  # 640 KiB of signature per control-plane message
MAX_SIGNATURE_BLOCKS = 1 << 24  # 320 MiB held for one file (a 2 TiB basis)


def block_size_for(size: int) -> int:
    return min(MAX_BLOCK, max(MIN_BLOCK, math.isqrt(3 * size // 2) // 8 * 8))


def strong_bytes_for(size: int) -> int:
    """The length of each block's strong hash in the signature of a `size`-byte basis."""
    blocks = -(-size // block_size_for(size))
    bits = STRONG_MARGIN_BITS + size.bit_length() + blocks.bit_length() - 32
    return min(MAX_STRONG_BYTES, max(MIN_STRONG_BYTES, -(-bits // 8)))


@dataclass
class Signature:
    block_size: int
    size: int  # of the basis
    seed: int
    weak: np.ndarray  # uint32 digests of the whole blocks
    strong: bytes  # strong_bytes per block: the whole blocks, then a short tail if any
    strong_bytes: int = field(init=False)
    digest: bytes | None = field(default=None, init=False)  # the basis's xxh3-128, if asked

    def __post_init__(self) -> None:
        self.strong_bytes = strong_bytes_for(self.size)

    @property
    def whole_blocks(self) -> int:
        return self.size // self.block_size

    @property
    def blocks(self) -> int:
        return -(-self.size // self.block_size)

    def strong_of(self, block: int) -> bytes:
        width = self.strong_bytes
        return self.strong[block * width : (block + 1) * width]

    def strong_hash(self, data: bytes | memoryview) -> bytes:
        """`data`'s strong hash as this signature holds them."""
        return strong_hash(data, self.seed, self.strong_bytes)

    @property
    def wire_bytes(self) -> int:
        return 4 * len(self.weak) + len(self.strong)


def strong_hash(data: bytes | memoryview, seed: int, width: int) -> bytes:
    return xxhash.xxh3_128_digest(data, seed)[:width]


class SignatureBuilder:
    """Feed the basis's bytes in order; `finish` returns its signature."""

    def __init__(self, size: int, seed: int, block_size: int | None = None) -> None:
        self.size = size
        self.seed = seed
        self.block_size = block_size or block_size_for(size)
        self.strong_bytes = strong_bytes_for(size)
        self._pending = bytearray()
        self._weak: list[np.ndarray] = []
        self._strong = bytearray()
        self._fed = 0

    def feed(self, data: bytes | memoryview) -> None:
        self._fed += len(data)
        if self._pending:
            self._pending += data
            data, self._pending = memoryview(bytes(self._pending)), bytearray()
        view = memoryview(data)
        whole = len(view) // self.block_size * self.block_size
        if whole:
            self._add(view[:whole])
        self._pending += view[whole:]

    def _add(self, view: memoryview) -> None:
        weak, strong = self.sign(view)
        self._weak.append(weak)
        self._strong += strong

    def sign(self, data: bytes | memoryview) -> tuple[np.ndarray, bytes]:
        """The weak digests of `data`'s whole blocks and the strong hashes of all its blocks
        (a short last one included): for data that starts on a block boundary, signed apart
        from the builder (in another thread) and added with `add_signed`."""
        size, seed, width = self.block_size, self.seed, self.strong_bytes
        view = memoryview(data)
        strong = bytearray()
        for start in range(0, len(view), size):
            strong += strong_hash(view[start : start + size], seed, width)
        return block_digests(view, size), bytes(strong)

    def add_signed(self, weak: np.ndarray, strong: bytes, length: int) -> None:
        """The signature of the next `length` bytes, from `sign` (nothing may be pending)."""
        assert not self._pending
        self._fed += length
        self._weak.append(weak)
        self._strong += strong

    def finish(self) -> Signature:
        """The signature; ValueError if the bytes fed are not `size` long (the basis changed
        while it was read)."""
        if self._fed != self.size:
            raise ValueError(f"basis read as {self._fed} bytes, expected {self.size}")
        if self._pending:
            self._strong += strong_hash(bytes(self._pending), self.seed, self.strong_bytes)
            self._pending = bytearray()
        weak = np.concatenate(self._weak) if self._weak else np.empty(0, np.uint32)
        return Signature(self.block_size, self.size, self.seed, weak, bytes(self._strong))


# -- on the wire ---------------------------------------------------------------------------


def signature_parts(sig: Signature) -> list[tuple[bytes, bytes]]:
    """(weak digests as big-endian uint32, strong hashes) of up to MAX_BLOCKS_PER_PART blocks
    each, in order; at least one part."""
    weak = sig.weak.astype(">u4").tobytes()
    width = sig.strong_bytes
    parts = []
    for first in range(0, max(sig.blocks, 1), MAX_BLOCKS_PER_PART):
        last = first + MAX_BLOCKS_PER_PART
        parts.append((weak[4 * first : 4 * last], sig.strong[width * first : width * last]))
    return parts


class SignatureReader:
    """Gathers a peer's signature parts and checks them against what the header declares."""

    def __init__(self, block_size: int, size: int, seed: int) -> None:
        if not 0 <= size <= MAX_SIGNATURE_BLOCKS * MAX_BLOCK:
            raise ProtocolError(f"a signature of a {size}-byte basis is too large")
        if block_size != block_size_for(size):
            raise ProtocolError(f"signature block size {block_size} for a {size}-byte basis; "
                                f"expected {block_size_for(size)}")
        self.block_size, self.size, self.seed = block_size, size, seed
        self._weak = bytearray()
        self._strong = bytearray()

    def add(self, weak: bytes, strong: bytes) -> None:
        blocks = -(-self.size // self.block_size)
        if (len(self._weak) + len(weak) > 4 * (self.size // self.block_size)
                or len(self._strong) + len(strong) > strong_bytes_for(self.size) * blocks):
            raise ProtocolError("a signature longer than its basis")
        self._weak += weak
        self._strong += strong

    def finish(self) -> Signature:
        if len(self._weak) != 4 * (self.size // self.block_size):
            raise ProtocolError("a signature shorter than its basis")
        sig = Signature(self.block_size, self.size, self.seed,
                        np.frombuffer(bytes(self._weak), dtype=">u4").astype(np.uint32),
                        bytes(self._strong))
        if len(sig.weak) != sig.whole_blocks or len(sig.strong) != sig.strong_bytes * sig.blocks:
            raise ProtocolError("a signature shorter than its basis")
        return sig
