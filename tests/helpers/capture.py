"""A data-plane Output that keeps what a Sender writes, for tests that run a sender thread
without a socket and decode what it sent."""

from __future__ import annotations

import os

from blit_core.wire import frames
from blit_core.wire.codec import Decoder


class Capture:
    """An Output that keeps every write (each starts a record) and the bytes in order."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.stream = bytearray()

    def write(self, data: bytes | memoryview) -> None:
        self.writes.append(bytes(data))
        self.stream += data

    def send_file(self, fd: int, offset: int, count: int) -> int:
        data = os.pread(fd, count, offset)
        self.stream += data
        return len(data)

    def events(self) -> list[frames.Event]:
        """Everything sent, decoded, up to and including END."""
        decoder, events = Decoder(), []
        decoder.receive_data(bytes(self.stream))
        while not events or not isinstance(events[-1], frames.End):
            event = decoder.next_event()
            assert event is not frames.NEED_DATA, "the stream stops before END"
            events.append(event)
        return events
