"""One transfer session, after the handshake: the SOURCE and DESTINATION roles, the same code
on the client and in the daemon (push: the client is the SOURCE; pull: the daemon is).

SOURCE: a scan thread writes manifest batches (at most WINDOW unanswered); each Needs answer
turns the named files into data-plane work; when the manifest is done and answered, the
senders end their streams; after the DESTINATION's summary, a move removes the confirmed
sources; Done carries the SOURCE's own report.

DESTINATION: each manifest batch is planned at once and answered with its needs; receiver
threads commit files as their bytes arrive; once the manifest and every stream have ended,
deletions and directory attributes run and the summary goes back."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import importlib
import itertools
import queue
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

from blit_core.errors import (
    BlitError,
    ConnectionLost,
    FileIOError,
    PeerTimeout,
    ProtocolError,
    WorkerLost,
)
from blit_core.models import ItemEvent, TransferReport
from blit_core.net import dataplane
from blit_core.net.generated import blit_pb2 as pb
from blit_core.net.rawframes import DataFrame, encode_data_frame, parse_frame
from blit_core.net.tuning import INTERVAL_S, Backlog, StreamGate, StreamTuner
from blit_core.options import TransferOptions, Verb
from blit_core.progress import NullObserver, TransferObserver
from blit_core.transfer.destination import Destination
from blit_core.transfer.jobs import JobResult, TransferRoot
from blit_core.transfer.pipeline import MAX_FAILURES_KEPT, MAX_WARNINGS_KEPT
from blit_core.transfer.source import (
    Batch,
    SourceAccess,
    SourceFile,
    remove_confirmed,
    scan_to_manifest,
)
from blit_core.wire.codec import Decoder
from blit_core.wire.compression import Compressor
from blit_core.wire.manifest import Confirm, ManifestWriter, read_records
from blit_core.wire.report import (
    events_from_wire,
    events_to_wire,
    report_from_wire,
    report_to_wire,
)

PROTOCOL_VERSION = 3
WINDOW = 8
SUMMARY_PART_BYTES = 1 << 20  # itemized events and confirmations per summary part
WORK_UNITS = 64  # queued shards or ranges (descriptors, not data): a few batches' worth
FAIL_SEND_TIMEOUT_S = 5.0
KEEPALIVE_S = 0.5  # the longest a control stream stays silent, so a --timeout of 2 s holds
INBOX_FRAMES = 64
FRAMES_IN_FLIGHT = 4  # --force-grpc: data frames queued to the control stream, unwritten
# (progress and --bwlimit count a frame once queued: at most this many MiB early)
if TYPE_CHECKING:
    from blit_core.delta.signature import Signature, SignatureReader

T = TypeVar("T")
_END = object()


class PeerFailure(BlitError):
    """The peer ended the session with a Failure frame (its message and exit code)."""


class Channel:
    """The control stream of a session: Frames in and out, counted, serialised and watched.

    While `running`, a reader task takes every incoming frame (so the peer is watched even
    while the local role waits on something else), an empty Progress frame goes out whenever
    nothing else did for (nearly) KEEPALIVE_S, and a peer silent for `timeout` seconds ends the
    session. The first error anywhere (the peer's Failure, its silence or disconnection, a
    local thread's `abort`) ends every `until` wait at once."""

    def __init__(self, read: Callable[[], Awaitable[bytes | None]],
                 write: Callable[[bytes], Awaitable[None]], timeout: float,
                 peer: str) -> None:
        """`read` gives the next serialized frame (None at the peer's end); `write` sends
        one (the Transfer RPC carries bytes: see rawframes)."""
        self._read = read
        self.peer = peer  # "the daemon" or "the client", for messages
        self._write = write
        self.timeout = timeout
        self.sent = 0
        self.received = 0
        self._lock = asyncio.Lock()
        self._last_sent = time.monotonic()
        self._failed = False
        self._inbox: asyncio.Queue[pb.Frame | DataFrame] = asyncio.Queue(maxsize=INBOX_FRAMES)
        self._loop = asyncio.get_running_loop()
        self._ended: asyncio.Future[None] = self._loop.create_future()
        self._peer_gone = asyncio.Event()  # the reader saw the peer's end (or an error)

    async def send(self, frame: pb.Frame) -> None:
        """Write one frame."""
        await self.send_serialized(frame.SerializeToString())

    async def send_serialized(self, raw: bytes) -> None:
        """Write one serialized frame. A sender cancelled meanwhile (a task stopped because
        the session fails) lets its write finish first: gRPC ends a stream whose write was
        cancelled, and the Failure that follows would never reach the peer."""
        async with self._lock:
            self.sent += len(raw)
            self._last_sent = time.monotonic()
            write = asyncio.ensure_future(self._write(raw))
            try:
                await asyncio.shield(write)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(write, FAIL_SEND_TIMEOUT_S)
                raise

    async def recv(self) -> pb.Frame | DataFrame:
        if not self._inbox.empty():  # frames that came before the end are still delivered
            return self._inbox.get_nowait()
        return await self.until(self._inbox.get())

    async def expect(self, field: str) -> pb.Frame | DataFrame:
        frame = await self.recv()
        if not frame.HasField(field):
            raise ProtocolError(f"expected {field}, got {frame.WhichOneof('body')}")
        return frame

    def abort(self, error: BaseException) -> None:
        """End the session with `error` (thread-safe; the first error wins)."""
        def settle() -> None:
            if not self._ended.done():
                self._ended.set_exception(error)
                self._ended.exception()  # retrieved here: `until` raises it

        self._loop.call_soon_threadsafe(settle)

    async def until(self, awaitable: Awaitable[T]) -> T:
        """Await `awaitable`, unless the session ends first (then raise why it ended)."""
        task = asyncio.ensure_future(awaitable)
        try:
            await asyncio.wait({task, self._ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
                task.add_done_callback(_retrieve)  # it may still end with an error of its own
        if task.done():
            return task.result()
        await self._ended
        raise AssertionError("unreachable: an ended session holds its error")

    async def fail(self, error: BaseException) -> None:
        """Tell the peer, once, why the session ends here (best effort: it may be gone)."""
        if self._failed or isinstance(error, PeerFailure) or not isinstance(error, Exception):
            return
        self._failed = True
        if isinstance(error, BlitError):
            failure = pb.Failure(message=str(error), exit_code=error.exit_code,
                                 retryable=error.retryable)
        else:
            failure = pb.Failure(message=f"internal error: {type(error).__name__}: {error}",
                                 exit_code=WorkerLost.exit_code)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.send(pb.Frame(failure=failure)), FAIL_SEND_TIMEOUT_S)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Channel]:
        tasks = [asyncio.ensure_future(self._reader()), asyncio.ensure_future(self._keepalive())]
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()

    async def _reader(self) -> None:
        try:
            while True:
                try:
                    raw = await asyncio.wait_for(self._read(), self.timeout)
                except TimeoutError:
                    raise PeerTimeout(f"{self.peer} sent nothing for {self.timeout:g} s; "
                                      "giving up") from None
                if raw is None:
                    raise ConnectionLost(f"{self.peer} closed the session")
                self.received += len(raw)
                frame = parse_frame(raw)
                if frame.HasField("failure"):
                    error = PeerFailure(frame.failure.message)
                    error.exit_code = frame.failure.exit_code or 1
                    error.retryable = frame.failure.retryable
                    raise error
                if not frame.HasField("progress"):
                    await self._inbox.put(frame)
        except Exception as exc:
            self.abort(exc)
        finally:
            self._peer_gone.set()

    async def linger(self, seconds: float) -> None:
        """After a Failure: give the peer up to `seconds` to read it and go, so the stream is
        not torn down (and the message lost) under it."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._peer_gone.wait(), seconds)

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_S / 4)  # a check each quarter: silent at most 4/4
            if time.monotonic() - self._last_sent >= KEEPALIVE_S * 3 / 4:
                with contextlib.suppress(Exception):  # a dead peer shows in the reader
                    await self.send(pb.Frame(progress=pb.Progress()))


async def _to_completion(work: Callable[[], None]) -> None:
    """Run `work` in a thread to its end, even when the awaiting task is cancelled (as
    gRPC cancels a session whose client vanished); the cancellation is re-raised after."""
    done = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        await asyncio.wait({done})
        raise


def _retrieve(task: asyncio.Future) -> None:
    if not task.cancelled():
        task.exception()


class Plane:
    """The data plane of a session: sockets, or (empty) the control stream itself."""

    def __init__(self, socks: list[socket.socket], limit: int, *, tune: bool = False) -> None:
        """`tune`: as SOURCE, choose how many of the streams work from measured throughput
        (else all of them do)."""
        self.socks = socks
        self.limit = dataplane.RateLimit(limit) if limit else None
        self.stream_bytes = [0] * len(socks)  # each stream's thread adds to its own
        self.tuner = StreamTuner(len(socks)) if tune and len(socks) > 1 else None
        self.gate = StreamGate(self.tuner.active if self.tuner else len(socks) or 1)

    async def tune(self, work: dataplane.WorkQueue) -> None:
        """Adjust the working streams each interval, until cancelled."""
        if self.tuner is None:
            return
        before, then = self.wire_bytes, time.monotonic()
        while True:
            await asyncio.sleep(INTERVAL_S)
            sent, now = self.wire_bytes, time.monotonic()
            rate = (sent - before) / max(now - then, 1e-6)
            self.gate.set_active(self.tuner.observe(rate, _backlog(work)))
            before, then = sent, now

    @property
    def wire_bytes(self) -> int:
        return sum(self.stream_bytes)

    def shutdown(self) -> None:
        """Wake the session's threads blocked on the data plane (the session is ending)."""
        if self.limit is not None:
            self.limit.stopped.set()
        dataplane.shutdown_all(self.socks)


def _backlog(work: dataplane.WorkQueue) -> Backlog:
    if work.ranges_waiting:
        return Backlog.LARGE_FILES
    return Backlog.SMALL_FILES if work.qsize() else Backlog.NONE


class _Threads:
    """Worker threads; the first exception aborts the session and is re-raised by join()."""

    def __init__(self, chan: Channel) -> None:
        self.threads: list[threading.Thread] = []
        self.error: BaseException | None = None
        self._chan = chan

    def start(self, target: Callable[[], None]) -> None:
        def run() -> None:
            try:
                target()
            except BaseException as exc:
                self.error = self.error or exc
                self._chan.abort(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)

    async def join(self) -> None:
        await asyncio.to_thread(_join_all, self.threads)
        if self.error is not None:
            raise self.error


def _until_cancelled(cancelled: threading.Event, attempt: Callable[[], T]) -> T:
    """`attempt` (a queue operation with a timeout) tried again until it succeeds, from a
    thread; ConnectionLost once `cancelled` is set (the session has ended)."""
    while not cancelled.is_set():
        with contextlib.suppress(queue.Full, queue.Empty):
            return attempt()
    raise ConnectionLost("session ended")


async def run_source(
    chan: Channel, plane: Plane, roots: Sequence[TransferRoot], options: TransferOptions,
    verb: Verb, observer: TransferObserver, *, jail: str | None = None,
) -> TransferReport:
    """Serve as SOURCE; returns the merged report (the DESTINATION's, with the SOURCE's
    failures, warnings and removals). The DESTINATION's itemized events go to `observer`
    as the summary's parts arrive. `jail` (a daemon's module): directories are listed and
    files opened beneath it without following any symlink."""
    loop = asyncio.get_running_loop()
    batches: queue.Queue = queue.Queue(maxsize=WINDOW)
    streams = max(1, len(plane.socks))
    work = dataplane.WorkQueue(maxsize=WORK_UNITS)
    cancelled = threading.Event()

    def deliver(batch: Batch) -> None:
        _until_cancelled(cancelled, lambda: batches.put(batch, timeout=0.2))

    def next_batch() -> Batch | object:
        """The next batch, or _END; a session that ended stops waiting (the scan then puts
        nothing more, and a thread left waiting would hold up asyncio.run's end forever)."""
        return _until_cancelled(cancelled, lambda: batches.get(timeout=0.2))

    sources = SourceAccess(options, jail)

    def scan() -> JobResult:
        try:
            return scan_to_manifest(roots, options, verb, deliver, sources)
        finally:
            while not cancelled.is_set():  # nobody reads a session that ended
                try:
                    batches.put(_END, timeout=0.2)
                    break
                except queue.Full:
                    continue

    def sent_on(stream: int | None) -> Callable[[int, int, int], None]:
        def on_sent(wire_bytes: int, file_bytes: int, files: int) -> None:
            if stream is not None:  # else --force-grpc: the control stream counts them
                plane.stream_bytes[stream] += wire_bytes
            loop.call_soon_threadsafe(observer.on_progress, file_bytes, files)

        return on_sent

    def compressor(compress: bool) -> Compressor | None:
        return Compressor(options.compress_level) if compress else None

    senders = _Threads(chan)
    if plane.socks:
        for stream, sock in enumerate(plane.socks):
            out = dataplane.socket_output(sock)
            packer = compressor(options.compress or dataplane.beyond_lan(sock))
            senders.start(dataplane.Sender(out, work, plane.limit, sent_on(stream),
                                           sources.open, plane.gate, stream, packer).run)
    else:
        in_flight: collections.deque[concurrent.futures.Future] = collections.deque()

        def cancel_in_flight() -> None:
            while in_flight:
                in_flight.popleft().cancel()

        def settle(sent: concurrent.futures.Future) -> None:
            while True:  # a peer that stops reading must not hold this thread forever
                try:
                    sent.result(0.2)
                    return
                except concurrent.futures.TimeoutError:
                    if cancelled.is_set():
                        sent.cancel()
                        raise ConnectionLost("session ended") from None

        def emit(data: bytes | memoryview) -> None:
            """Queue one data frame, made from a copy of `data` (the caller may reuse its
            buffer); the sender reads on while at most FRAMES_IN_FLIGHT go out."""
            while len(in_flight) >= FRAMES_IN_FLIGHT:
                settle(in_flight.popleft())
            raw = encode_data_frame(data)
            in_flight.append(asyncio.run_coroutine_threadsafe(chan.send_serialized(raw), loop))

        sender = dataplane.Sender(dataplane.FrameOutput(emit), work, plane.limit,
                                  sent_on(None), sources.open, plane.gate, 0,
                                  compressor(options.compress))

        def send_frames() -> None:
            try:
                sender.run()
                while in_flight:
                    settle(in_flight.popleft())
            except BaseException:  # the session fails: its Failure must not queue behind them
                cancel_in_flight()
                raise

        senders.start(send_frames)

    async def put_work(item: object) -> None:
        while True:
            if senders.error is not None:
                raise senders.error
            try:
                work.put_nowait(item)
                return
            except queue.Full:
                with contextlib.suppress(queue.Full):
                    await asyncio.to_thread(work.put, item, True, 0.2)
                    return

    scan_task = asyncio.ensure_future(asyncio.to_thread(scan))
    tuning = asyncio.ensure_future(plane.tune(work))
    outstanding: dict[int, dict[int, SourceFile]] = {}
    window = asyncio.Semaphore(WINDOW)
    packer = dataplane.WorkPacker(streams)
    signatures = _Signatures(outstanding)
    deltas: dict[int, tuple[SourceFile, TransferRoot]] = {}  # sent as deltas, not yet ended

    async def send_whole(need_id: int, file: SourceFile, root: TransferRoot) -> None:
        for unit in packer.add(need_id, file, root.src_path(file.rel), root.display(file.rel)):
            await put_work(unit)

    manifest_sent = asyncio.Event()
    stopped = False

    async def maybe_stop() -> None:
        """Once the whole manifest is sent and answered, the senders end their streams."""
        nonlocal stopped
        if not stopped and manifest_sent.is_set() and not outstanding and not deltas:
            stopped = True
            tuning.cancel()
            plane.gate.close()
            for _ in senders.threads:  # each working stream ends at one; the others at the gate
                await put_work(dataplane.STOP)

    async def send_batches() -> None:
        listed = 0
        while True:
            batch = await asyncio.to_thread(next_batch)
            if batch is _END:
                scanned = await scan_task
                if scanned.fatal:  # never a clean end: mirror would delete the unscanned
                    raise FileIOError(f"scanning the source failed: {scanned.fatal}")
                observer.on_scanned(listed, True)
                await chan.send(pb.Frame(manifest=pb.Manifest(batch=len(outstanding))))
                manifest_sent.set()
                await maybe_stop()
                return
            await window.acquire()
            outstanding[batch.number] = batch.files
            await chan.send(pb.Frame(manifest=pb.Manifest(batch=batch.number,
                                                          entries=batch.records)))
            listed = batch.scanned
            observer.on_scanned(listed, False)

    pump = asyncio.ensure_future(send_batches())  # its failure ends the session (no deletions)
    pump.add_done_callback(lambda done: done.cancelled() or done.exception() is None
                           or chan.abort(done.exception()))
    summary = b""
    confirmed: list[tuple[int, str, int, int]] = []
    try:
        while True:
            frame = await chan.recv()
            if frame.HasField("needs"):
                files = outstanding.get(frame.needs.batch)
                if files is None:
                    raise ProtocolError(f"needs for unknown manifest batch {frame.needs.batch}")
                planned = 0
                for need_id in frame.needs.ids:
                    file = files.pop(need_id, None)
                    if file is None:
                        raise ProtocolError(f"need for unknown or already needed file id "
                                            f"{need_id}")
                    root = roots[file.root]
                    planned += file.entry.size
                    signature = signatures.take(need_id)
                    if signature is None:
                        await send_whole(need_id, file, root)
                        continue
                    deltas[need_id] = (file, root)
                    await put_work(dataplane.DeltaWork(need_id, file, root.src_path(file.rel),
                                                       signature))
                shard = packer.flush()
                if shard.files:
                    await put_work(shard)
                if frame.needs.more:
                    signatures.expect()
                else:
                    del outstanding[frame.needs.batch]  # only now: maybe_stop must wait
                    signatures.forget(files)
                    window.release()
                if frame.needs.ids:
                    observer.on_planned(len(frame.needs.ids), planned)
            elif frame.HasField("signature"):
                signatures.add(frame.signature)
            elif frame.HasField("delta_done"):
                for need_id in frame.delta_done.ended:
                    deltas.pop(need_id, None)
                for need_id in frame.delta_done.whole:
                    sent = deltas.pop(need_id, None)
                    if sent is None:
                        raise ProtocolError(f"file id {need_id} was not sent as a delta")
                    await send_whole(need_id, *sent)
                shard = packer.flush()
                if shard.files:
                    await put_work(shard)
            elif frame.HasField("summary"):
                summary = frame.summary.report
                for event in events_from_wire(frame.summary.events):
                    observer.on_item(event)
                for record in read_records(frame.summary.confirmed):
                    if not isinstance(record, Confirm):
                        raise ProtocolError("a manifest record inside a summary")
                    if verb is not Verb.MOVE:  # only a move removes sources
                        raise ProtocolError(f"a confirmation of a move in a {verb.value}")
                    if record.root >= len(roots):
                        raise ProtocolError(f"a confirmation for root {record.root}, of "
                                            f"{len(roots)}")
                    confirmed.append(tuple(record))
                if frame.summary.last:
                    break
            else:
                raise ProtocolError(f"unexpected {frame.WhichOneof('body')} at the SOURCE")
            await maybe_stop()
        if not pump.done():
            raise ProtocolError("the DESTINATION summarised before the manifest ended")
        pump.result()
        source_part = await scan_task
        await chan.until(senders.join())
    except BaseException as exc:
        cancelled.set()
        pump.cancel()
        tuning.cancel()
        await chan.fail(exc)  # first, so the peer hears why before its streams close
        plane.shutdown()
        plane.gate.close()
        _drain(work)
        for _ in senders.threads:
            work.put_nowait(dataplane.STOP)
        await _to_completion(lambda: _join_all(senders.threads))  # their sockets are shut
        scan_task.add_done_callback(_retrieve)
        sources.close()
        raise
    report = report_from_wire(summary)
    if confirmed:
        await asyncio.to_thread(remove_confirmed, roots, confirmed, source_part, sources)
    sources.close()
    own = _as_report(source_part, verb, options)
    await chan.send(pb.Frame(done=pb.Done(report=report_to_wire(own))))
    return merge_source_part(report, own)


class _Signatures:
    """The SOURCE's store of the signatures the DESTINATION sends, each for a file of a batch
    not yet answered, until its Needs take it."""

    def __init__(self, outstanding: dict[int, dict[int, SourceFile]]) -> None:
        self._outstanding = outstanding
        self._arriving: dict[int, SignatureReader] = {}
        self._complete: dict[int, Signature] = {}
        self._loading: threading.Thread | None = None

    def expect(self) -> None:
        """Signatures are being made: load the delta's modules (numpy, ~0.1 s) in a thread
        meanwhile, not in the event loop once the first arrives."""
        if self._loading is None:
            self._loading = threading.Thread(target=_load_delta_modules, name="blit-load-delta")
            self._loading.start()

    def add(self, part: pb.Signature) -> None:
        from blit_core.delta.signature import SignatureReader  # numpy: only with deltas

        reader = self._arriving.get(part.id)
        if reader is None:
            if part.id in self._complete or not any(
                    part.id in files for files in self._outstanding.values()):
                raise ProtocolError(f"a signature for file id {part.id}, which is not pending")
            reader = self._arriving[part.id] = SignatureReader(
                part.block_size, part.basis_size, part.seed)
        reader.add(part.weak, part.strong)
        if part.last:
            self._complete[part.id] = self._arriving.pop(part.id).finish()

    def take(self, need_id: int) -> Signature | None:
        if need_id in self._arriving:
            raise ProtocolError(f"the signature of file id {need_id} is incomplete")
        return self._complete.pop(need_id, None)

    def forget(self, ids: Iterable[int]) -> None:
        """A batch is answered: signatures of its files that were not needed go."""
        for need_id in ids:
            self._arriving.pop(need_id, None)
            self._complete.pop(need_id, None)


def _load_delta_modules() -> None:
    with contextlib.suppress(Exception):  # the import that needs them reports it
        importlib.import_module("blit_core.delta.match")


def _join_all(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join()


def _drain(work: queue.Queue) -> None:
    try:
        while True:
            work.get_nowait()
    except queue.Empty:
        return


def _as_report(part: JobResult, verb: Verb, options: TransferOptions) -> TransferReport:
    """The SOURCE's own part, with as many failures and warnings kept as locally."""
    return TransferReport(verb=verb.value, dry_run=options.dry_run, stats=part.stats,
                          failures=part.failures[:MAX_FAILURES_KEPT],
                          failures_omitted=max(0, len(part.failures) - MAX_FAILURES_KEPT),
                          warnings=part.warnings[:MAX_WARNINGS_KEPT], duration_s=0.0)


async def run_destination(chan: Channel, plane: Plane, dest: Destination) -> TransferReport:
    """Serve as DESTINATION; returns the merged report (the SOURCE's part included)."""
    receivers = _Threads(chan)
    for stream, sock in enumerate(plane.socks):
        def receive(stream: int = stream, sock: socket.socket = sock) -> None:
            def on_bytes(count: int) -> None:
                plane.stream_bytes[stream] += count

            dataplane.receive_stream(sock, dest, on_bytes)

        receivers.start(receive)
    decoder = Decoder()
    handler = dataplane.RecordHandler(dest)
    seed = secrets.randbits(64)
    delta_ends = _DeltaEnds(chan)
    dest.on_delta_end = delta_ends.add
    try:
        while True:
            frame = await chan.recv()
            if frame.HasField("manifest"):
                if not frame.manifest.entries:
                    dest.observer.on_scanned(dest.scanned, True)
                    break
                ids = await asyncio.to_thread(dest.plan_batch, frame.manifest.entries)
                dest.observer.on_scanned(dest.scanned, False)
                await _send_needs(chan, dest, seed, frame.manifest.batch, ids)
            elif frame.HasField("data") and not plane.socks:
                await asyncio.to_thread(dataplane.feed_frames, decoder, handler, frame.data)
            else:
                raise ProtocolError(f"unexpected {frame.WhichOneof('body')} at the DESTINATION")
        while not plane.socks and not handler.ended:
            frame = await chan.expect("data")
            await asyncio.to_thread(dataplane.feed_frames, decoder, handler, frame.data)
        await chan.until(receivers.join())
        report = await asyncio.to_thread(dest.finish)
    except BaseException as exc:
        plane.shutdown()  # receivers stop before their temp files go

        def clean_up() -> None:
            _join_all(receivers.threads)
            dest.discard_all()

        await _to_completion(clean_up)
        await chan.fail(exc)
        raise
    finally:
        delta_ends.cancel()
    parts = list(_summary_parts(relayed_events(dest.observer), dest.confirmed))
    for number, (events, confirmed) in enumerate(parts):
        last = number == len(parts) - 1
        writer = ManifestWriter()
        for root, rel, size, mtime_ns in confirmed:
            writer.confirm(root, rel, size, mtime_ns)
        await chan.send(pb.Frame(summary=pb.Summary(
            events=events_to_wire(events) if events else b"", confirmed=writer.take(),
            last=last, report=report_to_wire(report) if last else b"")))
    done = await chan.expect("done")
    source_part = report_from_wire(done.done.report)
    for warning in source_part.warnings:
        dest.observer.on_warning(warning)
    for failure in source_part.failures:
        dest.observer.on_failure(failure)
    return merge_source_part(report, source_part)


async def _send_needs(chan: Channel, dest: Destination, seed: int, batch: int,
                      ids: list[int]) -> None:
    """The needs of the batch just planned: those with no basis to sign at once, then each
    of the others after its signature (made in a thread), so that the SOURCE starts on them
    while the rest are signed."""
    signing = dest.take_delta_candidates()
    if not signing:
        await chan.send(pb.Frame(needs=pb.Needs(batch=batch, ids=ids)))
        return
    whole = set(ids).difference(signing)
    await chan.send(pb.Frame(needs=pb.Needs(batch=batch, ids=[i for i in ids if i in whole],
                                            more=True)))
    pending = dest.sign(signing, seed)
    unsigned: list[int] = []  # their basis could not be signed: they go whole, together
    while (signed := await asyncio.to_thread(next, pending, None)) is not None:
        need_id, sig = signed
        if sig is None:
            unsigned.append(need_id)
            continue
        from blit_core.delta.signature import signature_parts  # numpy: only with deltas

        parts = signature_parts(sig)
        for number, (weak, strong) in enumerate(parts):
            await chan.send(pb.Frame(signature=pb.Signature(
                id=need_id, block_size=sig.block_size, basis_size=sig.size, seed=sig.seed,
                weak=weak, strong=strong, last=number == len(parts) - 1)))
        await chan.send(pb.Frame(needs=pb.Needs(batch=batch, ids=[need_id], more=True)))
    await chan.send(pb.Frame(needs=pb.Needs(batch=batch, ids=unsigned)))


class _DeltaEnds:
    """Tells the SOURCE, from the receiving threads, which delta files ended and which must
    come whole: gathered, and sent by one task."""

    def __init__(self, chan: Channel) -> None:
        self._chan = chan
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[int, bool]] = asyncio.Queue()
        self._task = asyncio.ensure_future(self._run())

    def add(self, need_id: int, whole: bool) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (need_id, whole))

    async def _run(self) -> None:
        while True:
            ended: list[int] = []
            whole: list[int] = []
            need_id, again = await self._queue.get()
            while True:
                (whole if again else ended).append(need_id)
                if self._queue.empty() or len(ended) + len(whole) >= 4096:
                    break
                need_id, again = self._queue.get_nowait()
            await self._chan.send(pb.Frame(delta_done=pb.DeltaDone(ended=ended, whole=whole)))

    def cancel(self) -> None:
        """Stop (idle by the end: the SOURCE ends its streams only once every delta ended)."""
        self._task.cancel()


