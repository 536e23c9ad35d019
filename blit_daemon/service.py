"""The daemon's side of a Transfer RPC: check the Hello against the modules, report the paths,
take the resolved roots, grant the data plane, and run the daemon's role of the session."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import ssl
import stat

import grpc

from blit_core import __version__, pathsafe
from blit_core.errors import BlitError, DaemonBusy, RemoteError, UnsafePathError
from blit_core.net import dataplane
from blit_core.net.generated import blit_pb2 as pb
from blit_core.net.rawframes import TRANSFER_SERVICE
from blit_core.net.session import (
    PROTOCOL_VERSION,
    Channel,
    Plane,
    RelayObserver,
    run_destination,
    run_source,
)
from blit_core.net.tuning import AUTO_STREAMS
from blit_core.options import Verb
from blit_core.progress import NullObserver
from blit_core.runtime import release_free_memory
from blit_core.transfer.destination import Destination
from blit_core.transfer.jobs import TransferRoot
from blit_core.wire.options import options_from_wire
from blit_daemon.access import ModuleSessions, check_refused, peer_address
from blit_daemon.config import DaemonConfig, ModuleConfig
from blit_daemon.login import LoginLimiter, log_in
from blit_daemon.modules import find_module, module_relative, open_parent

logger = logging.getLogger("blit_daemon")
MAX_STREAMS = 16
LINGER_S = 2.0  # after a Failure, how long the client may take to read it


def add_to_server(service: BlitService, server: grpc.aio.Server) -> None:
    """Serve `service`'s Transfer RPC with no (de)serializers: its frames cross as bytes,
    serialized and parsed once by the session (see rawframes)."""
    transfer = grpc.stream_stream_rpc_method_handler(service.Transfer)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        TRANSFER_SERVICE, {"Transfer": transfer}),))


class BlitService:
    def __init__(self, config: DaemonConfig, tls: ssl.SSLContext | None = None) -> None:
        """`tls`: the daemon's identity for data connections (None: plain TCP)."""
        self.config = config
        self.tls = tls
        self.sessions = asyncio.Semaphore(config.max_sessions)
        self.active: set[asyncio.Task] = set()
        self.logins = LoginLimiter()
        self.module_sessions = ModuleSessions()

    async def Transfer(self, request_iterator, context: grpc.aio.ServicerContext) -> None:
        async def read() -> bytes | None:
            raw = await context.read()
            return None if raw is grpc.aio.EOF else raw

        chan = Channel(read, context.write, self.config.session_timeout,
                       "the client")
        if self.sessions.locked():
            async with chan.running():
                await _refuse(chan, DaemonBusy("the daemon is busy serving too many sessions; "
                                               "retry later"))
            return
        async with self.sessions:
            task = asyncio.current_task()
            assert task is not None
            self.active.add(task)
            try:
                async with chan.running():
                    try:
                        await self._session(chan, context.peer())
                    except Exception as exc:
                        if isinstance(exc, BlitError):
                            logger.info("session from %s failed: %s", context.peer(), exc)
                        else:
                            logger.exception("session from %s failed", context.peer())
                        await _refuse(chan, exc)
            finally:
                self.active.discard(task)
                if not self.active:  # idle: what the sessions' threads freed goes back
                    release_free_memory()

    async def _session(self, chan: Channel, peer: str) -> None:
        hello = (await chan.expect("hello")).hello
        if hello.protocol != PROTOCOL_VERSION:
            raise RemoteError(f"protocol version mismatch: client speaks {hello.protocol}, "
                              f"daemon {PROTOCOL_VERSION}; upgrade the older side")
        address = peer_address(peer)
        module = find_module(self.config, hello.module, address)
        await log_in(chan, self.config, module, hello.user, address, self.logins)
        with self.module_sessions.admitted(module.name, module.max_connections):
            await self._serve(chan, peer, hello, module)

    async def _serve(self, chan: Channel, peer: str, hello: pb.Hello,
                     module: ModuleConfig) -> None:
        """The session, once `module` has admitted the client."""
        daemon_is_source = hello.client_role == pb.DESTINATION
        if not daemon_is_source and module.read_only:
            raise RemoteError(f"module {module.name!r} is read-only")
        verb = Verb(hello.verb)
        if daemon_is_source and verb is Verb.MOVE and module.read_only:
            raise RemoteError(f"module {module.name!r} is read-only; move would delete from it")
        options = options_from_wire(hello.options)
        check_refused(module.name, module.refuse_options, options, verb, daemon_is_source)
        if daemon_is_source and options.copy_links and not pathsafe.can_follow_beneath():
            raise RemoteError("-L/--copy-links when pulling needs openat2 (Linux 5.6 or "
                              "later) on the daemon's machine")
        follow = daemon_is_source and options.copy_links  # -L: links inside the module only
        states = [_path_state(module, path, follow) for path in hello.paths]
        await chan.send(pb.Frame(welcome=pb.Welcome(
            protocol=PROTOCOL_VERSION, server_version=__version__, paths=states,
            motd=self.config.motd, force_grpc_data=self.config.force_grpc_data)))
        wire_roots = (await chan.expect("roots")).roots
        roots = [_daemon_root(module, r, daemon_is_source, follow) for r in wire_roots.roots]
        if options.backup_dir and not daemon_is_source:
            options = dataclasses.replace(options, backup_dir=_backup_dir(module, wire_roots))
        if wire_roots.has_make_dir and not options.dry_run:  # only once every root is safe
            _make_dir(module, wire_roots.make_dir)
        logger.info("%s %s %s %s:%s", peer, verb.value, "pull" if daemon_is_source else "push",
                    module.name, ",".join(hello.paths[:1]))
        streams = min(MAX_STREAMS, hello.streams) if hello.streams else AUTO_STREAMS
        bwlimit = min((x for x in (hello.bwlimit, self.config.bwlimit) if x), default=0)
        socks = []
        if hello.force_grpc or self.config.force_grpc_data:
            await chan.send(pb.Frame(grant=pb.DataGrant(port=0)))
        else:
            grant = dataplane.open_grant(self.config.bind, streams)
            await chan.send(pb.Frame(grant=pb.DataGrant(port=grant.port, token=grant.token,
                                                        streams=streams)))
            socks = await asyncio.to_thread(dataplane.accept_streams, grant,
                                            self.config.session_timeout, self.tls)
        plane = Plane(socks, bwlimit, tune=daemon_is_source and not hello.streams)
        try:
            if daemon_is_source:
                await run_source(chan, plane, roots, options, verb, NullObserver(),
                                 jail=module.path)
            else:
                dest = Destination(roots, verb, options, RelayObserver(), jail=module.path,
                                   module=module.name)
                await run_destination(chan, plane, dest)
        finally:
            dataplane.close_all(socks)


