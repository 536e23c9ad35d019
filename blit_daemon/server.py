"""The daemon's lifecycle: start the gRPC server on the configured address (127.0.0.1 unless
told otherwise), log one line when ready, stop gracefully on SIGTERM/SIGINT (refuse new
sessions, let running ones finish within the grace period, then cancel them)."""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc

from blit_core.net.generated import blit_pb2_grpc as pb_grpc
from blit_daemon.config import DaemonConfig
from blit_daemon.service import BlitService

logger = logging.getLogger("blit_daemon")
EXIT_BIND = 10
LOOPBACK = ("127.0.0.1", "::1", "localhost")


async def serve(config: DaemonConfig) -> int:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    service = BlitService(config)
    pb_grpc.add_BlitServicer_to_server(service, server)
    host = f"[{config.bind}]" if ":" in config.bind else config.bind
    try:
        port = server.add_insecure_port(f"{host}:{config.port}")
    except RuntimeError:
        port = 0
    if not port:
        logger.error("cannot listen on %s:%s (in use, or not an address of this machine)",
                     config.bind, config.port)
        return EXIT_BIND
    if config.bind not in LOOPBACK:
        logger.warning("listening on %s: this daemon has no authentication yet; anyone who "
                       "can reach it can read and write its modules", config.bind)
    await server.start()
    names = ", ".join(m.name for m in config.modules)
    logger.info("ready on %s:%d (modules: %s)", config.bind, port, names)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    logger.info("stopping: waiting up to %gs for %d session(s)", config.grace_period,
                len(service.active))
    await server.stop(config.grace_period)
    logger.info("stopped")
    return 0


def run_server(config: DaemonConfig) -> int:
    """Run until stopped; the exit code of the daemon."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(serve(config))
    return uvloop.run(serve(config))
