"""The initiator of a remote transfer: open the Transfer RPC, say Hello, resolve the roots
with rsync's trailing-slash rules against what the daemon reports, dial the data plane, and
run the local end's role (SOURCE for push, DESTINATION for pull)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import time
from collections.abc import AsyncIterator, Sequence

import grpc

from blit_core import __version__, auth
from blit_core.endpoints import LOCAL_PROBE, Probe, anchor_backup_dir, resolve_local
from blit_core.errors import (
    BlitError,
    ConnectionLost,
    ConnectTimeout,
    PeerTimeout,
    ProtocolError,
    RemoteError,
    SelectionError,
    Unreachable,
    UsageError,
)
from blit_core.locations import RemoteLocation
from blit_core.models import TransferReport
from blit_core.net import dataplane, tls
from blit_core.net.generated import blit_pb2 as pb
from blit_core.net.rawframes import TRANSFER_METHOD
from blit_core.net.session import PROTOCOL_VERSION, Channel, Plane, run_destination, run_source
from blit_core.options import RemoteSettings, TransferOptions, Verb
from blit_core.progress import TransferObserver
from blit_core.transfer.destination import Destination
from blit_core.wire.options import options_to_wire

DEFAULT_PORT = 9031
PROGRESS_TICK_S = 0.5


def virtual_path(loc: RemoteLocation) -> str:
    """A remote location as an absolute path whose first component is the module, so the
    local resolution rules (dirname, basename, trailing slash) apply unchanged."""
    path = os.path.normpath(f"/{loc.module}/{loc.path}") if loc.path else f"/{loc.module}"
    return path + "/" if loc.trailing_slash and path != "/" else path


def module_relative(path: str, module: str) -> str:
    rel = os.path.normpath(path).removeprefix(f"/{module}")
    return rel.lstrip("/")


def _backup_dir_in_module(anchored: str, module: str, given: str) -> str:
    """A push's --backup-dir (`anchored`: made relative to DST, as a /module/path), relative
    to the module's root, which it must lie strictly beneath."""
    prefix = f"/{module}/"
    if not anchored.startswith(prefix):
        raise UsageError(f"--backup-dir {given!r} is not inside module {module!r}: give it "
                         f"relative to DST, or as /{module}/PATH")
    return anchored[len(prefix):]


async def _transfer(
    verb: Verb, sources: Sequence[str | RemoteLocation], destination: str | RemoteLocation,
    options: TransferOptions, observer: TransferObserver, settings: RemoteSettings,
) -> TransferReport:
    push = isinstance(destination, RemoteLocation)
    remote = destination if push else sources[0]
    assert isinstance(remote, RemoteLocation)
    if push:
        if any(isinstance(s, RemoteLocation) for s in sources):
            raise UsageError("remote-to-remote transfers are not supported yet")
        virt = virtual_path(remote)
        parent = os.path.dirname(os.path.normpath(virt))
        paths = [virt] if parent == "/" else [virt, parent]  # "/" is the daemon's module list
    else:
        if isinstance(destination, RemoteLocation) or any(
            not isinstance(s, RemoteLocation) or (s.host, s.port, s.module)
            != (remote.host, remote.port, remote.module) for s in sources
        ):
            raise UsageError("all sources of a pull must be on the same daemon and module")
        paths = [virtual_path(s) for s in sources]  # type: ignore[arg-type]
    address = remote.address(DEFAULT_PORT)
    async with tls.open_channel(address, settings.tls) as channel:
        await _connected(channel, address, settings)
        call = channel.stream_stream(TRANSFER_METHOD)()  # bytes each way: see rawframes

        async def read() -> bytes | None:
            try:
                raw = await call.read()
            except grpc.aio.AioRpcError as exc:
                raise await _rpc_error(exc, address, chan, settings.tls) from None
            return None if raw is grpc.aio.EOF else raw

        chan = Channel(read, call.write, settings.timeout, "the daemon")
        try:
            async with chan.running(), _ticking(observer):
                return await _session(chan, call, verb, sources, destination, remote, push,
                                      paths, options, observer, settings)
        except grpc.aio.AioRpcError as exc:
            raise await _rpc_error(exc, address, chan, settings.tls) from None
        finally:
            call.cancel()


