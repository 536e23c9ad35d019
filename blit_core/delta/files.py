"""The delta's I/O: a basis file's signature read from its descriptor, and a file rebuilt
into a temp file from its basis (copy_file_range, no Python loop over blocks) and literals,
then checked against the SOURCE's whole-file xxh3-128. A file that turns out to be its basis
byte for byte (only its mtime changed) is not written at all: the basis's digest, taken as it
was signed, is checked instead."""

from __future__ import annotations

import functools
import mmap
import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, NamedTuple

import xxhash

from blit_core.delta.ops import Copy, Op, copy_length
from blit_core.errors import ProtocolError
from blit_core.fastcopy.errors import UNSUPPORTED_ERRNOS
from blit_core.fastcopy.readwrite import pwrite_all

if TYPE_CHECKING:
    import numpy as np

    from blit_core.delta.signature import Signature

READ_CHUNK = 8 << 20
SIGN_THREADS = 2
SIGN_CHUNK = 2 << 20  # a basis is signed in chunks of about this size, in parallel
PARALLEL_COPY = 64 << 20  # a longer run of copied blocks is copied by two threads
# A basis is opened like this: never through a symlink, never blocking on a FIFO.
BASIS_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
MIN_DELTA_SIZE = 64 << 10  # a smaller basis is not worth a signature: the file goes whole


class DeltaMismatch(Exception):
    """The rebuilt file is not the SOURCE's: the basis changed underneath, or a block was
    mistaken for another. The file is sent whole instead."""


def read_chunks(fd: int, chunk: int = READ_CHUNK) -> Iterator[bytes]:
    """The bytes of fd from offset 0 to its end, in chunks."""
    offset = 0
    while data := os.pread(fd, chunk, offset):
        offset += len(data)
        yield data


def file_signature(fd: int, size: int, seed: int, *, with_digest: bool = False) -> Signature:
    """The signature of the `size` bytes of an open basis, read and signed in block-aligned
    chunks on SIGN_THREADS threads; ValueError if it is not that long. `with_digest`: also
    the basis's whole-file xxh3-128 (in `digest`), hashed from the same reads."""
    from blit_core.delta.signature import SignatureBuilder  # numpy: only once a delta is due

    builder = SignatureBuilder(size, seed)
    chunk = SIGN_CHUNK // builder.block_size * builder.block_size or builder.block_size
    hasher = xxhash.xxh3_128() if with_digest else None

    def sign_chunk(offset: int) -> tuple[np.ndarray, bytes, bytes]:
        data = os.pread(fd, min(chunk, size - offset), offset)
        return (*builder.sign(data), data)

    pending: deque[Future[tuple[np.ndarray, bytes, bytes]]] = deque()
    offsets = iter(range(0, size, chunk))
    try:
        while True:  # a few chunks in flight: others' signatures are not held up
            while len(pending) < 2 * SIGN_THREADS and (offset := next(offsets, None)) is not None:
                pending.append(_sign_pool().submit(sign_chunk, offset))
            if not pending:
                sig = builder.finish()
                if hasher is not None:
                    sig.digest = hasher.digest()
                return sig
            weak, strong, data = pending.popleft().result()
            builder.add_signed(weak, strong, len(data))
            if hasher is not None:
                hasher.update(data)
    finally:  # fd is the caller's to close: nothing may still read it then
        for future in pending:
            future.cancel()
        wait(pending)


@functools.cache
def _sign_pool() -> ThreadPoolExecutor:
    """The threads that sign bases (hashing releases the GIL), shared by every transfer."""
    return ThreadPoolExecutor(max_workers=SIGN_THREADS, thread_name_prefix="blit-sign")


os.register_at_fork(after_in_child=_sign_pool.cache_clear)  # a forked child has no threads


def file_digest(fd: int, size: int) -> bytes:
    """xxh3-128 of the first `size` bytes of an open file, hashed from its mapping."""
    if size == 0:
        return xxhash.xxh3_128_digest(b"")
    with mmap.mmap(fd, size, prot=mmap.PROT_READ) as mapped:
        return xxhash.xxh3_128_digest(mapped)


