"""The operations a delta is made of: copy a run of the basis's blocks, or insert literal
bytes. A Copy's last block may be the basis's short tail."""

from __future__ import annotations

from typing import NamedTuple


class Copy(NamedTuple):
    block: int  # the first basis block
    count: int  # how many blocks, in order


class Literal(NamedTuple):
    data: bytes


Op = Copy | Literal


def copy_length(op: Copy, block_size: int, basis_size: int) -> int:
    """How many bytes a Copy stands for (its last block may be short)."""
    start = op.block * block_size
    return max(0, min((op.block + op.count) * block_size, basis_size) - start)