def _summary_parts(
    events: list[ItemEvent], confirmed: list[tuple[int, str, int, int]],
) -> Iterator[tuple[list[ItemEvent], list[tuple[int, str, int, int]]]]:
    """The summary's events and confirmations cut into parts of about SUMMARY_PART_BYTES
    (gRPC refuses messages over 4 MiB); at least one part, possibly empty."""
    part_events: list[ItemEvent] = []
    part_confirmed: list[tuple[int, str, int, int]] = []
    size = 0
    for record in itertools.chain(events, confirmed):
        if size >= SUMMARY_PART_BYTES:
            yield part_events, part_confirmed
            part_events, part_confirmed, size = [], [], 0
        (part_events if isinstance(record, ItemEvent) else part_confirmed).append(record)
        size += 6 * len(record[1]) + 64  # JSON escapes a character in up to 6 bytes
    yield part_events, part_confirmed


class RelayObserver(NullObserver):
    """The daemon's observer as DESTINATION: it keeps itemized events for the client."""

    def __init__(self) -> None:
        self.events: list[ItemEvent] = []

    def on_item(self, event: ItemEvent) -> None:
        self.events.append(event)


def relayed_events(observer: TransferObserver) -> list[ItemEvent]:
    return observer.events if isinstance(observer, RelayObserver) else []


def merge_source_part(report: TransferReport, source_part: TransferReport) -> TransferReport:
    """The DESTINATION's report with the SOURCE's failures, warnings and removals added."""
    report.failures = source_part.failures + report.failures
    report.failures_omitted += source_part.failures_omitted
    report.warnings = source_part.warnings + report.warnings
    report.stats.sources_removed += source_part.stats.sources_removed
    return report
