"""How the admin streams travel, against the admin service served in-process on 127.0.0.1:
entries go in batches of at most a few hundred (never one message per entry), a walk that
finds nothing for longer than the client's timeout still succeeds, because the daemon sends
keepalives while it works, and a walk whose caller has gone away stops."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from blit_core import admin
from blit_core.net.admin import connect
from blit_core.net.generated import blit_pb2 as pb
from blit_core.net.generated import blit_pb2_grpc as pb_grpc
from blit_daemon.admin import BATCH, AdminService
from blit_daemon.config import DaemonConfig, ModuleConfig
from blit_daemon.login import LoginLimiter

ENTRIES = 1000


async def _serving(root: Path) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    config = DaemonConfig(modules=(ModuleConfig("m", str(root)),))
    pb_grpc.add_BlitAdminServicer_to_server(AdminService(config, LoginLimiter()), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for i in range(ENTRIES):
        (tmp_path / f"e{i:04d}").write_bytes(b"")
    return tmp_path


def test_entries_travel_in_batches(root: Path) -> None:
    async def main() -> list[int]:
        server, address = await _serving(root)
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                call = pb_grpc.BlitAdminStub(channel).List(pb.ListRequest(path=b"/m"))
                return [len(batch.entries) async for batch in call]
        finally:
            await server.stop(None)

    sizes = [size for size in asyncio.run(main()) if size]
    assert sum(sizes) == ENTRIES
    assert max(sizes) <= BATCH and len(sizes) <= 2 * ENTRIES // BATCH + 2


def test_a_slow_walk_outlasts_the_client_timeout_through_keepalives(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_find = admin.find

    def slow_find(parent_fd: int, name: str, criteria: admin.FindCriteria,
                  stop: threading.Event | None = None) -> Iterator[admin.Entry]:
        time.sleep(3.0)  # three times the client's timeout without a match
        yield from real_find(parent_fd, name, criteria, stop)

    monkeypatch.setattr(admin, "find", slow_find)

    async def main() -> list[str]:
        server, address = await _serving(root)
        try:
            async with connect(address, timeout=1.0) as client:
                found: AsyncIterator[admin.Entry] = client.find(
                    "/m", admin.FindCriteria(name="e000*"))
                return [entry.path async for entry in found]
        finally:
            await server.stop(None)

    started = time.monotonic()
    assert asyncio.run(main()) == [f"e000{i}" for i in range(10)]
    assert time.monotonic() - started >= 3.0


def test_a_cancelled_walk_stops_at_once(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A find that matches nothing over a walk slowed to ~2 s is cancelled after 0.3 s: the
    daemon's walk ends within a few steps, instead of running on for nobody."""
    real_walk = admin._walk
    steps: list[float] = []

    def slow_walk(*args: object, **kwargs: object) -> Iterator[object]:
        for visit in real_walk(*args, **kwargs):  # type: ignore[arg-type]
            steps.append(time.monotonic())
            time.sleep(0.002)
            yield visit

    monkeypatch.setattr(admin, "_walk", slow_walk)

    async def main() -> float:
        server, address = await _serving(root)
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                call = pb_grpc.BlitAdminStub(channel).Find(
                    pb.FindRequest(path=b"/m", name=b"no such name"))
                await asyncio.sleep(0.3)
                call.cancel()
                cancelled_at = time.monotonic()
                await asyncio.sleep(0.5)
                return cancelled_at
        finally:
            await server.stop(None)

    cancelled_at = asyncio.run(main())
    assert steps, "the walk never started"
    assert len(steps) < ENTRIES // 2
    assert steps[-1] < cancelled_at + 0.1