async def _refuse(chan: Channel, error: Exception) -> None:
    """Tell the client why its session ends, and give it a moment to read that."""
    await chan.fail(error)
    await chan.linger(LINGER_S)


def _path_state(module: ModuleConfig, virtual: str, follow: bool) -> pb.PathState:
    """Whether a module path exists and is a directory, reached without following any
    symlink (one that leaves the module is reported as not a directory), or with `follow`
    (-L on a pull) following those that stay inside the module."""
    rel = module_relative(module, virtual.rstrip("/") or "/")
    try:
        if follow:
            dir_fd, name = pathsafe.open_following_in(module.path, rel or ".", os.O_PATH), ""
        else:
            dir_fd, name = open_parent(module, rel)
        try:
            st = os.lstat(name, dir_fd=dir_fd) if name else os.fstat(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        return pb.PathState(exists=False, is_dir=False)
    return pb.PathState(exists=True, is_dir=stat.S_ISDIR(st.st_mode))


def _daemon_root(module: ModuleConfig, root: pb.Root, daemon_is_source: bool,
                 follow: bool) -> TransferRoot:
    """`follow` (-L on a pull): the SOURCE reads everything following only the symlinks that
    stay inside the module, so a root may be reached through one."""
    rel = pathsafe.validate_wire_path(root.src if daemon_is_source else root.dst)
    pathsafe.validate_wire_path(root.prefix)
    if not rel and not daemon_is_source and not root.is_dir:
        raise UnsafePathError(f"only a directory can be copied onto the root of module "
                              f"{module.name!r}, never a file or a link in its place")
    if not follow:
        _refuse_symlinks(module, rel, root.is_dir)
    path = os.path.join(module.path, rel) if rel else module.path
    if daemon_is_source:
        return TransferRoot(path, root.dst, root.prefix, root.is_dir)
    return TransferRoot(root.src, path, root.prefix, root.is_dir)


def _backup_dir(module: ModuleConfig, roots: pb.Roots) -> str:
    """A push's --backup-dir: a plain path beneath the module's root (its directories are
    made and reached without following symlinks when a backup is kept)."""
    rel = pathsafe.validate_wire_path(roots.backup_dir)
    if not rel:
        raise UnsafePathError(f"--backup-dir must be a directory inside module {module.name!r}")
    return os.path.join(module.path, rel)


def _refuse_symlinks(module: ModuleConfig, rel: str, is_dir: bool) -> None:
    """A transfer root must be reached without following a symlink (one could leave the
    module), and must not itself be a symlink standing for a directory. A root that does not
    exist yet (a dry run into a new directory) has nothing to follow."""
    if not rel:
        return
    try:
        dir_fd, name = open_parent(module, rel)
    except FileNotFoundError:
        return
    except OSError:
        raise UnsafePathError(f"{rel!r} passes through a symlink or a file inside module "
                              f"{module.name!r}; the daemon follows no symlinks") from None
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    finally:
        os.close(dir_fd)
    if is_dir and stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(f"{rel!r} is a symlink inside module {module.name!r}; "
                              "the daemon follows no symlinks")


def _make_dir(module: ModuleConfig, rel: str) -> None:
    rel = pathsafe.validate_wire_path(rel)
    if not rel:
        return
    try:
        dir_fd, name = open_parent(module, rel)
    except OSError as exc:
        raise UnsafePathError(f"cannot create {rel!r} inside module {module.name!r}: its parent "
                              f"is not a directory reached without symlinks ({exc.strerror})"
                              ) from None
    try:
        os.mkdir(name, 0o755, dir_fd=dir_fd)
    except FileExistsError:
        pass
    except OSError as exc:
        raise RemoteError(f"cannot create {rel!r} inside module {module.name!r}: "
                          f"{exc.strerror}") from None
    finally:
        os.close(dir_fd)
