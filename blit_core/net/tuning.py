"""How many data-plane streams a SOURCE keeps busy, chosen from measured throughput.

The responder grants up to AUTO_STREAMS connections when the user gave no --streams; the
SOURCE starts with START_STREAMS of them taking work and climbs: after each interval with work
waiting, it adds a stream if the last addition raised throughput by at least GAIN, and steps
back (and settles) if it did not. Every REPROBE_INTERVALS it probes again, since the workload
changes (small files, then large ones). Pure arithmetic: the session feeds it byte counts."""

from __future__ import annotations

import threading

AUTO_STREAMS = 8
START_STREAMS = 2  # measured best on a 2-core machine; the tuner climbs where more pay
GAIN = 0.10
REPROBE_INTERVALS = 12
INTERVAL_S = 0.25


class StreamTuner:
    def __init__(self, limit: int, start: int = START_STREAMS) -> None:
        self.limit = limit
        self.active = max(1, min(start, limit))
        self._rate_before = 0.0  # throughput before the last addition
        self._probing = True
        self._since_probe = 0

    def observe(self, rate: float, backlog: bool) -> int:
        """The active stream count for the next interval, given the last interval's
        throughput (bytes per second) and whether work was waiting for a free stream."""
        if not backlog:  # the streams kept up: more of them would idle
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
    """Lets the first `active` send streams take work; the others wait, connected and idle."""

    def __init__(self, active: int) -> None:
        self._cond = threading.Condition()
        self._active = active

    def set_active(self, active: int) -> None:
        with self._cond:
            self._active = active
            self._cond.notify_all()

    def may_work(self, index: int) -> bool:
        return index < self._active

    def wait_turn(self, index: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: index < self._active)
