"""The SOURCE's half of a delta: its file, fed in order, becomes COPY and LITERAL operations
against the basis's signature. Sans-I/O: bytes in, operations out.

1. Aligned blocks first. At each decision point the block starting there is hashed (xxh3) and
   compared with the block that continues the current run of copies, then looked up among all
   the basis's blocks (and confirmed by its weak digest): an unchanged file, or one shifted by
   whole blocks, costs one hashing pass. After a changed block, the next few blocks of the run
   are tried where they would be had the edit been in place.
2. Only where that fails does the rolling search run: weak digests at every offset of a span
   (numpy), filtered through a 2^20-entry lookup table, then by exact weak digest, and
   confirmed with the strong hash. Bytes passed over become literals.
Adjacent copies coalesce into one Copy of up to COPY_MAX bytes (so that the DESTINATION copies
while the rest is matched); literals are cut at LITERAL_MAX bytes."""

from __future__ import annotations

import numpy as np
import xxhash

from blit_core.delta.ops import Copy, Literal, Op
from blit_core.delta.signature import Signature
from blit_core.delta.weak import Roller, block_digests

LUT_BITS = 20
LUT_MASK = (1 << LUT_BITS) - 1
MIN_SPAN = 256 << 10  # offsets searched per rolling pass
IN_PLACE_TRIES = 4
LITERAL_MAX = 256 << 10
COPY_MAX = 128 << 20
TRIM_AT = 4 << 20  # consumed bytes dropped from the buffer once there are this many