class Rebuilder:
    """Writes a file from operations, in order, into `out_fd` (a fresh temp file)."""

    def __init__(self, basis_fd: int, out_fd: int, block_size: int, basis_size: int,
                 size: int, *, basis_digest: bytes | None = None) -> None:
        """`size`: the new file's; nothing is written past it. `basis_digest`: the basis's
        xxh3-128 when it was signed, if the basis may stand for the new file should the new
        file turn out to be the same bytes (see `check`); until an operation says otherwise,
        copies are then only counted."""
        self.size = size
        self.basis_fd = basis_fd
        self.out_fd = out_fd
        self.block_size = block_size
        self.basis_size = basis_size
        self.offset = 0
        self.literal_bytes = 0
        self.matched_bytes = 0
        self.basis_digest = basis_digest
        # While True, every byte so far is the basis's at the same offset, and unwritten.
        self.same_as_basis = basis_digest is not None and size == basis_size

    def copy(self, op: Copy) -> None:
        length = copy_length(op, self.block_size, self.basis_size)
        if op.count <= 0 or op.block < 0 or length <= 0:
            raise DeltaMismatch(f"a copy of blocks {op.block}+{op.count} outside the basis")
        self._check_room(length)
        source = op.block * self.block_size
        if not (self.same_as_basis and source == self.offset):
            self.write_held_back()
            self._copy_run(source, self.offset, length)
        self.offset += length
        self.matched_bytes += length

    def write_held_back(self) -> None:
        """The basis cannot stand for the file (it differs, or cannot stay): write the
        start copied so far."""
        if self.same_as_basis:
            self.same_as_basis = False
            self._copy_run(0, 0, self.offset)

    def _copy_run(self, source: int, target: int, length: int) -> None:
        if length >= PARALLEL_COPY:  # half in another thread: copying is page-bound
            half = length // 2 // self.block_size * self.block_size
            failed: list[BaseException] = []

            def copy_second_half() -> None:
                try:
                    self._copy_range(source + half, target + half, length - half)
                except BaseException as exc:
                    failed.append(exc)

            helper = threading.Thread(target=copy_second_half, name="blit-copy")
            helper.start()
            try:
                self._copy_range(source, target, half)
            finally:
                helper.join()
            if failed:
                raise failed[0]
        elif length:
            self._copy_range(source, target, length)

    def _copy_range(self, source: int, target: int, length: int) -> None:
        done = 0
        while done < length:
            try:
                copied = os.copy_file_range(self.basis_fd, self.out_fd, length - done,
                                            source + done, target + done)
            except OSError as exc:
                if exc.errno in UNSUPPORTED_ERRNOS:  # this filesystem cannot: send it whole
                    raise DeltaMismatch(f"copy_file_range: {exc.strerror}") from None
                raise
            if copied == 0:
                raise DeltaMismatch("the basis shrank during the transfer")
            done += copied

    def _check_room(self, length: int) -> None:
        if self.offset + length > self.size:
            raise ProtocolError(f"a delta longer than its file's {self.size} bytes")

    def literal(self, data: bytes | memoryview) -> None:
        self._check_room(len(data))
        self.write_held_back()
        pwrite_all(self.out_fd, data, self.offset)
        self.offset += len(data)
        self.literal_bytes += len(data)

    def check(self, size: int, digest: bytes) -> bool:
        """Every operation is in: DeltaMismatch unless the file is `size` bytes with `digest`.
        True when the file is its basis as signed: nothing was written, and the basis's
        digest is the one checked (the caller makes sure it has not changed since, or calls
        `write_held_back` and checks again)."""
        if self.offset != size:
            raise DeltaMismatch(f"rebuilt {self.offset} bytes of {size}")
        if self.same_as_basis:
            if self.basis_digest != digest:
                raise DeltaMismatch("the basis's checksum differs from the source's")
            return True
        if file_digest(self.out_fd, size) != digest:
            raise DeltaMismatch("the rebuilt file's checksum differs from the source's")
        return False


def wants_delta(basis_size: int) -> bool:
    """Whether a basis this large is worth a signature."""
    return basis_size >= MIN_DELTA_SIZE


class DeltaCounts(NamedTuple):
    literal_bytes: int
    matched_bytes: int
    signature_bytes: int


def delta_copy(src_fd: int, basis_fd: int, out_fd: int, seed: int) -> DeltaCounts:
    """Rebuild the file at src_fd into out_fd from the basis, as a remote delta would
    (--no-whole-file in a local copy); DeltaMismatch if the result does not check out."""
    from blit_core.delta.match import Matcher  # numpy: only once a delta is due

    sig = file_signature(basis_fd, os.fstat(basis_fd).st_size, seed)
    matcher = Matcher(sig)
    rebuild = Rebuilder(basis_fd, out_fd, sig.block_size, sig.size, os.fstat(src_fd).st_size)

    def apply(ops: list[Op]) -> None:
        for op in ops:
            if isinstance(op, Copy):
                rebuild.copy(op)
            else:
                rebuild.literal(op.data)

    for data in read_chunks(src_fd):
        apply(matcher.feed(data))
    ops, digest = matcher.finish()
    apply(ops)
    rebuild.check(matcher.size, digest)
    return DeltaCounts(rebuild.literal_bytes, rebuild.matched_bytes, sig.wire_bytes)
