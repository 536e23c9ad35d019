"""-z/--compress: a sender compresses what shrinks and sends the rest as it is (a sender
thread writing into a capture, decoded back), and through a real blit-daemon on 127.0.0.1
compressible data shrinks on the wire only with -z (loopback is never compressed by
default), in both directions, for large files, tar shards and delta literals."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from helpers.capture import Capture
from helpers.daemon import Daemon, sides, transfer
from helpers.treecheck import assert_same_tree

from blit_core.models import entry_from_stat
from blit_core.net.dataplane import STOP, Sender, Work, WorkQueue
from blit_core.net.tuning import StreamGate
from blit_core.options import DEFAULT_COMPRESS_LEVEL
from blit_core.transfer.source import SourceFile
from blit_core.wire import frames
from blit_core.wire.compression import Compressor

WORDS = [b"alpha", b"bravo", b"charlie", b"delta", b"echo", b"foxtrot", b"golf", b"hotel"]


def text(size: int, seed: int = 0) -> bytes:
    """Log-like lines of random words: compresses about 3 to 4 times with zstd."""
    rng = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choice(WORDS) for _ in range(12)) + b"\n"
    return bytes(out[:size])


def send_one_file(path: Path) -> Capture:
    """One sender thread with a compressor sends the file as one range, then END."""
    out, work = Capture(), WorkQueue(4)
    entry = entry_from_stat(path.name, path.stat())
    work.put(Work(1, SourceFile(0, path.name, entry), str(path), path.name, 0, entry.size))
    work.put(STOP)
    Sender(out, work, None, lambda *counts: None, lambda p: os.open(p, os.O_RDONLY),
           StreamGate(1), 0, Compressor(DEFAULT_COMPRESS_LEVEL)).run()
    return out


def decoded_payload(out: Capture) -> bytes:
    return b"".join(event.chunk for event in out.events() if isinstance(event, frames.Data))


@pytest.mark.parametrize(("name", "make", "compressed"), [
    ("log.txt", lambda: text(3 << 20), True),
    ("noise.bin", lambda: os.urandom(3 << 20), False),  # its sample does not shrink
    ("log.txt.zst", lambda: text(3 << 20), False),  # named as compressed already
    # random first, then zeros: judged by its first bytes, sent as it is
    ("late.bin", lambda: os.urandom(64 << 10) + bytes(3 << 20), False),
])
def test_a_sender_compresses_a_file_only_if_it_shrinks(name, make, compressed,
                                                       tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(content := make())
    out = send_one_file(path)
    kinds = {write[0] for write in out.writes}
    if compressed:
        assert kinds == {frames.COMPRESSED, frames.END}
        assert len(out.stream) < len(content) / 2
    else:
        assert kinds == {frames.RANGE, frames.END}
        assert len(out.stream) > len(content)
    assert decoded_payload(out) == content


def wire(report: dict) -> int:
    return report["wire_bytes_sent"] + report["wire_bytes_received"]


def run_json(*args) -> dict:
    result = transfer(*args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("direction", ["push", "pull"])
def test_compressible_data_shrinks_on_the_wire_only_with_z(direction: str, daemon: Daemon,
                                                            tmp_path: Path) -> None:
    src, dst = sides(direction, daemon, tmp_path)
    src.mkdir()
    (src / "big.log").write_bytes(text(6 << 20, 1))  # ranges
    small = src / "small"
    small.mkdir()
    for index in range(300):  # tar shards
        (small / f"{index}.txt").write_bytes(text(4096, index))
    (src / "noise.bin").write_bytes(os.urandom(1 << 20))
    size = (6 << 20) + 300 * 4096 + (1 << 20)

    plain = run_json(direction, daemon, "copy", src, dst, "--json")
    assert wire(plain) > size  # loopback: no compression unless asked
    assert_same_tree(src, dst)

    again = dst.with_name(dst.name + "-z")
    packed = run_json(direction, daemon, "copy", src, again, "--json", "-z")
    assert_same_tree(src, again)
    assert (1 << 20) < wire(packed) < (1 << 20) + ((6 << 20) + 300 * 4096) / 2


def test_delta_literals_are_compressed_with_z(daemon: Daemon, tmp_path: Path) -> None:
    src, dst = sides("push", daemon, tmp_path)
    src.mkdir()
    log = src / "app.log"
    log.write_bytes(text(4 << 20, 2))
    run_json("push", daemon, "copy", src, dst, "--json")
    log.write_bytes(log.read_bytes() + text(2 << 20, 3))  # appended: the literal
    report = run_json("push", daemon, "copy", src, dst, "--json", "-z")
    assert_same_tree(src, dst)
    delta = report["delta"]
    assert delta["files"] == 1 and delta["literal_bytes"] >= 2 << 20
    assert report["wire_bytes_sent"] < delta["literal_bytes"] / 2


def test_compress_level_is_checked(tmp_path: Path) -> None:
    result = transfer("local", None, "copy", tmp_path, tmp_path / "x", "--compress-level", "30")
    assert result.returncode == 1
    assert "--compress-level must be between 1 and 19" in result.stderr
