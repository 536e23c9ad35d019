"""The raw TCP loopback ceiling of the remote benchmark: the time to move N bytes over one
127.0.0.1 connection from a child Python process (1 MiB ``sendall`` calls) to this one
(``recv_into`` a 1 MiB buffer), timed from a go byte to end of stream.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

from benchmarks.daemons import LOOPBACK
from benchmarks.runner import BenchError
from benchmarks.workloads import MiB

CHUNK = MiB

_SENDER = """
import socket, sys
port, left, chunk = (int(a) for a in sys.argv[1:])
buf = memoryview(bytes(chunk))
with socket.create_connection(("127.0.0.1", port)) as sock:
    sock.recv(1)
    while left > 0:
        sock.sendall(buf[: min(chunk, left)])
        left -= chunk
"""


def loopback_seconds(nbytes: int) -> float:
    """Seconds to move ``nbytes`` over one loopback TCP connection between two processes."""
    with socket.create_server((LOOPBACK, 0)) as server:
        server.settimeout(30)
        port = server.getsockname()[1]
        argv = [sys.executable, "-c", _SENDER, str(port), str(nbytes), str(CHUNK)]
        with subprocess.Popen(argv, stdin=subprocess.DEVNULL) as sender:
            got = 0
            try:
                conn, _ = server.accept()
                with conn:
                    conn.settimeout(60)
                    buf = memoryview(bytearray(CHUNK))
                    t0 = time.perf_counter()
                    conn.sendall(b"g")
                    while n := conn.recv_into(buf):
                        got += n
                    seconds = time.perf_counter() - t0
            except OSError as exc:
                sender.kill()
                raise BenchError(f"raw TCP measurement failed: {exc}") from exc
    if sender.returncode != 0 or got != nbytes:
        raise BenchError(
            f"raw TCP: sender exited with {sender.returncode}, {got} of {nbytes} bytes"
        )
    return seconds
