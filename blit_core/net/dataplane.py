"""The data plane: file bytes from SOURCE to DESTINATION over several raw TCP connections.

The responder of a session listens on an ephemeral port and grants a random single-use token;
the initiator dials N connections, each opening with the token (checked in constant time; a
wrong or reused one is closed without a reply). Then, whoever dialled, the SOURCE writes
records (blit_core.wire) and the DESTINATION reads them. With compression on (-z, or a peer
beyond the LAN), a sender compresses what shrinks (blit_core.wire.compression): a file whose
sample compresses goes as compressed RANGE records of CHUNK bytes instead of by sendfile,
and each shard and literal goes compressed when that makes it smaller.

Each connection is served by its own thread with a blocking socket: the sender thread takes
work from one shared bounded queue, so no stream idles while another has a queue, packs
small files into tar shards and sends large ranges with zero-copy os.sendfile; the receiver
thread decodes records and writes through the Destination, reading large payloads straight
into a reused buffer. The socket timeout bounds a send to a peer that stopped reading; an
idle receiver waits until the session shuts its socket down. Under --force-grpc the same
records travel inside the control stream through `FrameOutput`/`feed_frames`.

With TLS (blit_core.net.tls), every connection is wrapped by the stdlib ssl module: the
daemon handshakes in its accept loop, the initiator checks the daemon's certificate before
sending the token, and a TLS sender reads files and sends them (sendfile would bypass the
encryption).

A file that changes while it is sent is never committed torn: the DESTINATION commits a file
when its last byte (or its delta's end) arrives, and the sender sends that only after checking,
after its last read, that the file still has the size and mtime the scan saw. Each range ends
with a separate tail record for this; a file that changed is aborted instead."""

from __future__ import annotations

import contextlib
import errno
import hmac
import ipaddress
import os
import queue
import secrets
import select
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple, Protocol

from blit_core.delta.files import read_chunks
from blit_core.delta.ops import Literal, Op
from blit_core.errors import ConnectionLost, PeerTimeout, ProtocolError
from blit_core.net.tuning import StreamGate
from blit_core.scan import still_as_scanned
from blit_core.transfer.destination import Destination
from blit_core.transfer.source import SourceFile
from blit_core.wire import compression, frames, tarshard
from blit_core.wire.codec import Decoder
from blit_core.wire.compression import Compressor

if TYPE_CHECKING:
    from blit_core.delta.signature import Signature

ACCEPT_TIMEOUT_S = 10.0
HANDSHAKE_TIMEOUT_S = 2.0  # one connection's preface
MAX_PENDING_HANDSHAKES = 32
SHARD_BYTES = 4 << 20
SHARD_FILES = 1000
SMALL_FILE = 256 << 10
RANGE_BYTES = 64 << 20
RECV_BUFFER = 1 << 20
SENDFILE_PIECE = 8 << 20
RANGE_TAIL = 64 << 10  # a range's last bytes: read, checked against the scan, then sent
CHANGED = "changed during the transfer"


class Work(NamedTuple):
    """A file to send: a small one (for a shard) or a range of a large one."""

    need_id: int
    file: SourceFile
    path: str  # where the SOURCE reads it
    shown: str  # its name in a shard: its path relative to the transfer root
    offset: int
    length: int


class DeltaWork(NamedTuple):
    """A file sent as a delta against the DESTINATION's basis, whose signature came back."""

    need_id: int
    file: SourceFile
    path: str  # where the SOURCE reads it
    signature: Signature


class ShardWork(NamedTuple):
    """Small files that travel together as one tar shard."""

    files: list[Work]


STOP = None


