"""The daemon's admin service (BlitAdmin): one RPC per blit-utils verb, over the files of its
modules. Paths are resolved as transfer paths are (blit_daemon.modules: refused, never
normalised; walked without following symlinks), the filesystem work is blit_core.admin's, run
off the event loop, and streams go out in batches as the work produces them. A refusal ends
the call with a status whose details are one line for the user. When a caller goes away, the
work it started stops at the next entry. A path in a module with users needs the caller's
login (blit_daemon.login.admin_login): a nonce from NewChallenge, answered in the call's
metadata."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import Any, Generic, NoReturn, TypeVar

import grpc

from blit_core import __version__, admin
from blit_core.errors import BlitError, ProtocolError, RemoteError, UnsafePathError
from blit_core.net import admin as wire
from blit_core.net.generated import blit_pb2 as pb
from blit_core.net.generated import blit_pb2_grpc as pb_grpc
from blit_daemon.access import peer_address, refusal
from blit_daemon.config import DaemonConfig, ModuleConfig
from blit_daemon.login import ChallengeBook, LoginLimiter, admin_login
from blit_daemon.modules import open_parent, resolve

logger = logging.getLogger("blit_daemon")
BATCH = 256  # entries per reply message
MAX_PENDING = 4 * BATCH  # entries made but not yet sent, before the worker waits
FLUSH_S = 0.1  # how long a partial batch may wait for more entries
KEEPALIVE_S = 0.5  # an empty reply when a stream has sent nothing for this long

T = TypeVar("T")


class AdminService(pb_grpc.BlitAdminServicer):
    """Reads the modules from `self.config` on every call, so a reloaded configuration (which
    replaces `config`) applies to the next call. `logins`: failed logins per address, shared
    with transfers."""

    def __init__(self, config: DaemonConfig, logins: LoginLimiter) -> None:
        self.config = config
        self.logins = logins
        self.challenges = ChallengeBook()

    async def NewChallenge(self, request: pb.ChallengeRequest,
                           context: grpc.aio.ServicerContext) -> pb.Challenge:
        return pb.Challenge(nonce=self.challenges.issue())

    async def ListModules(self, request: pb.ListModulesRequest,
                          context: grpc.aio.ServicerContext) -> pb.ModuleList:
        config = self.config
        modules = tuple(admin.ModuleInfo(m.name, m.comment, m.read_only)
                        for m in config.visible_modules(peer_address(context.peer())))
        return wire.listing_to_wire(admin.ModuleListing(modules, config.motd, __version__))

    async def List(self, request: pb.ListRequest,
                   context: grpc.aio.ServicerContext) -> AsyncIterator[pb.EntryBatch]:
        def work(parent_fd: int, name: str, stop: threading.Event) -> Iterator[admin.Entry]:
            return admin.list_path(parent_fd, name, show_hidden=request.all)

        async for reply in self._stream(context, request, work, wire.entry_to_wire,
                                        pb.EntryBatch):
            yield reply

    async def Find(self, request: pb.FindRequest,
                   context: grpc.aio.ServicerContext) -> AsyncIterator[pb.EntryBatch]:
        try:
            criteria = wire.criteria_from_wire(request)
        except BlitError as exc:
            await _refuse(context, exc, "")

        def work(parent_fd: int, name: str, stop: threading.Event) -> Iterator[admin.Entry]:
            return admin.find(parent_fd, name, criteria, stop)

        async for reply in self._stream(context, request, work, wire.entry_to_wire,
                                        pb.EntryBatch):
            yield reply

    async def DiskUsage(self, request: pb.DiskUsageRequest,
                        context: grpc.aio.ServicerContext) -> AsyncIterator[pb.UsageBatch]:
        max_depth = request.max_depth if request.HasField("max_depth") else None

        def work(parent_fd: int, name: str, stop: threading.Event) -> Iterator[admin.Usage]:
            return admin.disk_usage(parent_fd, name, max_depth, stop)

        async for reply in self._stream(context, request, work, wire.usage_to_wire,
                                        pb.UsageBatch):
            yield reply

    async def DiskFree(self, request: pb.PathRequest,
                       context: grpc.aio.ServicerContext) -> pb.Space:
        virtual = os.fsdecode(request.path)
        caller = _Caller(self, context, request)

        def work() -> admin.Space:
            with self._target(virtual, caller) as (parent_fd, name):
                return admin.disk_free(parent_fd, name)

        try:
            return wire.space_to_wire(await asyncio.to_thread(work))
        except (BlitError, OSError) as exc:
            await _refuse(context, exc, virtual)

    async def Remove(self, request: pb.RemoveRequest,
                     context: grpc.aio.ServicerContext) -> AsyncIterator[pb.RemoveReply]:
        targets = []
        caller = _Caller(self, context, request)
        try:  # the whole request is refused before anything goes
            for path in request.paths:
                virtual = os.fsdecode(path)
                module, rel = caller.resolve(virtual)
                if module.read_only:
                    raise RemoteError(f"module {module.name!r} is read-only")
                if "delete" in module.refuse_options:
                    raise refusal(module.name, "delete")
                if not rel:
                    raise RemoteError(f"refusing to remove the root of module {module.name!r}")
                _refuse_symlinks(virtual, module, rel)
                targets.append((virtual, module, rel))
        except BlitError as exc:
            await _refuse(context, exc, "")

        def work(stop: threading.Event) -> Generator[admin.Removal, None, None]:
            for virtual, module, rel in targets:
                if stop.is_set():
                    return
                yield _remove(virtual, module, rel, request, stop)

        async with contextlib.aclosing(_pumped(context, work, wire.removal_to_wire, "")) as batches:
            async for batch in batches:
                yield pb.RemoveReply(removals=batch)

    async def CompletePath(self, request: pb.PathRequest,
                           context: grpc.aio.ServicerContext) -> pb.Completions:
        virtual = os.fsdecode(request.path)
        try:
            found = await asyncio.to_thread(self._complete, virtual,
                                            _Caller(self, context, request))
        except (BlitError, OSError) as exc:
            await _refuse(context, exc, virtual)
        return pb.Completions(paths=[os.fsencode(path) for path in found])

    async def _stream(self, context: grpc.aio.ServicerContext, request: Any,
                      work: Callable[[int, str, threading.Event], Iterator[T]],
                      to_wire: Callable[[T], Any], reply: Callable[..., Any]
                      ) -> AsyncIterator[Any]:
        """Run `work` on the target `path` names, in a thread, sending what it yields in
        batches as `reply(entries=...)` messages."""
        virtual = os.fsdecode(request.path)
        caller = _Caller(self, context, request)

        def produce(stop: threading.Event) -> Generator[T, None, None]:
            with self._target(virtual, caller) as (parent_fd, name):
                yield from work(parent_fd, name, stop)

        async with contextlib.aclosing(_pumped(context, produce, to_wire, virtual)) as batches:
            async for batch in batches:
                yield reply(entries=batch)

    @contextlib.contextmanager
    def _target(self, virtual: str, caller: _Caller) -> Iterator[tuple[int, str]]:
        """(descriptor of the directory holding the path, its name) for "/module/path", as
        `caller` may reach it."""
        module, rel = caller.resolve(virtual)
        parent_fd, name = open_parent(module, rel)
        try:
            yield parent_fd, name
        finally:
            os.close(parent_fd)

    def _complete(self, partial: str, caller: _Caller) -> list[str]:
        """Completions of "/mo" (the names of the modules listed to the caller, as
        "/module/") or "/module/dir/na"."""
        if not partial.startswith("/"):
            raise ProtocolError(f"path {partial!r} does not start with /module")
        head, _, prefix = partial.rpartition("/")
        if not head:
            names = sorted(m.name for m in self.config.visible_modules(caller.address)
                           if m.name.startswith(prefix))
            return [f"/{name}/" for name in names[:admin.MAX_COMPLETIONS]]
        with self._target(head, caller) as (parent_fd, name):
            found = admin.completions(parent_fd, name, prefix)
        return [f"{head}/{child}/" if is_dir else f"{head}/{child}" for child, is_dir in found]


class _Caller:
    """Who makes one admin call (`request`): the peer's address and the login its metadata
    offers, checked (its nonce used up) for the first module with users the call names."""

    def __init__(self, service: AdminService, context: grpc.aio.ServicerContext,
                 request: Any) -> None:
        self.address = peer_address(context.peer())
        self._request = request
        self._metadata = tuple(context.invocation_metadata() or ())
        self._service = service
        self._logged_in: str | None = None

    def resolve(self, virtual: str) -> tuple[ModuleConfig, str]:
        """The module and module-relative path of "/module/path", if this caller may use
        it."""
        config = self._service.config
        module, rel = resolve(config, virtual, self.address)
        if module.auth_users and module.name != self._logged_in:
            if self._logged_in is not None:
                raise RemoteError("a call logs in to one module: name paths of one module")
            admin_login(config, module, self._request, self._metadata, self.address,
                        self._service.logins, self._service.challenges)
            self._logged_in = module.name
        return module, rel


def _refuse_symlinks(virtual: str, module: ModuleConfig, rel: str) -> None:
    """Refuse a path whose parent is reached through a symlink (it could be outside the
    module) or a file; a missing parent is left to the removal, as that path's error."""
    try:
        parent_fd, _ = open_parent(module, rel)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UnsafePathError(f"{virtual!r}: {_reason(exc)}") from None
    os.close(parent_fd)


