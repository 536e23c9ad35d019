"""rsync's weak rolling checksum, for every offset of a buffer at once (numpy) and for the
aligned blocks of a signature. Pure: bytes in, arrays out.

For a window x_0 .. x_{L-1}:  s1 = sum(x_i) mod 2^16,  s2 = sum((L - i) * x_i) mod 2^16,
digest = s1 | s2 << 16.

At every offset k, from the prefix sums P[j] = sum_{i<j} x_i and R[j] = sum_{t<=j} P[t]:
s1(k) = P[k+L] - P[k] and s2(k) = R[k+L] - R[k] - L * P[k]. Both prefix sums are kept in
uint32, whose wraparound leaves the low 16 bits exact, which is all the digest keeps."""

from __future__ import annotations

import numpy as np

CHUNK = 1 << 18  # offsets per pass: the scratch arrays stay in the CPU's cache


def block_digests(data: bytes | memoryview, block_size: int) -> np.ndarray:
    """The digests (uint32) of the whole blocks of `data`, one per block; a short tail is left
    out."""
    x = np.frombuffer(data, dtype=np.uint8)
    blocks = len(x) // block_size
    # Widened once, for both sums (each would otherwise cast the bytes again).
    matrix = x[: blocks * block_size].astype(np.uint16).reshape(blocks, block_size)
    s1 = np.add.reduce(matrix, axis=1, dtype=np.uint16)
    s2 = np.einsum("ij,j->i", matrix, _weights(block_size))
    return s1.astype(np.uint32) | (s2.astype(np.uint32) << 16)


def _weights(block_size: int) -> np.ndarray:
    """L - i for i in 0 .. L-1, modulo 2^16."""
    return (np.arange(block_size, 0, -1, dtype=np.uint32) & 0xFFFF).astype(np.uint16)


class Roller:
    """Digests at every offset of a buffer, with scratch arrays kept between calls."""

    def __init__(self, block_size: int) -> None:
        self.block_size = block_size
        self._capacity = 0

    def _scratch(self, n: int) -> None:
        if n > self._capacity:
            self._capacity = max(n, 2 * self._capacity)
            self._x = np.empty(self._capacity, np.uint32)
            self._p = np.empty(self._capacity + 1, np.uint32)
            self._r = np.empty(self._capacity + 1, np.uint32)
            self._out = np.empty(self._capacity, np.uint32)
            self._t1 = np.empty(CHUNK, np.uint32)
            self._t2 = np.empty(CHUNK, np.uint32)

    def digests(self, data: bytes | memoryview) -> np.ndarray:
        """The digest of the window starting at each offset 0 .. len(data) - L (none if the
        data is shorter than a block). The array is reused by the next call."""
        size = self.block_size
        x = np.frombuffer(data, dtype=np.uint8)
        n = len(x)
        count = n - size + 1
        if count <= 0:
            return np.empty(0, np.uint32)
        self._scratch(n)
        wide, p, r = self._x[:n], self._p[: n + 1], self._r[: n + 1]
        np.copyto(wide, x)
        p[0] = r[0] = 0
        np.cumsum(wide, out=p[1:])
        np.cumsum(p[1:], out=r[1:])
        scale = np.uint32(size & 0xFFFFFFFF)
        out = self._out[:count]
        for start in range(0, count, CHUNK):
            end = min(count, start + CHUNK)
            hi, lo = self._t1[: end - start], self._t2[: end - start]
            np.subtract(r[start + size : end + size], r[start:end], out=hi)
            np.multiply(p[start:end], scale, out=lo)
            hi -= lo
            hi <<= 16
            np.subtract(p[start + size : end + size], p[start:end], out=lo)
            lo &= 0xFFFF
            np.bitwise_or(hi, lo, out=out[start:end])
        return out
