"""The argument parser of every blit command line (blit, blit-daemon): usage errors are one
line naming the program, a pointer to --help, and exit code 1 (rsync's)."""

from __future__ import annotations

import argparse
import sys


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        program = self.prog.split()[0]  # "blit copy" reports as "blit"
        sys.stderr.write(f"{program}: error: {message}\nTry '{self.prog} --help' for more.\n")
        sys.exit(1)
