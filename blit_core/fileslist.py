"""--files-from: an explicit list of paths to transfer, relative to the source root.

As in rsync, a listed path is transferred together with the directories leading to it, and a
listed directory is created but not recursed into. Memory is one string per listed path."""

from __future__ import annotations

from blit_core.filters import read_pattern_file


class FilesFrom:
    def __init__(self, paths: list[str]) -> None:
        self.listed: frozenset[str] = frozenset(paths)
        self.ancestors: frozenset[str] = frozenset(
            path.rsplit("/", depth)[0]
            for path in paths
            for depth in range(1, path.count("/") + 1)
        )

    def selects(self, path: str, is_dir: bool) -> bool:
        """Whether a path (relative to the transfer root) is part of the transfer."""
        return path in self.listed or (is_dir and path in self.ancestors)

    @classmethod
    def read(cls, source: str) -> FilesFrom:
        """Read a list file ('-' for stdin): one path per line; blank lines and lines starting
        with '#' or ';' are skipped, like the pattern files of --exclude-from."""
        return cls([line.strip("/").removeprefix("./") for line in read_pattern_file(source)])
