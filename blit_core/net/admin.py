"""The admin service on the wire: converting blit_core.admin's records to and from the BlitAdmin
messages (both ends use these, so the format lives in one place), and the client that calls a
daemon's admin RPCs and maps their failures to blit errors. Never prints.

Paths travel as bytes (os.fsencode), so names that are not UTF-8 survive the trip. A client
with a login logs in on every call that names a path: a fresh nonce from NewChallenge, then
the call with the answer in its metadata (blit_core.auth)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, TypeVar

import grpc

from blit_core import auth
from blit_core.admin import (
    Entry,
    EntryKind,
    FindCriteria,
    ModuleInfo,
    ModuleListing,
    Removal,
    Space,
    Usage,
)
from blit_core.errors import BlitError, PeerTimeout, ProtocolError, RemoteError
from blit_core.net import tls
from blit_core.net.client import cannot_connect
from blit_core.net.generated import blit_pb2 as pb
from blit_core.net.generated import blit_pb2_grpc as pb_grpc

T = TypeVar("T")

_KIND_TO_WIRE = {EntryKind.FILE: pb.FILE, EntryKind.DIR: pb.DIR,
                 EntryKind.SYMLINK: pb.SYMLINK, EntryKind.OTHER: pb.OTHER}
_KIND_FROM_WIRE = {wire: kind for kind, wire in _KIND_TO_WIRE.items()}


def entry_to_wire(entry: Entry) -> pb.Entry:
    return pb.Entry(path=os.fsencode(entry.path), type=_KIND_TO_WIRE[entry.kind],
                    size=entry.size, mode=entry.mode, mtime_ns=entry.mtime_ns,
                    target=os.fsencode(entry.target))


def entry_from_wire(message: pb.Entry) -> Entry:
    return Entry(os.fsdecode(message.path), _KIND_FROM_WIRE.get(message.type, EntryKind.OTHER),
                 message.size, message.mode, message.mtime_ns, os.fsdecode(message.target))


def find_request(path: str, criteria: FindCriteria) -> pb.FindRequest:
    kind = criteria.kind
    return pb.FindRequest(
        path=os.fsencode(path), name=os.fsencode(criteria.name),
        type=pb.OTHER if kind is None else _KIND_TO_WIRE[kind], has_type=kind is not None,
        min_size=criteria.min_size, max_size=criteria.max_size, newer_s=criteria.newer_s,
        limit=criteria.limit)


def criteria_from_wire(request: pb.FindRequest) -> FindCriteria:
    def optional(field: str) -> Any:
        return getattr(request, field) if request.HasField(field) else None

    newer_s = optional("newer_s")
    if newer_s is not None and not (math.isfinite(newer_s) and newer_s >= 0):
        raise ProtocolError(f"find: age {newer_s} is not a number of seconds")
    return FindCriteria(
        name=os.fsdecode(request.name),
        kind=_KIND_FROM_WIRE.get(request.type, EntryKind.OTHER) if request.has_type else None,
        min_size=optional("min_size"), max_size=optional("max_size"),
        newer_s=newer_s, limit=request.limit)


def usage_to_wire(usage: Usage) -> pb.Usage:
    return pb.Usage(path=os.fsencode(usage.path), bytes=usage.bytes, files=usage.files)


def usage_from_wire(message: pb.Usage) -> Usage:
    return Usage(os.fsdecode(message.path), message.bytes, message.files)


def space_to_wire(space: Space) -> pb.Space:
    return pb.Space(total=space.total, used=space.used, free=space.free)


def space_from_wire(message: pb.Space) -> Space:
    return Space(message.total, message.used, message.free)


def removal_to_wire(removal: Removal) -> pb.Removal:
    return pb.Removal(path=os.fsencode(removal.path), files=removal.files, dirs=removal.dirs,
                      bytes=removal.bytes, error=removal.error)


def removal_from_wire(message: pb.Removal) -> Removal:
    return Removal(os.fsdecode(message.path), message.files, message.dirs, message.bytes,
                   message.error)


def listing_to_wire(listing: ModuleListing) -> pb.ModuleList:
    return pb.ModuleList(
        modules=[pb.ModuleInfo(name=m.name, comment=m.comment, read_only=m.read_only)
                 for m in listing.modules],
        motd=listing.motd, server_version=listing.server_version)


def listing_from_wire(message: pb.ModuleList) -> ModuleListing:
    modules = tuple(ModuleInfo(m.name, m.comment, m.read_only) for m in message.modules)
    return ModuleListing(modules, message.motd, message.server_version)


class AdminClient:
    """The admin RPCs of the daemon at `address` ("host:port"). Every reply must arrive within
    `timeout` seconds of the call or of the previous reply (connecting included), so a stream
    may run long as long as its replies keep coming. `client_tls`: how the channel checks the
    daemon (None: plain), for explaining a failure to connect. `login`: (user, secret) for
    modules with users."""

    def __init__(self, channel: grpc.aio.Channel, address: str, timeout: float,
                 client_tls: tls.ClientTls | None = None,
                 login: tuple[str, bytes] | None = None) -> None:
        self.address = address
        self.timeout = timeout
        self.client_tls = client_tls
        self.login = login
        self._stub = pb_grpc.BlitAdminStub(channel)

    async def list_modules(self) -> ModuleListing:
        return listing_from_wire(await self._unary(self._stub.ListModules,
                                                   pb.ListModulesRequest()))

    def list(self, path: str, *, show_hidden: bool) -> AsyncIterator[Entry]:
        """The entries of a directory, or the path itself when it is not one (as path "")."""
        request = pb.ListRequest(path=os.fsencode(path), all=show_hidden)
        return self._stream(self._stub.List, request, _entries, path)

    def find(self, path: str, criteria: FindCriteria) -> AsyncIterator[Entry]:
        return self._stream(self._stub.Find, find_request(path, criteria), _entries, path)

    def disk_usage(self, path: str, max_depth: int | None) -> AsyncIterator[Usage]:
        request = pb.DiskUsageRequest(path=os.fsencode(path), max_depth=max_depth)
        return self._stream(self._stub.DiskUsage, request,
                            lambda batch: map(usage_from_wire, batch.entries), path)

    async def disk_free(self, path: str) -> Space:
        return space_from_wire(await self._unary(self._stub.DiskFree,
                                                 pb.PathRequest(path=os.fsencode(path)), path))

    async def remove(self, paths: Sequence[str], *, recursive: bool,
                     dry_run: bool) -> list[Removal]:
        request = pb.RemoveRequest(paths=[os.fsencode(p) for p in paths], recursive=recursive,
                                   dry_run=dry_run)
        replies = self._stream(self._stub.Remove, request,
                               lambda reply: map(removal_from_wire, reply.removals),
                               paths[0] if paths else None)
        return [removal async for removal in replies]

    async def complete_path(self, partial: str) -> list[str]:
        """Candidates ("/module/path", directories ending in '/') for a partial path."""
        reply = await self._unary(self._stub.CompletePath,
                                  pb.PathRequest(path=os.fsencode(partial)))
        return [os.fsdecode(path) for path in reply.paths]

    async def _logging_in(self, request: Any,
                          path: str | None) -> tuple[tuple[str, bytes], ...] | None:
        """The metadata that logs in to the module of `path` ("/module/...") for `request`,
        if this client has a login and the call names a path."""
        if self.login is None or path is None:
            return None
        user, secret = self.login
        challenge = await self._unary(self._stub.NewChallenge, pb.ChallengeRequest())
        module = path.lstrip("/").split("/", 1)[0]
        return auth.login_metadata(secret, challenge.nonce, module, user, request)

    async def _unary(self, method: Callable[..., Any], request: Any,
                     path: str | None = None) -> Any:
        """`path`: the one the call names, to log in to its module."""
        metadata = await self._logging_in(request, path)
        try:
            return await method(request, timeout=self.timeout, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            raise await self._failure(exc) from None

    async def _stream(self, method: Callable[..., Any], request: Any,
                      items: Callable[[Any], Iterable[T]], path: str | None) -> AsyncIterator[T]:
        call = method(request, metadata=await self._logging_in(request, path))
        try:
            while True:
                try:
                    reply = await asyncio.wait_for(call.read(), self.timeout)
                except TimeoutError:
                    raise self._timed_out() from None
                except grpc.aio.AioRpcError as exc:
                    raise await self._failure(exc) from None
                if reply is grpc.aio.EOF:
                    return
                for item in items(reply):
                    yield item
        finally:
            call.cancel()

    async def _failure(self, exc: grpc.aio.AioRpcError) -> BlitError:
        code = exc.code()
        if code == grpc.StatusCode.UNAVAILABLE:
            return await cannot_connect(self.address, self.client_tls)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return self._timed_out()
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return RemoteError(f"the blit daemon at {self.address} does not offer this admin "
                               "call (is it an older version?)")
        return RemoteError(exc.details() or f"the blit daemon at {self.address} refused "
                           f"({code.name})")

    def _timed_out(self) -> PeerTimeout:
        return PeerTimeout(f"the blit daemon at {self.address} did not answer within "
                           f"{self.timeout:g}s")


def _entries(batch: pb.EntryBatch) -> Iterable[Entry]:
    return map(entry_from_wire, batch.entries)


@contextlib.asynccontextmanager
async def connect(address: str, timeout: float, client_tls: tls.ClientTls | None = None,
                  login: tuple[str, bytes] | None = None) -> AsyncIterator[AdminClient]:
    """An AdminClient for the daemon at `address` (over TLS with `client_tls`, logging in
    with `login`), its connection closed on leaving. The connection is made by the first
    call, which reports a daemon that cannot be reached."""
    async with tls.open_channel(address, client_tls) as channel:
        yield AdminClient(channel, address, timeout, client_tls, login)
