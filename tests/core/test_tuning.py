"""The stream tuner's hill climbing, fed synthetic throughput curves (the tuner is pure)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from blit_core.net.tuning import REPROBE_INTERVALS, Backlog, StreamGate, StreamTuner


def run(tuner: StreamTuner, throughput: Callable[[int], float], intervals: int,
        backlog: Backlog = Backlog.LARGE_FILES) -> list[int]:
    seen = []
    for _ in range(intervals):
        seen.append(tuner.observe(throughput(tuner.active), backlog))
    return seen


def test_climbs_while_streams_pay_and_settles_at_the_knee() -> None:
    tuner = StreamTuner(limit=16, start=2)
    seen = run(tuner, lambda n: 100.0 * min(n, 6), 8)
    assert seen[:5] == [3, 4, 5, 6, 7]  # each addition up to 6 raised throughput >= 10%
    assert seen[5:] == [6, 6, 6]  # the 7th did not pay: back to 6, settled


def test_never_leaves_one_to_limit() -> None:
    tuner = StreamTuner(limit=3, start=1)
    assert run(tuner, lambda n: 100.0 * n, 6) == [2, 3, 3, 3, 3, 3]
    flat = StreamTuner(limit=8, start=1)
    assert run(flat, lambda n: 100.0, 4) == [2, 1, 1, 1]


def test_no_backlog_means_no_new_streams() -> None:
    tuner = StreamTuner(limit=8, start=2)
    assert run(tuner, lambda n: 100.0 * n, 5, backlog=Backlog.NONE) == [2] * 5


def test_small_files_go_on_one_stream_and_large_ones_climb_afresh() -> None:
    tuner = StreamTuner(limit=8)
    assert tuner.active == 1
    assert run(tuner, lambda n: 100.0 * n, 3) == [2, 3, 4]
    # only shards wait: more streams would contend for the same two processes
    assert run(tuner, lambda n: 100.0 * n, 3, backlog=Backlog.SMALL_FILES) == [1, 1, 1]
    # ranges wait again: the climb starts at once from one stream, not after a settle period
    assert run(tuner, lambda n: 100.0 * min(n, 2), 3) == [2, 3, 2]


def test_reprobes_when_the_workload_changes() -> None:
    tuner = StreamTuner(limit=8, start=2)
    run(tuner, lambda n: 100.0 * min(n, 3), 4)
    assert tuner.active == 3
    # large files now: more streams pay again; after the settle period it climbs further
    seen = run(tuner, lambda n: 100.0 * min(n, 6), REPROBE_INTERVALS + 6)
    assert max(seen) >= 6
    assert seen[-1] == 6


def test_gate_lets_only_the_active_streams_work() -> None:
    gate = StreamGate(2)
    assert [gate.may_work(i) for i in range(4)] == [True, True, False, False]
    gate.set_active(4)
    assert gate.may_work(3)
    gate.wait_turn(3)  # returns at once when allowed


def test_a_closed_gate_ends_the_waiting_streams() -> None:
    gate = StreamGate(1)
    answers: list[bool] = []
    waiter = threading.Thread(target=lambda: answers.append(gate.wait_turn(2)))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()  # not its turn: it waits
    gate.close()
    waiter.join(5)
    assert answers == [False]  # woken to end, not to take work
    assert gate.wait_turn(0)  # a working stream still may
