"""The incremental decoder of the data-plane record stream, in the style of h11.

Feed bytes with `receive_data` (b"" means the peer closed) and pull events with `next_event`
until it returns NEED_DATA. The decoder starts after the preface, which the caller reads
(PREFACE_SIZE bytes) and checks with `parse_preface`.

Large payloads need not pass through the decoder: when `buffered` is 0 inside a payload, the
caller may read up to `payload_remaining` bytes straight from its socket into its own buffer
and report them with `payload_consumed(n)`. (A compressed record's payload comes from the
decoder, inflated; `payload_remaining` is 0 meanwhile.)"""

from __future__ import annotations

import struct

from blit_core.errors import ProtocolError
from blit_core.wire import frames
from blit_core.wire.compression import inflate

# Consumed bytes at the front of the buffer are dropped once there are this many of them and
# they are at least half the buffer, so each byte is moved O(1) times on average.
_COMPACT_AT = 1 << 16
_PAYLOAD_HEADERS = {frames.RANGE: frames.RANGE_HEADER, frames.SHARD: frames.SHARD_HEADER,
                    frames.LITERAL: frames.LITERAL_HEADER}


class Decoder:
    """Turns the bytes of one data connection (after its preface) into events."""

    def __init__(
        self, limits: frames.Limits = frames.DEFAULT_LIMITS, max_data_chunk: int = 1 << 20
    ) -> None:
        if max_data_chunk <= 0:
            raise ValueError("max_data_chunk must be positive")
        self.limits = limits
        self.max_data_chunk = max_data_chunk
        self._buf = bytearray()
        self._pos = 0  # bytes of _buf already turned into events
        self._eof = False
        self._done = False  # End has been returned
        self._in_payload = False  # inside a RANGE/SHARD payload, PayloadEnd not yet returned
        self._remaining = 0  # payload bytes not yet delivered
        self._inflated: memoryview | None = None  # a compressed record's payload, if in one

    @property
    def buffered(self) -> int:
        """Bytes held internally and not yet returned as events."""
        return len(self._buf) - self._pos

    @property
    def payload_remaining(self) -> int:
        """Bytes of the current payload still to come from the connection; 0 outside a
        payload, and inside an inflated one."""
        return 0 if self._inflated is not None else self._remaining

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes from the peer; an empty `data` means the peer closed the connection."""
        if self._done:
            if data:
                raise ProtocolError("data after END")
            return
        if self._eof:
            raise RuntimeError("receive_data called after EOF")
        if not data:
            self._eof = True
            return
        if self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        elif self._pos >= _COMPACT_AT and 2 * self._pos >= len(self._buf):
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def payload_consumed(self, n: int) -> None:
        """Record that the caller read `n` payload bytes directly from its socket."""
        if self.buffered:
            raise ValueError("payload_consumed with bytes still buffered in the decoder")
        if not 0 < n <= self.payload_remaining:
            raise ValueError(f"payload_consumed({n}) with {self.payload_remaining} payload "
                             "bytes to come")
        self._remaining -= n

    def next_event(self) -> frames.Event | frames.NeedData:
        """The next event, or NEED_DATA if more bytes are required."""
        if self._done:
            return frames.NEED_DATA
        if self._in_payload:
            return self._payload_event()
        return self._record_event()

    def _payload_event(self) -> frames.Data | frames.PayloadEnd | frames.NeedData:
        if self._remaining == 0:
            self._in_payload = False
            self._inflated = None
            return frames.PayloadEnd()
        if self._inflated is not None:
            start = len(self._inflated) - self._remaining
            n = min(self._remaining, self.max_data_chunk)
            self._remaining -= n
            return frames.Data(bytes(self._inflated[start : start + n]))
        n = min(self.buffered, self._remaining, self.max_data_chunk)
        if n == 0:
            if self._eof:
                raise ProtocolError("connection closed in the middle of a payload")
            return frames.NEED_DATA
        with memoryview(self._buf) as view:
            chunk = bytes(view[self._pos : self._pos + n])
        self._pos += n
        self._remaining -= n
        return frames.Data(chunk)

    def _short(self) -> frames.NeedData:
        if self._eof:
            raise ProtocolError("connection closed in the middle of a record")
        return frames.NEED_DATA

    def _check(self, field: str, value: int, limit: int) -> None:
        if value > limit:
            raise ProtocolError(frames.over_limit(field, value, limit))

    def _fixed(self, layout: struct.Struct) -> tuple | None:
        """The fields after the type byte of a fixed-size record at the front, consumed; None
        while part of it has yet to arrive. (A field out of range then fails the decoder.)"""
        if self.buffered < layout.size:
            return None
        fields = layout.unpack_from(self._buf, self._pos)
        self._pos += layout.size
        return fields[1:]

    def _start_payload(self, length: int) -> None:
        self._in_payload = True
        self._remaining = length

    def _payload_start(self, kind: int, fields: tuple[int, ...]) -> frames.Event:
        """A RANGE, SHARD or LIT record's header fields, checked; its payload follows."""
        lim = self.limits
        if kind == frames.RANGE:
            need_id, offset, length = fields
            self._check("need_id", need_id, lim.max_need_id)
            self._check("range length", length, lim.max_range_length)
            self._check("range end", offset + length, frames.MAX_FILE_END)
            event: frames.Event = frames.RangeStart(need_id, offset, length)
        elif kind == frames.SHARD:
            (length,) = fields
            self._check("shard length", length, lim.max_shard_length)
            event = frames.ShardStart(length)
        else:
            (length,) = fields
            self._check("literal length", length, lim.max_literal_length)
            event = frames.LiteralStart(length)
        self._start_payload(length)
        return event

    def _inflated_start(self, record: bytes) -> frames.Event:
        """The one whole RANGE, SHARD or LIT record a ZREC held; its payload is served from
        here."""
        header = _PAYLOAD_HEADERS.get(record[0]) if record else None
        if header is None or len(record) < header.size:
            raise ProtocolError("a compressed record holds no RANGE, SHARD or LIT record")
        event = self._payload_start(record[0], header.unpack_from(record)[1:])
        if header.size + self._remaining != len(record):
            raise ProtocolError("a compressed record's length disagrees with its content")
        self._inflated = memoryview(record)[header.size:]
        return event

    def _record_event(self) -> frames.Event | frames.NeedData:
        buf, pos, have, lim = self._buf, self._pos, self.buffered, self.limits
        if have == 0:
            if self._eof:
                raise ProtocolError("connection closed before END")
            return frames.NEED_DATA
        kind = buf[pos]
        if kind in _PAYLOAD_HEADERS:
            if (fields := self._fixed(_PAYLOAD_HEADERS[kind])) is None:
                return self._short()
            return self._payload_start(kind, fields)
        if kind == frames.COMPRESSED:
            header = frames.COMPRESSED_HEADER
            if have < header.size:
                return self._short()
            _, raw_length, compressed_length = header.unpack_from(buf, pos)
            self._check("inflated length", raw_length, lim.max_inflated_length)
            self._check("compressed length", compressed_length, lim.max_inflated_length)
            end = pos + header.size + compressed_length
            if len(buf) < end:
                return self._short()
            frame = bytes(buf[pos + header.size : end])
            self._pos = end
            return self._inflated_start(inflate(frame, raw_length))
        if kind == frames.ABORT:
            if have < frames.ABORT_HEADER.size:
                return self._short()
            _, need_id, reason_len = frames.ABORT_HEADER.unpack_from(buf, pos)
            self._check("need_id", need_id, lim.max_need_id)
            self._check("abort reason length", reason_len, lim.max_reason_bytes)
            if have < frames.ABORT_HEADER.size + reason_len:
                return self._short()
            start = pos + frames.ABORT_HEADER.size
            try:
                reason = buf[start : start + reason_len].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ProtocolError(f"abort reason is not valid utf-8: {exc}") from None
            self._pos = start + reason_len
            return frames.Abort(need_id, reason)
        if kind == frames.DELTA:
            if (fields := self._fixed(frames.DELTA_HEADER)) is None:
                return self._short()
            (need_id,) = fields
            self._check("need_id", need_id, lim.max_need_id)
            return frames.DeltaStart(need_id)
        if kind == frames.COPY:
            if (fields := self._fixed(frames.COPY_RECORD)) is None:
                return self._short()
            block, count = fields
            self._check("copy block", block, lim.max_blocks)
            self._check("copy count", count, lim.max_blocks)
            return frames.CopyBlocks(block, count)
        if kind == frames.DELTA_END:
            if (fields := self._fixed(frames.DELTA_END_RECORD)) is None:
                return self._short()
            size, digest = fields
            self._check("delta size", size, frames.MAX_FILE_END)
            return frames.DeltaEnd(size, bytes(digest))
        if kind == frames.REDO:
            if (fields := self._fixed(frames.REDO_RECORD)) is None:
                return self._short()
            need_id, new_id, size, mtime_ns = fields
            self._check("need_id", need_id, frames.FIRST_REDO_ID - 1)
            self._check("new id", new_id, lim.max_need_id)
            if new_id < frames.FIRST_REDO_ID:
                raise ProtocolError(f"new id {new_id} is below {frames.FIRST_REDO_ID}")
            self._check("redo size", size, frames.MAX_FILE_END)
            return frames.Redo(need_id, new_id, size, mtime_ns)
        if kind == frames.END:
            self._pos += 1
            if self.buffered:
                raise ProtocolError("data after END")
            self._done = True
            return frames.End()
        raise ProtocolError(f"unknown record type 0x{kind:02x}")
