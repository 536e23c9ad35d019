"""Hostile admin requests, made with the generated stubs so no client-side parsing stands in the
way: every RPC that takes a path is given paths with '..', '.', NUL, no leading '/', an empty
module name and a walk through a symlink that leaves the module. Each must be refused with a
one-line status, reveal nothing of the directory outside, and change nothing anywhere; a removal
holding one hostile path among good ones is refused as a whole."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from helpers.admin import AdminSetup
from helpers.treecheck import diff_snapshots, snapshot

from blit_core.net.generated import blit_pb2 as pb
from blit_core.net.generated import blit_pb2_grpc as pb_grpc

HOSTILE = [b"/data/../outside", b"/data/../../etc", b"/data/a\x00b", b"/data/./a.txt",
           b"data/a.txt", b"/../data", b"//data", b"/data/escape/secret.txt"]
REFUSED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
           grpc.StatusCode.NOT_FOUND}


@pytest.fixture
def stub(setup: AdminSetup) -> Iterator[pb_grpc.BlitAdminStub]:
    with grpc.insecure_channel(setup.host) as channel:
        yield pb_grpc.BlitAdminStub(channel)


def _refusal(call: Callable[[], Any]) -> tuple[list[Any], Any]:
    """(what the call sent before it failed, its error); the call must fail."""
    sent: list[Any] = []
    try:
        reply = call()
        if isinstance(reply, grpc.Call) and hasattr(reply, "__iter__"):
            sent.extend(reply)
        else:
            sent.append(reply)
    except grpc.RpcError as exc:
        return sent, exc
    raise AssertionError(f"not refused; the daemon sent {sent}")


def _calls(stub: pb_grpc.BlitAdminStub, path: bytes) -> dict[str, Callable[[], Any]]:
    """Each path-taking RPC, with `path`."""
    return {
        "List": lambda: stub.List(pb.ListRequest(path=path, all=True), timeout=10),
        "Find": lambda: stub.Find(pb.FindRequest(path=path), timeout=10),
        "DiskUsage": lambda: stub.DiskUsage(pb.DiskUsageRequest(path=path), timeout=10),
        "DiskFree": lambda: stub.DiskFree(pb.PathRequest(path=path), timeout=10),
        "CompletePath": lambda: stub.CompletePath(pb.PathRequest(path=path + b"/s"), timeout=10),
        "Remove": lambda: stub.Remove(pb.RemoveRequest(paths=[path], recursive=True),
                                      timeout=10),
    }


@pytest.mark.parametrize("rpc", ["List", "Find", "DiskUsage", "DiskFree", "CompletePath",
                                 "Remove"])
def test_hostile_paths_are_refused_and_reveal_nothing(setup: AdminSetup,
                                                      stub: pb_grpc.BlitAdminStub,
                                                      rpc: str) -> None:
    before = snapshot(setup.data.parent)
    for path in HOSTILE:
        sent, error = _refusal(_calls(stub, path)[rpc])
        assert error.code() in REFUSED, (path, error.code(), error.details())
        assert "\n" not in error.details()
        assert all(not getattr(reply, "entries", None) for reply in sent), sent
    assert diff_snapshots(before, snapshot(setup.data.parent)) == []


def test_a_removal_with_one_hostile_path_is_refused_as_a_whole(
        setup: AdminSetup, stub: pb_grpc.BlitAdminStub) -> None:
    good = setup.scratch / "good.txt"
    good.write_text("keep me")
    before = snapshot(setup.data.parent)
    for hostile in (b"/scratch/../data/a.txt", b"/scratch/x\x00", b"/ro/keep.txt", b"/scratch"):
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.Remove(pb.RemoveRequest(paths=[b"/scratch/good.txt", hostile],
                                              recursive=True), timeout=10))
        assert refused.value.code() in REFUSED  # type: ignore[attr-defined]
    assert diff_snapshots(before, snapshot(setup.data.parent)) == []


def test_a_symlink_passed_as_the_path_is_listed_as_a_link(
        setup: AdminSetup, stub: pb_grpc.BlitAdminStub) -> None:
    (batch,) = stub.List(pb.ListRequest(path=b"/data/escape", all=True), timeout=10)
    (entry,) = batch.entries
    assert (entry.path, entry.type, entry.target) == (b"", pb.SYMLINK,
                                                      str(setup.outside).encode())
    found = [e.path for b in stub.Find(pb.FindRequest(path=b"/data/escape"), timeout=10)
             for e in b.entries]
    assert found == [b""]
