"""`blit demo`: generate a sample tree in a temp directory, mirror it with progress and a
summary, change a few files, mirror again, and clean up. The first thing a new user runs."""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile

from blit_cli import render
from blit_core import api
from blit_core.options import TransferOptions


def make_sample_tree(root: str, files: int, seed: int = 7) -> None:
    """A tree of `files` small files in nested directories, plus a few large files and a link."""
    rng = random.Random(seed)
    for index in range(files):
        directory = os.path.join(root, f"dir{index % 50:02d}", f"sub{index % 7}")
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, f"file{index:05d}.txt"), "wb") as handle:
            handle.write(rng.randbytes(rng.randint(0, 8192)))
    os.makedirs(os.path.join(root, "big"), exist_ok=True)
    for index in range(4):
        with open(os.path.join(root, "big", f"blob{index}.bin"), "wb") as handle:
            handle.write(os.urandom(16 << 20))
    os.symlink("big/blob0.bin", os.path.join(root, "latest.bin"))


def run_demo(files: int) -> int:
    workdir = tempfile.mkdtemp(prefix="blit-demo-")
    try:
        source = os.path.join(workdir, "source")
        mirror = os.path.join(workdir, "mirror")
        os.mkdir(source)
        print(f"Generating {files} files and 64 MiB of large files in {source} ...")
        make_sample_tree(source, files)
        show_progress = sys.stderr.isatty()
        options = TransferOptions(want_progress=show_progress)
        for round_name in ("first mirror", "second mirror after changing 10 files"):
            console = render.Console(itemize=False, verbose=0, quiet=False,
                                     events_to_stderr=False, progress=show_progress)
            with console:
                report = api.mirror([source + "/"], mirror, options, console)
            print(f"{round_name}: {render.summary_line(report)}")
            if report.exit_code:
                return report.exit_code
            for index in range(10):
                path = os.path.join(source, f"dir{index:02d}", f"sub{index % 7}",
                                    f"file{index:05d}.txt")
                with open(path, "ab") as handle:
                    handle.write(b"changed\n")
        print(render.stats_block(report))
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
