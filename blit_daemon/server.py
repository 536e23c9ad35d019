"""The daemon's lifecycle: start the gRPC server on the configured address (127.0.0.1 unless
told otherwise), log one line when ready, then announce it with mDNS in the background (where
it listens; a failure is one warning). SIGHUP reloads the configuration: modules, motd and
limits change live; a new address, port, max_sessions or TLS files need a restart. With
`tls_cert` and `tls_key`, the gRPC port (admin included) and every data connection use TLS.
SIGTERM/SIGINT stop it gracefully (withdraw the announcement, refuse new sessions, let
running ones finish within the grace period, then cancel them)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Protocol

import grpc

from blit_core import discovery
from blit_core.net.generated import blit_pb2_grpc as pb_grpc
from blit_daemon.access import HostGate
from blit_daemon.admin import AdminService
from blit_daemon.config import ConfigError, DaemonConfig
from blit_daemon.service import BlitService, add_to_server

logger = logging.getLogger("blit_daemon")
EXIT_BIND = 10
LOOPBACK = ("127.0.0.1", "::1", "localhost")
# used once, at start: a reload keeps them
RESTART_FIELDS = ("bind", "port", "max_sessions", "tls_cert", "tls_key")
# A session waits in up to this many threads of the loop's executor at once (the scan, its
# batches, the work queue, the data-plane threads' end); the default executor's 6 threads (on
# 2 cores) made sessions beyond the first few queue behind the others' waits.
THREADS_PER_SESSION = 4
CLEANUP_TIMEOUT_S = 10.0  # at shutdown, how long cancelled sessions get to clean up


class Configured(Protocol):
    """A servicer that reads the daemon's configuration from `.config` (a reload sets it)."""

    config: DaemonConfig


async def serve(config: DaemonConfig,
                reload: Callable[[], DaemonConfig] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; `reload` reads the configuration again for SIGHUP (raising
    ConfigError), exactly as it was read at start."""
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(
        config.max_sessions * THREADS_PER_SESSION + 4, thread_name_prefix="blit-daemon"))
    identity = config.tls  # loaded with the configuration; a reload keeps the first
    service = BlitService(config, identity.context if identity else None)
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)],
                             interceptors=[HostGate(lambda: service.config.hosts)])
    add_to_server(service, server)
    admin = AdminService(config, service.logins)
    pb_grpc.add_BlitAdminServicer_to_server(admin, server)
    servicers: list[Configured] = [service, admin]  # every servicer holding the configuration
    host = f"[{config.bind}]" if ":" in config.bind else config.bind
    try:
        port = (server.add_secure_port(f"{host}:{config.port}", identity.credentials)
                if identity else server.add_insecure_port(f"{host}:{config.port}"))
    except RuntimeError:
        port = 0
    if not port:
        logger.error("cannot listen on %s:%s (in use, or not an address of this machine)",
                     config.bind, config.port)
        return EXIT_BIND
    open_modules = _writable_by_anyone(config)
    if open_modules:
        logger.warning("listening on %s: anyone who can reach it can write to module(s) %s; "
                       "give them auth_users or read_only = true, or a hosts_allow of "
                       "loopback addresses only", config.bind, ", ".join(open_modules))
    await server.start()
    names = ", ".join(m.name for m in config.modules)
    logger.info("ready on %s:%d%s (modules: %s)", config.bind, port,
                " with TLS" if identity else "", names)
    announcement = _Announcement(config.bind, port)
    if config.mdns:
        announcement.follow(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if reload is not None:
        loop.add_signal_handler(signal.SIGHUP, _reload, reload, servicers, announcement)
    await stop.wait()
    await announcement.stop()
    config = service.config
    logger.info("stopping: waiting up to %gs for %d session(s)", config.grace_period,
                len(service.active))
    await server.stop(config.grace_period)
    if service.active:  # cancelled sessions remove their temp files before the process ends
        await asyncio.wait(service.active, timeout=CLEANUP_TIMEOUT_S)
    logger.info("stopped")
    return 0


def _writable_by_anyone(config: DaemonConfig) -> list[str]:
    """The modules that are writable, need no login and let in more than loopback, when the
    daemon listens beyond loopback."""
    if config.bind in LOOPBACK or config.hosts.loopback_only:
        return []
    return [m.name for m in config.modules
            if not m.read_only and not m.auth_users and not m.hosts.loopback_only]


def _reload(read: Callable[[], DaemonConfig], servicers: Sequence[Configured],
            announcement: _Announcement) -> None:
    """SIGHUP: apply the configuration read again to the running daemon. A bad one is one
    warning and the daemon keeps the one it has; RESTART_FIELDS wait for a restart."""
    old = servicers[0].config
    try:
        new = read()
    except ConfigError as exc:
        logger.warning("reload refused, keeping the running configuration: %s", exc)
        return
    pending = [field for field in RESTART_FIELDS if getattr(new, field) != getattr(old, field)]
    if pending:
        logger.warning("reload: restart the daemon to apply %s", ", ".join(
            f"{field} = {getattr(new, field)!r}" for field in pending))
        new = replace(new, **{field: getattr(old, field) for field in pending})
    for servicer in servicers:
        servicer.config = new
    logger.info("reloaded (modules: %s)", ", ".join(m.name for m in new.modules))
    if _announced(new) != _announced(old):
        announcement.follow(new)


def _announced(config: DaemonConfig) -> tuple[object, ...] | None:
    """What the mDNS announcement says for `config` (None: there is none)."""
    if not config.mdns:
        return None
    return config.mdns_name, _announced_modules(config)


def _announced_modules(config: DaemonConfig) -> tuple[discovery.ModuleInfo, ...]:
    """The modules the announcement names: all but those with `list = false`."""
    return tuple(discovery.ModuleInfo(m.name, m.read_only) for m in config.modules if m.listed)


class _Announcement:
    """The daemon's mDNS announcement, kept in step with its configuration by background
    tasks run one after another: probing takes about a second and must never delay the
    daemon, and a failure is one warning line."""

    def __init__(self, bind: str, port: int) -> None:
        self.advertiser = discovery.Advertiser(bind, port)
        self.task: asyncio.Task[None] | None = None

    def follow(self, config: DaemonConfig) -> None:
        """Announce what `config` says, or withdraw the announcement if it turns mDNS off."""
        self.task = asyncio.create_task(self._apply(self.task, config))

    async def _apply(self, previous: asyncio.Task[None] | None, config: DaemonConfig) -> None:
        if previous is not None:
            await previous
        if not config.mdns:
            await self.advertiser.close()
            logger.info("mDNS: not advertising (mdns = false)")
            return
        wanted = config.mdns_name or discovery.default_instance_name()
        modules = _announced_modules(config)
        try:
            name = await self.advertiser.publish(wanted, modules)
        except discovery.DiscoveryError as exc:
            logger.warning("mDNS: not advertising: %s", exc)
            return
        taken = "" if name == wanted else f" ({wanted} is taken)"
        logger.info("mDNS: advertising %s%s on %s (modules: %s)", name, taken,
                    self.advertiser.where, ", ".join(m.name for m in modules))

    async def stop(self) -> None:
        """Withdraw the announcement (goodbye packets), abandoning any change in progress."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.advertiser.close()


def run_server(config: DaemonConfig, reload: Callable[[], DaemonConfig] | None = None) -> int:
    """Run until stopped; the exit code of the daemon."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(serve(config, reload))
    return uvloop.run(serve(config, reload))
