"""How many data-plane streams a SOURCE keeps busy, chosen from the workload and from
measured throughput.

The responder grants up to AUTO_STREAMS connections when the user gave no --streams; the
SOURCE starts with one of them taking work. Shards of small files go on one stream: both ends
spend their time per file (open, write, rename) in one Python process, so a second stream only
adds contention (measured: 100,000 x 4 KiB pushed in 6.8 s on one stream, 10.3 s on two).
While ranges of large files wait for a free stream, it climbs: after each interval it adds a
stream if the last addition raised throughput by at least GAIN, and steps back (and settles)
if it did not. Every REPROBE_INTERVALS it probes again, since the workload changes. Pure
arithmetic: the session feeds it byte counts and what was waiting."""

from __future__ import annotations

import enum
import threading

AUTO_STREAMS = 8
GAIN = 0.10
REPROBE_INTERVALS = 12
INTERVAL_S = 0.25


class Backlog(enum.Enum):
    """What waited for a free stream during an interval."""

    NONE = 0  # the streams kept up: more of them would idle
    SMALL_FILES = 1  # only shards of small files: one stream carries them best
    LARGE_FILES = 2  # ranges of large files: more streams may pay


class StreamTuner:
    def __init__(self, limit: int, start: int = 1) -> None:
        self.limit = limit
        self.active = max(1, min(start, limit))
        self._rate_before = 0.0  # throughput before the last addition
        self._probing = True
        self._since_probe = 0

    def observe(self, rate: float, backlog: Backlog) -> int:
        """The active stream count for the next interval, given the last interval's
        throughput (bytes per second) and what was waiting for a free stream."""
        if backlog is Backlog.NONE:
            return self.active
        if backlog is Backlog.SMALL_FILES:  # climbing starts afresh when large files come
            self.active = 1
            self._probing = True
            self._rate_before = 0.0
            return self.active
        if not self._probing:
            self._since_probe += 1
            if self._since_probe < REPROBE_INTERVALS:
                return self.active
            self._probing = True
            self._rate_before = 0.0
        paid = rate >= self._rate_before * (1 + GAIN)
        if paid and self.active < self.limit:
            self._rate_before = rate
            self.active += 1
            return self.active
        if not paid and self.active > 1:
            self.active -= 1  # the last addition did not pay
        self._probing = False
        self._since_probe = 0
        return self.active


class StreamGate:
    """Lets the first `active` send streams take work; the others wait, connected and idle,
    until they may work or the gate closes (all work is queued: they end at once)."""

    def __init__(self, active: int) -> None:
        self._cond = threading.Condition()
        self._active = active
        self._closed = False

    def set_active(self, active: int) -> None:
        with self._cond:
            self._active = active
            self._cond.notify_all()

    def may_work(self, index: int) -> bool:
        return index < self._active

    def wait_turn(self, index: int) -> bool:
        """Wait until stream `index` may work (True) or the gate closed first (False)."""
        with self._cond:
            self._cond.wait_for(lambda: index < self._active or self._closed)
            return index < self._active

    def close(self) -> None:
        """No more work comes: the waiting streams end, instead of taking the last queued
        units from the working ones."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