async def _connected(channel: grpc.aio.Channel, address: str, settings: RemoteSettings) -> None:
    """Wait until the gRPC connection to the daemon is up: Unreachable when the connection
    fails, ConnectTimeout after --contimeout (else PeerTimeout after --timeout) when it
    hangs, as it does on a host that drops packets or a listener that never answers."""
    limit = settings.contimeout or settings.timeout
    ready = grpc.ChannelConnectivity.READY
    try:
        async with asyncio.timeout(limit):
            state = channel.get_state(try_to_connect=True)
            while state != ready:
                if state in (grpc.ChannelConnectivity.TRANSIENT_FAILURE,
                             grpc.ChannelConnectivity.SHUTDOWN):
                    raise await cannot_connect(address, settings.tls)
                await channel.wait_for_state_change(state)
                state = channel.get_state(try_to_connect=True)
    except TimeoutError:
        if settings.contimeout:
            raise ConnectTimeout(f"the blit daemon at {address} did not answer within "
                                 f"{limit:g} s (--contimeout)") from None
        raise PeerTimeout(f"the blit daemon at {address} did not answer within {limit:g} s "
                          "(--timeout)") from None


@contextlib.asynccontextmanager
async def _ticking(observer: TransferObserver) -> AsyncIterator[None]:
    """Nudge the observer each PROGRESS_TICK_S, so a progress display refreshes its rate and
    ETA even while nothing completes."""
    async def tick() -> None:
        while True:
            await asyncio.sleep(PROGRESS_TICK_S)
            observer.on_progress(0, 0)

    task = asyncio.ensure_future(tick())
    try:
        yield
    finally:
        task.cancel()


async def _rpc_error(exc: grpc.aio.AioRpcError, address: str, chan: Channel,
                     client_tls: tls.ClientTls | None) -> BlitError:
    if exc.code() == grpc.StatusCode.PERMISSION_DENIED:
        return RemoteError(exc.details())
    if exc.code() != grpc.StatusCode.UNAVAILABLE:
        error = ConnectionLost(f"the session with {address} failed: {exc.details()}")
        error.retryable = exc.code() == grpc.StatusCode.CANCELLED  # not another server's "no"
        return error
    if chan.received:
        return ConnectionLost(f"lost the connection to the blit daemon at {address} "
                              "in the middle of the transfer")
    return await cannot_connect(address, client_tls)


async def cannot_connect(address: str, client_tls: tls.ClientTls | None) -> RemoteError:
    """The error for a daemon that cannot be reached at `address` (exit 5): why, when TLS
    on one side only, or a certificate that does not verify, is the reason (a retry would
    not help); else Unreachable (it may be down for a moment)."""
    why = await asyncio.to_thread(tls.explain_failure, address, client_tls)
    if why:
        return RemoteError(why)
    return Unreachable(f"cannot connect to a blit daemon at {address}; is it running? "
                       "(blit scan lists daemons on the LAN)")


