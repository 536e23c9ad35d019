"""A TCP relay on 127.0.0.1 that records every byte it forwards: it accepts connections and
joins each to `target`, keeping what went each way, so a test can see exactly what a peer put
on the wire."""

from __future__ import annotations

import contextlib
import socket
import threading

PIECE = 1 << 16


class RecordingRelay:
    """Forwards connections on `address` to `target`; `sent` holds the bytes clients sent,
    `received` those the target answered (for all connections, in arrival order)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.sent = bytearray()
        self.received = bytearray()
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = self._listener.getsockname()[:2]
        self._start(self._accept)

    def _start(self, run, *args) -> None:
        thread = threading.Thread(target=run, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            server = socket.socket()  # not create_connection, which a test may redirect here
            server.connect(self.target)
            self._socks += [client, server]
            self._start(self._pump, client, server, self.sent)
            self._start(self._pump, server, client, self.received)

    def _pump(self, src: socket.socket, dst: socket.socket, record: bytearray) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(PIECE):
                with self._lock:
                    record += data
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Stop accepting, close every connection and wait for the pumps (bounded)."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept (Linux)
        self._listener.close()
        for sock in self._socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(5)
