"""How the admin streams travel, against the admin service served in-process on 127.0.0.1:
entries go in batches of at most a few hundred (never one message per entry), and a walk that
finds nothing for longer than the client's timeout still succeeds, because the daemon sends
keepalives while it works."""

from __future__ import annotations

import asyncio
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

ENTRIES = 1000


async def _serving(root: Path) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    config = DaemonConfig(modules=(ModuleConfig("m", str(root)),))
    pb_grpc.add_BlitAdminServicer_to_server(AdminService(config), server)
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

    def slow_find(parent_fd: int, name: str,
                  criteria: admin.FindCriteria) -> Iterator[admin.Entry]:
        time.sleep(3.0)  # three times the client's timeout without a match
        yield from real_find(parent_fd, name, criteria)

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
