"""The emulator's scheduler under concurrency, with an instant fake engine (no real part needed).

Races DMR's loader avoids, and so must the emulator: two requests that wait for a free slot must
share one load, and a runner evicted between its load and its request must not be handed out. And
a runner whose process died is evicted straight away (DMR-PROTOCOL.md §5), never handed out again.
"""

from __future__ import annotations

import threading
import time

from pytest_dmr.emulator.engines import Runner, Scheduler

from .fake_engine import CRASH, FakeEngine, acquire


def test_requests_waiting_for_a_slot_share_one_load() -> None:
    engine = FakeEngine()
    scheduler = Scheduler(engine, slots=2, idle_timeout=300)
    try:
        busy_a, busy_c = acquire(scheduler, "a"), acquire(scheduler, "c")  # every slot in use
        got: list[Runner] = []
        first_holds = threading.Event()
        let_go = threading.Event()

        def first() -> None:
            got.append(acquire(scheduler, "b"))
            first_holds.set()
            let_go.wait(10)
            scheduler.release(got[0])

        def second() -> None:
            got.append(acquire(scheduler, "b"))
            scheduler.release(got[-1])

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        threads[0].start()
        time.sleep(0.2)  # both wait for a slot
        threads[1].start()
        time.sleep(0.2)
        scheduler.release(busy_a)  # one slot frees: b loads in it
        assert first_holds.wait(10)
        scheduler.release(busy_c)  # the second request must find b, not load it again
        time.sleep(0.3)
        let_go.set()
        for thread in threads:
            thread.join(10)
        assert len(got) == 2 and got[0] is got[1]
        assert engine.started.count("b") == 1, engine.started
    finally:
        scheduler.close()
    assert all(handle.closed for handle in engine.handles), "a runner's process outlived the scheduler"


def test_a_full_scheduler_stops_the_unused_runners_before_the_next_load() -> None:
    engine = FakeEngine()
    scheduler = Scheduler(engine, slots=1, idle_timeout=300)
    try:
        scheduler.release(acquire(scheduler, "a"))
        scheduler.release(acquire(scheduler, "b"))  # evicts a: two llama.cpp processes never run at once
        assert engine.started == ["a", "b"]
        assert engine.running_at_start == [0, 0]
    finally:
        scheduler.close()


def test_a_runner_evicted_right_after_its_load_is_never_handed_out() -> None:
    """idle_timeout=0: the idle reaper may win the race against the request that asked for the load."""
    engine = FakeEngine(load_seconds=0.02)
    scheduler = Scheduler(engine, slots=4, idle_timeout=0)
    try:
        for n in range(15):
            runner = acquire(scheduler, f"m{n % 2}")
            assert not runner.handle.closed, f"request {n} got a runner already unloaded"  # type: ignore[union-attr]
            scheduler.release(runner)
    finally:
        scheduler.close()


def test_a_runner_whose_process_exited_is_evicted_and_loaded_again() -> None:
    engine = FakeEngine()
    scheduler = Scheduler(engine, slots=2, idle_timeout=300)
    try:
        first = acquire(scheduler, "a")
        scheduler.release(first)
        first.handle.dead = True  # type: ignore[union-attr]
        second = acquire(scheduler, "a")
        try:
            assert second is not first and not second.handle.closed  # type: ignore[union-attr]
            assert engine.started == ["a", "a"]
            assert first.handle.closed, "the dead runner's handle was not closed"  # type: ignore[union-attr]
            assert scheduler.runners() == [second]
            assert len(scheduler.ps()) == 1
        finally:
            scheduler.release(second)
    finally:
        scheduler.close()


def test_a_runner_that_dies_under_requests_is_closed_by_the_last_of_them() -> None:
    engine = FakeEngine()
    scheduler = Scheduler(engine, slots=2, idle_timeout=300)
    try:
        one, two = acquire(scheduler, "a"), acquire(scheduler, "a")
        assert one is two
        assert scheduler.crashed(one) is None  # alive: nothing happens
        assert scheduler.runners() == [one]
        one.handle.dead = True  # type: ignore[union-attr]
        assert scheduler.crashed(one) == CRASH
        assert scheduler.runners() == [] and scheduler.ps() == []  # evicted at once...
        scheduler.release(one)
        assert not one.handle.closed  # type: ignore[union-attr]  # ...but the other request still holds it
        scheduler.release(two)
        assert one.handle.closed  # type: ignore[union-attr]
        again = acquire(scheduler, "a")
        assert again is not one and engine.started == ["a", "a"]
        scheduler.release(again)
    finally:
        scheduler.close()


def test_the_idle_reaper_evicts_a_crashed_runner_without_waiting_for_the_idle_timeout() -> None:
    engine = FakeEngine()
    scheduler = Scheduler(engine, slots=2, idle_timeout=300)
    try:
        runner = acquire(scheduler, "a")
        scheduler.release(runner)
        runner.handle.dead = True  # type: ignore[union-attr]
        deadline = time.monotonic() + 5
        while scheduler.runners() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert scheduler.runners() == []
        assert runner.handle.closed  # type: ignore[union-attr]
    finally:
        scheduler.close()