def _remove(virtual: str, module: ModuleConfig, rel: str, request: pb.RemoveRequest,
            stop: threading.Event) -> admin.Removal:
    try:
        parent_fd, name = open_parent(module, rel)
    except OSError as exc:
        return admin.Removal(virtual, error=_reason(exc))
    try:
        removal = admin.remove(virtual, parent_fd, name, recursive=request.recursive,
                               dry_run=request.dry_run, stop=stop)
    finally:
        os.close(parent_fd)
    if not request.dry_run:
        logger.info("removed %s: %d files, %d dirs%s", virtual, removal.files, removal.dirs,
                    f" ({removal.error})" if removal.error else "")
    return removal


async def _pumped(context: grpc.aio.ServicerContext,
                  work: Callable[[threading.Event], Generator[T, None, None]],
                  to_wire: Callable[[T], Any],
                  what: str) -> AsyncIterator[list[Any]]:
    """The batches of a _Pump over `work`; an error the work raises ends the call as a refusal
    of `what`, and the work is told to stop however the call ends (callers close this
    generator with aclosing, so that happens at once)."""
    pump = _Pump(work, to_wire)
    try:
        async for batch in pump.batches():
            yield batch
    except (BlitError, OSError) as exc:
        await _refuse(context, exc, what)
    finally:
        pump.close()