async def _session(chan, call, verb, sources, destination, remote, push, paths, options,
                   observer, settings) -> TransferReport:
    started = time.monotonic()
    await chan.send(pb.Frame(hello=pb.Hello(
        protocol=PROTOCOL_VERSION, client_version=__version__, module=remote.module,
        paths=paths, client_role=pb.SOURCE if push else pb.DESTINATION, verb=verb.value,
        options=options_to_wire(options), force_grpc=settings.force_grpc,
        streams=settings.streams, bwlimit=settings.bwlimit, user=remote.user)))
    welcome = (await _logged_in(chan, remote, settings.secret)).welcome
    states = {path: (state.exists, state.is_dir) for path, state in zip(paths, welcome.paths,
                                                                         strict=True)}
    states["/"] = (True, True)  # above the module: resolve_local only asks if it is a directory
    backup_dir = ""  # a push's --backup-dir, relative to the module
    if push:
        local_sources = [str(s) for s in sources]
        probe = Probe(LOCAL_PROBE.source_mode, lambda p: states.get(p, (False, False)),
                      lambda p: states.get(p, (False, False))[1])
        roots, into_dir = resolve_local(local_sources, paths[0], copy_links=options.copy_links,
                                        probe=probe)
        if options.backup_dir:
            backup_dir = _backup_dir_in_module(
                anchor_backup_dir(options, into_dir, paths[0]).backup_dir or "", remote.module,
                options.backup_dir)
    else:
        def source_mode(path: str, follow: bool) -> int:
            exists, is_dir = states[path]
            if not exists:
                raise SelectionError(f"source {path.lstrip('/')!r} does not exist on the daemon")
            return stat.S_IFDIR if is_dir else stat.S_IFREG

        roots, into_dir = resolve_local(paths, str(destination), copy_links=options.copy_links,
                                        probe=Probe(source_mode, *LOCAL_PROBE[1:]))
        options = anchor_backup_dir(options, into_dir, str(destination))
    filters = options.filters
    roots = [root for root in roots
             if not (filters and filters.excludes(root.prefix, root.is_dir))]
    def on_daemon(path: str) -> str:
        return module_relative(path, remote.module)

    wire_roots = [pb.Root(src=r.src if push else on_daemon(r.src),
                          dst=on_daemon(r.dst) if push else r.dst,
                          prefix=r.prefix, is_dir=r.is_dir) for r in roots]
    make_dir = ""
    if into_dir is not None and any(root.dst != into_dir for root in roots):
        make_dir = into_dir
        if not push and not options.dry_run and not os.path.isdir(into_dir):
            os.mkdir(into_dir)
    await chan.send(pb.Frame(roots=pb.Roots(
        roots=wire_roots, make_dir=module_relative(make_dir, remote.module) if push else "",
        has_make_dir=bool(make_dir) and push, backup_dir=backup_dir)))
    grant = (await chan.expect("grant")).grant
    socks = []
    if grant.port:
        socks = await asyncio.to_thread(dataplane.dial_streams, remote.host, grant.port,
                                        grant.token, grant.streams, settings.timeout,
                                        settings.tls.context if settings.tls else None)
    plane = Plane(socks, settings.bwlimit, tune=push and not settings.streams)
    try:
        if push:
            report = await run_source(chan, plane, roots, options, verb, observer)
            for warning in report.warnings:
                observer.on_warning(warning)
            for failure in report.failures:
                observer.on_failure(failure)
        else:
            dest = Destination(roots, verb, options, observer)
            report = await run_destination(chan, plane, dest)
    finally:
        dataplane.close_all(socks)
    await call.done_writing()
    report.duration_s = time.monotonic() - started
    report.wire_bytes_sent = chan.sent + (plane.wire_bytes if push else 0)
    report.wire_bytes_received = chan.received + (0 if push else plane.wire_bytes)
    report.stream_bytes = plane.stream_bytes
    return report


async def _logged_in(chan: Channel, remote: RemoteLocation, secret: bytes | None) -> pb.Frame:
    """The Welcome, after answering the daemon's challenge if the module has users."""
    frame = await chan.recv()
    if frame.HasField("challenge"):
        if secret is None:
            raise RemoteError(f"module {remote.module!r} needs a login: give --password-file "
                              f"FILE or set {auth.PASSWORD_ENV}")
        await chan.send(pb.Frame(auth=pb.AuthAnswer(answer=auth.answer(
            secret, frame.challenge.nonce, remote.module, remote.user))))
        frame = await chan.recv()
    if not frame.HasField("welcome"):
        raise ProtocolError(f"expected welcome, got {frame.WhichOneof('body')}")
    return frame


async def _with_retries(
    verb: Verb, sources: Sequence[str | RemoteLocation], destination: str | RemoteLocation,
    options: TransferOptions, observer: TransferObserver, settings: RemoteSettings,
) -> TransferReport:
    retry = 0
    while True:
        try:
            return await _transfer(verb, sources, destination, options, observer, settings)
        except BlitError as exc:
            retry += 1
            if not exc.retryable or retry > settings.retries or (
                    verb is Verb.MOVE and not isinstance(exc, Unreachable | ConnectTimeout)):
                raise  # a move may have deleted sources before it failed: never run it twice
            observer.on_warning(f"{exc}; retrying in {settings.retries_sleep:g} s "
                                f"(retry {retry} of {settings.retries})")
            await asyncio.sleep(settings.retries_sleep)


def remote_transfer(
    verb: Verb, sources: Sequence[str | RemoteLocation], destination: str | RemoteLocation,
    options: TransferOptions, observer: TransferObserver, settings: RemoteSettings,
) -> TransferReport:
    """Run a push or a pull against a blit daemon: again, after `settings.retries_sleep`, up
    to `settings.retries` times, while what ends an attempt is retryable (the daemon cannot be
    reached, is busy or stopped answering, the connection broke). Each attempt picks up where
    the last left off, as a re-run does: committed files are up to date and are skipped."""
    coro = _with_retries(verb, sources, destination, options, observer, settings)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
