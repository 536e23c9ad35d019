"""`blit demo`: the Quick start round trip. It generates a sample tree in a temp directory,
starts a blit-daemon on 127.0.0.1 (ephemeral port, no mDNS) exporting a temporary module,
pushes the tree to it, pulls it back, verifies the copy (content, modes, mtimes, links), prints
the throughput of each leg, and cleans everything up."""

from __future__ import annotations

import os
import random
import shutil
import sys
import tempfile

import xxhash

from blit_cli import render
from blit_core import api
from blit_core.models import TransferReport
from blit_core.options import TransferOptions, Verb
from blit_daemon.child import ChildDaemon


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


def tree_fingerprint(root: str) -> dict[str, tuple]:
    """Every entry below root: kind, mode, mtime (files and dirs), size and content digest
    (files) or target (links)."""
    found: dict[str, tuple] = {}
    for directory, dirs, names in os.walk(root):
        for name in dirs + names:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                found[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                found[rel] = ("dir", st.st_mode, st.st_mtime_ns)
            else:
                with open(path, "rb") as handle:
                    digest = xxhash.xxh3_128_hexdigest(handle.read())
                found[rel] = ("file", st.st_mode, st.st_mtime_ns, st.st_size, digest)
    return found


def _leg(name: str, source: str, destination: str, show_progress: bool) -> TransferReport:
    console = render.Console(itemize=False, verbose=0, quiet=False, events_to_stderr=False,
                             progress=show_progress)
    with console:
        report = api.transfer(Verb.MIRROR, [source], destination,
                              TransferOptions(want_progress=show_progress), console)
    print(f"{name}: {render.summary_line(report)}")
    return report


def run_demo(files: int) -> int:
    workdir = tempfile.mkdtemp(prefix="blit-demo-")
    try:
        source = os.path.join(workdir, "source")
        module = os.path.join(workdir, "module")
        back = os.path.join(workdir, "pulled-back")
        os.mkdir(source)
        os.mkdir(module)
        print(f"Generating {files} files and 64 MiB of large files in {source} ...")
        make_sample_tree(source, files)
        daemon = ChildDaemon("--root", module)
        try:
            print(f"blit-daemon on 127.0.0.1:{daemon.port}, module 'default' = {module}")
            remote = f"127.0.0.1:{daemon.port}:/default/tree/"
            show_progress = sys.stderr.isatty()
            for name, src, dst in (("push", source + "/", remote), ("pull", remote, back)):
                print(f"{name}: blit mirror {src} {dst}")
                report = _leg(name, src, dst, show_progress)
                if report.exit_code:
                    return report.exit_code
        finally:
            daemon.stop()
        pulled = tree_fingerprint(back)
        if tree_fingerprint(source) != pulled:
            print("verify: FAILED: the pulled-back tree differs from the source", file=sys.stderr)
            return 1
        print(f"verify: the pulled-back tree is identical to the source "
              f"({len(pulled)} entries: content, modes, mtimes, links)")
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