async def _refuse(context: grpc.aio.ServicerContext, exc: BlitError | OSError,
                  what: str) -> NoReturn:
    """End the call with a one-line message for the user: a refused path, an unknown or
    read-only module, a missing file (context.abort raises)."""
    if isinstance(exc, BlitError):
        code = (grpc.StatusCode.INVALID_ARGUMENT if isinstance(exc, ProtocolError)
                else grpc.StatusCode.FAILED_PRECONDITION)
        message = str(exc)
    else:
        code = (grpc.StatusCode.NOT_FOUND if isinstance(exc, FileNotFoundError)
                else grpc.StatusCode.FAILED_PRECONDITION)
        message = f"{what!r}: {_reason(exc)}"
    logger.info("%s refused: %s", context.peer(), message)
    await context.abort(code, message)


def _reason(exc: OSError) -> str:
    """Why a path cannot be reached, in words for the user."""
    if exc.errno in (errno.ENOTDIR, errno.ELOOP):
        return "it passes through a symlink or a file (the daemon follows no symlinks)"
    return exc.strerror or str(exc)


class _Pump(Generic[T]):
    """Runs `work(stop)` in a thread of its own and hands what it yields (converted by
    `to_wire` there) to the event loop in batches: a full batch at once, a partial one after
    FLUSH_S, an empty one (a keepalive) after KEEPALIVE_S of nothing. The thread waits while
    MAX_PENDING items are untaken. Closing sets `stop`, which the work checks as it goes, and
    the thread ends at its next item; the generator is closed in the thread that ran it."""

    def __init__(self, work: Callable[[threading.Event], Generator[T, None, None]],
                 to_wire: Callable[[T], Any]) -> None:
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()  # a full batch is pending, or the work ended
        self._lock = threading.Condition()
        self._pending: list[Any] = []
        self._finished = False
        self._error: Exception | None = None
        self._stop = threading.Event()
        threading.Thread(target=self._produce, args=(work, to_wire), daemon=True,
                         name="blit-admin").start()

    def _produce(self, work: Callable[[threading.Event], Generator[T, None, None]],
                 to_wire: Callable[[T], Any]) -> None:
        items = work(self._stop)
        try:
            for item in items:
                message = to_wire(item)
                with self._lock:
                    while len(self._pending) >= MAX_PENDING and not self._stop.is_set():
                        self._lock.wait()
                    if self._stop.is_set():
                        return
                    self._pending.append(message)
                    if len(self._pending) == BATCH:
                        self._wake()
        except admin.Interrupted:
            pass  # closed: nobody is waiting for the rest
        except Exception as exc:
            self._error = exc
        finally:
            items.close()
            with self._lock:
                self._finished = True
                self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            self._loop.call_soon_threadsafe(self._ready.set)

    async def batches(self) -> AsyncIterator[list[Any]]:
        """The items in batches of at most BATCH; raises what the generator raised."""
        last_sent = self._loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), FLUSH_S)
            with self._lock:
                batch = self._pending[:BATCH]
                del self._pending[:BATCH]
                self._lock.notify_all()
                done = self._finished and not self._pending
                if len(self._pending) < BATCH and not self._finished:
                    self._ready.clear()
            if batch or (not done and self._loop.time() - last_sent >= KEEPALIVE_S):
                yield batch
                last_sent = self._loop.time()
            elif done:
                if self._error is not None:
                    raise self._error
                return

    def close(self) -> None:
        with self._lock:
            self._stop.set()
            self._lock.notify_all()