class Matcher:
    """Feed the SOURCE file's bytes in order; take the operations as they are decided."""

    def __init__(self, sig: Signature) -> None:
        self.sig = sig
        self.block = sig.block_size
        self.span = max(MIN_SPAN, (IN_PLACE_TRIES + 2) * self.block)
        self.size = 0  # bytes fed
        self.literal_bytes = 0
        self.matched_bytes = 0
        self._buf: bytes | bytearray = b""  # the undecided bytes, and the pending literal
        self._base = 0  # the file offset of _buf[0]
        self._pos = 0  # the next byte to decide
        self._lit = 0  # where the pending literal starts (it ends at _pos)
        self._run = -1  # the last block copied, -1 for none
        self._copy: list[int] | None = None  # the pending Copy: [first block, count]
        self._ops: list[Op] = []
        self._hasher = xxhash.xxh3_128()
        whole = sig.whole_blocks
        self._by_strong = {sig.strong_of(j): j for j in range(whole - 1, -1, -1)}
        self._lut = np.zeros(1 << LUT_BITS, dtype=bool)
        self._lut[sig.weak & LUT_MASK] = True
        self._order = np.argsort(sig.weak, kind="stable")
        self._sorted_weak = sig.weak[self._order]
        self._roller = Roller(self.block)
        self._copy_max = max(1, COPY_MAX // self.block)  # blocks

    def feed(self, data: bytes | memoryview) -> list[Op]:
        self._hasher.update(data)
        if not self._buf:  # the first feed: bytes are held as they are, not copied (a file
            # of one read, as most are, is never copied at all)
            self._buf = data if isinstance(data, bytes) else bytearray(data)
        else:
            if isinstance(self._buf, bytes):
                self._buf = bytearray(self._buf)
            self._buf += data
        self.size += len(data)
        self._advance(final=False)
        return self._take()

    def finish(self) -> tuple[list[Op], bytes]:
        """The last operations and the xxh3-128 of everything fed."""
        self._advance(final=True)
        end = self._base + len(self._buf)
        rest = end - self._pos
        tail = self.sig.size - self.sig.whole_blocks * self.block
        if rest and rest == tail and self._strong_at(self._pos, rest) == self.sig.strong_of(
                self.sig.whole_blocks):
            self._emit_copy(self.sig.whole_blocks, tail)
        self._pos = end
        self._emit_literal()
        self._flush_copy()
        return self._take(), self._hasher.digest()

    # -- deciding ------------------------------------------------------------------------

    def _advance(self, final: bool) -> None:
        block, sig = self.block, self.sig
        end = self._base + len(self._buf)
        while True:
            room = end - self._pos
            if room < block or (not final and room < block + self.span):
                break
            if self._run >= 0:
                strong = self._follow_run(end, final)
                if strong is None:  # nothing left to decide here
                    continue
            else:
                strong = self._strong_at(self._pos, block)
            found = self._by_strong.get(strong)
            if found is not None and self._weak_at(self._pos) == sig.weak[found]:
                self._emit_copy(found, block)
                continue
            if not (self._run >= 0 and self._in_place(end)):
                self._search(end)
        self._trim()

    def _follow_run(self, end: int, final: bool) -> bytes | None:
        """Copy every next block, from here on, that hashes as the block continuing the
        current run of copies (an unchanged stretch: most of most files), in one tight loop.
        Return the strong hash of the block where the run stops, to be looked for elsewhere
        (each block is hashed once), or None if _advance has no block left to decide."""
        block, sig, width = self.block, self.sig, self.sig.strong_bytes
        first = self._run + 1
        room = end - self._pos - (0 if final else self.span)  # as _advance's loop allows
        count = min(sig.whole_blocks - first, room // block)
        start = self._pos - self._base
        strong, seed, expected = xxhash.xxh3_128_digest, sig.seed, sig.strong
        taken = 0
        stopped_at: bytes | None = None
        with memoryview(self._buf) as view:
            while taken < count:
                at = start + taken * block
                wanted = (first + taken) * width
                digest = strong(view[at : at + block], seed)[:width]
                if digest != expected[wanted : wanted + width]:
                    stopped_at = digest
                    break
                taken += 1
        if taken:
            self._emit_run(first, taken)
        if stopped_at is not None:
            return stopped_at
        if room - taken * block < block:  # the room _advance allows is used up
            return None
        return self._strong_at(self._pos, block)  # the run reached the basis's last block

    def _in_place(self, end: int) -> bool:
        """The run picks up again a few blocks on, as if the changed bytes were overwritten."""
        block = self.block
        for step in range(1, IN_PLACE_TRIES + 1):
            target = self._run + 1 + step
            offset = self._pos + step * block
            if target >= self.sig.whole_blocks or offset + block > end:
                return False
            if self._strong_at(offset, block) == self.sig.strong_of(target):
                self._pos = offset
                self._emit_copy(target, block)
                return True
        return False

    def _search(self, end: int) -> None:
        """Roll over the next span of offsets; copy at the first block found, or pass the span
        over as literal."""
        block = self.block
        count = min(self.span, end - block + 1 - self._pos)
        if self.sig.whole_blocks:
            start = self._pos - self._base
            with memoryview(self._buf) as view:
                digests = self._roller.digests(view[start : start + count + block - 1])
            hits = np.flatnonzero(self._lut[digests & LUT_MASK])
            if hits.size:
                wanted = digests[hits]
                places = np.searchsorted(self._sorted_weak, wanted)
                exact = self._sorted_weak[np.minimum(places, len(self._sorted_weak) - 1)] == wanted
                for hit, place in zip(hits[exact].tolist(), places[exact].tolist(), strict=True):
                    found = self._confirm(self._pos + hit, place)
                    if found is not None:
                        self._pos += hit
                        self._emit_copy(found, block)
                        return
        self._pos += count
        if self._pos - self._lit >= LITERAL_MAX:
            self._emit_literal()

    def _confirm(self, offset: int, place: int) -> int | None:
        """The basis block with the weak digest at sorted `place` (or an equal neighbour) whose
        strong hash matches the window at `offset`."""
        strong = self._strong_at(offset, self.block)
        digest = self._sorted_weak[place]
        while place < len(self._sorted_weak) and self._sorted_weak[place] == digest:
            candidate = int(self._order[place])
            if self.sig.strong_of(candidate) == strong:
                return candidate
            place += 1
        return None

    def _strong_at(self, offset: int, length: int) -> bytes:
        start = offset - self._base
        with memoryview(self._buf) as view:
            return self.sig.strong_hash(view[start : start + length])

    def _weak_at(self, offset: int) -> int:
        """The weak digest of the block at `offset`: a block found by its (short) strong hash
        alone must match both, as the rolling search's finds do."""
        start = offset - self._base
        with memoryview(self._buf) as view:
            return int(block_digests(view[start : start + self.block], self.block)[0])

    # -- emitting ------------------------------------------------------------------------

    def _emit_copy(self, block: int, length: int) -> None:
        """One block copied: a whole one, or the basis's short tail (`length` bytes)."""
        self._emit_run(block, 1, length)

    def _emit_run(self, first: int, count: int, length: int | None = None) -> None:
        """`count` blocks from `first` copied in order (`length` bytes; by default, whole
        blocks), coalesced into the pending Copy while it stays under COPY_MAX."""
        self._emit_literal()
        block = first
        while block < first + count:
            copy = self._copy
            if copy is not None and copy[0] + copy[1] == block and copy[1] < self._copy_max:
                take = min(first + count - block, self._copy_max - copy[1])
                copy[1] += take
            else:
                self._flush_copy()
                take = min(first + count - block, self._copy_max)
                self._copy = [block, take]
            block += take
        length = count * self.block if length is None else length
        self._pos += length
        self._lit = self._pos
        self._run = first + count - 1
        self.matched_bytes += length

    def _emit_literal(self) -> None:
        if self._pos == self._lit:
            return
        self._flush_copy()
        for start in range(self._lit, self._pos, LITERAL_MAX):
            stop = min(self._pos, start + LITERAL_MAX)
            self._ops.append(Literal(bytes(self._buf[start - self._base : stop - self._base])))
        self.literal_bytes += self._pos - self._lit
        self._lit = self._pos

    def _flush_copy(self) -> None:
        if self._copy is not None:
            self._ops.append(Copy(*self._copy))
            self._copy = None

    def _take(self) -> list[Op]:
        ops, self._ops = self._ops, []
        return ops

    def _trim(self) -> None:
        cut = self._lit - self._base
        if cut >= TRIM_AT and 2 * cut >= len(self._buf):
            if isinstance(self._buf, bytearray):
                del self._buf[:cut]
            else:
                self._buf = self._buf[cut:]
            self._base += cut