class WorkPacker:
    """Turns needed files into the units senders take: a shard of up to SHARD_FILES small
    files (SHARD_BYTES of content), or one range of a large file, cut so that several streams
    carry it."""

    def __init__(self, streams: int) -> None:
        self.streams = streams
        self._small: list[Work] = []
        self._small_bytes = 0

    def add(self, need_id: int, file: SourceFile, path: str,
            shown: str) -> Iterator[Work | ShardWork]:
        """The units ready once this file is added (a full shard, or its ranges)."""
        size = file.entry.size
        if size <= SMALL_FILE:
            self._small.append(Work(need_id, file, path, shown, 0, size))
            self._small_bytes += size
            if len(self._small) >= SHARD_FILES or self._small_bytes >= SHARD_BYTES:
                yield self.flush()
            return
        piece = max(SMALL_FILE, min(RANGE_BYTES, -(-size // self.streams)))
        for offset in range(0, size, piece):
            yield Work(need_id, file, path, shown, offset, min(piece, size - offset))

    def flush(self) -> ShardWork:
        """The small files added since the last shard (possibly none)."""
        shard, self._small, self._small_bytes = ShardWork(self._small), [], 0
        return shard


class WorkQueue(queue.Queue):
    """The senders' shared, bounded queue of units; it knows whether ranges of large files
    are waiting (the only work that more streams speed up), and which files changed while
    they were sent and go again (REDO)."""

    def _init(self, maxsize: int) -> None:
        super()._init(maxsize)
        self.ranges_waiting = 0
        self.redone: set[int] = set()

    def claim_redo(self, need_id: int) -> int | None:
        """The new id under which `need_id`, found changed, is sent again; None if another
        stream (sending another range of it) found it first."""
        with self.mutex:
            if need_id in self.redone:
                return None
            self.redone.add(need_id)
            return frames.FIRST_REDO_ID + len(self.redone) - 1

    def _put(self, item: Work | ShardWork | None) -> None:
        super()._put(item)
        self.ranges_waiting += isinstance(item, Work)

    def _get(self) -> Work | ShardWork | None:
        item = super()._get()
        self.ranges_waiting -= isinstance(item, Work)
        return item


class RateLimit:
    """A token bucket shared by every sender of a session (bytes per second)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.lock = threading.Lock()
        self.allowance = 0.0
        self.stamp = time.monotonic()
        self.stopped = threading.Event()  # the session ended: nobody waits any more

    def take(self, num_bytes: int) -> None:
        with self.lock:
            now = time.monotonic()
            self.allowance = min(self.rate, self.allowance + (now - self.stamp) * self.rate)
            self.stamp = now
            self.allowance -= num_bytes
            wait = -self.allowance / self.rate if self.allowance < 0 else 0.0
        if wait:
            self.stopped.wait(wait)


# -- connection set-up ---------------------------------------------------------------------


class Grant(NamedTuple):
    listener: socket.socket
    port: int
    token: bytes
    streams: int


def open_grant(host: str, streams: int) -> Grant:
    """Listen on an ephemeral port of the address the daemon serves on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.bind((host, 0))
    listener.listen(streams + 4)
    return Grant(listener, listener.getsockname()[1], secrets.token_bytes(frames.TOKEN_BYTES),
                 streams)


def accept_streams(grant: Grant, timeout: float,
                   tls: ssl.SSLContext | None = None) -> list[socket.socket]:
    """Accept the granted connections. Handshakes run side by side, each with its own short
    deadline, so a connection that sends nothing cannot hold up the good ones; a wrong token
    is closed silently. With `tls` (the daemon's identity), each connection's TLS handshake
    comes first, within the same deadline, and the token travels encrypted. The listener
    closes once all are in, or when the accept timeout passes with fewer (at least one)."""
    accepted: list[socket.socket] = []
    pending: dict[socket.socket, _Arrival] = {}
    deadline = time.monotonic() + ACCEPT_TIMEOUT_S
    selector = selectors.DefaultSelector()

    def drop(conn: socket.socket) -> None:
        selector.unregister(conn)
        del pending[conn]
        conn.close()

    grant.listener.setblocking(False)
    selector.register(grant.listener, selectors.EVENT_READ)
    try:
        while len(accepted) < grant.streams:
            now = time.monotonic()
            for conn in [c for c, arrival in pending.items() if arrival.expires <= now]:
                drop(conn)
            if now >= deadline:
                break
            wake = min([deadline, *(arrival.expires for arrival in pending.values())])
            for key, _ in selector.select(wake - now):
                if key.fileobj is grant.listener:
                    with contextlib.suppress(BlockingIOError):
                        conn, _ = grant.listener.accept()
                        if len(pending) >= MAX_PENDING_HANDSHAKES:
                            conn.close()
                            continue
                        arrival = _Arrival(conn, tls)
                        pending[arrival.conn] = arrival
                        selector.register(arrival.conn, selectors.EVENT_READ)
                    continue
                conn = key.fileobj
                assert isinstance(conn, socket.socket)
                waits_for = pending[conn].advance()
                if waits_for is None:
                    drop(conn)
                    continue
                if waits_for:
                    selector.modify(conn, waits_for)
                    continue
                selector.unregister(conn)
                token = _token_of(bytes(pending.pop(conn).preface))
                if token is None or not hmac.compare_digest(token, grant.token):
                    conn.close()
                    continue
                conn.setblocking(True)
                _tune(conn, timeout)
                accepted.append(conn)
    finally:
        grant.listener.close()
        for conn in list(pending):
            drop(conn)
        selector.close()
    if not accepted:
        raise ConnectionLost("no data connection arrived from the peer")
    return accepted


class _Arrival:
    """An accepted connection that has yet to send its preface (and, with TLS, to finish its
    handshake first); non-blocking."""

    def __init__(self, conn: socket.socket, tls: ssl.SSLContext | None) -> None:
        conn.setblocking(False)
        self.handshaking = tls is not None
        self.conn = conn if tls is None else tls.wrap_socket(
            conn, server_side=True, do_handshake_on_connect=False)
        self.preface = bytearray()
        self.expires = time.monotonic() + HANDSHAKE_TIMEOUT_S

    def advance(self) -> int | None:
        """Go as far as what has arrived allows: the selector event to wait for next, 0 once
        the preface is complete, None if the connection closed or failed."""
        try:
            if self.handshaking:
                assert isinstance(self.conn, ssl.SSLSocket)
                self.conn.do_handshake()
                self.handshaking = False
            while len(self.preface) < frames.PREFACE_SIZE:
                chunk = self.conn.recv(frames.PREFACE_SIZE - len(self.preface))
                if not chunk:
                    return None
                self.preface += chunk
        except ssl.SSLWantWriteError:
            return selectors.EVENT_WRITE
        except (ssl.SSLWantReadError, BlockingIOError):
            return selectors.EVENT_READ
        except OSError:  # ssl.SSLError included: a failed handshake
            return None
        return 0


def _token_of(preface: bytes) -> bytes | None:
    try:
        return frames.parse_preface(preface)
    except ProtocolError:
        return None


def dial_streams(host: str, port: int, token: bytes, streams: int, timeout: float,
                 tls: ssl.SSLContext | None = None) -> list[socket.socket]:
    """Open the granted connections; with `tls`, each checks the daemon's certificate and
    name (`host`) before the token goes, encrypted."""
    socks = []
    try:
        for _ in range(streams):
            sock = socket.create_connection((host, port), timeout=ACCEPT_TIMEOUT_S)
            if tls is not None:
                sock = tls.wrap_socket(sock, server_hostname=host)
            sock.sendall(frames.encode_preface(token))
            _tune(sock, timeout)
            socks.append(sock)
    except OSError as exc:
        for sock in socks:
            sock.close()
        raise ConnectionLost(f"cannot open a data connection to {host}:{port}: {exc}") from None
    return socks


def beyond_lan(sock: socket.socket) -> bool:
    """Whether the peer of a data connection has a global address (not loopback, private
    or link-local), where compression is on by default."""
    try:
        address = ipaddress.ip_address(sock.getpeername()[0].split("%")[0])
    except (OSError, ValueError):
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:a.b.c.d on a dual-stack socket
    return (mapped or address).is_global


def _tune(sock: socket.socket, timeout: float) -> None:
    sock.settimeout(timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# -- sending -------------------------------------------------------------------------------


class Output(Protocol):
    """Where a sender's bytes go: a socket, or the control stream (--force-grpc)."""

    def write(self, data: bytes | memoryview) -> None: ...

    def send_file(self, fd: int, offset: int, count: int) -> int:
        """Send up to count bytes of fd from offset; return how many (0 at end of file)."""
        ...


class SocketOutput:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def write(self, data: bytes | memoryview) -> None:
        with _peer_errors():
            self.sock.sendall(data)

    def send_file(self, fd: int, offset: int, count: int) -> int:
        """os.sendfile on a socket with a timeout (non-blocking underneath): wait for room."""
        with _peer_errors():
            while True:
                try:
                    return os.sendfile(self.sock.fileno(), fd, offset, count)
                except BlockingIOError:
                    _, ready, _ = select.select([], [self.sock], [], self.sock.gettimeout())
                    if not ready:
                        raise TimeoutError from None


class TlsSocketOutput(SocketOutput):
    """A TLS connection: os.sendfile would write around the encryption, so file bytes are
    read into a reused buffer and sent through the socket."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        super().__init__(sock)
        self.buffer = memoryview(bytearray(RECV_BUFFER))

    def send_file(self, fd: int, offset: int, count: int) -> int:
        view = self.buffer[:min(count, len(self.buffer))]
        got = os.preadv(fd, [view], offset)
        self.write(view[:got])
        return got


def socket_output(sock: socket.socket) -> SocketOutput:
    """The sending side of a data connection, plain or TLS."""
    return TlsSocketOutput(sock) if isinstance(sock, ssl.SSLSocket) else SocketOutput(sock)


@contextlib.contextmanager
def _peer_errors() -> Iterator[None]:
    """A send that cannot go on: the peer stopped reading, or its connection went away."""
    try:
        yield
    except TimeoutError:
        raise PeerTimeout("the peer stopped reading data; giving up") from None
    except (ConnectionError, ssl.SSLError) as exc:
        raise ConnectionLost(f"data connection lost: {exc}") from None


class FrameOutput:
    """Codec bytes carried as control-stream frames; `emit` copies what it is given into
    the frame it queues (so `write` passes views, and the caller's buffer may change)."""

    def __init__(self, emit: Callable[[bytes | memoryview], None]) -> None:
        self.emit = emit

    def write(self, data: bytes | memoryview) -> None:
        with memoryview(data) as view:
            for start in range(0, len(view), RECV_BUFFER):
                self.emit(view[start:start + RECV_BUFFER])

    def send_file(self, fd: int, offset: int, count: int) -> int:
        data = os.pread(fd, min(count, RECV_BUFFER), offset)
        if data:
            self.emit(data)
        return len(data)


class Sender:
    """One stream's sending loop: units from the shared queue until STOP, then END."""

    def __init__(self, out: Output, work: WorkQueue, limit: RateLimit | None,
                 on_sent: Callable[[int, int, int], None], open_file: Callable[[str], int],
                 gate: StreamGate, index: int, compressor: Compressor | None = None) -> None:
        """`on_sent(wire bytes, file bytes, files)` follows what went out; `open_file(path)`
        opens a file to send; the gate says whether stream `index` may take work now;
        `compressor`: compress what shrinks (None: send everything as it is)."""
        self.compressor = compressor
        self._compress_literals = False  # for the delta being sent
        self.out = out
        self.work = work
        self.gate = gate
        self.index = index
        self.limit = limit
        self.on_sent = on_sent
        self.open_file = open_file

    def run(self) -> None:
        while True:
            if not self.gate.may_work(self.index) and not self.gate.wait_turn(self.index):
                item = STOP  # the gate closed: the working streams carry the rest
            else:
                item = self.work.get()
            if item is STOP:
                self.out.write(frames.encode_end())
                return
            if isinstance(item, ShardWork):
                self._send_shard(item.files)
            elif isinstance(item, DeltaWork):
                self._send_delta(item)
            else:
                self._send_range(item)

    def _pace(self, num_bytes: int) -> None:
        if self.limit is not None:
            self.limit.take(num_bytes)

    def _send_shard(self, files: list[Work]) -> None:
        shard = bytearray()
        content = count = 0
        changed: list[Work] = []
        for item in files:
            size = item.file.entry.size
            try:
                fd = self.open_file(item.path)
                try:
                    data = os.read(fd, size + 1)
                    unchanged = still_as_scanned(fd, item.file.entry)
                finally:
                    os.close(fd)
            except OSError as exc:
                self._abort(item.need_id, exc)
                continue
            if len(data) != size or not unchanged:
                changed.append(item)
                continue
            shard += tarshard.member_header(item.shown, size, item.file.entry.mode,
                                            item.file.entry.mtime_ns // 10**9)
            shard += data
            shard += tarshard.padding(size)
            content += size
            count += 1
        if count:
            self._send_shard_bytes(shard, content, count)
        for item in changed:
            self._changed(item)

    def _send_shard_bytes(self, shard: bytearray, content: int, count: int) -> None:
        shard += tarshard.END_OF_ARCHIVE
        header = frames.encode_shard_header(len(shard))
        packed = self.compressor and self.compressor.record(header + shard)
        if packed:
            self._pace(len(packed))
            self.out.write(packed)
            self.on_sent(len(packed), content, count)
            return
        self._pace(len(header) + len(shard))
        self.out.write(header)
        self.out.write(shard)
        self.on_sent(len(header) + len(shard), content, count)

    def _send_range(self, item: Work) -> None:
        if item.need_id in self.work.redone:  # another range of it changed: it went again
            return
        try:
            fd = self.open_file(item.path)
        except OSError as exc:
            self._abort(item.need_id, exc)
            return
        compressor = self.compressor
        try:
            sample = os.pread(fd, compression.SAMPLE_BYTES, item.offset) if compressor else b""
        except OSError as exc:
            os.close(fd)
            self._abort(item.need_id, exc)
            return
        if compressor and compressor.worth_it(item.path, sample):
            self._send_compressed_range(item, fd, compressor)
            return
        body = item.length - min(item.length, RANGE_TAIL)
        try:
            sent = self._send_body(item, fd, body)
            if sent < body:  # the file shrank: fill the promised length, then disown it
                self.out.write(bytes(body - sent))
                self._changed(item)
                return
            try:
                tail = os.pread(fd, item.length - body, item.offset + body)
                unchanged = still_as_scanned(fd, item.file.entry)
            except OSError as exc:
                self._abort(item.need_id, exc)
                return
        finally:
            os.close(fd)
        if len(tail) != item.length - body or not unchanged:
            self._changed(item)
            return
        self._pace(len(tail))
        self.out.write(frames.encode_range_header(item.need_id, item.offset + body, len(tail))
                       + tail)
        self.on_sent(len(tail), len(tail), 0)
        if item.offset + item.length == item.file.entry.size:
            self.on_sent(0, 0, 1)

    def _send_body(self, item: Work, fd: int, length: int) -> int:
        """A range but for its tail, by sendfile; how much of it the file still had."""
        if not length:
            return 0
        self.out.write(frames.encode_range_header(item.need_id, item.offset, length))
        sent = 0
        while sent < length:
            piece = min(length - sent, SENDFILE_PIECE)
            self._pace(piece)
            count = self.out.send_file(fd, item.offset + sent, piece)
            if count == 0:
                break
            sent += count
            self.on_sent(count, count, 0)
        return sent

    def _send_compressed_range(self, item: Work, fd: int, compressor: Compressor) -> None:
        """The range as RANGE records of CHUNK bytes, each compressed where that shrinks it;
        fd is closed. A file that shrank, changed (checked before its last record goes) or
        cannot be read is aborted after what was sent."""
        try:
            offset, end = item.offset, item.offset + item.length
            while offset < end:
                data = os.pread(fd, min(compression.CHUNK, end - offset), offset)
                last = offset + len(data) == end
                if not data or (last and not still_as_scanned(fd, item.file.entry)):
                    self._changed(item)
                    return
                record = frames.encode_range_header(item.need_id, offset, len(data)) + data
                wire = compressor.record(record) or record
                self._pace(len(wire))
                self.out.write(wire)
                self.on_sent(len(wire), len(data), 0)
                offset += len(data)
        except OSError as exc:
            self._abort(item.need_id, exc)
            return
        finally:
            os.close(fd)
        if end == item.file.entry.size:
            self.on_sent(0, 0, 1)

    def _send_delta(self, item: DeltaWork) -> None:
        """The file as COPY and LIT records against the signature, then its size and
        checksum. A read that fails midway aborts the file (the DESTINATION drops it)."""
        try:
            fd = self.open_file(item.path)
        except OSError as exc:
            self._abort(item.need_id, exc)
            return
        from blit_core.delta.match import Matcher  # numpy: only once a delta is due

        matcher = Matcher(item.signature)
        self._compress_literals = bool(self.compressor) and not compression.known_compressed(
            item.path)
        self.out.write(frames.encode_delta_start(item.need_id))
        try:
            for data in read_chunks(fd):
                self._send_ops(matcher.feed(data), len(data))
            unchanged = still_as_scanned(fd, item.file.entry)
        except OSError as exc:
            self._abort(item.need_id, exc)
            return
        finally:
            os.close(fd)
        ops, digest = matcher.finish()
        self._send_ops(ops, 0)
        if not unchanged:
            self._changed(Work(item.need_id, item.file, item.path, "", 0, item.file.entry.size))
            return
        self.out.write(frames.encode_delta_end(matcher.size, digest))
        self.on_sent(frames.DELTA_END_RECORD.size, 0, 1)

    def _send_ops(self, ops: list[Op], file_bytes: int) -> None:
        """Operations as records: runs of copies gathered into one write."""
        records = bytearray()
        for op in ops:
            if isinstance(op, Literal):
                header = frames.encode_literal_header(len(op.data))
                packed = None
                if self._compress_literals and self.compressor is not None:
                    packed = self.compressor.record(header + op.data)
                    if packed is None and len(op.data) >= compression.SAMPLE_BYTES:
                        self._compress_literals = False  # a large literal that does not shrink
                before = len(records)
                if packed is not None:
                    records += packed
                else:
                    records += header
                    records += op.data
                self._pace(len(records) - before)
            else:
                records += frames.encode_copy(op.block, op.count)
        if records:
            self.out.write(records)
        self.on_sent(len(records), file_bytes, 0)

    def _changed(self, item: Work) -> None:
        """`item`'s file changed while it was read. The first time, it goes again, whole, as
        it is now, on this stream, under a new id (REDO); a second change is reported."""
        if item.need_id >= frames.FIRST_REDO_ID:  # this was its second sending
            self.out.write(frames.encode_abort(item.need_id, CHANGED))
            return
        new_id = self.work.claim_redo(item.need_id)
        if new_id is None:  # another stream found it first, and sends it again
            return
        try:
            fd = self.open_file(item.path)
            try:
                now = os.fstat(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            self._abort(item.need_id, exc)
            return
        entry = item.file.entry._replace(size=now.st_size, mtime_ns=now.st_mtime_ns)
        self.out.write(frames.encode_redo(item.need_id, new_id, entry.size, entry.mtime_ns))
        self._send_range(Work(new_id, item.file._replace(entry=entry), item.path, item.shown,
                              0, entry.size))

    def _abort(self, need_id: int, exc: OSError) -> None:
        vanished = exc.errno == errno.ENOENT
        reason = "vanished during the transfer" if vanished else (exc.strerror or str(exc))
        self.out.write(frames.encode_abort(need_id, reason))


# -- receiving -----------------------------------------------------------------------------


class RecordHandler:
    """Applies decoded records to the Destination (shared by sockets and --force-grpc)."""

    def __init__(self, dest: Destination) -> None:
        self.dest = dest
        self.range: list[int] | None = None  # [need_id, next offset]
        self.shard: bytearray | None = None
        self.delta: int | None = None  # the need whose delta is arriving
        self.literal = False  # inside one of its LIT records
        self.ended = False

    def handle(self, event: frames.Event) -> None:
        if isinstance(event, frames.Data):
            if self.range is not None:
                self.dest.write_range(self.range[0], self.range[1], event.chunk)
                self.range[1] += len(event.chunk)
            elif self.shard is not None:
                self.shard += event.chunk
            elif self.literal:
                self.dest.delta_literal(self._in_delta(), event.chunk)
        elif isinstance(event, frames.DeltaStart):
            if self.delta is not None:
                raise ProtocolError("a delta started inside another")
            self.delta = event.need_id
            self.dest.delta_start(event.need_id)
        elif isinstance(event, frames.CopyBlocks):
            self.dest.delta_copy(self._in_delta(), event.block, event.count)
        elif isinstance(event, frames.LiteralStart):
            self._in_delta()
            self.literal = True
        elif isinstance(event, frames.DeltaEnd):
            need_id, self.delta = self._in_delta(), None
            self.dest.delta_end(need_id, event.size, event.digest)
        elif isinstance(event, frames.RangeStart):
            self.range = [event.need_id, event.offset]
            if event.length == 0:
                self.dest.write_range(event.need_id, event.offset, b"")
        elif isinstance(event, frames.PayloadEnd):
            if self.shard is not None:
                shard, self.shard = self.shard, None
                self.dest.write_shard(shard)
            self.range = None
            self.literal = False
        elif isinstance(event, frames.ShardStart):
            self.shard = bytearray()
        elif isinstance(event, frames.Abort | frames.Redo):
            if event.need_id == self.delta:
                self.delta = None
            if isinstance(event, frames.Abort):
                self.dest.abort(event.need_id, event.reason)
            else:
                self.dest.redo(event.need_id, event.new_id, event.size, event.mtime_ns)
        elif isinstance(event, frames.End):
            if self.delta is not None:
                raise ProtocolError("a connection ended inside a delta")
            self.ended = True

    def _in_delta(self) -> int:
        if self.delta is None:
            raise ProtocolError("a delta record outside a delta")
        return self.delta

    def direct_room(self, decoder: Decoder) -> int:
        """How many of the next bytes received may be written straight into the range being
        received, bypassing the decoder's buffer (0: they go through the decoder)."""
        if self.range is None or decoder.buffered:
            return 0
        return decoder.payload_remaining

    def write_direct(self, decoder: Decoder, chunk: bytes | memoryview) -> None:
        """Write payload bytes of the current range that the decoder never saw."""
        assert self.range is not None
        self.dest.write_range(self.range[0], self.range[1], chunk)
        self.range[1] += len(chunk)
        decoder.payload_consumed(len(chunk))


def receive_stream(sock: socket.socket, dest: Destination,
                   on_bytes: Callable[[int], None]) -> None:
    """Read one data connection to its END. An idle connection is waited on for as long as
    the session lives (the control plane's keepalive watches the peer); a session that ends
    shuts the socket down, which wakes this thread."""
    decoder = Decoder()
    handler = RecordHandler(dest)
    buf = bytearray(RECV_BUFFER)
    view = memoryview(buf)
    try:
        while not handler.ended:
            event = decoder.next_event()
            if event is not frames.NEED_DATA:
                handler.handle(event)
                continue
            direct = handler.direct_room(decoder)
            count = _recv_idle(sock, view[:min(direct, RECV_BUFFER)] if direct else view)
            if count == 0:
                raise ConnectionLost("the peer closed a data connection before its end")
            on_bytes(count)
            if direct:
                handler.write_direct(decoder, view[:count])
            else:
                decoder.receive_data(view[:count])
    except (ConnectionError, ssl.SSLError) as exc:
        raise ConnectionLost(f"data connection lost: {exc}") from None


def _recv_idle(sock: socket.socket, view: memoryview) -> int:
    while True:
        try:
            return sock.recv_into(view)
        except TimeoutError:
            continue


def feed_frames(decoder: Decoder, handler: RecordHandler, data: bytes | memoryview) -> None:
    """--force-grpc: apply the codec bytes of one control frame. The payload of a range whose
    header came before is written from the frame itself, as receive_stream writes it from its
    buffer; all else goes through the decoder. An empty frame changes nothing."""
    view = memoryview(data)
    while True:
        while (event := decoder.next_event()) is not frames.NEED_DATA:
            handler.handle(event)
        if not view:
            return
        direct = handler.direct_room(decoder)
        if direct:
            handler.write_direct(decoder, view[:direct])
            view = view[direct:]
        else:
            decoder.receive_data(view)
            view = view[:0]  # all of it is in the decoder now


def shutdown_all(socks: list[socket.socket]) -> None:
    """Wake every thread blocked on these sockets (recv returns 0, send fails). A TLS
    socket's own shutdown() would drop its TLS state first, and a send racing it could go
    out unencrypted; the plain socket's shuts the descriptor down under the TLS layer."""
    for sock in socks:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.close()
