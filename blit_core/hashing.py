"""Content hashing with xxh3-128, for -c/--checksum comparison and move verification."""

from __future__ import annotations

import os

import xxhash

CHUNK = 1 << 20


def file_digest(path: str) -> bytes:
    """xxh3-128 of a file's content, read in 1 MiB chunks (xxhash releases the GIL)."""
    hasher = xxhash.xxh3_128()
    fd = os.open(path, os.O_RDONLY)
    try:
        while chunk := os.read(fd, CHUNK):
            hasher.update(chunk)
    finally:
        os.close(fd)
    return hasher.digest()


def same_content(path_a: str, path_b: str) -> bool:
    return file_digest(path_a) == file_digest(path_b)
